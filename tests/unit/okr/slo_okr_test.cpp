// The budget opens the OKR: an SLO's exhausted (or soon exhausted) error budget opens a draft
// with key results from the SLO's figures, a second exhaustion links to it, its key results are
// scored live, and it graduates once the budget has stayed healthy. The real store, query
// engine, evaluator, SLO tracker, alerter and planner on a fake clock, driven round by round.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "kpid/alert/alerter.h"
#include "kpid/alert/outbox.h"
#include "kpid/config/config.h"
#include "kpid/kpi/definition.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/okr/planner.h"
#include "kpid/query/engine.h"
#include "kpid/slo/definition.h"
#include "kpid/slo/tracker.h"
#include "kpid/store/rocksdb_store.h"
#include "support/fake_clock.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace kpid;
using namespace kpid::okr;

namespace {

constexpr TimestampMs kNow = 1'795'392'000'000;  // 2026-11-22T00:00:00Z, in Q4 2026
constexpr TimestampMs kMinute = 60'000;
constexpr TimestampMs kHour = 60 * kMinute;

// A related KPI with a band and an events SLO (99% over 28 days, evaluated each minute) whose
// [slo.okr] body is `okr`.
std::string config_toml(const std::string& okr) {
  return R"toml(
[[kpi]]
id = "latency"
name = "Checkout latency"
owner = "payments"
unit = "ms"
direction = "lower_is_better"
[kpi.value]
selector = "latency"
over_time = "last"
[kpi.band]
warn = 100
crit = 200

[[slo]]
id = "checkout"
name = "Checkout availability"
owner = "payments"
objective = 99
window = "28d"
interval = "1m"
[slo.events]
good = "req_good"
total = "req_total"
[slo.okr]
)toml" + okr;
}

