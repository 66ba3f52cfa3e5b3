// OpenSLO v1 import: what each document maps to, and every refusal with its line and field.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kpid/config/config.h"
#include "kpid/config/openslo.h"

using namespace kpid;
using namespace kpid::config;

namespace {

struct Imported {
  std::vector<slo::SloOptions> slos;
  std::vector<ConfigError> errors;
  std::map<std::string, SourcePos> ids;
};

Imported import(const std::vector<OpenSloSource>& sources,
                const std::vector<alert::ReceiverOptions>& receivers = {},
                std::map<std::string, SourcePos> ids = {}) {
  Imported r;
  r.ids = std::move(ids);
  import_openslo(sources, receivers, r.ids, r.slos, r.errors);
  return r;
}

Imported import(const std::string& text) { return import({{"slo.yaml", text}}); }

std::string describe(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.to_string() + "\n";
  return out;
}

bool has_error(const Imported& r, int line, const std::string& key, const std::string& part) {
  for (const auto& e : r.errors) {
    if (e.line == line && e.key == key && e.message.find(part) != std::string::npos) return true;
  }
  return false;
}

// A ratio SLO whose lines the error tests below count on.
const char* kRatioSlo = R"(apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
  displayName: Checkout availability
  labels:
    owner: payments
spec:
  description: Checkouts that do not fail
  service: shop
  budgetingMethod: Occurrences
  timeWindow:
    - duration: 28d
      isRolling: true
  objectives:
    - displayName: good checkouts
      target: 0.999
  indicator:
    metadata:
      name: checkout-errors
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: Prometheus
            spec:
              query: sum(http_requests_total{job="checkout",code=~"5.."})
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(http_requests_total{job="checkout"})
  alertPolicies:
    - alertPolicyRef: checkout-burn
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata:
  name: checkout-burn
spec:
  description: Page on a fast burn, ticket on a slow one
  alertWhenBreaching: true
  conditions:
    - conditionRef: fast-burn
    - kind: AlertCondition
      metadata:
        name: slow-burn
      spec:
        severity: ticket
        condition:
          kind: burnrate
          op: gt
          threshold: 1
          lookbackWindow: 3d
  notificationTargets:
    - targetRef: oncall
---
apiVersion: openslo/v1
kind: AlertCondition
metadata:
  name: fast-burn
spec:
  severity: page
  condition:
    kind: burnrate
    op: gt
    threshold: 14.4
    lookbackWindow: 1h
    alertAfter: 2m
---
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata:
  name: oncall
spec:
  target: pagerduty
---
apiVersion: openslo/v1
kind: Service
metadata:
  name: shop
spec:
  description: The web shop
)";

// kRatioSlo with its lines `first` to `last` (1-based) replaced by `with` (removed when empty).
std::string edit(int first, const std::string& with, int last = 0) {
  std::string text = kRatioSlo;
  size_t start = 0;
  for (int i = 1; i < first; ++i) start = text.find('\n', start) + 1;
  size_t end = start;
  for (int i = first; i <= std::max(first, last); ++i) end = text.find('\n', end) + 1;
  text.replace(start, end - start, with.empty() ? with : with + "\n");
  return text;
}

}  // namespace

