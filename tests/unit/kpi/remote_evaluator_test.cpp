// KPIs on a data source: evaluated at aligned times through one batched request per round,
// unknown when the source fails, back when it answers again. The source is a scripted loopback
// server answering as the Prometheus API does.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kpid/config/config.h"
#include "kpid/datasource/source.h"
#include "kpid/kpi/definition.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/query/engine.h"
#include "kpid/store/rocksdb_store.h"
#include "support/fake_clock.h"
#include "support/recording_receiver.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace kpid;
using namespace kpid::kpi;

namespace {

constexpr TimestampMs kNow = 1'700'000'000'000;

const char* kKpis = R"toml(
[[kpi]]
id = "error_ratio"
direction = "lower_is_better"
datasource = "vm"
interval = "10s"
[kpi.value]
scale = 100
[kpi.value.numerator]
selector = "errors_total"
over_time = "increase"
[kpi.value.denominator]
selector = "requests_total"
over_time = "increase"
[kpi.band]
warn = 1
crit = 5

[[kpi]]
id = "ratio_again"
direction = "lower_is_better"
datasource = "vm"
interval = "10s"
[kpi.value]
expr = 'sum(increase(errors_total[5m]))'

[[datasource]]
name = "vm"
url = "http://127.0.0.1:1"
)toml";

struct Listener final : EvaluationListener {
  void evaluated(const KpiView& kpi) override { views.push_back(kpi); }
  void source_evaluated(const SourceObservation& s) override { sources.push_back(s); }
  std::vector<KpiView> views;
  std::vector<SourceObservation> sources;
};

}  // namespace

TEST_CASE("kpi on a datasource: batched at aligned times, unknown while the source fails") {
  kpid::testing::RecordingReceiver receiver;
  // Two distinct queries: q0 the numerator (the second KPI's expression is the same string),
  // q1 the denominator.
  receiver.respond_with(200, R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{"__kpid_q":"0"},"value":[1700000000,"7"]},
      {"metric":{"__kpid_q":"1"},"value":[1700000000,"100"]}]}})");
  auto loaded = config::parse_config(kKpis, "kpis.toml", {});
  REQUIRE(loaded.ok());
  auto compiled = compile(loaded.config.kpis);
  REQUIRE(compiled.ok());
  REQUIRE(remote_queries(compiled.kpis[0]) ==
          std::vector<std::string>{"sum(increase(errors_total[5m]))",
                                   "sum(increase(requests_total[5m]))"});

  kpid::testing::TempDir dir;
  kpid::testing::FakeClock clock;
  clock.set_ms(kNow + 3'000);
  metrics::Metrics metrics;
  auto store = kpid::testing::open_test_store(dir.path() + "/data", clock);
  query::Engine engine(*store, query::QueryOptions{});
  auto options = loaded.config.datasources.at(0);
  options.url = receiver.url();
  auto source = datasource::Source::create(options, &metrics);
  REQUIRE(source);
  Evaluator evaluator(*store, *store, engine, &metrics, clock, EvaluatorOptions{5'000, false});
  Listener listener;
  evaluator.set_listener(&listener);
  evaluator.set_sources({{"vm", source->get()}});
  evaluator.set_kpis(compiled.kpis);

  evaluator.run_once();
  // The numerator's query and the second KPI's expression are the same string: asked once.
  REQUIRE(receiver.requests().size() == 1);
  CHECK(receiver.requests()[0].body.find("time=1700000000.000") != std::string::npos);
  auto v = evaluator.get("error_ratio").value();
  CHECK(v.value == Approx(7));
  CHECK(v.status == Health::kCrit);
  CHECK(v.evaluated_at == kNow);  // aligned to its 10 s interval
  CHECK(evaluator.get("ratio_again")->value == Approx(7));
  REQUIRE(listener.sources.size() == 1);
  CHECK(listener.sources[0].up);

  // Not due again until the next aligned time.
  clock.set_ms(kNow + 9'000);
  evaluator.run_once();
  CHECK(receiver.requests().size() == 1);

  receiver.respond_with(503, R"({"status":"error","error":"vmselect: no vmstorage"})");
  clock.set_ms(kNow + 10'000);
  evaluator.run_once();
  v = evaluator.get("error_ratio").value();
  CHECK(v.status == Health::kUnknown);
  CHECK(std::isnan(v.value));
  CHECK(evaluator.get("ratio_again")->status == Health::kUnknown);
  REQUIRE(listener.sources.size() == 2);
  CHECK_FALSE(listener.sources[1].up);
  CHECK(listener.sources[1].error.find("no vmstorage") != std::string::npos);
  CHECK(listener.views.back().status == Health::kUnknown);
  auto history = evaluator.history("error_ratio", 10);
  REQUIRE(history);
  CHECK(history->back().status == Health::kUnknown);

  receiver.respond_with(200, R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{"__kpid_q":"0"},"value":[1700000020,"1"]},
      {"metric":{"__kpid_q":"1"},"value":[1700000020,"200"]}]}})");
  clock.set_ms(kNow + 20'000);
  evaluator.run_once();
  v = evaluator.get("error_ratio").value();
  CHECK(v.value == Approx(0.5));
  CHECK(v.status == Health::kOk);
  CHECK(listener.sources.back().up);
  const std::string text = metrics.scrape();
  bool found = false;
  for (size_t at = text.find("kpid_kpi_status{"); at != std::string::npos;
       at = text.find("kpid_kpi_status{", at + 1)) {
    const std::string line = text.substr(at, text.find('\n', at) - at);
    if (line.find("kpi=\"error_ratio\"") == std::string::npos) continue;
    if (line.find("status=\"unknown\"") == std::string::npos) continue;
    found = true;
    CHECK(line.ends_with(" 0"));
  }
  CHECK(found);
}
