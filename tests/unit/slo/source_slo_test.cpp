// SLOs with `datasource`: the tracker sends their counter queries to the source (a fake query
// seam here; the real VictoriaMetrics in tests/integration/datasource_test.cpp), and a failing
// source changes nothing: no budget change, the error kept, burn-rate alerts held.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "slo_rig.h"

namespace kpid::slo {
namespace {

using namespace test_rig;

constexpr TimestampMs kInterval = 30 * kSecond;

const std::string kSlo = R"toml(
[[datasource]]
name = "vm"
url = "http://127.0.0.1:1"

[[slo]]
id = "api"
objective = 99.9
window = "30d"
interval = "30s"
datasource = "vm"
[slo.events]
good = 'requests_ok_total'
total = 'requests_total'
)toml";

// A source holding one counter per query; it fails while `down`.
struct FakeSource {
  std::map<std::string, double> counters;
  bool down = false;
  int instant_calls = 0;
  int range_calls = 0;

  RemoteQueries queries() {
    return {[this](std::string_view expr, TimestampMs t) -> Result<query::QueryResult> {
              ++instant_calls;
              if (down) return Status::unavailable("datasource vm (fake): connection refused");
              query::QueryResult r;
              auto it = counters.find(std::string(expr));
              if (it == counters.end()) return r;
              auto labels = Labels::from(std::vector<Label>{{"__name__", it->first}});
              REQUIRE(labels.is_ok());
              r.series.push_back(
                  {std::make_shared<const Labels>(std::move(labels).value()), {{t, it->second}}});
              return r;
            },
            [this](std::string_view, TimestampMs, TimestampMs,
                   DurationMs) -> Result<query::QueryResult> {
              ++range_calls;
              if (down) return Status::unavailable("datasource vm (fake): connection refused");
              query::QueryResult r;
              r.type = query::ValueType::kMatrix;
              return r;
            }};
  }
};

TEST_CASE("slo on a datasource: queries go to the source, a failure changes no budget") {
  Rig rig(kSlo);
  FakeSource source;
  rig.tracker->set_sources({{"vm", source.queries()}});
  CHECK(rig.compiled.slos.slos[0].datasource == "vm");

  TimestampMs now = kStart;
  source.counters = {{"requests_ok_total", 0}, {"requests_total", 0}};
  rig.step(now);  // the first evaluation takes the counters' values and reads the history once
  CHECK(source.range_calls > 0);
  const int history_reads = source.range_calls;

  // 10% errors: far over a 99.9% budget, the 1h/5m page fires.
  for (int i = 0; i < 10; ++i) {
    now += kInterval;
    source.counters["requests_ok_total"] += 90;
    source.counters["requests_total"] += 100;
    rig.step(now);
  }
  SloView before = rig.view("api");
  CHECK(before.error.empty());
  CHECK(before.window.good == Approx(900));
  CHECK(before.window.total == Approx(1000));
  CHECK(source.range_calls == history_reads);  // history is read once, not every evaluation
  auto firing = [&] {
    for (const auto& a : rig.alerts("api")) {
      if (a.alert.name == "api_burn_1h_5m")
        return a.alert.firing_since != 0 && a.alert.resolved_at == 0;
    }
    return false;
  };
  REQUIRE(firing());

  // The source fails for 10 minutes while the service recovers: nothing changes, nothing
  // resolves (the 5m window would clear otherwise).
  source.down = true;
  for (int i = 0; i < 20; ++i) {
    now += kInterval;
    source.counters["requests_ok_total"] += 100;
    source.counters["requests_total"] += 100;
    rig.step(now);
  }
  SloView during = rig.view("api");
  CHECK(during.window.good == Approx(900));
  CHECK(during.window.total == Approx(1000));
  CHECK(during.budget_remaining == Approx(before.budget_remaining));
  CHECK(during.error.find("datasource vm") != std::string::npos);
  CHECK(firing());

  // Back: the increase across the gap counts (not zero), the error clears.
  source.down = false;
  now += kInterval;
  source.counters["requests_ok_total"] += 100;
  source.counters["requests_total"] += 100;
  rig.step(now);
  SloView after = rig.view("api");
  CHECK(after.error.empty());
  CHECK(after.window.good == Approx(900 + 2100));
  CHECK(after.window.total == Approx(1000 + 2100));
}

TEST_CASE("slo on a datasource: a source not given to the tracker is an evaluation error") {
  Rig rig(kSlo);
  rig.step(kStart);
  SloView v = rig.view("api");
  CHECK(v.error.find("datasource vm is not configured") != std::string::npos);
}

TEST_CASE("slo datasource: unknown names and KPI slices are refused at their line") {
  const std::string toml = R"toml(
[[datasource]]
name = "vm"
url = "http://127.0.0.1:1"

[[slo]]
id = "api"
objective = 99.9
datasource = "nope"
[slo.events]
good = 'requests_ok_total'
total = 'requests_total'
)toml";
  auto loaded = config::parse_config(toml, "kpid.toml", {});
  std::string errors;
  for (const auto& e : loaded.errors) errors += e.to_string() + "\n";
  CHECK(errors.find("kpid.toml:9:14: slo.api.datasource: unknown datasource \"nope\"") !=
        std::string::npos);

  const std::string slice = R"toml(
[[datasource]]
name = "vm"
url = "http://127.0.0.1:1"

[[kpi]]
id = "latency"
direction = "lower_is_better"
[kpi.value]
selector = "latency"
over_time = "last"

[[slo]]
id = "api"
objective = 99
datasource = "vm"
[slo.time_slices]
kpi = "latency"
good = ["ok"]
)toml";
  auto compiled = config::parse_config(slice, "kpid.toml", {});
  std::string config_errors;
  for (const auto& e : compiled.errors) config_errors += e.to_string() + "\n";
  INFO(config_errors);
  REQUIRE(compiled.ok());
  auto kpis = kpi::compile(compiled.config.kpis);
  REQUIRE(kpis.ok());
  auto slos = compile(compiled.config, kpis.kpis);
  std::string slo_errors;
  for (const auto& e : slos.errors) slo_errors += e.to_string() + "\n";
  CHECK(slo_errors.find("kpid.toml:16:14: slo.api.datasource: a time-slice SLO on a KPI") !=
        std::string::npos);
}

}  // namespace
}  // namespace kpid::slo