TEST_CASE("openslo: a ratio SLO with an AlertPolicy and its conditions", "[openslo]") {
  alert::ReceiverOptions oncall;
  oncall.name = "oncall";
  auto r = import({{"slo.yaml", kRatioSlo}}, {oncall});
  INFO(describe(r.errors));
  REQUIRE(r.errors.empty());
  REQUIRE(r.slos.size() == 1);
  const auto& s = r.slos[0];
  CHECK(s.id == "checkout-availability");
  CHECK(s.name == "Checkout availability");
  CHECK(s.owner == "payments");
  CHECK(s.description == "Checkouts that do not fail");
  CHECK(s.origin == "openslo");
  CHECK(s.pos.file == "slo.yaml");
  CHECK(s.pos.line == 1);
  CHECK(s.objective == 99.9);
  CHECK(s.objective_pos.line == 17);
  CHECK(s.window == "28d");
  REQUIRE(s.events);
  CHECK(s.events->good.empty());
  CHECK(s.events->bad == R"(sum(http_requests_total{job="checkout",code=~"5.."}))");
  CHECK(s.events->bad_pos.line == 28);
  CHECK(s.events->total == R"(sum(http_requests_total{job="checkout"}))");
  CHECK_FALSE(s.time_slices);
  CHECK_FALSE(s.default_alerts);
  REQUIRE(s.alerts.size() == 2);
  CHECK(s.alerts[0].name == "fast-burn");
  CHECK(s.alerts[0].severity == "critical");
  CHECK(s.alerts[0].long_window == 3'600'000);
  CHECK(s.alerts[0].short_window == 300'000);
  CHECK(s.alerts[0].factor == 14.4);
  CHECK(s.alerts[0].for_duration == 120'000);
  CHECK(s.alerts[0].receivers == std::vector<std::string>{"oncall"});
  CHECK(s.alerts[1].name == "slow-burn");
  CHECK(s.alerts[1].severity == "warning");
  CHECK(s.alerts[1].long_window == 3 * 86'400'000LL);
  CHECK(s.alerts[1].short_window == 6 * 3'600'000LL);
  CHECK(s.alerts[1].factor == 1);
  CHECK(s.alerts[1].for_duration == 0);
  CHECK(r.ids.count("checkout-availability") == 1);
}

TEST_CASE("openslo: a notification target that names no receiver routes as usual", "[openslo]") {
  auto r = import(kRatioSlo);
  INFO(describe(r.errors));
  REQUIRE(r.slos.size() == 1);
  CHECK(r.slos[0].alerts[0].receivers.empty());
}

TEST_CASE("openslo: an indicatorRef to an SLI in another file, owner from the service",
          "[openslo]") {
  const std::string slo = R"(apiVersion: openslo/v1
kind: SLO
metadata:
  name: search-success
spec:
  service: search
  indicatorRef: search-good
  budgetingMethod: Occurrences
  timeWindow: [{duration: 4w, isRolling: true}]
  objectives: [{targetPercent: 99.5}]
)";
  const std::string sli = R"(---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom}
spec: {type: Prometheus, connectionDetails: {url: "http://prometheus:9090"}}
---
apiVersion: openslo/v1
kind: SLI
metadata:
  name: search-good
spec:
  ratioMetric:
    counter: true
    good:
      metricSource:
        metricSourceRef: prom
        spec: {query: 'sum(search_requests_total{status="ok"})'}
    total:
      metricSource: {type: prometheus, spec: {query: sum(search_requests_total)}}
)";
  auto r = import({{"a.yaml", slo}, {"b.yaml", sli}});
  INFO(describe(r.errors));
  REQUIRE(r.errors.empty());
  REQUIRE(r.slos.size() == 1);
  const auto& s = r.slos[0];
  CHECK(s.name == "search-success");
  CHECK(s.owner == "search");
  CHECK(s.objective == 99.5);
  CHECK(s.window == "4w");
  REQUIRE(s.events);
  CHECK(s.events->good == R"(sum(search_requests_total{status="ok"}))");
  CHECK(s.events->good_pos.file == "b.yaml");
  CHECK(s.events->good_pos.line == 17);
  CHECK(s.events->total == "sum(search_requests_total)");
  CHECK(s.default_alerts);  // no alertPolicies: the SRE workbook's three
  CHECK(s.alerts.empty());
}

