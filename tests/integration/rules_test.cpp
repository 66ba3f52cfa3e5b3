// Prometheus rule files in kpid: the real promtool and `kpid --check-config` agree on which
// files are valid, and kpid names the file and line of every error.

#include <catch2/catch.hpp>

#include <snappy.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "kpid/core/time.h"
#include "prometheus/remote_write_v1.pb.h"

using namespace kpid_it;
namespace json = boost::json;
namespace pb = kpid::wire::prometheus::v1;

namespace {

std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

// One bad rule file: what promtool and kpid both say about it, and where kpid says it.
struct BadCase {
  const char* name;
  const char* yaml;
  int line;             // kpid's line for the error
  const char* message;  // in promtool's output and in kpid's error line
};

const BadCase kBadCases[] = {
    {"unknown_group_field", "groups:\n  - name: g\n    foo: 1\n    rules: []\n", 3,
     "field foo not found in type rulefmt.RuleGroup"},
    {"unknown_rule_field",
     "groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: up\n"
     "        bar: 1\n",
     6, "field bar not found in type rulefmt.RuleNode"},
    {"empty_group_name", "groups:\n  - name: \"\"\n    rules: []\n", 2,
     "Groupname must not be empty"},
    {"repeated_group", "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n", 4,
     "groupname: \"g\" is repeated in the same file"},
    {"record_and_alert",
     "groups:\n  - name: g\n    rules:\n      - record: a\n        alert: b\n"
     "        expr: up\n",
     4, "only one of 'record' and 'alert' must be set"},
    {"neither", "groups:\n  - name: g\n    rules:\n      - expr: up\n", 4,
     "one of 'record' or 'alert' must be set"},
    {"no_expr", "groups:\n  - name: g\n    rules:\n      - record: a\n", 4,
     "field 'expr' must be set in rule"},
    {"bad_expr", "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: sum(up\n", 5,
     "could not parse expression: 1:7: parse error: unclosed left parenthesis"},
    {"bad_record_name", "groups:\n  - name: g\n    rules:\n      - record: a-b\n        expr: up\n",
     4, "invalid recording rule name: a-b"},
    {"bad_label_name",
     "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: up\n"
     "        labels:\n          a-b: x\n",
     7, "invalid label name: a-b"},
    {"for_on_record",
     "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n"
     "        for: 1m\n",
     4, "invalid field 'for' in recording rule"},
    {"keep_firing_on_record",
     "groups:\n  - name: g\n    rules:\n      - record: a\n"
     "        expr: up\n        keep_firing_for: 1m\n",
     4, "invalid field 'keep_firing_for' in recording rule"},
    {"annotations_on_record",
     "groups:\n  - name: g\n    rules:\n      - record: a\n"
     "        expr: up\n        annotations:\n          x: y\n",
     4, "invalid field 'annotations' in recording rule"},
    {"bad_interval", "groups:\n  - name: g\n    interval: 5x\n    rules: []\n", 3,
     "not a valid duration string: \"5x\""},
    {"bad_for",
     "groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: up\n"
     "        for: 1.5m\n",
     6, "not a valid duration string: \"1.5m\""},
    {"unclosed_template",
     "groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: up\n"
     "        annotations:\n          x: \"{{ $labels.job \"\n",
     7, "annotation \"x\": template: __alert_a:1: unclosed action"},
    {"unknown_function",
     "groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: up\n"
     "        labels:\n          x: \"{{ nosuch $value }}\"\n",
     7, "label \"x\": template: __alert_a:1: function \"nosuch\" not defined"},
    {"bad_limit", "groups:\n  - name: g\n    limit: abc\n    rules: []\n", 3,
     "cannot unmarshal !!str `abc` into int"},
};

const Headers kRemoteWriteHeaders = {{"Content-Type", "application/x-protobuf"},
                                     {"Content-Encoding", "snappy"},
                                     {"X-Prometheus-Remote-Write-Version", "0.1.0"}};

// One remote write request: one sample of req_total{job} at `t_ms`.
std::string remote_write_body(const std::string& job, double value, int64_t t_ms) {
  pb::WriteRequest request;
  auto* ts = request.add_timeseries();
  auto* name = ts->add_labels();
  name->set_name("__name__");
  name->set_value("req_total");
  auto* label = ts->add_labels();
  label->set_name("job");
  label->set_value(job);
  auto* sample = ts->add_samples();
  sample->set_timestamp(t_ms);
  sample->set_value(value);
  const std::string raw = request.SerializeAsString();
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

// The values of `query` (a range selector) at one server, as (ms, value) per series labels.
std::map<std::string, std::vector<std::pair<int64_t, double>>> range_values(
    uint16_t port, const std::string& query) {
  const HttpResponse r =
      http_request(port, "GET", "/api/v1/query?query=" + url_encode(query), "", {}, 5s);
  INFO(query << " on port " << port << ": " << r.status << " " << r.body);
  REQUIRE(r.status == 200);
  std::map<std::string, std::vector<std::pair<int64_t, double>>> out;
  const json::value answer = r.json();
  for (const auto& series : answer.at("data").at("result").as_array()) {
    std::string key;
    for (const auto& [k, v] : series.at("metric").as_object()) {
      key += std::string(k) + "=" + std::string(v.as_string()) + ",";
    }
    for (const auto& p : series.at("values").as_array()) {
      const auto& pair = p.as_array();
      out[key].emplace_back(std::llround(pair[0].to_number<double>() * 1000),
                            std::stod(std::string(pair[1].as_string())));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("rules: kpid --check-config refuses the rule files promtool refuses", "[rules]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("rules"));
  const std::string config = dir.file("kpid.toml");
  write_file(config, "[storage]\ndata_dir = \"" + dir.file("data") +
                         "\"\n[rules]\nfiles = [\"rules/*.yml\"]\nevaluation_interval = \"1s\"\n");

  // The documented example: both accept it.
  const std::string example = dir.file("rules/example.yml");
  std::filesystem::copy_file(KPID_SOURCE_DIR "/config/rules/example.yml", example);
  const auto promtool_ok = run_command({kPromtoolBinary, "check", "rules", example});
  INFO(describe(promtool_ok));
  REQUIRE(promtool_ok.exit_code == 0);
  const auto kpid_ok = run_command({kKpidBinary, "--config", config, "--check-config"});
  INFO(describe(kpid_ok));
  REQUIRE(kpid_ok.exit_code == 0);
  CHECK(contains(kpid_ok.out, "2 rule groups with 4 Prometheus rules"));

  // Every bad file: promtool fails it with the message, and one kpid run reports each with
  // the file, line and the same message.
  for (const auto& c : kBadCases) {
    const std::string file = dir.file(std::string("rules/") + c.name + ".yml");
    write_file(file, c.yaml);
    const auto p = run_command({kPromtoolBinary, "check", "rules", file});
    INFO(c.name << "\n" << describe(p));
    CHECK(p.exit_code == 1);
    CHECK(contains(p.out + p.err, c.message));
  }
  const auto bad = run_command({kKpidBinary, "--config", config, "--check-config"});
  INFO(describe(bad));
  CHECK(bad.exit_code == 1);
  for (const auto& c : kBadCases) {
    const std::string file = dir.file(std::string("rules/") + c.name + ".yml");
    INFO(c.name);
    CHECK(contains(bad.err, file + ":" + std::to_string(c.line) + ":"));
    CHECK(contains(bad.err, c.message));
  }
  CHECK(contains(bad.err, "configuration has " + std::to_string(std::size(kBadCases)) + " error"));
}

// One rule file in a real Prometheus and in kpid, the same counter remote-written to both every
// second: a steady rate, a burst, a steady rate again. The recorded series agree where the
// rate is steady, and the alert fires and resolves at the same times within one evaluation
// interval (1s; each evaluates on its own phase of the second) plus 1.5s for a loaded machine.
TEST_CASE("rules: a real Prometheus and kpid record and alert alike on the same data",
          "[rules][prometheus]") {
  constexpr int64_t kSecond = 1000;
  constexpr int kCalm = 6, kBurst = 8, kAfter = 8;  // seconds of each phase
  TempDir dir;
  const std::string rules = dir.file("cmp.yml");
  write_file(rules, R"(groups:
  - name: cmp
    interval: 1s
    rules:
      - record: job:req:rate5s
        expr: sum by (job) (rate(req_total[5s]))
      - record: job:req:rate5s_x2
        expr: job:req:rate5s * 2
      - alert: HighRate
        expr: job:req:rate5s > 20
        for: 2s
        keep_firing_for: 2s
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.job }} at {{ $value | humanize }} per second"
)");
  REQUIRE(run_command({kPromtoolBinary, "check", "rules", rules}).exit_code == 0);
  RealPrometheus prom("global:\n  evaluation_interval: 1s\nrule_files:\n  - " + rules + "\n",
                      {"--web.enable-remote-write-receiver"});
  Kpid k({.config_toml = "[rules]\nfiles = [\"" + rules + "\"]\n"});
  k.start();

  // Samples at the middle of each second; the counter starts high so rate() never clamps at 0.
  const int64_t start = (now_ms() / kSecond + 1) * kSecond + 500;
  double value = 1000;
  int64_t burst_start = 0, burst_end = 0;
  for (int i = 0; i <= kCalm + kBurst + kAfter; ++i) {
    const int64_t t = start + i * kSecond;
    if (i == kCalm) burst_start = t;
    if (i == kCalm + kBurst) burst_end = t;
    const int64_t wait = t - now_ms();
    if (wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    if (i > 0) value += (i > kCalm && i <= kCalm + kBurst) ? 40 : 10;
    const std::string body = remote_write_body("a", value, t);
    for (uint16_t port : {k.http_port(), prom.port}) {
      const HttpResponse r =
          http_request(port, "POST", "/api/v1/write", body, kRemoteWriteHeaders, 5s);
      INFO("remote write to port " << port << ": " << r.status << " " << r.body);
      REQUIRE((r.status == 204 || r.status == 200));
    }
  }
  // keep_firing_for and one more evaluation on both.
  std::this_thread::sleep_for(4s);
  INFO(k.log_tail());

  // Recorded series: where the 5s window lies inside one phase, both hold the same value.
  const std::string window = "[" + std::to_string((now_ms() - start) / 1000 + 5) + "s]";
  auto kpid_rate = range_values(k.http_port(), "job:req:rate5s" + window);
  auto prom_rate = range_values(prom.port, "job:req:rate5s" + window);
  REQUIRE(kpid_rate.size() == 1);
  REQUIRE(prom_rate.size() == 1);
  CHECK(kpid_rate.begin()->first == prom_rate.begin()->first);  // same labels
  auto steady = [&](const std::vector<std::pair<int64_t, double>>& points, int64_t from,
                    int64_t to) {
    std::vector<double> out;
    for (const auto& [t, v] : points) {
      if (t >= from && t < to) out.push_back(v);
    }
    return out;
  };
  // The window (t - 5s, t] is in the burst for t in [burst_start + 5s, burst_end), and in the
  // calm after it for t in [burst_end + 5s, end].
  for (const auto& [from, to, expected] : std::vector<std::tuple<int64_t, int64_t, double>>{
           {burst_start + 5 * kSecond, burst_end, 40},
           {burst_end + 5 * kSecond, burst_end + kAfter * kSecond, 10}}) {
    const auto kv = steady(kpid_rate.begin()->second, from, to);
    const auto pv = steady(prom_rate.begin()->second, from, to);
    INFO("from " << fmt_rfc3339(from) << " to " << fmt_rfc3339(to));
    CHECK(kv.size() >= 2);
    CHECK(pv.size() >= 2);
    for (double v : kv) CHECK(v == Approx(expected));
    for (double v : pv) CHECK(v == Approx(expected));
  }
  // The rule after it saw this evaluation's output: twice the rate at every evaluation.
  auto kpid_x2 = range_values(k.http_port(), "job:req:rate5s_x2" + window);
  REQUIRE(kpid_x2.size() == 1);
  const auto& rates = kpid_rate.begin()->second;
  const auto& doubled = kpid_x2.begin()->second;
  REQUIRE(rates.size() == doubled.size());
  for (size_t i = 0; i < rates.size(); ++i) {
    CHECK(doubled[i].first == rates[i].first);
    CHECK(doubled[i].second == Approx(rates[i].second * 2));
  }

  // ALERTS{alertstate="firing"}: the first and last evaluations that found it firing.
  auto fired_and_resolved = [&](uint16_t port) {
    auto v = range_values(port, "ALERTS{alertname=\"HighRate\",alertstate=\"firing\"}" + window);
    REQUIRE(v.size() == 1);
    CHECK(contains(v.begin()->first, "severity=critical"));
    return std::pair{v.begin()->second.front().first, v.begin()->second.back().first + kSecond};
  };
  const auto [kpid_fired, kpid_resolved] = fired_and_resolved(k.http_port());
  const auto [prom_fired, prom_resolved] = fired_and_resolved(prom.port);
  INFO("burst " << fmt_rfc3339(burst_start) << " to " << fmt_rfc3339(burst_end));
  INFO("kpid fired " << fmt_rfc3339(kpid_fired) << ", resolved " << fmt_rfc3339(kpid_resolved));
  INFO("Prometheus fired " << fmt_rfc3339(prom_fired) << ", resolved "
                           << fmt_rfc3339(prom_resolved));
  constexpr int64_t kTolerance = kSecond + 1500;
  CHECK(std::llabs(kpid_fired - prom_fired) <= kTolerance);
  CHECK(std::llabs(kpid_resolved - prom_resolved) <= kTolerance);
  // By hand: the rate passes 20 about 2s into the burst, fires 2s later; it drops under 20
  // about 3s after the burst and keeps firing 2s more.
  CHECK(kpid_fired > burst_start + 2 * kSecond);
  CHECK(kpid_fired < burst_start + 7 * kSecond);
  CHECK(kpid_resolved > burst_end + 3 * kSecond);
  CHECK(kpid_resolved < burst_end + 9 * kSecond);

  // The same alert as a kpid alert: fired, announced, resolved, with its rule group and the
  // expanded template.
  json::array alerts;
  CHECK(eventually(
      [&] {
        alerts = get_alerts(k, "rule_group=cmp:cmp");
        return alerts.size() == 1 && json_str(alerts[0], "state") == "resolved";
      },
      5s, 100ms));
  REQUIRE(alerts.size() == 1);
  CHECK(json_str(alerts[0], "name") == "HighRate");
  CHECK(json_str(alerts[0], "rule_group") == "cmp:cmp");
  CHECK(json_str(alerts[0], "severity") == "critical");
  CHECK(contains(json_str(alerts[0].at("annotations"), "summary"), "a at "));
  auto fired = kpid::parse_time(json_str(alerts[0], "firing_since"));
  REQUIRE(fired.is_ok());
  CHECK(std::llabs(*fired - kpid_fired) <= kTolerance);

  // GET /api/v1/rules answers as Prometheus' does: compare the shape with the real one.
  for (uint16_t port : {k.http_port(), prom.port}) {
    const HttpResponse r = http_request(port, "GET", "/api/v1/rules?type=record", "", {}, 5s);
    INFO("port " << port << ": " << r.body);
    REQUIRE(r.status == 200);
    const json::value body = r.json();
    const json::array& groups = body.at("data").at("groups").as_array();
    REQUIRE(groups.size() == 1);
    CHECK(groups[0].at("name").as_string() == "cmp");
    CHECK(groups[0].at("file").as_string() == rules);
    CHECK(groups[0].at("interval").to_number<double>() == 1);
    const json::array& listed = groups[0].at("rules").as_array();
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].at("name").as_string() == "job:req:rate5s");
    CHECK(listed[0].at("type").as_string() == "recording");
    CHECK(listed[0].at("health").as_string() == "ok");
    CHECK(listed[0].at("query").as_string() == "sum by (job) (rate(req_total[5s]))");
  }
  const HttpResponse alerting = http_request(k.http_port(), "GET", "/api/v1/rules?type=alert");
  REQUIRE(alerting.status == 200);
  const json::value a = alerting.json();
  const json::value& rule = a.at("data").at("groups").at(0).at("rules").at(0);
  CHECK(rule.at("name").as_string() == "HighRate");
  CHECK(rule.at("type").as_string() == "alerting");
  CHECK(rule.at("state").as_string() == "inactive");
  CHECK(rule.at("duration").to_number<double>() == 2);
  CHECK(rule.at("keepFiringFor").to_number<double>() == 2);
  CHECK(http_request(k.http_port(), "GET", "/api/v1/rules?type=nope").status == 400);
}
