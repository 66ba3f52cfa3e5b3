// [[slo]] tables: what loads, the defaults, and every error with its file, line and key.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "kpid/config/config.h"
#include "kpid/kpi/definition.h"
#include "kpid/slo/definition.h"

namespace kpid::slo {
namespace {

const std::string kKpi = R"toml(
[[kpi]]
id = "latency"
owner = "payments"
direction = "lower_is_better"
[kpi.value]
expr = 'max(latency_ms)'
[kpi.band]
warn = 100
crit = 200
)toml";

std::vector<std::string> errors_of(const std::string& toml) {
  auto loaded = config::parse_config(toml, "kpid.toml", {});
  std::vector<std::string> out;
  for (const auto& e : loaded.errors) out.push_back(e.to_string());
  if (!out.empty()) return out;
  auto kpis = kpi::compile(loaded.config.kpis);
  for (const auto& e : compile(loaded.config, kpis.kpis).errors) out.push_back(e.to_string());
  return out;
}

CompileResult compiled(const std::string& toml) {
  auto loaded = config::parse_config(toml, "kpid.toml", {});
  REQUIRE(loaded.ok());
  auto kpis = kpi::compile(loaded.config.kpis);
  auto result = compile(loaded.config, kpis.kpis);
  std::string errors;
  for (const auto& e : result.errors) errors += e.to_string() + "\n";
  INFO(errors);
  REQUIRE(result.ok());
  return result;
}

TEST_CASE("slo config: an events SLO gets the SRE workbook's three burn-rate alerts") {
  auto r = compiled(R"toml(
[[slo]]
id = "api"
owner = "web"
objective = 99.5
[slo.events]
good = 'sum(rate(x[5m]))'
total = 'http_requests_total'
)toml");
  REQUIRE(r.slos.size() == 1);
  const Definition& d = r.slos[0];
  CHECK(d.name == "api");
  CHECK(d.window == 28 * 86'400'000LL);
  CHECK(d.interval == 30'000);
  CHECK(d.budget() == Approx(0.005));
  REQUIRE(d.alerts.size() == 3);
  CHECK(d.alerts[0].name == "api_burn_1h_5m");
  CHECK(d.alerts[0].factor == 14.4);
  CHECK(d.alerts[0].severity == "critical");
  CHECK(d.alerts[1].name == "api_burn_6h_30m");
  CHECK(d.alerts[2].name == "api_burn_3d_6h");
  CHECK(d.alerts[2].severity == "warning");
  REQUIRE(r.rules.size() == 3);
  CHECK(r.rules[0].slo == "api");
  CHECK(r.rules[0].condition == alert::Condition::kBurnRate);
  CHECK(r.rules[0].long_window == 3'600'000);
  CHECK(r.rules[0].short_window == 300'000);
}

TEST_CASE("slo config: calendar windows, time slices on a KPI, custom alerts") {
  auto r = compiled(kKpi + R"toml(
[[slo]]
id = "fast_checkout"
objective = 99
window = "quarter"
interval = "1m"
[slo.time_slices]
kpi = "latency"
good = ["ok", "anomalous"]
[[slo.alert]]
name = "FastCheckoutBurning"
severity = "error"
long_window = "2h"
short_window = "10m"
factor = 10
for = "5m"
)toml");
  const Definition& d = r.slos.at(0);
  CHECK(d.calendar == "quarter");
  CHECK(d.kind == SliKind::kTimeSlices);
  CHECK(d.good_statuses == std::vector{kpi::Health::kOk, kpi::Health::kAnomalous});
  REQUIRE(d.alerts.size() == 1);
  CHECK(d.alerts[0].for_duration == 300'000);
  // A quarter holding 2024-02-15 runs from January 1st to April 1st.
  const auto span = d.window_at(1'707'955'200'000);
  CHECK(span.start == 1'704'067'200'000);
  CHECK(span.end == 1'711'929'600'000);
}

TEST_CASE("slo config: the shipped config/slo.example.toml compiles with the example KPIs") {
  auto loaded = config::load_config(KPID_SOURCE_DIR "/config/slo.example.toml", {});
  REQUIRE(loaded.ok());
  auto kpis = kpi::compile(loaded.config.kpis);
  auto r = compile(loaded.config, kpis.kpis);
  REQUIRE(r.ok());
  REQUIRE(r.slos.size() == 3);
  CHECK(r.slos[0].alerts.size() == 2);
  CHECK(r.slos[0].okr.has_value());
  CHECK(r.slos[1].calendar == "quarter");
  CHECK(r.slos[1].alerts.size() == 3);
  CHECK(r.slos[2].slice_op == "lt");
}

TEST_CASE("slo config: errors name the file, line and key") {
  CHECK(
      errors_of("[[slo]]\nid = \"a\"\nobjective = 100\n[slo.events]\ngood = 'x'\ntotal = 'y'\n") ==
      std::vector<std::string>{
          "kpid.toml:3:13: slo.a.objective: must be a percentage between 0 and 100 "
          "(exclusive), e.g. 99.9"});
  CHECK(errors_of("[[slo]]\nid = \"rules\"\nobjective = 99\n[slo.events]\nbad = 'x'\n"
                  "total = 'y'\n") ==
        std::vector<std::string>{"kpid.toml:2:6: slo.rules.id: \"rules\" is reserved: GET "
                                 "/api/v1/slos/rules serves every SLO's Prometheus rules"});
  CHECK(errors_of("[[slo]]\nid = \"a\"\nobjective = 99\n") ==
        std::vector<std::string>{"kpid.toml:1:1: slo.a: needs an SLI: [slo.events] (good or bad, "
                                 "and total) or [slo.time_slices] (a KPI and its good statuses)"});
  CHECK(errors_of("[[slo]]\nid = \"a\"\nobjective = 99\nwindow = \"2w3\"\n[slo.events]\n"
                  "bad = 'x'\ntotal = 'y'\n") ==
        std::vector<std::string>{
            "kpid.toml:4:10: slo.a.window: expected a rolling duration from 1h to 400d such as "
            "\"28d\", or \"month\" or \"quarter\"; got \"2w3\""});
  CHECK(errors_of("[[slo]]\nid = \"a\"\nobjective = 99\n[slo.events]\ngood = 'x'\nbad = 'y'\n"
                  "total = 'z'\n") ==
        std::vector<std::string>{"kpid.toml:4:1: slo.a.events: give good or bad, not both"});
  // Found when compiling: PromQL, KPIs, receivers, windows.
  CHECK(errors_of("[[slo]]\nid = \"a\"\nobjective = 99\n[slo.events]\ngood = 'rate(x'\n"
                  "total = 'sum(x[5m])'\n") ==
        std::vector<std::string>{
            "kpid.toml:5:8: slo.a.events.good: invalid PromQL: 1:7: parse error: unclosed left "
            "parenthesis",
            "kpid.toml:6:9: slo.a.events.total: invalid PromQL: 1:5: parse error: expected type "
            "instant vector in aggregation expression, got range vector"});
  CHECK(errors_of("[[slo]]\nid = \"a\"\nobjective = 99\n[slo.time_slices]\nkpi = \"nope\"\n") ==
        std::vector<std::string>{"kpid.toml:5:7: slo.a.time_slices.kpi: unknown KPI \"nope\""});
  CHECK(errors_of("[[slo]]\nid = \"a\"\nobjective = 99\ninterval = \"1m\"\n[slo.events]\n"
                  "bad = 'x'\ntotal = 'y'\n[[slo.alert]]\nseverity = \"critical\"\n"
                  "long_window = \"1h\"\nshort_window = \"30s\"\nfactor = 14.4\n"
                  "receivers = [\"pager\"]\n") ==
        std::vector<std::string>{
            "kpid.toml:8:1: slo.a.alert[0].short_window: must be at least the SLO's interval (1m)",
            "kpid.toml:8:1: slo.a.alert[0].receivers: unknown receiver \"pager\""});
  CHECK(errors_of("[[slo]]\nid = \"a\"\nobjective = 99\n[slo.events]\nbad = 'x'\ntotal = 'y'\n"
                  "[[slo]]\nid = \"a\"\nobjective = 99\n[slo.events]\nbad = 'x'\ntotal = 'y'\n") ==
        std::vector<std::string>{"kpid.toml:8:6: slo.a.id: duplicate SLO id; first defined at "
                                 "kpid.toml:1"});
}

}  // namespace
}  // namespace kpid::slo