TEST_CASE("openslo: a threshold SLI over time slices in a calendar month", "[openslo]") {
  auto r = import(R"(apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-latency
  annotations:
    kpid.io/owner: platform
spec:
  budgetingMethod: Timeslices
  timeWindow:
    - duration: 1M
      isRolling: false
      calendar: {startTime: "2026-01-01 00:00:00", timeZone: UTC}
  objectives:
    - op: lte
      value: 0.3
      target: 0.95
      timeSliceTarget: 0.9
      timeSliceWindow: 1m
  indicator:
    metadata: {name: api-p99}
    spec:
      thresholdMetric:
        metricSource:
          type: Prometheus
          spec:
            query: histogram_quantile(0.99, sum by (le) (rate(api_seconds_bucket[5m])))
)");
  INFO(describe(r.errors));
  REQUIRE(r.errors.empty());
  REQUIRE(r.slos.size() == 1);
  const auto& s = r.slos[0];
  CHECK(s.owner == "platform");
  CHECK(s.window == "month");
  CHECK(s.objective == 95);
  CHECK(s.interval == 60'000);
  CHECK_FALSE(s.events);
  REQUIRE(s.time_slices);
  CHECK(s.time_slices->expr ==
        "histogram_quantile(0.99, sum by (le) (rate(api_seconds_bucket[5m])))");
  CHECK(s.time_slices->expr_pos.line == 26);
  CHECK(s.time_slices->op == "lte");
  CHECK(s.time_slices->threshold == 0.3);
  CHECK(s.time_slices->kpi.empty());
}

TEST_CASE("openslo: calendar quarters and inline alert policies", "[openslo]") {
  for (const char* duration : {"1Q", "3M"}) {
    auto r = import(
        edit(13, "    - duration: " + std::string(duration) + "\n      isRolling: false", 14));
    INFO(duration << "\n" << describe(r.errors));
    REQUIRE(r.slos.size() == 1);
    CHECK(r.slos[0].window == "quarter");
  }
  auto r = import(edit(35, R"(    - kind: AlertPolicy
      metadata: {name: inline}
      spec:
        conditions:
          - conditionRef: fast-burn)"));
  INFO(describe(r.errors));
  REQUIRE(r.slos.size() == 1);
  REQUIRE(r.slos[0].alerts.size() == 1);
  CHECK(r.slos[0].alerts[0].name == "fast-burn");
}

TEST_CASE("openslo: errors name the file, line and field", "[openslo]") {
  struct Case {
    int line;
    std::string with;
    int error_line;
    std::string key;
    std::string message;
  };
  const std::vector<Case> cases = {
      {1, "apiVersion: openslo/v1alpha", 1, "document 1: apiVersion", "unsupported apiVersion"},
      {2, "kind: Objective", 2, "document 1: kind", "unknown kind \"Objective\""},
      {4, "", 4, "SLO (document 1): metadata.name", "is required"},
      {4, "  name: checkout availability", 4, "SLO checkout availability: metadata.name",
       "letters, digits"},
      {9, "  sevice: shop", 9, "SLO checkout-availability: spec.sevice", "unknown field"},
      {11, "  budgetingMethod: Timeslices", 11, "SLO checkout-availability: spec.budgetingMethod",
       "supports budgetingMethod Occurrences"},
      {11, "  budgetingMethod: Sometimes", 11, "SLO checkout-availability: spec.budgetingMethod",
       "unknown budgeting method"},
      {11, "", 9, "SLO checkout-availability: spec.budgetingMethod", "is required"},
      {13, "    - duration: 1M", 13, "SLO checkout-availability: spec.timeWindow[0].duration",
       "rolling window needs a fixed length"},
      {13, "    - duration: 10m", 13, "SLO checkout-availability: spec.timeWindow[0].duration",
       "from 1h to 400d"},
      {14, "      isRolling: false", 13, "SLO checkout-availability: spec.timeWindow[0].duration",
       "one month (1M) or one quarter"},
      {17, "      target: 99.9", 17, "SLO checkout-availability: spec.objectives[0].target",
       "expected a number between 0 and 1"},
      {17, "      target: high", 17, "SLO checkout-availability: spec.objectives[0].target",
       "expected a number"},
      {17, "      op: lte", 16, "SLO checkout-availability: spec.objectives[0]", "needs target"},
      {16, "    - {target: 0.99}\n    - displayName: x", 16,
       "SLO checkout-availability: spec.objectives", "one objective per SLO"},
      {23, "        counter: false", 23,
       "SLO checkout-availability: spec.indicator.spec.ratioMetric.counter", "not supported"},
      {23, "", 23, "SLO checkout-availability: spec.indicator.spec.ratioMetric.counter",
       "is required"},
      {24, "        good:\n        bad:", 23,
       "SLO checkout-availability: spec.indicator.spec.ratioMetric", "not both"},
      {26, "            type: Datadog", 26,
       "SLO checkout-availability: spec.indicator.spec.ratioMetric.bad.metricSource.type",
       "unsupported metric source type \"Datadog\""},
      {28, "              promql: up", 28,
       "SLO checkout-availability: spec.indicator.spec.ratioMetric.bad.metricSource.spec.promql",
       "unknown field"},
      {29, "        totl:", 29, "SLO checkout-availability: spec.indicator.spec.ratioMetric.totl",
       "unknown field"},
      {35, "    - alertPolicyRef: nope", 35,
       "SLO checkout-availability: spec.alertPolicies[0].alertPolicyRef",
       "no AlertPolicy named \"nope\""},
      {45, "    - conditionRef: slow", 45,
       "AlertPolicy checkout-burn: spec.conditions[0].conditionRef",
       "no AlertCondition named \"slow\""},
      {53, "          op: lt", 53,
       "AlertPolicy checkout-burn: spec.conditions[1].spec.condition.op", "unsupported op \"lt\""},
      {54, "          threshold: -1", 54,
       "AlertPolicy checkout-burn: spec.conditions[1].spec.condition.threshold", "must be above 0"},
      {55, "          lookbackWindow: 30s", 55,
       "AlertPolicy checkout-burn: spec.conditions[1].spec.condition.lookbackWindow",
       "at least 1m"},
      {57, "    - targetRef: pager", 57,
       "AlertPolicy checkout-burn: spec.notificationTargets[0].targetRef",
       "no AlertNotificationTarget named \"pager\""},
      {66, "    kind: threshold", 66, "AlertCondition fast-burn: spec.condition.kind",
       "unsupported condition kind \"threshold\""},
      {69, "    lookbackWindow: soon", 69,
       "AlertCondition fast-burn: spec.condition.lookbackWindow", "soon"},
      {64, "", 64, "AlertCondition fast-burn: spec.severity", "is required"},
      {73, "kind: AlertCondition", 77, "AlertCondition oncall: spec.target", "unknown field"},
  };
  for (const auto& c : cases) {
    const std::string text = edit(c.line, c.with);
    auto r = import(text);
    INFO("line " << c.line << " -> " << c.with << "\n" << describe(r.errors));
    CHECK(has_error(r, c.error_line, c.key, c.message));
  }
}

TEST_CASE("openslo: more refusals", "[openslo]") {
  SECTION("YAML syntax errors give the line") {
    auto r = import("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: [x\n");
    INFO(describe(r.errors));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].file == "slo.yaml");
    CHECK(r.errors[0].line >= 3);
    CHECK(r.errors[0].message.find("YAML syntax error") != std::string::npos);
  }
  SECTION("duplicate SLO ids, also against [[slo]] tables") {
    std::map<std::string, SourcePos> ids = {{"checkout-availability", {"kpid.toml", 7, 1}}};
    auto r = import({{"slo.yaml", kRatioSlo}}, {}, ids);
    INFO(describe(r.errors));
    CHECK(has_error(r, 4, "SLO checkout-availability: metadata.name", "kpid.toml:7"));
    CHECK(r.slos.empty());
    auto twice = import({{"a.yaml", kRatioSlo}, {"b.yaml", edit(35, "    - checkout-burn")}});
    INFO(describe(twice.errors));
    CHECK(has_error(twice, 4, "SLO checkout-availability: metadata.name", "a.yaml:1"));
    CHECK(has_error(twice, 62, "AlertCondition fast-burn: metadata.name",
                    "duplicate AlertCondition name; first defined at a.yaml:59"));
    CHECK(twice.slos.size() == 1);
  }
  SECTION("ratio SLIs with time slices, threshold SLIs with occurrences") {
    auto r = import(R"(apiVersion: openslo/v1
kind: SLO
metadata: {name: t}
spec:
  budgetingMethod: Occurrences
  timeWindow: [{duration: 28d, isRolling: true}]
  objectives: [{op: gt, value: 1, target: 0.9}]
  indicator:
    metadata: {name: t}
    spec:
      thresholdMetric: {metricSource: {type: Prometheus, spec: {query: up}}}
)");
    INFO(describe(r.errors));
    CHECK(has_error(r, 5, "SLO t: spec.budgetingMethod", "needs budgetingMethod Timeslices"));
  }
  SECTION("a threshold objective needs op and value; a ratio one takes neither") {
    auto r = import(edit(17, "      target: 0.999\n      op: gt"));
    INFO(describe(r.errors));
    CHECK(has_error(r, 18, "SLO checkout-availability: spec.objectives[0].op",
                    "goes with a thresholdMetric"));
  }
  SECTION("composite objectives") {
    auto r = import(edit(17, "      target: 0.999\n      indicatorRef: other"));
    INFO(describe(r.errors));
    CHECK(has_error(r, 18, "SLO checkout-availability: spec.objectives[0].indicatorRef",
                    "composite SLOs"));
  }
  SECTION("raw ratios") {
    auto r = import(edit(23, "        counter: true\n        rawType: success"));
    INFO(describe(r.errors));
    CHECK(has_error(r, 24, "SLO checkout-availability: spec.indicator.spec.ratioMetric.rawType",
                    "raw ratios"));
  }
  SECTION("an SLI reference that does not resolve, and both kinds of indicator") {
    auto r = import(edit(18, "  indicatorRef: nowhere", 33));
    INFO(describe(r.errors));
    CHECK(has_error(r, 18, "SLO checkout-availability: spec.indicatorRef",
                    "no SLI named \"nowhere\""));
    auto both = import(edit(18, "  indicatorRef: x\n  indicator:"));
    INFO(describe(both.errors));
    CHECK(has_error(both, 9, "SLO checkout-availability: spec", "not both"));
  }
  SECTION("a calendar time zone other than UTC") {
    auto r = import(edit(13,
                         "    - duration: 1M\n      isRolling: false\n"
                         "      calendar: {timeZone: Europe/Berlin}",
                         14));
    INFO(describe(r.errors));
    CHECK(has_error(r, 15, "SLO checkout-availability: spec.timeWindow[0].calendar.timeZone",
                    "in UTC"));
  }
}

