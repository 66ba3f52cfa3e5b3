#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "kpid/slo/prometheus_rules.h"
#include "support/temp_dir.h"

using namespace kpid;
using namespace kpid::slo;

namespace {

constexpr DurationMs kMinute = 60'000;
constexpr DurationMs kHour = 60 * kMinute;

BurnAlert burn(std::string name, std::string severity, DurationMs long_window,
               DurationMs short_window, double factor) {
  BurnAlert a;
  a.name = std::move(name);
  a.severity = std::move(severity);
  a.long_window = long_window;
  a.short_window = short_window;
  a.factor = factor;
  return a;
}

// The SRE workbook's three, as slo::default_alerts() makes them.
std::vector<BurnAlert> workbook_alerts(const std::string& id) {
  return {burn(id + "_burn_1h_5m", "critical", kHour, 5 * kMinute, 14.4),
          burn(id + "_burn_6h_30m", "critical", 6 * kHour, 30 * kMinute, 6),
          burn(id + "_burn_3d_6h", "warning", 72 * kHour, 6 * kHour, 1)};
}

Definition events_slo() {
  Definition d;
  d.id = "checkout_availability";
  d.name = "Checkout availability";
  d.owner = "payments";
  d.objective = 99.9;
  d.window_text = "28d";
  d.window = 28 * 24 * kHour;
  d.interval = 30'000;
  d.kind = SliKind::kEvents;
  d.bad = "http_requests_total{job=\"checkout\",code=~\"5..\"}";
  d.total = "http_requests_total{job=\"checkout\"}";
  d.alerts = workbook_alerts(d.id);
  return d;
}

struct Run {
  int exit_code = -1;
  std::string output;
};

Run run(const std::string& command) {
  Run r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  REQUIRE(out.good());
}

// The real promtool (the prometheus package scripts/install-deps.sh installs) checks the file.
void require_promtool_accepts(const std::string& yaml) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/rules.yml";
  write_file(path, yaml);
  const Run r = run("/usr/bin/promtool check rules " + path);
  INFO(yaml);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
}

