// The evaluator's state: write, then apply (a status change whose record cannot be written is
// not shown), the first-sample record that survives restarts, and cancelled history reads.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "kpid/config/config.h"
#include "kpid/kpi/definition.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/query/engine.h"
#include "kpid/store/rocksdb_store.h"
#include "support/failing_state_store.h"
#include "support/fake_clock.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace kpid;
using namespace kpid::kpi;

namespace {

constexpr TimestampMs kNow = 1'700'438'400'000;
constexpr TimestampMs kHour = 3'600'000;

const std::string kToml = R"toml(
[[kpi]]
id = "a"
owner = "team"
direction = "lower_is_better"
[kpi.value]
selector = "m"
over_time = "avg"
window = "1m"
[kpi.band]
warn = 200
crit = 400
)toml";

std::vector<Definition> compile_toml(const std::string& toml) {
  auto loaded = config::parse_config(toml, "kpis.toml", {});
  REQUIRE(loaded.ok());
  auto compiled = compile(loaded.config.kpis);
  REQUIRE(compiled.ok());
  return compiled.kpis;
}

// A store (behind a state store that fails writes on demand), an engine and an evaluator on a
// fake clock, driven with run_once().
struct Rig {
  Rig() {
    clock.set_ms(kNow);
    store = testing::open_test_store(dir.path() + "/data", clock);
    state = std::make_unique<testing::FailingStateStore>(*store);
    engine = std::make_unique<query::Engine>(*store, query::QueryOptions{});
    start();
  }
  // A new evaluator over the same store (a restart, as far as the evaluator can tell).
  void start() {
    evaluator.reset();
    evaluator = std::make_unique<Evaluator>(*store, *state, *engine, &metrics, clock,
                                            EvaluatorOptions{5'000, false});
    evaluator->set_kpis(compile_toml(kToml));
  }
  void write(TimestampMs t, double v) {
    auto id = store->resolve(Labels::from({{"__name__", "m"}}).value().encode());
    REQUIRE(id.is_ok());
    std::vector<store::Sample> samples{{*id, t, v}};
    REQUIRE(store->append(samples).is_ok());
    evaluator->observe(samples);
  }
  KpiView view() { return evaluator->get("a").value(); }
  size_t recorded() { return evaluator->history("a", 100).value().size(); }
  double failures() {
    const std::string text = metrics.scrape();
    const std::string series = "kpid_state_write_failures_total{module=\"kpi\"} ";
    auto at = text.find(series);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size()));
  }

  testing::TempDir dir;
  testing::FakeClock clock;
  metrics::Metrics metrics;
  std::unique_ptr<store::RocksDbStore> store;
  std::unique_ptr<testing::FailingStateStore> state;
  std::unique_ptr<query::Engine> engine;
  std::unique_ptr<Evaluator> evaluator;
};

}  // namespace

TEST_CASE("write then apply: a KPI status change whose record cannot be written is not shown") {
  Rig rig;
  rig.write(kNow - 1000, 100);
  rig.evaluator->run_once();
  REQUIRE(rig.view().status == Health::kOk);
  const TimestampMs ok_since = rig.view().since;
  REQUIRE(rig.recorded() == 1);

  rig.state->fail_writes = true;
  rig.clock.set_ms(kNow + 1000);
  rig.write(kNow + 500, 900);
  rig.evaluator->run_once();
  CHECK(rig.view().status == Health::kOk);  // crit could not be recorded: ok stands
  CHECK(rig.view().since == ok_since);
  CHECK(rig.recorded() == 1);
  CHECK(rig.failures() >= 1);

  rig.state->fail_writes = false;
  rig.clock.set_ms(kNow + 2000);
  rig.evaluator->run_once();  // tried again at the next evaluation
  CHECK(rig.view().status == Health::kCrit);
  CHECK(rig.recorded() == 2);
  rig.start();  // and after a restart the recorded status is the one shown
  CHECK(rig.view().status == Health::kCrit);
}

TEST_CASE("kpi: the first sample a KPI ever had is recorded and survives restarts") {
  Rig rig;
  rig.evaluator->run_once();
  CHECK(rig.view().status == Health::kNoData);
  CHECK(rig.view().first_sample == 0);  // never had data

  // While the record cannot be written, the KPI counts as never having had data.
  rig.state->fail_writes = true;
  rig.write(kNow - 1000, 100);
  rig.evaluator->run_once();
  CHECK(rig.view().first_sample == 0);
  rig.state->fail_writes = false;
  rig.clock.set_ms(kNow + 1000);
  rig.evaluator->run_once();
  CHECK(rig.view().first_sample == kNow - 1000);

  // An hour later, no data for long: no_data, and still known to have had data, also after a
  // restart (before any evaluation).
  rig.clock.set_ms(kNow + kHour);
  rig.start();
  CHECK(rig.view().first_sample == kNow - 1000);
  rig.evaluator->run_once();
  CHECK(rig.view().status == Health::kNoData);
  CHECK(rig.view().first_sample == kNow - 1000);
}

TEST_CASE("kpi: a history read stops once its stop token is requested") {
  Rig rig;
  for (int h = 0; h < 48; ++h) rig.write(kNow - h * kHour, 100);
  const Definition d = compile_toml(kToml).at(0);
  auto whole = value_history(*rig.engine, d, kNow - 2 * 24 * kHour, kNow);
  REQUIRE(whole.is_ok());
  CHECK_FALSE(whole->empty());
  std::stop_source stop;
  stop.request_stop();
  auto cancelled = value_history(*rig.engine, d, kNow - 2 * 24 * kHour, kNow, stop.get_token());
  REQUIRE_FALSE(cancelled.is_ok());
  CHECK(cancelled.status().code() == StatusCode::kUnavailable);
  CHECK(cancelled.status().message().find("cancelled") != std::string::npos);
}
