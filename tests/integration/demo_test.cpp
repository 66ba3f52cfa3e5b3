// The one-command demo end to end: the real kpid on the real config/demo/kpid.toml, fed by the
// real kpid-demo (10 days of backfill, beyond the baselines' 7-day min_history, then live points
// and its incident; the demo's default is 30 days, README's one command). Within a minute of
// the incident the checkout latency alert fires and an OKR draft with its guardrails is open,
// the baselines are trusted from the backfilled history, and the shop's other KPIs stay ok.

#include <cmath>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

constexpr const char* kDemoBinary = KPID_DEMO_BINARY;
constexpr const char* kDemoConfig = KPID_DEMO_CONFIG;

double jnum(const json::value& o, std::string_view key) {
  const json::value* v = o.is_object() ? o.as_object().if_contains(key) : nullptr;
  if (v == nullptr) return std::nan("");
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return std::nan("");
}

json::array kpis(const Kpid& k) {
  const json::value data = require_api_data(k.get("/api/v1/kpis"));
  REQUIRE(data.is_array());
  return data.as_array();
}

json::object kpi(const json::array& all, const std::string& id) {
  for (const auto& v : all) {
    if (json_str(v, "id") == id) return v.as_object();
  }
  FAIL("no KPI " << id << " in " << json::serialize(all));
  return {};
}

bool baseline_trusted(const json::value& kpi) {
  const json::value* b = kpi.as_object().if_contains("baseline");
  if (b == nullptr || !b->is_object()) return false;
  const json::value* t = b->as_object().if_contains("trusted");
  return t != nullptr && t->is_bool() && t->as_bool();
}

