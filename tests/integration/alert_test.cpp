// Breach alerts end to end: KPI breaches become alerts (pending -> firing -> resolved) that kpid
// delivers to webhooks (signed, over HTTP and HTTPS) and PagerDuty through its durable outbox,
// across receiver outages and kpid restarts; routing, silences, acknowledgements, `for`,
// clear_for with hysteresis, the alert API's errors and --check-config errors of [[kpi.alert]]
// and [[receiver]]. Every receiver is a kpid::testing::RecordingReceiver on loopback.

#include <csignal>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"
#include "support/recording_receiver.h"

using namespace kpid_it;
namespace json = boost::json;
using kpid::testing::ReceivedRequest;
using kpid::testing::ReceiverOptions;
using kpid::testing::RecordingReceiver;

namespace {

const std::string kTlsDir = std::string(KPID_TEST_DATA_DIR) + "/tls";
constexpr const char* kSecret = "s3cret";
constexpr const char* kExternalUrl = "http://kpid.example:9470";

std::string hmac_hex(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

// [alerting] with fast retries, so a receiver that comes back is served within half a second.
std::string alerting_toml(const std::string& extra = "") {
  return "[alerting]\nexternal_url = \"" + std::string(kExternalUrl) +
         "\"\nretry_initial = \"50ms\"\nretry_max = \"500ms\"\n" + extra;
}

std::string webhook_toml(const std::string& name, const std::string& url,
                         const std::string& extra = "") {
  return "[[receiver]]\nname = \"" + name + "\"\ntype = \"webhook\"\nurl = \"" + url +
         "\"\nsecret = \"" + kSecret + "\"\n" + extra;
}

// A latency KPI (series `id`, lower is better, warn 100, crit 200) with one crit alert rule
// made of `rule` lines.
std::string kpi_toml(const std::string& id, const std::string& rule = "",
                     const std::string& owner = "payments") {
  return "[[kpi]]\nid = \"" + id + "\"\nname = \"Checkout latency\"\nowner = \"" + owner +
         "\"\nunit = \"ms\"\ndirection = \"lower_is_better\"\nstale_after = \"1h\"\n"
         "[kpi.value]\nselector = '" +
         id +
         "'\nover_time = \"last\"\nwindow = \"1h\"\n"
         "[kpi.band]\nwarn = 100\ncrit = 200\n"
         "[[kpi.alert]]\ncondition = \"crit\"\n" +
         rule;
}

std::string describe(const std::vector<ReceivedRequest>& requests) {
  std::ostringstream out;
  out << requests.size() << " request(s)";
  for (const auto& r : requests) {
    auto h = [&](const char* name) {
      auto it = r.headers.find(name);
      return it == r.headers.end() ? std::string("-") : it->second;
    };
    out << "\n  " << r.method << " " << r.target << " event=" << h("x-kpid-event")
        << " key=" << h("idempotency-key") << "\n    " << tail(r.body, 1500);
  }
  return out.str();
}

std::string header(const ReceivedRequest& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string() : it->second;
}

json::object body_of(const ReceivedRequest& r) {
  INFO("request body: " << tail(r.body, 2000));
  json::value v;
  REQUIRE_NOTHROW(v = json::parse(r.body));
  REQUIRE(v.is_object());
  return v.as_object();
}

// Checks one webhook delivery: headers agree with the body, the signature is right; returns the
// body.
json::object check_webhook(const ReceivedRequest& r, std::string_view event,
                           std::string_view target = "/hook") {
  INFO("webhook request: " << describe({r}));
  CHECK(r.method == "POST");
  CHECK(r.target == target);
  CHECK(contains(header(r, "content-type"), "application/json"));
  const json::object body = body_of(r);
  CHECK(json_str(body, "version") == "1");
  CHECK(json_str(body, "event") == event);
  CHECK(header(r, "x-kpid-event") == event);
  CHECK_FALSE(json_str(body, "idempotency_key").empty());
  CHECK(header(r, "idempotency-key") == json_str(body, "idempotency_key"));
  CHECK_FALSE(json_str(body, "created_at").empty());
  CHECK(header(r, "x-kpid-signature") == "sha256=" + hmac_hex(kSecret, r.body));
  REQUIRE(body.contains("alert"));
  REQUIRE(body.at("alert").is_object());
  return body;
}

// The only alert of `kpi`, once it is in `state`; REQUIREs it gets there within `timeout`.
json::object wait_alert(const Kpid& k, const std::string& kpi, const std::string& state,
                        std::chrono::milliseconds timeout = 5s) {
  json::array last;
  const bool ok = eventually(
      [&] {
        last = get_alerts(k, "kpi=" + kpi);
        return last.size() == 1 && json_str(last[0], "state") == state;
      },
      timeout, 25ms);
  INFO("waiting for the alert of " << kpi << " to be " << state << "; GET /api/v1/alerts?kpi="
                                   << kpi << ": " << json::serialize(last));
  REQUIRE(ok);
  return last[0].as_object();
}

double metric_or(const Kpid& k, std::string_view name,
                 const std::map<std::string, std::string>& labels, double fallback = -1) {
  return metric_value(k.metrics(), name, labels).value_or(fallback);
}

std::set<std::string> timeline_kinds(const json::object& detail) {
  std::set<std::string> kinds;
  if (const json::value* t = detail.if_contains("timeline"); t && t->is_array()) {
    for (const auto& e : t->as_array()) kinds.insert(json_str(e, "kind"));
  }
  return kinds;
}

HttpResponse ack(const Kpid& k, const std::string& id, std::string_view body) {
  return k.post("/api/v1/alerts/" + id + "/ack", body, {{"Content-Type", "application/json"}});
}

// Firing then resolved while the receiver is down (optionally restarting kpid in between),
// then the receiver comes back: each arrives once, in order, signed.
void down_then_up(bool restart) {
  RecordingReceiver hook;
  hook.stop();
  Kpid k({.config_toml = alerting_toml() + webhook_toml("hook", hook.url() + "/hook") +
                         kpi_toml("checkout_latency")});
  k.start();

  write_value_now(k, "checkout_latency", 250);
  const std::string id = json_str(wait_alert(k, "checkout_latency", "firing"), "id");
  write_value_now(k, "checkout_latency", 50);
  wait_alert(k, "checkout_latency", "resolved");

  auto depth_and_failures = [&] {
    const std::string m = k.metrics();
    const auto depth = metric_value(m, "kpid_outbox_depth", {{"receiver", "hook"}});
    const auto failures =
        metric_value(m, "kpid_outbox_delivery_failures_total", {{"receiver", "hook"}});
    return depth == 2.0 && failures.value_or(0) > 0;
  };
  {
    INFO("metrics:\n" << k.metrics());
    REQUIRE(eventually(depth_and_failures, 5s));
  }
  if (restart) {
    CHECK(k.stop() == 0);
    k.start();
    // The outbox survived: both notifications wait again, and fail again.
    INFO("metrics after the restart:\n" << k.metrics());
    REQUIRE(eventually(depth_and_failures, 5s));
  }
  CHECK(hook.requests().empty());

  hook.start();
  REQUIRE(hook.wait_for(2, 10s));
  std::this_thread::sleep_for(1500ms);  // no duplicate follows
  const auto requests = hook.requests();
  INFO(describe(requests));
  REQUIRE(requests.size() == 2);
  const json::object firing = check_webhook(requests[0], "alert.firing");
  const json::object resolved = check_webhook(requests[1], "alert.resolved");
  CHECK(json_str(firing, "idempotency_key") != json_str(resolved, "idempotency_key"));
  CHECK(json_str(firing, "source") == kExternalUrl);
  CHECK(json_str(firing.at("alert"), "id") == id);
  CHECK(json_str(firing.at("alert"), "state") == "firing");
  // Links name the alert by its episode (the same on HA replicas); the API takes either.
  const std::string episode = json_str(firing.at("alert"), "episode");
  CHECK(json_str(firing.at("alert"), "url") ==
        std::string(kExternalUrl) + "/api/v1/alerts/" + episode);
  CHECK(k.get("/api/v1/alerts/" + episode).status == 200);
  CHECK(json_str(resolved.at("alert"), "id") == id);
  CHECK(json_str(resolved.at("alert"), "state") == "resolved");

  CHECK(eventually(
      [&] {
        return metric_value(k.metrics(), "kpid_outbox_depth", {{"receiver", "hook"}}) == 0.0;
      },
      3s));
  CHECK(metric_or(k, "kpid_outbox_delivered_total", {{"receiver", "hook"}}) == 2);
  CHECK(metric_or(k, "kpid_outbox_delivery_latency_seconds_count", {{"receiver", "hook"}}) == 2);
  CHECK(metric_or(k, "kpid_outbox_expired_total", {{"receiver", "hook"}}) == 0);
  if (!restart) {
    CHECK(metric_or(k, "kpid_alert_notifications_total", {{"event", "alert.firing"}}) == 1);
    CHECK(metric_or(k, "kpid_alert_notifications_total", {{"event", "alert.resolved"}}) == 1);
  }
  CHECK(metric_or(k, "kpid_alerts", {{"state", "firing"}}) == 0);
  const json::object detail = get_alert_detail(k, id);
  INFO("alert detail: " << json::serialize(detail));
  const auto kinds = timeline_kinds(detail);
  for (const char* kind : {"firing", "queued", "failed", "delivered", "resolved"}) {
    INFO("timeline kind " << kind);
    CHECK(kinds.count(kind) == 1);
  }
}

}  // namespace

TEST_CASE("alerts: a webhook down during a breach gets firing then resolved once it is back",
          "[alert]") {
  down_then_up(false);
}

TEST_CASE("alerts: notifications queued for a down webhook survive a kpid restart", "[alert]") {
  down_then_up(true);
}

TEST_CASE("alerts: an HTTPS webhook trusted through ca_file gets a signed notification",
          "[alert]") {
  RecordingReceiver hook(ReceiverOptions{
      .tls = true, .cert_file = kTlsDir + "/receiver.crt", .key_file = kTlsDir + "/receiver.key"});
  REQUIRE(contains(hook.url(), "https://127.0.0.1:"));
  // The same receiver once more without ca_file: its self-signed certificate must be refused.
  Kpid k({.config_toml = alerting_toml() +
                         webhook_toml("hook", hook.url() + "/hook",
                                      "ca_file = \"" + kTlsDir + "/receiver.crt\"\n") +
                         webhook_toml("untrusted", hook.url() + "/untrusted") +
                         kpi_toml("checkout_latency")});
  k.start();
  write_value_now(k, "checkout_latency", 250);
  const std::string id = json_str(wait_alert(k, "checkout_latency", "firing"), "id");
  REQUIRE(hook.wait_for(1, 10s));
  {
    INFO("metrics:\n" << k.metrics());
    CHECK(eventually(
        [&] {
          return metric_or(k, "kpid_outbox_delivery_failures_total", {{"receiver", "untrusted"}},
                           0) >= 2;
        },
        5s));
  }
  const auto requests = hook.requests();
  INFO(describe(requests));
  REQUIRE(requests.size() == 1);
  const json::object body = check_webhook(requests[0], "alert.firing");
  CHECK(json_str(body.at("alert"), "id") == id);
  CHECK(metric_or(k, "kpid_outbox_depth", {{"receiver", "untrusted"}}) == 1);
  CHECK(metric_or(k, "kpid_outbox_delivered_total", {{"receiver", "untrusted"}}) == 0);
}

TEST_CASE("alerts: PagerDuty gets trigger, acknowledge and resolve with one dedup_key", "[alert]") {
  RecordingReceiver pd;
  pd.respond_with(202,
                  R"({"status":"success","message":"Event processed","dedup_key":"kpid-alert-1"})");
  Kpid k(
      {.config_toml =
           alerting_toml() + "[[receiver]]\nname = \"pd\"\ntype = \"pagerduty\"\nurl = \"" +
           pd.url() + "/v2/enqueue\"\nrouting_key = \"R0UTING\"\n" +
           kpi_toml("checkout_latency", "runbook_url = \"https://runbooks.example/checkout\"\n")});
  k.start();

  write_value_now(k, "checkout_latency", 250);
  const json::value firing = wait_alert(k, "checkout_latency", "firing");
  const std::string id = json_str(firing, "id");
  // The episode's key: the same from HA replicas (README "Shards and HA replicas").
  const std::string dedup = "kpid-" + json_str(firing, "episode");
  REQUIRE(json_str(firing, "episode").size() == 32);
  REQUIRE(pd.wait_for(1, 10s));
  {
    const auto requests = pd.requests();
    INFO(describe(requests));
    CHECK(requests[0].method == "POST");
    CHECK(requests[0].target == "/v2/enqueue");
    const json::object b = body_of(requests[0]);
    CHECK(json_str(b, "routing_key") == "R0UTING");
    CHECK(json_str(b, "event_action") == "trigger");
    CHECK(json_str(b, "dedup_key") == dedup);
    CHECK(json_str(b, "client") == "kpid");
    REQUIRE(b.contains("payload"));
    const json::value& p = b.at("payload");
    const std::string summary = json_str(p, "summary");
    CHECK_FALSE(summary.empty());
    CHECK(contains(summary, "Checkout latency"));
    CHECK(contains(summary, "250"));
    CHECK(contains(summary, "200"));
    CHECK(json_str(p, "source") == kExternalUrl);
    CHECK(json_str(p, "severity") == "critical");
    CHECK(json_str(p, "component") == "checkout_latency");
    CHECK(json_str(p, "group") == "payments");
    CHECK(json_str(p, "class") == "crit");
    CHECK_FALSE(json_str(p, "timestamp").empty());
    REQUIRE(p.as_object().contains("custom_details"));
    CHECK(p.at("custom_details").is_object());
    CHECK_FALSE(p.at("custom_details").as_object().empty());
    REQUIRE(b.contains("links"));
    REQUIRE(b.at("links").is_array());
    std::set<std::string> links;
    for (const auto& l : b.at("links").as_array()) links.insert(json_str(l, "href"));
    CHECK(links.count("https://runbooks.example/checkout") == 1);
    CHECK(links.count(std::string(kExternalUrl) + "/api/v1/alerts/" + dedup.substr(5)) == 1);
  }

  const HttpResponse acked = ack(k, id, R"({"author":"alice","comment":"on it"})");
  const json::value data = require_api_data(acked);
  CHECK(json_str(data.at("acknowledged"), "author") == "alice");
  CHECK(json_str(data.at("acknowledged"), "comment") == "on it");
  REQUIRE(pd.wait_for(2, 10s));
  {
    const auto requests = pd.requests();
    INFO(describe(requests));
    const json::object b = body_of(requests[1]);
    CHECK(json_str(b, "event_action") == "acknowledge");
    CHECK(json_str(b, "dedup_key") == dedup);
    CHECK(json_str(b, "routing_key") == "R0UTING");
  }

  write_value_now(k, "checkout_latency", 50);
  wait_alert(k, "checkout_latency", "resolved");
  REQUIRE(pd.wait_for(3, 10s));
  std::this_thread::sleep_for(1s);
  const auto requests = pd.requests();
  INFO(describe(requests));
  REQUIRE(requests.size() == 3);
  const json::object b = body_of(requests[2]);
  CHECK(json_str(b, "event_action") == "resolve");
  CHECK(json_str(b, "dedup_key") == dedup);
  CHECK(json_str(b, "routing_key") == "R0UTING");
  CHECK(metric_or(k, "kpid_outbox_depth", {{"receiver", "pd"}}) == 0);
}

TEST_CASE("alerts: a value flapping around crit within the hysteresis raises one alert",
          "[alert]") {
  RecordingReceiver hook;
  Kpid k({.config_toml = alerting_toml() + webhook_toml("hook", hook.url() + "/hook") +
                         kpi_toml("checkout_latency", "clear_for = \"2s\"\nhysteresis = 20\n")});
  k.start();

  const double values[] = {210, 195, 205, 190, 215, 185};
  for (int i = 0; i < 48; ++i) {
    write_value_now(k, "checkout_latency", values[i % 6]);
    std::this_thread::sleep_for(60ms);
  }
  const json::object alert = wait_alert(k, "checkout_latency", "firing");
  const std::string id = json_str(alert, "id");
  {
    // The last value, 185, is below crit but within the hysteresis: not even recovering.
    INFO("alert after the flapping: " << json::serialize(alert));
    CHECK(alert.at("recovering_since").is_null());
    const json::array all = get_alerts(k);
    INFO("GET /api/v1/alerts: " << json::serialize(all));
    CHECK(all.size() == 1);
  }
  REQUIRE(hook.wait_for(1, 10s));
  std::this_thread::sleep_for(500ms);
  {
    const auto requests = hook.requests();
    INFO(describe(requests));
    REQUIRE(requests.size() == 1);
    CHECK(json_str(check_webhook(requests[0], "alert.firing").at("alert"), "id") == id);
  }

  // Recovered beyond the hysteresis: resolved once clear_for has passed, not before.
  const auto recovered_at = Clock::now();
  write_value_now(k, "checkout_latency", 100);
  std::this_thread::sleep_for(1s);
  {
    const json::object a = wait_alert(k, "checkout_latency", "firing", 1s);
    INFO("alert one second into clear_for: " << json::serialize(a));
    CHECK_FALSE(a.at("recovering_since").is_null());
  }
  const json::object resolved = wait_alert(k, "checkout_latency", "resolved", 6s);
  CHECK(Clock::now() - recovered_at >= 1900ms);
  CHECK(json_str(resolved, "id") == id);
  REQUIRE(hook.wait_for(2, 10s));
  std::this_thread::sleep_for(1s);
  const auto requests = hook.requests();
  INFO(describe(requests));
  REQUIRE(requests.size() == 2);
  CHECK(json_str(check_webhook(requests[1], "alert.resolved").at("alert"), "id") == id);
  CHECK(get_alerts(k).size() == 1);
}

TEST_CASE("alerts: a firing alert survives a kpid restart without being announced again",
          "[alert]") {
  RecordingReceiver hook;
  Kpid k({.config_toml = alerting_toml() + webhook_toml("hook", hook.url() + "/hook") +
                         kpi_toml("checkout_latency")});
  k.start();
  write_value_now(k, "checkout_latency", 250);
  const json::object before = wait_alert(k, "checkout_latency", "firing");
  REQUIRE(hook.wait_for(1, 10s));

  CHECK(k.stop() == 0);
  k.start();
  // Still breaching: samples and (every 5 s) timer evaluations after the restart.
  const auto restarted = Clock::now();
  for (int i = 0; i < 6; ++i) {
    write_value_now(k, "checkout_latency", 240 + i);
    std::this_thread::sleep_for(500ms);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(6500) - (Clock::now() - restarted));

  const json::array all = get_alerts(k);
  INFO("GET /api/v1/alerts after the restart: " << json::serialize(all));
  REQUIRE(all.size() == 1);
  CHECK(json_str(all[0], "id") == json_str(before, "id"));
  CHECK(json_str(all[0], "state") == "firing");
  CHECK(json_str(all[0], "firing_since") == json_str(before, "firing_since"));
  CHECK(json_str(all[0], "pending_since") == json_str(before, "pending_since"));
  CHECK(all[0].at("notified") == true);
  {
    const auto requests = hook.requests();
    INFO(describe(requests));
    REQUIRE(requests.size() == 1);
    check_webhook(requests[0], "alert.firing");
  }

  write_value_now(k, "checkout_latency", 50);
  wait_alert(k, "checkout_latency", "resolved");
  REQUIRE(hook.wait_for(2, 10s));
  std::this_thread::sleep_for(1s);
  const auto requests = hook.requests();
  INFO(describe(requests));
  REQUIRE(requests.size() == 2);
  const json::object resolved = check_webhook(requests[1], "alert.resolved");
  CHECK(json_str(resolved.at("alert"), "id") == json_str(before, "id"));
  CHECK(json_str(resolved, "idempotency_key") != header(requests[0], "idempotency-key"));
}

TEST_CASE("alerts: receivers get only the severities and owners they route", "[alert]") {
  RecordingReceiver hooks;
  Kpid k({.config_toml =
              alerting_toml() +
              webhook_toml("critical_only", hooks.url() + "/critical",
                           "severities = [\"critical\"]\n") +
              webhook_toml("other_team", hooks.url() + "/other", "owners = [\"other-team\"]\n") +
              webhook_toml("warnings", hooks.url() + "/warnings", "severities = [\"warning\"]\n") +
              webhook_toml("everything", hooks.url() + "/everything") +
              kpi_toml("checkout_latency")});
  k.start();
  write_value_now(k, "checkout_latency", 250);
  const json::object alert = wait_alert(k, "checkout_latency", "firing");
  CHECK(json_str(alert, "severity") == "critical");
  CHECK(json_str(alert, "owner") == "payments");
  REQUIRE(hooks.wait_for(2, 10s));
  std::this_thread::sleep_for(1500ms);
  const auto requests = hooks.requests();
  INFO(describe(requests));
  REQUIRE(requests.size() == 2);
  std::set<std::string> targets;
  for (const auto& r : requests) {
    targets.insert(r.target);
    check_webhook(r, "alert.firing", r.target);
  }
  CHECK(targets == std::set<std::string>{"/critical", "/everything"});
  CHECK(metric_or(k, "kpid_alert_notifications_total", {{"event", "alert.firing"}}) == 2);
  for (const char* name : {"other_team", "warnings"}) {
    INFO("receiver " << name);
    CHECK(metric_or(k, "kpid_outbox_delivered_total", {{"receiver", name}}, 0) == 0);
    CHECK(metric_or(k, "kpid_outbox_depth", {{"receiver", name}}, 0) == 0);
  }
}

TEST_CASE("alerts: a silence holds back the firing notification until it is expired", "[alert]") {
  RecordingReceiver hook;
  Kpid k({.config_toml = alerting_toml() + webhook_toml("hook", hook.url() + "/hook") +
                         kpi_toml("checkout_latency")});
  k.start();
  const Headers json_type{{"Content-Type", "application/json"}};

  const json::value silence = require_api_data(
      k.post("/api/v1/silences",
             R"({"matchers":[{"name":"kpi","value":"checkout_latency","op":"="}],"duration":"1h",)"
             R"("author":"bob","comment":"maintenance"})",
             json_type));
  const std::string sid = json_str(silence, "id");
  REQUIRE_FALSE(sid.empty());
  CHECK(json_str(silence, "state") == "active");
  CHECK(json_str(silence, "author") == "bob");
  CHECK(json_str(silence, "comment") == "maintenance");
  CHECK_FALSE(json_str(silence, "starts_at").empty());
  CHECK_FALSE(json_str(silence, "ends_at").empty());
  // One that does not match (another owner, by regex) must not show up in silenced_by.
  const json::value other = require_api_data(
      k.post("/api/v1/silences",
             R"({"matchers":[{"name":"owner","value":"other.*","op":"=~"}],"duration":"1h",)"
             R"("author":"carol","comment":"other team"})",
             json_type));
  {
    const json::value list = require_api_data(k.get("/api/v1/silences"));
    INFO("GET /api/v1/silences: " << json::serialize(list));
    REQUIRE(list.is_array());
    CHECK(list.as_array().size() == 2);
  }

  write_value_now(k, "checkout_latency", 250);
  const json::object alert = wait_alert(k, "checkout_latency", "firing");
  const std::string id = json_str(alert, "id");
  INFO("alert: " << json::serialize(alert));
  CHECK(alert.at("silenced_by") == json::array{json::string(sid)});
  std::this_thread::sleep_for(2s);
  CHECK(hook.requests().empty());
  CHECK(metric_or(k, "kpid_alert_notifications_silenced_total", {}) >= 1);
  CHECK(timeline_kinds(get_alert_detail(k, id)).count("silenced") == 1);

  const json::value expired =
      require_api_data(http_request(k.http_port(), "DELETE", "/api/v1/silences/" + sid));
  CHECK(json_str(expired, "state") == "expired");
  CHECK(json_str(expired, "id") == sid);
  {
    const json::value list = require_api_data(k.get("/api/v1/silences"));
    INFO("GET /api/v1/silences: " << json::serialize(list));
    std::map<std::string, std::string> states;
    for (const auto& e : list.as_array()) states[json_str(e, "id")] = json_str(e, "state");
    CHECK(states ==
          std::map<std::string, std::string>{{sid, "expired"}, {json_str(other, "id"), "active"}});
  }

  // Announced late, once no silence matches.
  REQUIRE(hook.wait_for(1, 5s));
  std::this_thread::sleep_for(1s);
  const auto requests = hook.requests();
  INFO(describe(requests));
  REQUIRE(requests.size() == 1);
  const json::object body = check_webhook(requests[0], "alert.firing");
  CHECK(json_str(body.at("alert"), "id") == id);
  CHECK(body.at("alert").at("silenced_by") == json::array{});
  const json::object after = wait_alert(k, "checkout_latency", "firing");
  CHECK(after.at("silenced_by") == json::array{});
  CHECK(after.at("notified") == true);
}

TEST_CASE("alerts: the alert and silence API refuse bad requests", "[alert]") {
  RecordingReceiver hook;
  Kpid k({.config_toml = alerting_toml() + webhook_toml("hook", hook.url() + "/hook") +
                         kpi_toml("checkout_latency")});
  k.start();
  const Headers json_type{{"Content-Type", "application/json"}};

  SECTION("silences") {
    const HttpResponse bad_op = k.post(
        "/api/v1/silences",
        R"({"matchers":[{"name":"kpi","value":"x","op":"~~"}],"duration":"1h","author":"bob",)"
        R"("comment":"c"})",
        json_type);
    require_error(bad_op, 400, "bad_data");
    CHECK(contains(bad_op.body, "matchers[0].op"));
    const HttpResponse no_matchers =
        k.post("/api/v1/silences",
               R"({"matchers":[],"duration":"1h","author":"bob","comment":"c"})", json_type);
    require_error(no_matchers, 400, "bad_data");
    CHECK(contains(no_matchers.body, "matchers"));
    const HttpResponse no_end = k.post(
        "/api/v1/silences",
        R"({"matchers":[{"name":"kpi","value":"x"}],"author":"bob","comment":"c"})", json_type);
    require_error(no_end, 400, "bad_data");
    CHECK(contains(no_end.body, "ends_at"));
    require_error(http_request(k.http_port(), "DELETE", "/api/v1/silences/999"), 404, "not_found");
    // A silence that starts later is pending until then.
    const json::value later = require_api_data(
        k.post("/api/v1/silences",
               R"({"matchers":[{"name":"kpi","value":"checkout_latency"}],"starts_at":")" +
                   fmt_rfc3339(now_ms() + 3'600'000) +
                   R"(","duration":"1h","author":"bob","comment":"tomorrow's maintenance"})",
               json_type));
    CHECK(json_str(later, "state") == "pending");
    write_value_now(k, "checkout_latency", 250);
    const json::object a = wait_alert(k, "checkout_latency", "firing");
    CHECK(a.at("silenced_by") == json::array{});
    REQUIRE(hook.wait_for(1, 10s));
  }
  SECTION("acknowledgements") {
    require_error(ack(k, "999", R"({"author":"alice"})"), 404, "not_found");
    write_value_now(k, "checkout_latency", 250);
    const std::string id = json_str(wait_alert(k, "checkout_latency", "firing"), "id");
    const HttpResponse no_author = ack(k, id, R"({"comment":"who am I"})");
    require_error(no_author, 400, "bad_data");
    CHECK(contains(no_author.body, "author"));
    require_api_data(ack(k, id, R"({"author":"alice","comment":"on it"})"));
    require_error(ack(k, id, R"({"author":"bob"})"), 409, "conflict");
    const json::object a = wait_alert(k, "checkout_latency", "firing");
    CHECK(json_str(a.at("acknowledged"), "author") == "alice");
    CHECK(timeline_kinds(get_alert_detail(k, id)).count("acknowledged") == 1);
    // Webhooks hear of the acknowledgement too.
    REQUIRE(hook.wait_for(2, 10s));
    const auto requests = hook.requests();
    INFO(describe(requests));
    check_webhook(requests[0], "alert.firing");
    const json::object acked = check_webhook(requests[1], "alert.acknowledged");
    CHECK(json_str(acked.at("alert").at("acknowledged"), "author") == "alice");
    const json::value only_acked =
        require_api_data(k.get("/api/v1/alerts?acknowledged=true&silenced=false"));
    REQUIRE(only_acked.as_array().size() == 1);
    CHECK(json_str(only_acked.as_array()[0], "id") == id);
    CHECK(require_api_data(k.get("/api/v1/alerts?acknowledged=false")).as_array().empty());
    const HttpResponse bad_filter = k.get("/api/v1/alerts?acknowledged=maybe");
    require_error(bad_filter, 400, "bad_data");
    CHECK(contains(bad_filter.body, "acknowledged"));

    write_value_now(k, "checkout_latency", 50);
    wait_alert(k, "checkout_latency", "resolved");
    require_error(ack(k, id, R"({"author":"carol"})"), 409, "conflict");
    require_error(k.get("/api/v1/alerts/999"), 404, "not_found");
    require_error(k.get("/api/v1/alerts?state=sideways"), 400, "bad_data");
  }
}

