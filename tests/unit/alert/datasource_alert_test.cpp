// Alerts and data sources: an unknown KPI evaluation (its source failed) holds the KPI's alerts,
// and a source's failure raises one datasource_down alert after down_for.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "alert/alert_rig.h"
#include "kpid/alert/alerter.h"

using namespace kpid;
using namespace kpid::alert;
using namespace kpid::alert::test_rig;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

kpi::SourceObservation source(bool up, TimestampMs failing_since = 0) {
  kpi::SourceObservation o;
  o.name = "vm";
  o.up = up;
  o.failing_since = up ? 0 : failing_since;
  if (!up) o.error = "POST http://127.0.0.1:1: connect failed: Connection refused";
  return o;
}

const std::string kSource = R"toml(
[[datasource]]
name = "vm"
url = "http://127.0.0.1:1"
down_for = "30s"
)toml";

}  // namespace

TEST_CASE("alerter: an unknown evaluation holds a firing alert without resolving or repeating") {
  Rig rig;
  rig.evaluate(250, Health::kCrit);
  rig.at(kStart + kMinute);
  rig.tick();
  REQUIRE(rig.alerts("firing").size() == 1);
  // Notifications to people (Alertmanager gets lease renewals, which keep the alert alive there).
  auto announced = [&] { return rig.transport.to("hook").size() + rig.transport.to("pd").size(); };
  const size_t sent = announced();
  REQUIRE(sent == 2);

  // The source fails for longer than repeat_interval (10m): nothing resolves, nothing repeats.
  for (int m = 2; m <= 15; ++m) {
    rig.at(kStart + m * kMinute);
    rig.evaluate(kNaN, Health::kUnknown);
    rig.tick();
  }
  CHECK(rig.alerts("firing").size() == 1);
  CHECK(announced() == sent);

  // Back, and still breaching: it goes on firing, never announced as firing again; only the
  // repeat that came due meanwhile is sent now.
  rig.at(kStart + 16 * kMinute);
  rig.evaluate(250, Health::kCrit);
  CHECK(rig.alerts("firing").size() == 1);
  for (const auto& to : {rig.transport.to("hook"), rig.transport.to("pd")}) {
    for (size_t i = 1; i < to.size(); ++i) CHECK(to[i].event() != "alert.firing");
  }
  CHECK(rig.transport.to("hook").back().event() == "alert.repeat");

  // An unknown KPI does not start an alert either.
  rig.evaluate(50, Health::kOk);
  rig.at(kStart + 17 * kMinute);
  rig.tick();
  REQUIRE(rig.alerts("firing").empty());
  rig.evaluate(kNaN, Health::kUnknown);
  CHECK(rig.alerts("pending").empty());
}

TEST_CASE("alerter: datasource_down fires after down_for and resolves at the first success") {
  Rig rig(kConfig + kSource);
  rig.alerter->source_evaluated(source(false, kStart));
  rig.tick();
  auto pending = rig.alerts("pending");
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].alert.labels.at("alertname") == "datasource_down");
  CHECK(rig.transport.sent.empty());

  rig.at(kStart + 30 * kSecond);
  rig.tick();  // down_for ran out between rounds
  auto firing = rig.alerts("firing");
  REQUIRE(firing.size() == 1);
  const Alert& a = firing[0].alert;
  CHECK(a.labels.at("datasource") == "vm");
  CHECK(a.labels.at("severity") == "critical");
  CHECK_FALSE(a.labels.contains("kpi"));
  CHECK(a.kpi == "datasource:vm");
  CHECK(a.annotations.at("summary").find("data source vm has been failing since") == 0);
  CHECK(a.annotations.at("description").find("Connection refused") != std::string::npos);
  auto hook = rig.transport.to("hook");
  REQUIRE(hook.size() == 1);
  CHECK(hook[0].event() == "alert.firing");

  // More failed rounds: still the one alert.
  rig.at(kStart + 40 * kSecond);
  rig.alerter->source_evaluated(source(false, kStart));
  rig.tick();
  CHECK(rig.transport.to("hook").size() == 1);

  rig.at(kStart + 50 * kSecond);
  rig.alerter->source_evaluated(source(true));
  rig.tick();
  CHECK(rig.alerts("firing").empty());
  hook = rig.transport.to("hook");
  REQUIRE(hook.size() == 2);
  CHECK(hook[1].event() == "alert.resolved");
}
