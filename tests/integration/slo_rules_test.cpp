// Prometheus users keep their alerting: `kpictl slo rules` prints rules the real promtool
// accepts, and a real Prometheus running them over the same samples as kpid fires and resolves
// its burn-rate alert when kpid does.

#include <catch2/catch.hpp>

#include <snappy.h>

#include <algorithm>
#include <thread>

#include "harness.h"
#include "kpid/core/time.h"
#include "prometheus/remote_write_v1.pb.h"

using namespace kpid_it;
namespace json = boost::json;
namespace pb = kpid::wire::prometheus::v1;

namespace {

constexpr const char* kKpictl = KPICTL_BINARY;

std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

CommandResult kpictl(const Kpid& k, std::vector<std::string> args) {
  std::vector<std::string> argv{kKpictl};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--url=http://127.0.0.1:" + std::to_string(k.http_port()));
  return run_command(argv);
}

CommandResult promtool_check(const std::string& path) {
  return run_command({kPromtoolBinary, "check", "rules", path});
}

const Headers kRemoteWriteHeaders = {{"Content-Type", "application/x-protobuf"},
                                     {"Content-Encoding", "snappy"},
                                     {"X-Prometheus-Remote-Write-Version", "0.1.0"}};

// One remote write request holding one sample of each counter at `t_ms`.
std::string remote_write_body(const std::vector<std::pair<std::string, double>>& counters,
                              int64_t t_ms) {
  pb::WriteRequest request;
  for (const auto& [name, value] : counters) {
    auto* ts = request.add_timeseries();
    auto* l = ts->add_labels();
    l->set_name("__name__");
    l->set_value(name);
    auto* sample = ts->add_samples();
    sample->set_timestamp(t_ms);
    sample->set_value(value);
  }
  const std::string raw = request.SerializeAsString();
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

// Two SLOs: the workbook's default alerts over bad/total, and good/total over an aggregation.
constexpr const char* kTwoSlos = R"(
[[slo]]
id = "checkout"
name = "Checkout availability"
owner = "payments"
objective = 99.9
window = "28d"
[slo.events]
bad = 'http_requests_total{job="checkout",code=~"5.."}'
total = 'http_requests_total{job="checkout"}'

[[slo]]
id = "search"
name = "Search availability"
owner = "search"
objective = 99.5
window = "month"
interval = "10s"
[slo.events]
good = 'sum by (job) (search_ok_total)'
total = 'sum by (job) (search_total)'
[[slo.alert]]
name = "search_page"
severity = "critical"
long_window = "1h"
short_window = "5m"
factor = 14.4
for = "2m"
)";

}  // namespace

TEST_CASE("slo rules: kpictl slo rules prints rules promtool check rules accepts", "[slo_rules]") {
  Kpid k({.config_toml = kTwoSlos});
  k.start();
  TempDir dir;

  const CommandResult all = kpictl(k, {"slo", "rules"});
  INFO(describe(all));
  REQUIRE(all.exit_code == 0);
  CHECK(contains(all.out, "name: \"kpid-slo-checkout\""));
  CHECK(contains(all.out, "name: \"kpid-slo-search\""));
  CHECK(contains(all.out, "alert: \"checkout_burn_1h_5m\""));
  CHECK(contains(all.out, "alert: \"search_page\""));
  write_file(dir.file("all.yml"), all.out);
  const CommandResult checked = promtool_check(dir.file("all.yml"));
  INFO(describe(checked));
  CHECK(checked.exit_code == 0);

  const CommandResult one = kpictl(k, {"slo", "rules", "search"});
  INFO(describe(one));
  REQUIRE(one.exit_code == 0);
  CHECK_FALSE(contains(one.out, "kpid-slo-checkout"));
  CHECK(contains(one.out, "    interval: 10s\n"));
  write_file(dir.file("one.yml"), one.out);
  CHECK(promtool_check(dir.file("one.yml")).exit_code == 0);

  // The API itself: YAML, and a Prometheus-style 404 for an unknown SLO (kpictl exits 1).
  const HttpResponse r = k.get("/api/v1/slos/checkout/rules");
  CHECK(r.status == 200);
  CHECK(r.header("content-type") == "application/yaml");
  CHECK(contains(r.body, "kpid-slo-checkout"));
  require_error(k.get("/api/v1/slos/nope/rules"), 404, "not_found");
  const CommandResult unknown = kpictl(k, {"slo", "rules", "nope"});
  CHECK(unknown.exit_code == 1);
  CHECK(contains(unknown.err, "nope"));
}

