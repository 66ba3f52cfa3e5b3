// kpid alerts in a real Alertmanager (Debian's prometheus-alertmanager) on loopback: a breach
// becomes a firing alert there with kpid's labels, annotations, generatorURL and a lease
// (endsAt) that kpid keeps renewing; recovery resolves it; a kpid silence keeps it out of
// Alertmanager. Alertmanager's own notifications go to a RecordingReceiver webhook.

#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"
#include "support/recording_receiver.h"

using namespace kpid_it;
namespace json = boost::json;
using kpid::testing::ReceivedRequest;
using kpid::testing::RecordingReceiver;

namespace {

constexpr const char* kAlertmanagerBinary = ALERTMANAGER_BINARY;

// An Alertmanager on a free loopback port, clustering off, routing every alert at once to
// `webhook_url` (with resolved notifications).
class Alertmanager {
 public:
  explicit Alertmanager(const std::string& webhook_url) : port_(free_port()) {
    write_file(dir_.file("am.yml"),
               "route:\n"
               "  receiver: hook\n"
               "  group_by: ['alertname', 'kpi']\n"
               "  group_wait: 0s\n"
               "  group_interval: 1s\n"
               "  repeat_interval: 1h\n"
               "receivers:\n"
               "  - name: hook\n"
               "    webhook_configs:\n"
               "      - url: '" +
                   webhook_url +
                   "'\n"
                   "        send_resolved: true\n");
    std::filesystem::create_directories(dir_.file("am-data"));
    process_ = std::make_unique<BackgroundProcess>(
        "alertmanager",
        std::vector<std::string>{kAlertmanagerBinary, "--config.file=" + dir_.file("am.yml"),
                                 "--storage.path=" + dir_.file("am-data"),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                 "--cluster.listen-address=", "--log.level=debug"},
        dir_.file("alertmanager.log"));
    std::string why;
    const bool ready = eventually(
        [&] {
          if (!process_->running()) {
            why = "alertmanager exited with status " +
                  std::to_string(process_->exit_status().value_or(-1));
            return true;
          }
          try {
            const int st = http_request(port_, "GET", "/-/ready", {}, {}, 2s).status;
            why = "GET /-/ready returned " + std::to_string(st);
            return st == 200;
          } catch (const std::exception& e) {
            why = e.what();
            return false;
          }
        },
        20s, 50ms);
    INFO("alertmanager start: " << why << "\nlog:\n" << tail(process_->log(), 4000));
    REQUIRE(ready);
    REQUIRE(process_->running());
  }

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // GET /api/v2/alerts (active, silenced, inhibited and unprocessed ones, as by default).
  json::array alerts() const {
    const HttpResponse r = http_request(port_, "GET", "/api/v2/alerts", {}, {}, 5s);
    INFO("alertmanager GET /api/v2/alerts -> " << r.status << " " << tail(r.body, 3000));
    REQUIRE(r.status == 200);
    json::value v;
    REQUIRE_NOTHROW(v = r.json());
    REQUIRE(v.is_array());
    return v.as_array();
  }

  // The alerts named `alertname`.
  json::array alerts_named(const std::string& alertname) const {
    json::array out;
    for (const auto& a : alerts()) {
      if (json_str(a.at("labels"), "alertname") == alertname) out.push_back(a);
    }
    return out;
  }

 private:
  TempDir dir_;
  uint16_t port_;
  std::unique_ptr<BackgroundProcess> process_;
};

std::string kpi_toml(const std::string& id, const std::string& alertname) {
  return "[[kpi]]\nid = \"" + id +
         "\"\nname = \"Checkout latency\"\nowner = \"payments\"\n"
         "unit = \"ms\"\ndirection = \"lower_is_better\"\nstale_after = \"1h\"\n"
         "[kpi.value]\nselector = '" +
         id +
         "'\nover_time = \"last\"\nwindow = \"1h\"\n"
         "[kpi.band]\nwarn = 100\ncrit = 200\n"
         "[[kpi.alert]]\ncondition = \"crit\"\nname = \"" +
         alertname +
         "\"\n"
         "runbook_url = \"https://runbooks.example/checkout\"\n"
         "labels = { team = \"{{owner}}\" }\n"
         "annotations = { dashboard = \"https://dash/{{kpi}}\" }\n";
}

std::string receiver_toml(const Alertmanager& am, const std::string& extra = "") {
  return "[alerting]\nretry_initial = \"50ms\"\nretry_max = \"500ms\"\n"
         "[[receiver]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"" +
         am.url() + "\"\n" + extra;
}

std::string describe(const std::vector<ReceivedRequest>& requests) {
  std::ostringstream out;
  out << requests.size() << " request(s) from alertmanager";
  for (const auto& r : requests)
    out << "\n  " << r.method << " " << r.target << " " << tail(r.body, 1500);
  return out.str();
}

// Alertmanager webhook payloads ({"status": ..., "alerts": [...]}) that carry `alertname`, with
// that status.
size_t count_notifications(const RecordingReceiver& hook, const std::string& alertname,
                           const std::string& status) {
  size_t n = 0;
  for (const auto& r : hook.requests()) {
    json::value v;
    try {
      v = json::parse(r.body);
    } catch (const std::exception&) {
      continue;
    }
    if (json_str(v, "status") != status || !v.as_object().contains("alerts")) continue;
    for (const auto& a : v.at("alerts").as_array()) {
      if (json_str(a.at("labels"), "alertname") == alertname && json_str(a, "status") == status) {
        ++n;
      }
    }
  }
  return n;
}

// "YYYY-MM-DDTHH:MM:SS" of an RFC 3339 UTC time: comparable as text.
std::string to_second(const std::string& rfc3339) { return rfc3339.substr(0, 19); }

}  // namespace