TEST_CASE("alerts: with for an alert is pending first, and a short breach sends nothing",
          "[alert]") {
  RecordingReceiver hook;
  Kpid k({.config_toml = alerting_toml() + webhook_toml("hook", hook.url() + "/hook") +
                         kpi_toml("slow_a", "for = \"2s\"\n") +
                         kpi_toml("slow_b", "for = \"2s\"\n")});
  k.start();

  // A breach that lasts: pending, then firing after `for`.
  const auto breached = Clock::now();
  write_value_now(k, "slow_a", 250);
  const json::object pending = wait_alert(k, "slow_a", "pending", 2s);
  CHECK(pending.at("firing_since").is_null());
  CHECK_FALSE(json_str(pending, "pending_since").empty());
  CHECK(metric_or(k, "kpid_alerts", {{"state", "pending"}}) == 1);

  // A breach that ends within `for`: cancelled, nothing kept, nothing sent.
  write_value_now(k, "slow_b", 250);
  const std::string b_id = json_str(wait_alert(k, "slow_b", "pending", 2s), "id");
  std::this_thread::sleep_for(300ms);
  write_value_now(k, "slow_b", 50);
  REQUIRE(eventually([&] { return get_alerts(k, "kpi=slow_b").empty(); }, 3s));

  CHECK(json_str(wait_alert(k, "slow_a", "pending", 1s), "state") == "pending");
  CHECK(hook.requests().empty());
  const json::object firing = wait_alert(k, "slow_a", "firing", 5s);
  CHECK(Clock::now() - breached >= 1900ms);
  CHECK(json_str(firing, "pending_since") == json_str(pending, "pending_since"));
  REQUIRE(hook.wait_for(1, 10s));

  std::this_thread::sleep_for(2500ms);  // well past slow_b's `for`
  CHECK(get_alerts(k, "kpi=slow_b").empty());
  require_error(k.get("/api/v1/alerts/" + b_id), 404, "not_found");
  const auto requests = hook.requests();
  INFO(describe(requests));
  REQUIRE(requests.size() == 1);
  CHECK(json_str(check_webhook(requests[0], "alert.firing").at("alert"), "kpi") == "slow_a");
  CHECK(metric_or(k, "kpid_alerts", {{"state", "pending"}}) == 0);
  CHECK(metric_or(k, "kpid_alerts", {{"state", "firing"}}) == 1);
}

