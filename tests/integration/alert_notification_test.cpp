// What an alert says about its notification, and no_data alerts on a fresh install, on the real
// binary: an alert no receiver routes reports notified false and notification no_receiver; a
// KPI that never had data raises no no_data alert, one whose data stopped does (also after a
// restart in between).
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"
#include "support/recording_receiver.h"

using namespace kpid_it;
namespace json = boost::json;
using kpid::testing::RecordingReceiver;

namespace {

// A latency KPI (warn 100, crit 200) over series `id`, stale after `stale_after`, and `rules`.
std::string latency_kpi(const std::string& id, const std::string& stale_after,
                        const std::string& rules) {
  return "[[kpi]]\nid = \"" + id +
         "\"\nowner = \"payments\"\nunit = \"ms\"\ndirection = \"lower_is_better\"\n"
         "stale_after = \"" +
         stale_after + "\"\n[kpi.value]\nselector = '" + id +
         "'\nover_time = \"last\"\nwindow = \"1h\"\n[kpi.band]\nwarn = 100\ncrit = 200\n" + rules;
}

json::object kpi_of(const Kpid& k, const std::string& id) {
  return require_api_data(k.get("/api/v1/kpis/" + id)).as_object();
}

// The only alert of `kpi` once it is in `state`, within 10 s.
json::object wait_alert(const Kpid& k, const std::string& kpi, const std::string& state) {
  json::array last;
  const bool ok = eventually(
      [&] {
        last = get_alerts(k, "kpi=" + kpi);
        return last.size() == 1 && json_str(last[0], "state") == state;
      },
      10s, 50ms);
  INFO("alerts of " << kpi << ": " << json::serialize(last));
  REQUIRE(ok);
  return last[0].as_object();
}

}  // namespace

TEST_CASE(
    "alerts: notified is true only once a receiver accepted it and an unrouted alert says "
    "no_receiver",
    "[alert]") {
  RecordingReceiver hook;
  // The webhook takes critical alerts only: lat's crit alert reaches it, its warn alert none.
  Kpid k({.config_toml =
              "[alerting]\nretry_initial = \"50ms\"\n[[receiver]]\nname = \"hook\"\n"
              "type = \"webhook\"\nurl = \"" +
              hook.url() + "/hook\"\nseverities = [\"critical\"]\n" +
              latency_kpi("lat", "1h",
                          "[[kpi.alert]]\ncondition = \"crit\"\n"
                          "[[kpi.alert]]\ncondition = \"warn\"\nseverity = \"warning\"\n")});
  k.start();
  write_value_now(k, "lat", 250);
  REQUIRE(hook.wait_for(1, 10s));
  json::array alerts;
  REQUIRE(eventually(
      [&] {
        alerts = get_alerts(k, "kpi=lat&state=firing");
        if (alerts.size() != 2) return false;
        for (const auto& a : alerts) {
          if (json_str(a, "condition") == "crit" && a.at("notified") != true) return false;
        }
        return true;
      },
      10s, 50ms));
  INFO(json::serialize(alerts));
  for (const auto& a : alerts) {
    if (json_str(a, "condition") == "crit") {
      CHECK(a.at("notified") == true);
      CHECK(json_str(a, "notification") == "delivered");
    } else {
      CHECK(a.at("notified") == false);
      CHECK(json_str(a, "notification") == "no_receiver");
    }
  }
  const auto detail = get_alert_detail(
      k, json_str(json_str(alerts[0], "condition") == "warn" ? alerts[0] : alerts[1], "id"));
  CHECK(contains(json::serialize(detail.at("timeline")), "no receiver routes it"));
}

TEST_CASE("alerts: no_data pages only about a KPI that has had data, also across a restart",
          "[alert][kpi]") {
  const std::string no_data_rule = "[[kpi.alert]]\ncondition = \"no_data\"\n";
  Kpid k({.config_toml = latency_kpi("fresh", "2s", no_data_rule) +
                         latency_kpi("stopped", "2s", no_data_rule)});
  k.start();
  // Nothing was ever sent: both show no_data, neither alerts.
  std::this_thread::sleep_for(3s);
  CHECK(json_str(kpi_of(k, "fresh"), "status") == "no_data");
  CHECK(kpi_of(k, "fresh").at("first_sample").is_null());
  CHECK(get_alerts(k).empty());

  // One sample for `stopped`, then a restart: its first sample is remembered, and once the
  // sample is stale its no_data alert fires; `fresh` still raises none.
  write_value_now(k, "stopped", 50);
  REQUIRE(eventually([&] { return !kpi_of(k, "stopped").at("first_sample").is_null(); }, 5s));
  CHECK(k.stop() == 0);
  k.start();
  CHECK_FALSE(kpi_of(k, "stopped").at("first_sample").is_null());
  wait_alert(k, "stopped", "firing");
  CHECK(get_alerts(k, "kpi=fresh").empty());
}
