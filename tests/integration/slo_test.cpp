// SLOs on the real binary: counters pushed over HTTP burn an SLO's budget; its figures show in
// GET /api/v1/slos and /metrics; its burn-rate alert goes through the same receivers, outbox,
// acknowledgements and silences as KPI alerts, to the receivers the SLO names only.
#include <catch2/catch.hpp>

#include <string>
#include <thread>

#include "harness.h"
#include "support/recording_receiver.h"

using namespace kpid_it;
namespace json = boost::json;
using kpid::testing::RecordingReceiver;

namespace {

// Request counters, written "now": `ok` and `errors` more requests since the last write.
struct Counters {
  double ok = 0;
  double errors = 0;
  void add(const Kpid& k, double more_ok, double more_errors) {
    ok += more_ok;
    errors += more_errors;
    const std::string t = std::to_string(unique_now_ms());
    k.write_ok("requests_total,code=200 value=" + std::to_string(ok) + " " + t +
                   "\nrequests_total,code=500 value=" + std::to_string(errors) + " " + t + "\n",
               "ms");
  }
};

double number(const json::value& v) {
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  return std::nan("");
}

std::vector<std::string> events_of(const RecordingReceiver& r) {
  std::vector<std::string> out;
  for (const auto& req : r.requests()) {
    out.push_back(json_str(json::parse(req.body), "event"));
  }
  return out;
}

}  // namespace

TEST_CASE("slo: a burning budget shows in the API and metrics and pages through its receiver",
          "[slo]") {
  RecordingReceiver hook;
  RecordingReceiver other;
  Kpid k({.config_toml = "[alerting]\nretry_initial = \"50ms\"\n"
                         "[[receiver]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"" +
                         hook.url() +
                         "/hook\"\n"
                         "[[receiver]]\nname = \"other\"\ntype = \"webhook\"\nurl = \"" +
                         other.url() + "/other\"\n" + R"toml(
[[slo]]
id = "api"
name = "API availability"
owner = "web"
objective = 99
window = "1d"
interval = "1s"
[slo.events]
bad = 'requests_total{code="500"}'
total = 'sum(requests_total)'
[[slo.alert]]
name = "ApiBurn"
severity = "critical"
long_window = "1m"
short_window = "3s"
factor = 5
receivers = ["hook"]
)toml"});
  k.start();

  const json::value listed = require_api_data(k.get("/api/v1/slos"));
  REQUIRE(listed.as_array().size() == 1);
  CHECK(json_str(listed.as_array()[0], "sli_type") == "events");
  CHECK(json_str(listed.as_array()[0], "window") == "1d");
  require_error(k.get("/api/v1/slos/nope"), 404, "not_found");

  // Good traffic, then errors only, a write every 250 ms, until the alert fires.
  Counters c;
  for (int i = 0; i < 12; ++i) {
    c.add(k, 100, 0);
    std::this_thread::sleep_for(250ms);
  }
  json::array firing;
  REQUIRE(eventually(
      [&] {
        c.add(k, 0, 100);
        firing = get_alerts(k, "slo=api&state=firing");
        return !firing.empty();
      },
      20s, 250ms));
  const json::object alert = firing[0].as_object();
  INFO("alert: " << json::serialize(alert));
  CHECK(json_str(alert, "slo") == "api");
  CHECK(json_str(alert, "kpi").empty());
  CHECK(json_str(alert, "condition") == "burn_rate");
  CHECK(number(alert.at("threshold")) == 5);
  CHECK(number(alert.at("value")) > 5);
  const json::object& labels = alert.at("labels").as_object();
  CHECK(json_str(labels, "alertname") == "ApiBurn");
  CHECK(json_str(labels, "slo") == "api");
  CHECK(json_str(labels, "severity") == "critical");
  CHECK(json_str(labels, "owner") == "web");
  CHECK(contains(json_str(alert.at("annotations"), "summary"), "API availability is burning"));

  // The named receiver hears it; the other one, which would route it by severity, does not.
  REQUIRE(hook.wait_for(1, 10s));
  const json::value firing_body = json::parse(hook.requests()[0].body);
  CHECK(json_str(firing_body, "event") == "alert.firing");
  CHECK(json_str(firing_body.at("alert"), "slo") == "api");

  // The figures: everything in the window went bad but the first second's requests.
  const json::value slo = require_api_data(k.get("/api/v1/slos/api"));
  INFO("SLO: " << json::serialize(slo));
  CHECK(number(slo.at("budget").at("remaining")) < 0);
  CHECK(json_str(slo, "status") == "exhausted");
  CHECK(number(slo.at("burn_rates").at("5m")) > 5);
  CHECK(number(slo.at("sli")) < 99);
  CHECK(slo.at("history").as_object().contains("budget_remaining"));
  const std::string metrics = k.metrics();
  CHECK(metric_value(metrics, "kpid_slo_objective", {{"slo", "api"}}) == 0.99);
  CHECK(*metric_value(metrics, "kpid_slo_error_budget_remaining", {{"slo", "api"}}) < 0);
  CHECK(*metric_value(metrics, "kpid_slo_burn_rate", {{"slo", "api"}, {"window", "5m"}}) > 5);
  CHECK(*metric_value(metrics, "kpid_slo_sli", {{"slo", "api"}}) < 0.99);

  // Acknowledged like any alert, and the receiver is told.
  const std::string id = json_str(alert, "id");
  const auto ack =
      k.post("/api/v1/alerts/" + id + "/ack", R"({"author":"alice","comment":"on it"})");
  CHECK(ack.status == 200);
  REQUIRE(hook.wait_for(2, 10s));

  // Errors stop: the short window clears and the alert resolves.
  REQUIRE(eventually(
      [&] {
        c.add(k, 100, 0);
        return get_alerts(k, "slo=api&state=firing").empty();
      },
      20s, 250ms));
  REQUIRE(hook.wait_for(3, 10s));
  CHECK(events_of(hook) ==
        std::vector<std::string>{"alert.firing", "alert.acknowledged", "alert.resolved"});

  // Silenced by its slo label: the next burn fires without a notification.
  const auto silence =
      k.post("/api/v1/silences", R"({"matchers":[{"name":"slo","value":"api","op":"="}],)"
                                 R"("duration":"1h","author":"bob","comment":"load test"})");
  REQUIRE(silence.status == 200);
  REQUIRE(eventually(
      [&] {
        c.add(k, 0, 100);
        return !get_alerts(k, "slo=api&state=firing").empty();
      },
      20s, 250ms));
  const json::array again = get_alerts(k, "slo=api&state=firing");
  CHECK(json_str(again[0], "notification") == "silenced");
  std::this_thread::sleep_for(500ms);
  CHECK(hook.requests().size() == 3);
  CHECK(other.requests().empty());
  CHECK(k.stop() == 0);
}