TEST_CASE("alerts: --check-config names file, line and key of alerting errors", "[alert]") {
  TempDir dir;
  const std::string file = dir.file("kpid.toml");
  write_file(file,
             "[[receiver]]\n"                                     // 1
             "name = \"pd\"\n"                                    // 2
             "type = \"pagerduty\"\n"                             // 3
             "url = \"http://127.0.0.1:9/\"\n"                    // 4
             "[[receiver]]\n"                                     // 5
             "name = \"hook\"\n"                                  // 6
             "type = \"webhook\"\n"                               // 7
             "[[kpi]]\n"                                          // 8
             "id = \"lat\"\n"                                     // 9
             "direction = \"lower_is_better\"\n"                  // 10
             "[kpi.value]\n"                                      // 11
             "selector = 'lat'\n"                                 // 12
             "over_time = \"last\"\n"                             // 13
             "window = \"5m\"\n"                                  // 14
             "[kpi.band]\n"                                       // 15
             "warn = 100\n"                                       // 16
             "crit = 200\n"                                       // 17
             "[[kpi.alert]]\n"                                    // 18
             "condition = \"crit\"\n"                             // 19
             "annotations = { summary = \"{{nope}} is bad\" }\n"  // 20
             "[[kpi]]\n"                                          // 21
             "id = \"lat2\"\n"                                    // 22
             "direction = \"lower_is_better\"\n"                  // 23
             "[kpi.value]\n"                                      // 24
             "selector = 'lat2'\n"                                // 25
             "over_time = \"last\"\n"                             // 26
             "window = \"5m\"\n"                                  // 27
             "[kpi.band]\n"                                       // 28
             "warn = 100\n"                                       // 29
             "crit = 200\n"                                       // 30
             "[[kpi.alert]]\n"                                    // 31
             "condition = \"sideways\"\n");                       // 32
  const CommandResult r = run_command(
      {kKpidBinary, "--config", file, "--check-config", "--data-dir", dir.file("d")}, {}, 15s);
  INFO("exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 1);
  // "FILE:LINE:COL: KEY: message"
  auto has = [&](int line, const std::string& key_pattern) {
    const std::regex re("(^|\n)" +
                        std::regex_replace(file, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                        ":" + std::to_string(line) + ":[0-9]+: " + key_pattern + ": [^\n]+");
    return std::regex_search(r.err, re);
  };
  CHECK(has(20, R"(kpi\.lat\.alert\.crit\.annotations\.summary)"));
  CHECK(contains(r.err, "nope"));
  CHECK(has(32, R"(kpi\.lat2\.alert(\[0\]|\.sideways)?\.condition)"));
  CHECK(contains(r.err, "sideways"));
  CHECK((has(1, R"(receiver\.pd\.routing_key)") || has(2, R"(receiver\.pd\.routing_key)")));
  CHECK((has(5, R"(receiver\.hook\.url)") || has(6, R"(receiver\.hook\.url)")));
}

TEST_CASE("alerts: --check-config counts the rules and receivers of the shipped example",
          "[alert]") {
  const std::string file = std::string(KPID_TEST_DATA_DIR) + "/../../config/alerting.example.toml";
  TempDir dir;
  auto r = run_command(
      {kKpidBinary, "--config", file, "--check-config", "--data-dir", dir.file("d")}, {}, 15s);
  INFO("exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "(5 KPIs, 4 alert rules, 3 receivers"));
}

TEST_CASE("alerts: SIGHUP applies changed rules and a removed rule resolves its alert", "[alert]") {
  RecordingReceiver hook;
  const std::string head = alerting_toml() + webhook_toml("hook", hook.url() + "/hook");
  Kpid k({.config_toml = head + kpi_toml("checkout_latency")});
  k.start();
  write_value_now(k, "checkout_latency", 250);
  const std::string first = json_str(wait_alert(k, "checkout_latency", "firing"), "id");
  REQUIRE(hook.wait_for(1, 10s));

  // The crit rule goes, a warn rule with a label comes.
  std::string without_crit = kpi_toml("checkout_latency");
  without_crit.replace(without_crit.find("condition = \"crit\""), 18,
                       "condition = \"warn\"\nlabels = { via = \"reload\" }");
  k.write_config(head + without_crit);
  k.send_signal(SIGHUP);
  REQUIRE(eventually([&] { return contains(k.log(), "reload: 1 KPIs, 1 alert rules"); }, 5s));
  REQUIRE(hook.wait_for(3, 10s));  // the crit alert's resolution, the warn alert's firing
  const json::object crit = get_alert_detail(k, first);
  CHECK(json_str(crit, "state") == "resolved");
  std::map<std::string, std::string> events;  // event -> alert id
  for (const auto& r : hook.requests()) {
    const json::object body = check_webhook(r, header(r, "x-kpid-event"));
    events[json_str(body, "event") + "/" + json_str(body.at("alert"), "condition")] =
        json_str(body.at("alert"), "id");
  }
  CHECK(events["alert.firing/crit"] == first);
  CHECK(events["alert.resolved/crit"] == first);
  REQUIRE(events.count("alert.firing/warn") == 1);
  const json::object warn = get_alert_detail(k, events["alert.firing/warn"]);
  CHECK(json_str(warn, "state") == "firing");
  CHECK(json_str(warn.at("labels"), "via") == "reload");
}