TEST_CASE("alertmanager: a breach fires in a real Alertmanager and its recovery resolves it",
          "[alertmanager]") {
  RecordingReceiver hook;
  Alertmanager am(hook.url() + "/am");
  // A fixed port, so the default external_url (http://<http.listen>) is reachable.
  const uint16_t kpid_port = free_port();
  Kpid k({.config_toml = receiver_toml(am) + kpi_toml("checkout_latency", "CheckoutSlow"),
          .extra_args = {"--http-listen", "127.0.0.1:" + std::to_string(kpid_port)},
          .pass_http_listen = false});
  k.start();
  REQUIRE(k.http_port() == kpid_port);

  write_value_now(k, "checkout_latency", 250);
  json::array last;
  const bool firing = eventually(
      [&] {
        last = get_alerts(k, "kpi=checkout_latency&state=firing");
        return last.size() == 1;
      },
      5s);
  INFO("kpid alerts: " << json::serialize(last));
  REQUIRE(firing);
  const std::string id = json_str(last[0], "id");

  json::array in_am;
  REQUIRE(eventually(
      [&] {
        in_am = am.alerts_named("CheckoutSlow");
        return in_am.size() == 1;
      },
      10s, 100ms));
  {
    const json::value& a = in_am[0];
    INFO("alert in Alertmanager: " << json::serialize(a));
    const json::value& labels = a.at("labels");
    CHECK(json_str(labels, "alertname") == "CheckoutSlow");
    CHECK(json_str(labels, "kpi") == "checkout_latency");
    CHECK(json_str(labels, "severity") == "critical");
    CHECK(json_str(labels, "owner") == "payments");
    CHECK(json_str(labels, "condition") == "crit");
    CHECK(json_str(labels, "team") == "payments");
    const json::value& annotations = a.at("annotations");
    const std::string summary = json_str(annotations, "summary");
    CHECK(contains(summary, "250"));
    CHECK(contains(summary, "Checkout latency"));
    CHECK(json_str(annotations, "runbook_url") == "https://runbooks.example/checkout");
    CHECK(json_str(annotations, "dashboard") == "https://dash/checkout_latency");
    CHECK(json_str(a, "generatorURL") == "http://127.0.0.1:" + std::to_string(kpid_port) +
                                             "/api/v1/alerts/" + json_str(last[0], "episode"));
    // A lease: it ends in the future unless kpid renews it.
    const std::string now = fmt_rfc3339(now_ms());
    CHECK(to_second(json_str(a, "endsAt")) > to_second(now));
    CHECK(json_str(a.at("status"), "state") == "active");
    // The generator URL leads back to the alert in kpid.
    CHECK(json_str(get_alert_detail(k, id), "state") == "firing");
  }
  {
    INFO(describe(hook.requests()));
    REQUIRE(eventually([&] { return count_notifications(hook, "CheckoutSlow", "firing") >= 1; },
                       10s, 50ms));
  }

  write_value_now(k, "checkout_latency", 50);
  REQUIRE(eventually(
      [&] { return get_alerts(k, "kpi=checkout_latency&state=resolved").size() == 1; }, 5s));
  {
    INFO(describe(hook.requests()));
    CHECK(eventually([&] { return count_notifications(hook, "CheckoutSlow", "resolved") >= 1; },
                     10s, 50ms));
  }
  in_am = am.alerts_named("CheckoutSlow");
  INFO("Alertmanager alerts after the recovery: " << json::serialize(in_am));
  CHECK(in_am.empty());
  CHECK(metric_value(k.metrics(), "kpid_outbox_depth", {{"receiver", "am"}}) == 0.0);
}