std::string rules_of(const std::vector<Definition>& slos) {
  return prometheus_rules(std::span<const Definition>(slos), 30'000);
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("slo prometheus rules: an events SLO with bad and total and the workbook's alerts") {
  const std::string yaml = rules_of({events_slo()});
  INFO(yaml);
  CHECK(has(yaml, "  - name: \"kpid-slo-checkout_availability\"\n    interval: 30s\n"));
  // Every window the alerts use, once, shortest first.
  for (const char* w : {"5m", "30m", "1h", "6h", "3d"}) {
    CHECK(has(yaml, std::string("      - record: slo:sli_error:ratio_rate") + w + "\n"));
  }
  CHECK(yaml.find("ratio_rate5m\n") < yaml.find("ratio_rate30m\n"));
  CHECK(yaml.find("ratio_rate6h\n") < yaml.find("ratio_rate3d\n"));
  CHECK_FALSE(has(yaml, "ratio_rate2h"));
  CHECK(has(yaml,
            "        expr: \"sum(rate(http_requests_total{job=\\\"checkout\\\",code=~\\\"5..\\\"}"
            "[1h])) / sum(rate(http_requests_total{job=\\\"checkout\\\"}[1h]))\"\n"
            "        labels:\n          slo: \"checkout_availability\"\n"));
  CHECK(has(yaml,
            "      - alert: \"checkout_availability_burn_1h_5m\"\n"
            "        expr: \"slo:sli_error:ratio_rate1h{slo=\\\"checkout_availability\\\"} > (14.4 "
            "* 0.001) and slo:sli_error:ratio_rate5m{slo=\\\"checkout_availability\\\"} > (14.4 * "
            "0.001)\"\n"
            "        for: 0s\n"
            "        labels:\n"
            "          slo: \"checkout_availability\"\n"
            "          severity: \"critical\"\n"
            "          owner: \"payments\"\n"));
  CHECK(has(yaml,
            "ratio_rate3d{slo=\\\"checkout_availability\\\"} > (1 * 0.001) and "
            "slo:sli_error:ratio_rate6h{slo=\\\"checkout_availability\\\"} > (1 * 0.001)"));
  CHECK(has(yaml, "          severity: \"warning\"\n"));
  require_promtool_accepts(yaml);
}

TEST_CASE(
    "slo prometheus rules: good and total, expressions that are not selectors in subqueries") {
  Definition d = events_slo();
  d.id = "search";
  d.owner = "";
  d.bad.clear();
  d.good = "sum by (job) (rate_limited_ok_total) + ignored_total";
  d.total = "  requests_total{job=\"search\"}\n";
  d.interval = 10'000;
  d.alerts = workbook_alerts(d.id);
  const std::string yaml = rules_of({d});
  INFO(yaml);
  CHECK(has(yaml, "    interval: 10s\n"));
  CHECK(has(yaml,
            "expr: \"(sum(rate(requests_total{job=\\\"search\\\"}[30m])) - "
            "sum(rate((sum by (job) (rate_limited_ok_total) + ignored_total)[30m:10s]))) / "
            "sum(rate(requests_total{job=\\\"search\\\"}[30m]))\"\n"));
  CHECK_FALSE(has(yaml, "owner:"));  // no owner, no empty label
  require_promtool_accepts(yaml);

  // A sum of counters is rated series by series, without a subquery.
  d.total = "sum(requests_total{job=\"search\"})";
  d.good = "sum by (code) (requests_total{job=\"search\",code!~\"5..\"})";
  const std::string summed = rules_of({d});
  INFO(summed);
  CHECK(has(summed,
            "expr: \"(sum(rate(requests_total{job=\\\"search\\\"}[1h])) - "
            "sum(rate(requests_total{code!~\\\"5..\\\",job=\\\"search\\\"}[1h]))) / "
            "sum(rate(requests_total{job=\\\"search\\\"}[1h]))\"\n"));
  require_promtool_accepts(summed);
}

TEST_CASE("slo prometheus rules: custom alerts with for, clear_for and hysteresis") {
  Definition d = events_slo();
  d.id = "api";
  d.name = "API \"edge\" availability";
  d.objective = 99.5;
  d.interval = 1000;
  BurnAlert fast = burn("api_fast_burn", "critical", 2 * kMinute, 10'000, 10.5);
  fast.for_duration = 30'000;
  fast.clear_for = 90'000;
  BurnAlert slow = burn("api_slow_burn", "warning", 90 * kMinute, 15 * kMinute, 2);
  slow.hysteresis = 0.5;
  d.alerts = {fast, slow};
  const std::string yaml = rules_of({d});
  INFO(yaml);
  for (const char* w : {"10s", "2m", "15m", "1h30m"}) {
    CHECK(has(yaml, std::string("      - record: slo:sli_error:ratio_rate") + w + "\n"));
  }
  CHECK(has(yaml,
            "        expr: \"slo:sli_error:ratio_rate2m{slo=\\\"api\\\"} > (10.5 * 0.005) and "
            "slo:sli_error:ratio_rate10s{slo=\\\"api\\\"} > (10.5 * 0.005)\"\n"
            "        for: 30s\n        keep_firing_for: 1m30s\n"));
  // The hysteresis holds a firing alert until a window is below 1.5x.
  CHECK(has(yaml,
            "or (slo:sli_error:ratio_rate1h30m{slo=\\\"api\\\"} > (1.5 * 0.005) and "
            "slo:sli_error:ratio_rate15m{slo=\\\"api\\\"} > (1.5 * 0.005) and on(slo) "
            "ALERTS{alertname=\\\"api_slow_burn\\\",alertstate=\\\"firing\\\","
            "slo=\\\"api\\\"})"));
  CHECK(has(yaml, "summary: \"API \\\"edge\\\" availability (SLO api, objective 99.5%)"));
  require_promtool_accepts(yaml);
}

TEST_CASE("slo prometheus rules: time slices of an expression against a threshold") {
  Definition d = events_slo();
  d.id = "latency";
  d.kind = SliKind::kTimeSlices;
  d.bad.clear();
  d.total.clear();
  d.slice_expr = "histogram_quantile(0.99, sum by (le) (rate(latency_bucket[5m])))";
  d.slice_op = "lt";
  d.slice_threshold = 0.25;
  d.alerts = workbook_alerts(d.id);
  SECTION("a slice without a value is skipped") {
    const std::string yaml = rules_of({d});
    INFO(yaml);
    CHECK(has(yaml,
              "expr: \"1 - avg_over_time(((histogram_quantile(0.99, sum by (le) "
              "(rate(latency_bucket[5m])))) < bool 0.25)[6h:30s])\"\n"));
    require_promtool_accepts(yaml);
  }
  SECTION("no_data good or bad fills the slice") {
    d.no_data = "bad";
    d.slice_op = "gte";
    d.slice_expr = "scalar(up{job=\"db\"})";  // a scalar: vector() makes it subqueryable
    d.slice_threshold = 1;
    const std::string yaml = rules_of({d});
    INFO(yaml);
    CHECK(has(yaml,
              "expr: \"1 - avg_over_time(((vector(scalar(up{job=\\\"db\\\"})) >= bool 1) "
              "or on() vector(0))[5m:30s])\"\n"));
    require_promtool_accepts(yaml);
  }
}

TEST_CASE("slo prometheus rules: time slices of a KPI's status read kpid_kpi_status") {
  Definition d = events_slo();
  d.id = "latency_kpi";
  d.kind = SliKind::kTimeSlices;
  d.bad.clear();
  d.total.clear();
  d.kpi = "p99_latency";
  d.good_statuses = {kpi::Health::kOk, kpi::Health::kAnomalous};
  d.alerts = workbook_alerts(d.id);
  const std::string yaml = rules_of({d});
  INFO(yaml);
  CHECK(has(yaml, "scrape kpid's /metrics"));
  CHECK(has(yaml,
            "expr: \"1 - sum_over_time(sum(kpid_kpi_status{kpi=\\\"p99_latency\\\","
            "status=~\\\"anomalous|ok\\\"})[1h:30s]) / "
            "sum_over_time(sum(kpid_kpi_status{kpi=\\\"p99_latency\\\",status!="
            "\\\"no_data\\\"})[1h:30s])\"\n"));
  require_promtool_accepts(yaml);
}

TEST_CASE("slo prometheus rules: several SLOs, one without alerts, and none at all") {
  Definition quiet = events_slo();
  quiet.id = "quiet";
  quiet.alerts.clear();
  const std::string yaml = rules_of({events_slo(), quiet});
  CHECK(has(yaml, "  # SLO quiet has no burn-rate alerts"));
  CHECK_FALSE(has(yaml, "kpid-slo-quiet"));
  require_promtool_accepts(yaml);
  require_promtool_accepts(rules_of({quiet}));
  const std::string none = rules_of({});
  CHECK(has(none, "groups: []\n"));
  require_promtool_accepts(none);
}

// promtool's rule unit tests run the generated rules over a synthetic total outage: the alert
// fires when the error ratio over both windows first exceeds factor * budget, and resolves
// when the short window is clean again.
TEST_CASE("slo prometheus rules: promtool test rules fires and resolves them over an outage") {
  Definition d = events_slo();
  d.id = "shop";
  d.owner = "web";
  d.objective = 99;
  d.interval = kMinute;
  d.bad = "errors_total";
  d.total = "requests_total";
  // 9x of a 1% budget: 9% errors. A total outage from minute 120 puts x/60 of the 1h window's
  // increase in errors after x minutes (this Prometheus' ranges hold both ends: 61 samples, 60
  // intervals, as kpid's window sums 60 increases): above 0.09 from x = 6. After the outage
  // ends at minute 140 the 5m window holds the last erroneous minute (139 to 140) through
  // minute 144, as kpid's does.
  d.alerts = {burn("shop_burn", "critical", kHour, 5 * kMinute, 9)};
  const std::string yaml = rules_of({d});
  testing::TempDir dir;
  write_file(dir.path() + "/rules.yml", yaml);
  const std::string summary =
      "Checkout availability (SLO shop, objective 99%) is burning its error budget faster than "
      "9x over both 1h and 5m";
  auto firing = [&](const char* at) {
    return std::string("      - eval_time: ") + at +
           "\n        alertname: shop_burn\n        exp_alerts:\n"
           "          - exp_labels: {slo: shop, severity: critical, owner: web}\n"
           "            exp_annotations: {summary: \"" +
           summary + "\"}\n";
  };
  auto quiet = [](const char* at) {
    return std::string("      - eval_time: ") + at +
           "\n        alertname: shop_burn\n        exp_alerts: []\n";
  };
  // Errors grow by 60 a minute from minute 121 through 140, then stop.
  const std::string tests =
      "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n"
      "    input_series:\n"
      "      - series: requests_total\n        values: \"0+60x200\"\n"
      "      - series: errors_total\n        values: \"0x120 60+60x19 1200x60\"\n"
      "    alert_rule_test:\n" +
      quiet("119m") + quiet("125m") + firing("126m") + firing("144m") + quiet("145m");
  write_file(dir.path() + "/tests.yml", tests);
  const Run r = run("cd " + dir.path() + " && /usr/bin/promtool test rules tests.yml");
  INFO(yaml);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
}