std::chrono::milliseconds until(Clock::time_point deadline) {
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

TEST_CASE(
    "demo: backfilled history gives trusted baselines, the incident an alert and an OKR draft",
    "[demo]") {
  Kpid k({.extra_args = {"--config", kDemoConfig}});
  k.start();
  const auto kpid_started = Clock::now();
  const std::string url = "http://127.0.0.1:" + std::to_string(k.http_port());

  TempDir dir;
  BackgroundProcess demo(
      "kpid-demo",
      {kDemoBinary, "--url", url, "--days", "10", "--incident-after", "5s", "--incident-duration",
       "3m", "--live-for", "3m", "--seed", "1", "--reload-pid", std::to_string(k.pid())},
      dir.file("demo.log"));

  // Backfill: 10 days at one point a minute (35 lines: 9 series and 26 histogram buckets), then
  // the rollups.
  REQUIRE(eventually([&] { return contains(demo.log(), "rollups computed"); }, 40s, 50ms));
  const auto backfilled = Clock::now();
  INFO("backfill and compaction took " << seconds_between(kpid_started, backfilled) << " s");
  {
    // All of it is stored: 14400 one-minute points of a gauge.
    const auto v =
        k.query("count_over_time(customers_churn_monthly_percent[11d])", fmt_seconds(now_ms()));
    REQUIRE(v.size() == 1);
    CHECK(num(v[0].value) >= 14'400);
  }

  // The incident starts after the calm.
  REQUIRE(eventually([&] { return contains(demo.log(), "incident: "); }, 20s, 20ms));
  const auto incident = Clock::now();
  const auto deadline = incident + 60s;

  // The checkout latency alert fires...
  json::object alert;
  const bool fired = eventually(
      [&] {
        const json::array firing = get_alerts(k, "kpi=checkout_latency_p95&state=firing");
        if (firing.empty()) return false;
        alert = firing[0].as_object();
        return true;
      },
      until(deadline), 100ms);
  REQUIRE(fired);
  const auto fired_at = Clock::now();
  CHECK(json_str(alert, "severity") == "critical");
  CHECK(json_str(alert, "owner") == "payments-team");
  CHECK(jnum(alert, "value") > 500);

  // ...and opens an OKR draft for payments-team with the error rate and conversion as
  // guardrails.
  json::object okr;
  const bool opened = eventually(
      [&] {
        const json::value data = require_api_data(k.get("/api/v1/okrs?kpi=checkout_latency_p95"));
        if (!data.is_array() || data.as_array().empty()) return false;
        okr = data.as_array()[0].as_object();
        return true;
      },
      until(deadline), 100ms);
  REQUIRE(opened);
  const auto opened_at = Clock::now();
  INFO("OKR: " << json::serialize(okr));
  CHECK(json_str(okr, "state") == "draft");
  CHECK(json_str(okr, "owner") == "payments-team");
  CHECK(json_str(okr, "objective") == "Restore Checkout latency (p95) to its healthy range");
  const json::array& krs = okr.at("key_results").as_array();
  REQUIRE(krs.size() == 3);
  CHECK(json_str(krs[0], "kind") == "kpi");
  CHECK(json_str(krs[0], "direction") == "decrease");
  CHECK(jnum(krs[0], "target") == 200);
  CHECK(json_str(krs[1], "kind") == "guardrail");
  CHECK(json_str(krs[1], "kpi") == "checkout_error_rate");
  CHECK(json_str(krs[1], "direction") == "stay_below");
  CHECK(jnum(krs[1], "target") == 1.5);
  CHECK(json_str(krs[2], "kind") == "guardrail");
  CHECK(json_str(krs[2], "kpi") == "signup_conversion");
  CHECK(json_str(krs[2], "direction") == "stay_above");
  CHECK(jnum(krs[2], "target") == 2.2);
  INFO("demo timeline: backfill + rollups "
       << seconds_between(kpid_started, backfilled) << " s after kpid started; alert firing "
       << seconds_between(incident, fired_at) << " s and OKR draft "
       << seconds_between(incident, opened_at) << " s after the incident began");

  // The incident burns the checkout availability SLO's budget: its demo-sized burn-rate alert
  // fires, and the budget counts the backfilled days too.
  json::object slo_alert;
  const bool burning = eventually(
      [&] {
        const json::array firing = get_alerts(k, "slo=checkout_availability&state=firing");
        if (firing.empty()) return false;
        slo_alert = firing[0].as_object();
        return true;
      },
      until(incident + 90s), 250ms);
  REQUIRE(burning);
  CHECK(json_str(slo_alert, "name") == "CheckoutAvailabilityDemoBurn");
  CHECK(jnum(slo_alert, "value") > 2);
  const json::value slo = require_api_data(k.get("/api/v1/slos/checkout_availability"));
  INFO("SLO: " << json::serialize(slo));
  CHECK(jnum(slo, "total") > 1e6);  // ten days of about 1,000 checkouts a minute
  CHECK(jnum(slo, "sli") > 99);
  CHECK(jnum(slo, "sli") < 99.7);
  const double remaining = jnum(slo.at("budget"), "remaining");
  CHECK(remaining > 0.2);
  CHECK(remaining < 0.7);
  for (const char* w : {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}) {
    CHECK(jnum(slo.at("burn_rates"), w) > 0);  // the backfilled days had errors in every window
  }
  CHECK(slo.at("history").at("budget_remaining").as_array().size() >= 200);

  // kpid-demo tells the newcomer where to look.
  CHECK(eventually([&] { return contains(demo.log(), url + "/api/v1/okrs/"); }, 5s, 50ms));
  CHECK(contains(demo.log(), "alert firing (critical): Checkout latency (p95)"));

  // Baselines are trusted from the backfill at once: kpid-demo has kpid reload after it.
  json::array all;
  const bool trusted = eventually(
      [&] {
        all = kpis(k);
        for (const auto& v : all) {
          if (!baseline_trusted(v)) return false;
        }
        return all.size() == 5;
      },
      until(backfilled + 15s), 250ms);
  INFO("KPIs: " << json::serialize(all));
  REQUIRE(trusted);
  const json::object latency = kpi(all, "checkout_latency_p95");
  const json::value& latency_baseline = latency.at("baseline");
  CHECK(jnum(latency_baseline, "lower") > 150);
  CHECK(jnum(latency_baseline, "upper") < 350);  // the healthy days, not the incident

  // The shop's other KPIs are healthy: no breach, no alert.
  for (const char* id : {"signup_conversion", "support_first_response", "monthly_churn"}) {
    INFO("KPI " << id);
    const json::object v = kpi(all, id);
    CHECK(json_str(v, "status") == "ok");
    CHECK(get_alerts(k, std::string("kpi=") + id).empty());
  }
  CHECK(json_str(latency, "status") == "crit");
  CHECK(json_str(kpi(all, "checkout_error_rate"), "status") != "crit");

  CHECK(demo.running());
  CHECK(demo.stop() == 0);  // SIGTERM is a normal way to stop it
  CHECK(contains(demo.log(), "stopped"));
  CHECK(k.stop() == 0);
}

TEST_CASE("demo: kpid-demo says what is wrong when kpid is not there or a flag is bad", "[demo]") {
  const std::string nowhere = "http://127.0.0.1:" + std::to_string(free_port());
  const CommandResult down = run_command({kDemoBinary, "--url", nowhere, "--wait", "300ms"});
  INFO("stdout: " << down.out << "\nstderr: " << down.err);
  CHECK(down.exit_code == 1);
  CHECK(contains(down.err, "cannot reach kpid at " + nowhere + "/readyz (GET): "));

  const CommandResult bad = run_command({kDemoBinary, "--incident-after", "soon"});
  INFO("stderr: " << bad.err);
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.err, "--incident-after"));

  const CommandResult help = run_command({kDemoBinary, "--help"});
  CHECK(help.exit_code == 0);
  for (const char* flag :
       {"--url", "--days", "--incident-after", "--incident-duration", "--live-for", "--seed"}) {
    CHECK(contains(help.out, flag));
  }
}