TEST_CASE("slo rules: kpictl slo lists the SLOs and shows one", "[slo_rules]") {
  Kpid k({.config_toml = kTwoSlos});
  k.start();

  const CommandResult list = kpictl(k, {"slo"});
  INFO(describe(list));
  REQUIRE(list.exit_code == 0);
  CHECK(contains(list.out, "SLO"));
  CHECK(contains(list.out, "BUDGET LEFT"));
  CHECK(list.out.find("checkout") < list.out.find("search"));  // config order
  CHECK(contains(list.out, "99.9%"));
  CHECK(contains(list.out, "month (calendar)"));

  const CommandResult owned = kpictl(k, {"slo", "--owner", "search"});
  CHECK(owned.exit_code == 0);
  CHECK_FALSE(contains(owned.out, "checkout"));

  const CommandResult json_list = kpictl(k, {"slo", "--json"});
  REQUIRE(json_list.exit_code == 0);
  const json::value parsed = json::parse(json_list.out);
  REQUIRE(parsed.is_array());
  CHECK(parsed.as_array().size() == 2);

  const CommandResult show = kpictl(k, {"slo", "search"});
  INFO(describe(show));
  REQUIRE(show.exit_code == 0);
  CHECK(contains(show.out, "SLO search: Search availability"));
  CHECK(contains(show.out, "99.5% over month (calendar)"));
  CHECK(contains(show.out, "good: sum by (job) (search_ok_total)"));
  CHECK(contains(show.out, "BURN 5m"));
  CHECK(contains(show.out, "search_page"));
  CHECK(contains(show.out, "1h & 5m"));
  CHECK(contains(show.out, "2m"));  // its `for`

  const CommandResult unknown = kpictl(k, {"slo", "nope"});
  CHECK(unknown.exit_code == 1);
  CHECK(contains(unknown.err, "no SLO with id \"nope\""));
}

