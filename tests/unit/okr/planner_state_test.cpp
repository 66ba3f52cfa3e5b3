// Write, then apply, in the OKR planner: accept, edit, dismiss, close and check-in whose write
// fails return unavailable and leave the OKR as it was, in memory and in the store.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "kpid/alert/alerter.h"
#include "kpid/alert/outbox.h"
#include "kpid/config/config.h"
#include "kpid/core/json.h"
#include "kpid/core/text.h"
#include "kpid/kpi/definition.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/okr/planner.h"
#include "kpid/query/engine.h"
#include "kpid/store/rocksdb_store.h"
#include "support/failing_state_store.h"
#include "support/fake_clock.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace kpid;
using namespace kpid::okr;

namespace {

constexpr TimestampMs kNow = 1'795'392'000'000;  // 2026-11-22T00:00:00Z
constexpr TimestampMs kDay = 86'400'000;

KeyResult manual_kr(const std::string& id) {
  KeyResult kr;
  kr.id = id;
  kr.kind = KrKind::kManual;
  kr.description = "ship the cache";
  kr.start = 0;
  kr.target = 1;
  kr.direction = KrDirection::kIncrease;
  return kr;
}

Okr okr_record(const std::string& id, OkrState state) {
  Okr o;
  o.id = id;
  o.kpi = "a";
  o.state = state;
  o.objective = "Make checkout fast again";
  o.owner = "payments";
  o.period_start = kNow - kDay;
  o.period_end = kNow + 30 * kDay;
  o.created_at = kNow - kDay;
  o.key_results = {manual_kr("kr1"), manual_kr("kr2")};
  o.next_kr = 3;
  return o;
}

// A store behind a state store that fails writes on demand, the evaluator, alerter and outbox
// the planner reads, and a planner over two OKRs written to the store beforehand: 1 (a draft)
// and 2 (active).
struct Rig {
  Rig() {
    clock.set_ms(kNow);
    store = testing::open_test_store(dir.path() + "/data", clock);
    state = std::make_unique<testing::FailingStateStore>(*store);
    engine = std::make_unique<query::Engine>(*store, query::QueryOptions{});
    auto loaded = config::parse_config(
        "[[kpi]]\nid = \"a\"\nowner = \"payments\"\ndirection = \"lower_is_better\"\n"
        "[kpi.value]\nselector = \"m\"\nover_time = \"avg\"\n",
        "kpid.toml", {});
    REQUIRE(loaded.ok());
    evaluator = std::make_unique<kpi::Evaluator>(*store, *state, *engine, &metrics, clock,
                                                 kpi::EvaluatorOptions{5'000, false});
    evaluator->set_kpis(kpi::compile(loaded.config.kpis).kpis);
    outbox = std::make_unique<alert::Outbox>(*state, std::vector<alert::Receiver>{}, &metrics,
                                             clock, alert::OutboxOptions{});
    alerter = std::make_unique<alert::Alerter>(
        *state, *outbox, &metrics, clock,
        alert::AlerterOptions{"http://kpid.test:9470", 1'000, 7 * kDay, false});
    for (const Okr& okr : {okr_record("1", OkrState::kDraft), okr_record("2", OkrState::kActive)}) {
      const std::pair<std::string, std::string> puts[] = {
          {"okr/" + padded_id(*parse_id(okr.id)), to_json_text(to_json(okr))}};
      REQUIRE(store->write_state(puts).is_ok());
    }
    start();
  }
  // A new planner over the same store: what a restart would find.
  void start() {
    planner.reset();
    planner = std::make_unique<Planner>(*state, *evaluator, *alerter, &metrics, clock,
                                        PlannerOptions{5, 1'000, false});
    REQUIRE(planner->load().is_ok());
  }
  Okr okr(const std::string& id) { return planner->get(id).value(); }

  testing::TempDir dir;
  testing::FakeClock clock;
  metrics::Metrics metrics;
  std::unique_ptr<store::RocksDbStore> store;
  std::unique_ptr<testing::FailingStateStore> state;
  std::unique_ptr<query::Engine> engine;
  std::unique_ptr<kpi::Evaluator> evaluator;
  std::unique_ptr<alert::Outbox> outbox;
  std::unique_ptr<alert::Alerter> alerter;
  std::unique_ptr<Planner> planner;
};

// A refused change: unavailable, naming the disk's error.
void check_refused(const Result<Okr>& r) {
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kUnavailable);
  CHECK(r.status().message().find("No space left on device") != std::string::npos);
}

}  // namespace

TEST_CASE("write then apply: OKR changes whose write fails are refused and not applied") {
  Rig rig;
  const Okr draft = rig.okr("1");
  const Okr active = rig.okr("2");
  rig.state->fail_writes = true;

  check_refused(rig.planner->accept("1", "ana"));
  check_refused(rig.planner->dismiss("1", "ana", "not now"));
  check_refused(
      rig.planner->edit("2", "ana", boost::json::object{{"objective", "Make checkout instant"}}));
  check_refused(rig.planner->check_in("2", "ana", "kr1", 0.5, "half done", 0.8));
  check_refused(rig.planner->close("2", "ana", Outcome::kMissed));
  CHECK(rig.state->failed_writes == 5);

  auto unchanged = [&] {
    const Okr one = rig.okr("1");
    const Okr two = rig.okr("2");
    CHECK(one.state == OkrState::kDraft);
    CHECK(one.history.size() == draft.history.size());
    CHECK(two.state == OkrState::kActive);
    CHECK(two.objective == active.objective);
    CHECK(two.key_results[0].checkins.empty());
    CHECK(two.history.size() == active.history.size());
  };
  unchanged();
  rig.state->fail_writes = false;
  rig.start();  // nothing of it reached the store either
  unchanged();

  // Once writes work, the same changes go through.
  REQUIRE(rig.planner->accept("1", "ana").is_ok());
  REQUIRE(rig.planner->check_in("2", "ana", "kr1", 0.5, "half done", 0.8).is_ok());
  REQUIRE(
      rig.planner->edit("2", "ana", boost::json::object{{"objective", "Make it instant"}}).is_ok());
  REQUIRE(rig.planner->close("2", "ana", Outcome::kMissed).is_ok());
  rig.start();
  CHECK(rig.okr("1").state == OkrState::kActive);
  CHECK(rig.okr("2").state == OkrState::kClosed);
  CHECK(rig.okr("2").objective == "Make it instant");
  CHECK(rig.okr("2").key_results[0].checkins.size() == 1);
}