struct Rig {
  explicit Rig(const std::string& okr) {
    clock.set_ms(kNow);
    store = testing::open_test_store(dir.path() + "/data", clock);
    engine = std::make_unique<query::Engine>(*store, query::QueryOptions{});
    auto loaded = config::parse_config(config_toml(okr), "kpid.toml", {});
    std::string errors;
    for (const auto& e : loaded.errors) errors += e.to_string() + "\n";
    INFO(errors);
    REQUIRE(loaded.ok());
    auto kpis = kpi::compile(loaded.config.kpis);
    REQUIRE(kpis.ok());
    auto slos = slo::compile(loaded.config, kpis.kpis);
    for (const auto& e : slos.errors) errors += e.to_string() + "\n";
    INFO(errors);
    REQUIRE(slos.ok());
    auto policies = compile_slo_policies(loaded.config, slos.slos);
    REQUIRE(policies.ok());
    REQUIRE(policies.policies.size() == 1);

    evaluator = std::make_unique<kpi::Evaluator>(*store, *store, *engine, &metrics, clock,
                                                 kpi::EvaluatorOptions{5'000, false});
    evaluator->set_kpis(kpis.kpis);
    outbox = std::make_unique<alert::Outbox>(*store, std::vector<alert::Receiver>{}, &metrics,
                                             clock, alert::OutboxOptions{});
    alerter = std::make_unique<alert::Alerter>(
        *store, *outbox, &metrics, clock,
        alert::AlerterOptions{"http://kpid.test:9470", 1'000, 7 * 86'400'000LL, false});
    REQUIRE(alerter->load().is_ok());
    alerter->set_rules(std::move(slos.rules));
    tracker = std::make_unique<slo::Tracker>(*engine, *evaluator, &metrics, clock,
                                             slo::TrackerOptions{false});
    bridge = std::make_unique<slo::AlerterBridge>(*alerter);
    tracker->set_listener(bridge.get());
    tracker->set_slos(std::move(slos.slos));
    planner = std::make_unique<Planner>(*store, *evaluator, *alerter, &metrics, clock,
                                        PlannerOptions{5, 1'000, false});
    REQUIRE(planner->load().is_ok());
    planner->set_slo_tracker(tracker.get());
    planner->set_slo_policies(std::move(policies.policies));
    planner->set_external_url("http://kpid.test:9470");
    round();  // the first evaluation: the counters' starting point
  }

  void write(const std::string& name, double value) {
    auto id = store->resolve(Labels::from(std::vector<Label>{{"__name__", name}}).value().encode());
    REQUIRE(id.is_ok());
    const store::Sample sample{*id, clock.now_ms(), value};
    REQUIRE(store->append(std::span(&sample, 1)).is_ok());
  }

  // The counters as they are now, then one round of every module.
  void round() {
    write("req_good", good);
    write("req_total", total);
    tracker->run_once();
    alerter->run_once();
    planner->run_once();
  }

  // One minute more, with `good_events` good and `bad_events` bad requests in it.
  void step(double good_events, double bad_events = 0) {
    clock.set_ms(clock.now_ms() + kMinute);
    good += good_events;
    total += good_events + bad_events;
    round();
  }

  // Minutes of steady, good traffic until `duration` has passed.
  void idle(DurationMs duration) {
    for (DurationMs t = 0; t < duration; t += kMinute) step(100);
  }

  std::vector<Okr> okrs() {
    OkrFilter f;
    f.slo = "checkout";
    return planner->list(f).value();
  }
  slo::SloView view() { return tracker->get("checkout").value(); }

  testing::TempDir dir;
  testing::FakeClock clock;
  metrics::Metrics metrics;
  std::unique_ptr<store::RocksDbStore> store;
  std::unique_ptr<query::Engine> engine;
  std::unique_ptr<kpi::Evaluator> evaluator;
  std::unique_ptr<alert::Outbox> outbox;
  std::unique_ptr<alert::Alerter> alerter;
  std::unique_ptr<slo::Tracker> tracker;
  std::unique_ptr<slo::AlerterBridge> bridge;
  std::unique_ptr<Planner> planner;
  double good = 0;
  double total = 0;
};

const KeyResult& kr(const Okr& okr, const std::string& id) {
  for (const auto& k : okr.key_results) {
    if (k.id == id) return k;
  }
  FAIL("no key result " << id);
  return okr.key_results.front();
}

}  // namespace

TEST_CASE("slo okr: an exhausted budget opens one draft with the SLO's figures and a guardrail") {
  Rig rig("on = [\"exhausted\"]\nafter = \"0s\"\nrelated = [\"latency\"]\n");
  rig.step(100);
  CHECK(rig.okrs().empty());
  rig.step(50, 50);  // 50 bad of 200: the 1% budget spent 25 times over
  const slo::SloView view = rig.view();
  REQUIRE(view.exhausted());
  CHECK(view.budget_remaining == Approx(-24));
  CHECK(view.burn_rate(kHour) == Approx(25));

  auto okrs = rig.okrs();
  REQUIRE(okrs.size() == 1);
  const Okr& okr = okrs[0];
  CHECK(okr.slo == "checkout");
  CHECK(okr.kpi.empty());
  CHECK(okr.state == OkrState::kDraft);
  CHECK(okr.owner == "payments");
  CHECK(okr.objective == "Restore Checkout availability reliability");
  CHECK(okr.period_start == 1'790'812'800'000);  // 2026-10-01
  CHECK(okr.period_end == 1'798'761'600'000);    // 2027-01-01
  REQUIRE(okr.key_results.size() == 3);

  const KeyResult& budget = kr(okr, "kr1");
  CHECK(budget.kind == KrKind::kSlo);
  CHECK(budget.slo == "checkout");
  CHECK(budget.measure == kMeasureBudgetRemaining);
  CHECK(budget.start == Approx(view.budget_remaining * 100));
  CHECK(budget.target == 25);
  CHECK(budget.direction == KrDirection::kIncrease);
  CHECK(budget.description ==
        "Error budget remaining from \u22122400% to \u2265 25% by the end of the quarter");
  CHECK_FALSE(met(budget));

  const KeyResult& burn = kr(okr, "kr2");
  CHECK(burn.kind == KrKind::kSlo);
  CHECK(burn.measure == kMeasureBurnRate1h);
  CHECK(burn.start == Approx(view.burn_rate(kHour)));
  CHECK(burn.target == 1);
  CHECK(burn.direction == KrDirection::kDecrease);
  CHECK(burn.description == "1h burn rate from 25 to below 1");

  const KeyResult& guard = kr(okr, "kr3");
  CHECK(guard.kind == KrKind::kGuardrail);
  CHECK(guard.kpi == "latency");
  CHECK(guard.direction == KrDirection::kStayBelow);
  CHECK(guard.target == 100);

  // The burn-rate alerts that fired are its links, and carry its address.
  alert::AlertFilter firing;
  firing.slo = "checkout";
  firing.state = "firing";
  const auto alerts = rig.alerter->list(firing);
  REQUIRE_FALSE(alerts.empty());
  CHECK(okr.alerts.size() == alerts.size());
  CHECK(okr.alerts.front() == alerts.front().alert.id);
  auto detail = rig.alerter->get(alerts.front().alert.id).value();
  CHECK(detail.view.alert.annotations.at("okr_url") ==
        "http://kpid.test:9470/api/v1/okrs/" + okr.id);

  // Still exhausted: still the one draft.
  rig.step(10);
  rig.step(10);
  CHECK(rig.okrs().size() == 1);
  // Kept in the store: a restart finds it, SLO id and key results included.
  Planner again(*rig.store, *rig.evaluator, *rig.alerter, nullptr, rig.clock,
                PlannerOptions{5, 1'000, false});
  REQUIRE(again.load().is_ok());
  const Okr stored = again.get(okr.id).value();
  CHECK(stored.slo == "checkout");
  CHECK(kr(stored, "kr2").measure == kMeasureBurnRate1h);
}

TEST_CASE("slo okr: a second exhaustion within the period links to the open OKR") {
  Rig rig("on = [\"exhausted\"]\nafter = \"0s\"\n");
  rig.step(100);
  rig.step(50, 50);
  REQUIRE(rig.okrs().size() == 1);
  const std::string id = rig.okrs()[0].id;
  REQUIRE(rig.planner->accept(id, "ana").is_ok());

  rig.step(100'000);  // back in budget
  REQUIRE(rig.view().budget_remaining > 0);
  CHECK(rig.okrs().size() == 1);
  rig.step(0, 2'000);  // exhausted again
  REQUIRE(rig.view().exhausted());

  const auto okrs = rig.okrs();
  REQUIRE(okrs.size() == 1);
  CHECK(okrs[0].id == id);
  CHECK(okrs[0].state == OkrState::kActive);
  CHECK(okrs[0].history.back().what.find("budget exhausted again at") != std::string::npos);
}

TEST_CASE("slo okr: a budget projected to run out opens a draft once held for after") {
  Rig rig("on = [\"projected\"]\nafter = \"10m\"\n");
  rig.step(10'000);
  CHECK(rig.okrs().empty());
  rig.step(0, 60);  // 60 bad of 10,060: burn 0.6, 40% left, gone in 18.7 days of 28
  const slo::SloView view = rig.view();
  REQUIRE_FALSE(view.exhausted());
  REQUIRE(view.exhaustion_6h);
  CHECK(*view.exhaustion_6h < 28 * 24 * kHour);
  rig.idle(9 * kMinute);
  CHECK(rig.okrs().empty());
  rig.step(100);  // ten minutes
  auto okrs = rig.okrs();
  REQUIRE(okrs.size() == 1);
  CHECK(okrs[0].history.front().what.find("projected to run out") != std::string::npos);
  CHECK(kr(okrs[0], "kr1").start == Approx(rig.view().budget_remaining * 100));
  CHECK(kr(okrs[0], "kr1").start > 0);
}

TEST_CASE("slo okr: key results are scored live from the SLO's figures") {
  Rig rig("on = [\"exhausted\"]\nafter = \"0s\"\n");
  rig.step(100);
  rig.step(50, 50);
  REQUIRE(rig.okrs().size() == 1);
  rig.step(100'000);
  const slo::SloView view = rig.view();
  const Okr okr = rig.okrs()[0];
  const KeyResult& budget = kr(okr, "kr1");
  CHECK(budget.current == Approx(view.budget_remaining * 100));
  CHECK(budget.current > 25);
  CHECK(met(budget));
  CHECK(progress(budget) == 1);
  const KeyResult& burn = kr(okr, "kr2");
  CHECK(burn.current == Approx(view.burn_rate(kHour)));
  CHECK(burn.current < 1);
  CHECK(met(burn));
  CHECK(score(okr) == 1);
}

TEST_CASE("slo okr: the OKR graduates once healthy for graduate_after, then a new draft opens") {
  Rig rig("on = [\"exhausted\"]\nafter = \"0s\"\ngraduate_after = \"1h\"\n");
  rig.step(100);
  rig.step(50, 50);
  REQUIRE(rig.okrs().size() == 1);
  const std::string id = rig.okrs()[0].id;
  REQUIRE(rig.planner->accept(id, "ana").is_ok());

  rig.step(100'000);  // healthy from here
  const TimestampMs healthy_at = rig.clock.now_ms();
  CHECK(rig.planner->get(id).value().healthy_since == healthy_at);
  rig.idle(59 * kMinute);
  CHECK(rig.planner->get(id).value().state == OkrState::kActive);
  rig.step(100);
  const Okr done = rig.planner->get(id).value();
  CHECK(done.state == OkrState::kClosed);
  CHECK(done.outcome == Outcome::kAchieved);
  CHECK(done.history.back().what.find("SLO checkout healthy for 1h") != std::string::npos);

  // Back to plain monitoring: the next exhaustion opens a new draft.
  rig.step(0, 5'000);
  REQUIRE(rig.view().exhausted());
  const auto okrs = rig.okrs();
  REQUIRE(okrs.size() == 2);
  CHECK(okrs[0].id != id);
  CHECK(okrs[0].state == OkrState::kDraft);
}

TEST_CASE("slo okr: the shipped config/slo.example.toml compiles into an SLO policy") {
  auto loaded = config::load_config(KPID_SOURCE_DIR "/config/slo.example.toml", {});
  INFO((loaded.errors.empty() ? "" : loaded.errors[0].to_string()));
  REQUIRE(loaded.ok());
  auto kpis = kpi::compile(loaded.config.kpis);
  auto slos = slo::compile(loaded.config, kpis.kpis);
  INFO((slos.errors.empty() ? "" : slos.errors[0].to_string()));
  REQUIRE(slos.ok());
  auto policies = compile_slo_policies(loaded.config, slos.slos);
  REQUIRE(policies.ok());
  REQUIRE(policies.policies.size() == 1);
  const SloPolicy& p = policies.policies[0];
  CHECK(p.slo == "checkout_availability");
  CHECK(p.on_exhausted);
  CHECK(p.on_projected);
  CHECK(p.related == std::vector<std::string>{"checkout_latency_p95"});
}

TEST_CASE("slo okr: an SLO whose related KPI does not exist opens no OKRs") {
  auto loaded = config::parse_config(config_toml("related = [\"nope\"]\n"), "kpid.toml", {});
  REQUIRE(loaded.ok());
  auto kpis = kpi::compile(loaded.config.kpis);
  auto slos = slo::compile(loaded.config, kpis.kpis);
  REQUIRE(slos.errors.size() == 1);
  CHECK(slos.errors[0].to_string().find("kpid.toml:26") != std::string::npos);
  CHECK(slos.errors[0].key == "slo.checkout.okr.related");
  CHECK(compile_slo_policies(loaded.config, slos.slos).policies.empty());
}