// The same counters, sample for sample (same timestamps, one a second), go to kpid and to a
// real Prometheus that runs the rules kpid generated. A good period, a total outage, then
// recovery: both must fire and resolve the fast-burn alert at the same times, within one
// evaluation interval (1s: each evaluates on its own phase of the second) plus 1.5s for a
// loaded machine (a sample may reach one just after an evaluation and the other just before).
TEST_CASE("slo rules: a real Prometheus running the rules fires and resolves with kpid",
          "[slo_rules][prometheus]") {
  constexpr int64_t kSecond = 1000;
  constexpr int kGood = 12;      // seconds of good traffic
  constexpr int kOutage = 10;    // then every request fails
  constexpr int kRecovery = 13;  // then good again
  constexpr double kRate = 10;   // requests a second
  const std::string kAlert = "shop_fast_burn";
  // Burn factor 10.5 of a 1% budget: the alert needs more than 10.5% errors over both 1m and
  // 10s. The 1m window holds the whole good period, so with x seconds of outage its error
  // ratio is about x / (12 + x): above 0.105 once x > 1.4. The 10s window clears about 9s
  // after recovery. 10.5, not 10, keeps both crossings off sample boundaries.
  Kpid k({.config_toml = R"(
[[slo]]
id = "shop"
name = "Shop availability"
owner = "web"
objective = 99
window = "1h"
interval = "1s"
[slo.events]
bad = "shop_errors_total"
total = "shop_requests_total"
[[slo.alert]]
name = "shop_fast_burn"
severity = "critical"
long_window = "1m"
short_window = "10s"
factor = 10.5
for = "0s"
)"});
  k.start();

  const CommandResult rules = kpictl(k, {"slo", "rules", "shop"});
  INFO(describe(rules));
  REQUIRE(rules.exit_code == 0);
  TempDir dir;
  write_file(dir.file("rules.yml"), rules.out);
  REQUIRE(promtool_check(dir.file("rules.yml")).exit_code == 0);
  RealPrometheus prom(
      "global:\n  evaluation_interval: 1s\nrule_files:\n  - " + dir.file("rules.yml") + "\n",
      {"--web.enable-remote-write-receiver"});

  // Samples at the middle of each second: both evaluate on whole seconds or their own phase,
  // never waiting on a sample stamped in the future.
  const int64_t start = (now_ms() / kSecond + 1) * kSecond + 500;
  double requests = 0;
  double errors = 0;
  int64_t outage_start = 0;
  int64_t outage_end = 0;
  for (int i = 0; i <= kGood + kOutage + kRecovery; ++i) {
    const int64_t t = start + i * kSecond;
    if (i == kGood) outage_start = t;
    if (i == kGood + kOutage) outage_end = t;
    const int64_t wait = t - now_ms();
    if (wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    if (i > 0) requests += kRate;
    if (i > kGood && i <= kGood + kOutage) errors += kRate;
    const std::string body =
        remote_write_body({{"shop_requests_total", requests}, {"shop_errors_total", errors}}, t);
    for (uint16_t port : {k.http_port(), prom.port}) {
      const HttpResponse r =
          http_request(port, "POST", "/api/v1/write", body, kRemoteWriteHeaders, 5s);
      INFO("remote write to port " << port << ": " << r.status << " " << r.body);
      REQUIRE((r.status == 204 || r.status == 200));
    }
  }
  // Both have had time to resolve (the 10s window is clean 10s after recovery).
  std::this_thread::sleep_for(5s);

  // kpid: the SLO's alerts (one per firing episode), the first firing and the last resolution.
  int64_t kpid_fired = 0;
  int64_t kpid_resolved = 0;
  auto read_kpid = [&] {
    kpid_fired = 0;
    kpid_resolved = 0;
    bool all_resolved = true;
    for (const auto& a : get_alerts(k, "slo=shop")) {
      if (json_str(a, "name") != kAlert) continue;
      auto fired = kpid::parse_time(json_str(a, "firing_since"));
      auto resolved = kpid::parse_time(json_str(a, "resolved_at"));
      if (!fired) continue;  // pending only
      if (kpid_fired == 0 || *fired < kpid_fired) kpid_fired = *fired;
      if (resolved) {
        kpid_resolved = std::max(kpid_resolved, *resolved);
      } else {
        all_resolved = false;
      }
    }
    return kpid_fired != 0 && all_resolved;
  };
  CHECK(eventually(read_kpid, 10s, 200ms));
  for (const auto& a : get_alerts(k, "slo=shop")) {
    CHECK(json_str(a, "kpi").empty());
    CHECK(json_str(a, "slo") == "shop");
  }
  INFO(k.log_tail());
  REQUIRE(kpid_fired != 0);

  // Prometheus: every evaluation that found the alert firing wrote an ALERTS sample stamped
  // with the evaluation time; it resolved at the evaluation after the last one.
  const HttpResponse q = http_request(
      prom.port, "GET",
      "/api/v1/query?query=" +
          url_encode("ALERTS{alertname=\"" + kAlert + "\",alertstate=\"firing\"}[10m]"));
  INFO(q.body);
  REQUIRE(q.status == 200);
  const json::value answer = q.json();
  const json::array& result = answer.at("data").at("result").as_array();
  REQUIRE(result.size() == 1);
  const json::array& values = result[0].at("values").as_array();
  REQUIRE(!values.empty());
  auto ms_of = [](const json::value& point) {
    return static_cast<int64_t>(std::llround(point.as_array()[0].to_number<double>() * 1000));
  };
  const int64_t prom_fired = ms_of(values.front());
  const int64_t prom_resolved = ms_of(values.back()) + kSecond;

  INFO("outage " << fmt_rfc3339(outage_start) << " to " << fmt_rfc3339(outage_end));
  INFO("kpid fired " << fmt_rfc3339(kpid_fired) << ", resolved " << fmt_rfc3339(kpid_resolved));
  INFO("Prometheus fired " << fmt_rfc3339(prom_fired) << ", resolved "
                           << fmt_rfc3339(prom_resolved));
  // By hand: about 1.4s into the outage, about 9s after recovery.
  CHECK(kpid_fired > outage_start);
  CHECK(kpid_fired < outage_start + 15 * kSecond);
  CHECK(kpid_resolved > outage_end);
  CHECK(kpid_resolved < outage_end + 15 * kSecond);
  constexpr int64_t kTolerance = kSecond + 1500;
  CHECK(std::llabs(kpid_fired - prom_fired) <= kTolerance);
  CHECK(std::llabs(kpid_resolved - prom_resolved) <= kTolerance);
}