TEST_CASE("alertmanager: an alert silenced in kpid never reaches Alertmanager", "[alertmanager]") {
  RecordingReceiver hook;
  Alertmanager am(hook.url() + "/am");
  Kpid k({.config_toml = receiver_toml(am) + kpi_toml("checkout_latency", "CheckoutSlow") +
                         kpi_toml("search_latency", "SearchSlow")});
  k.start();

  const json::value silence = require_api_data(
      k.post("/api/v1/silences",
             R"({"matchers":[{"name":"kpi","value":"checkout_latency","op":"="}],"duration":"1h",)"
             R"("author":"bob","comment":"maintenance"})",
             {{"Content-Type", "application/json"}}));
  const std::string sid = json_str(silence, "id");
  REQUIRE_FALSE(sid.empty());

  // Both breach; only the unsilenced one is delivered.
  write_value_now(k, "checkout_latency", 250);
  write_value_now(k, "search_latency", 250);
  json::array last;
  REQUIRE(eventually(
      [&] {
        last = get_alerts(k, "state=firing");
        return last.size() == 2;
      },
      5s));
  for (const auto& a : last) {
    INFO("kpid alert: " << json::serialize(a));
    if (json_str(a, "kpi") == "checkout_latency") {
      CHECK(a.at("silenced_by") == json::array{json::string(sid)});
    } else {
      CHECK(a.at("silenced_by") == json::array{});
    }
  }
  REQUIRE(eventually([&] { return am.alerts_named("SearchSlow").size() == 1; }, 10s, 100ms));
  const auto until = Clock::now() + 3s;
  while (Clock::now() < until) {
    const json::array silenced = am.alerts_named("CheckoutSlow");
    INFO("CheckoutSlow in Alertmanager: " << json::serialize(silenced));
    REQUIRE(silenced.empty());
    std::this_thread::sleep_for(200ms);
  }
  CHECK(count_notifications(hook, "CheckoutSlow", "firing") == 0);
  const json::array still = get_alerts(k, "kpi=checkout_latency");
  REQUIRE(still.size() == 1);
  CHECK(json_str(still[0], "state") == "firing");
  CHECK(still[0].at("notified") == false);
}

TEST_CASE("alertmanager: kpid keeps renewing the lease of a firing alert", "[alertmanager]") {
  RecordingReceiver hook;
  Alertmanager am(hook.url() + "/am");
  Kpid k({.config_toml = receiver_toml(am, "resend_interval = \"1s\"\n") +
                         kpi_toml("checkout_latency", "CheckoutSlow")});
  k.start();
  write_value_now(k, "checkout_latency", 250);
  json::array in_am;
  REQUIRE(eventually(
      [&] {
        in_am = am.alerts_named("CheckoutSlow");
        return in_am.size() == 1;
      },
      10s, 100ms));
  const std::string first_end = json_str(in_am[0], "endsAt");
  const std::string starts = json_str(in_am[0], "startsAt");
  INFO("first endsAt " << first_end << ", startsAt " << starts);
  // endsAt = now + 4 * resend_interval: a few seconds ahead, not minutes.
  CHECK(to_second(first_end) <= to_second(fmt_rfc3339(now_ms() + 10'000)));

  std::string later_end;
  const bool renewed = eventually(
      [&] {
        const json::array a = am.alerts_named("CheckoutSlow");
        if (a.size() != 1) return false;
        later_end = json_str(a[0], "endsAt");
        return to_second(later_end) >= to_second(fmt_rfc3339(now_ms())) &&
               to_second(later_end) > to_second(first_end);
      },
      6s, 200ms);
  INFO("later endsAt " << later_end);
  CHECK(renewed);
  // Still the same alert (same start), still active well past the first lease's end.
  std::this_thread::sleep_for(5s);
  in_am = am.alerts_named("CheckoutSlow");
  INFO("after 5 s: " << json::serialize(in_am));
  REQUIRE(in_am.size() == 1);
  CHECK(json_str(in_am[0], "startsAt") == starts);
  CHECK(json_str(in_am[0].at("status"), "state") == "active");
  CHECK(to_second(json_str(in_am[0], "endsAt")) > to_second(fmt_rfc3339(now_ms())));
  CHECK(count_notifications(hook, "CheckoutSlow", "resolved") == 0);
}