TEST_CASE("openslo: parse_config imports the files the openslo patterns name", "[openslo]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("kpid_openslo_" + std::to_string(::getpid()));
  fs::create_directories(dir / "openslo");
  std::ofstream(dir / "openslo" / "checkout.yaml") << kRatioSlo;
  const std::string toml = R"toml(openslo = ["openslo/*.yaml"]
[[slo]]
id = "api"
objective = 99
[slo.events]
good = "sum(ok_total)"
total = "sum(all_total)"
)toml";
  auto r = parse_config(toml, (dir / "kpid.toml").string(), {});
  std::string errors;
  for (const auto& e : r.errors) errors += e.to_string() + "\n";
  INFO(errors);
  CHECK(r.ok());
  REQUIRE(r.config.slos.size() == 2);
  CHECK(r.config.slos[0].id == "api");
  CHECK(r.config.slos[0].origin == "toml");
  CHECK(r.config.slos[1].id == "checkout-availability");
  CHECK(r.config.slos[1].pos.file == (dir / "openslo" / "checkout.yaml").string());

  auto missing = parse_config("openslo = [\"nope.yaml\"]\n", (dir / "kpid.toml").string(), {});
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].key == "openslo");
  CHECK(missing.errors[0].message.find("does not exist") != std::string::npos);

  auto dup = parse_config(R"toml(openslo = ["openslo/*.yaml"]
[[slo]]
id = "checkout-availability"
objective = 99
[slo.events]
good = "sum(ok_total)"
total = "sum(all_total)"
)toml",
                          (dir / "kpid.toml").string(), {});
  bool found = false;
  for (const auto& e : dup.errors) {
    found = found || (e.line == 4 && e.key == "SLO checkout-availability: metadata.name");
  }
  CHECK(found);
  fs::remove_all(dir);
}

TEST_CASE("openslo: the shipped config/openslo/checkout.yaml imports", "[openslo]") {
  const std::string file = KPID_SOURCE_DIR "/config/openslo/checkout.yaml";
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  alert::ReceiverOptions oncall;
  oncall.name = "payments-oncall";
  auto r = import({{file, text.str()}}, {oncall});
  INFO(describe(r.errors));
  REQUIRE(r.errors.empty());
  REQUIRE(r.slos.size() == 1);
  const auto& s = r.slos[0];
  CHECK(s.id == "checkout-availability");
  CHECK(s.owner == "payments");
  CHECK(s.objective == 99.9);
  REQUIRE(s.alerts.size() == 3);
  CHECK(s.alerts[0].severity == "critical");
  CHECK(s.alerts[1].long_window == 6 * 3'600'000LL);
  CHECK(s.alerts[1].short_window == 30 * 60'000LL);
  CHECK(s.alerts[2].name == "checkout-slow-burn");
  CHECK(s.alerts[2].severity == "warning");
  CHECK(s.alerts[2].receivers == std::vector<std::string>{"payments-oncall"});
}

TEST_CASE("openslo: an error in a shared document is reported once, where it is written",
          "[openslo]") {
  // Two SLOs use the SLI and the policy; the SLI has an unsupported source, the policy's
  // condition an unknown kind.
  const std::string shared = R"(apiVersion: openslo/v1
kind: SLI
metadata: {name: errors}
spec:
  ratioMetric:
    counter: true
    bad: {metricSource: {type: Datadog, spec: {query: x}}}
    total: {metricSource: {type: Prometheus, spec: {query: y}}}
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: burn}
spec:
  conditions:
    - kind: AlertCondition
      metadata: {name: c}
      spec: {severity: page, condition: {kind: ratio, op: gt, threshold: 2, lookbackWindow: 1h}}
---
)";
  auto slo = [](const std::string& name, const std::string& indicator) {
    return "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: " + name +
           "}\nspec:\n  budgetingMethod: Occurrences\n  timeWindow: [{duration: 28d, "
           "isRolling: true}]\n  objectives: [{target: 0.99}]\n  " +
           indicator + "\n  alertPolicies: [burn]\n---\n";
  };
  auto r =
      import({{"shared.yaml", shared},
              {"slos.yaml", slo("a", "indicatorRef: errors") + slo("b", "indicatorRef: errors") +
                                slo("c", "indicatorRef: good")},
              {"good.yaml", R"(apiVersion: openslo/v1
kind: SLI
metadata: {name: good}
spec:
  ratioMetric:
    counter: true
    good: {metricSource: {type: Prometheus, spec: {query: sum(ok_total)}}}
    total: {metricSource: {type: Prometheus, spec: {query: sum(all_total)}}}
)"}});
  INFO(describe(r.errors));
  REQUIRE(r.errors.size() == 2);
  CHECK(has_error(r, 7, "SLI errors: spec.ratioMetric.bad.metricSource.type", "Datadog"));
  CHECK(has_error(r, 17, "AlertPolicy burn: spec.conditions[0].spec.condition.kind", "ratio"));
  CHECK(r.slos.empty());  // a and b use the SLI, c the policy
}

TEST_CASE("openslo: empty documents are skipped, other non-mappings refused", "[openslo]") {
  auto r = import("---\n---\n- a\n- b\n---\n");
  INFO(describe(r.errors));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 3);
  CHECK(r.errors[0].key == "document 2");  // the first --- opens document 1
  CHECK(r.errors[0].message.find("expected a mapping") != std::string::npos);
}
