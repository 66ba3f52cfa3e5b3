// Write, then apply, in the alerting layer: a state change whose write fails leaves memory and
// the store as they were and returns unavailable; once writes work again it happens. Also what
// an alert reports about its notification (notified, notification).
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include <boost/json.hpp>

#include "alert/alert_rig.h"

using namespace kpid;
using namespace kpid::alert;
using namespace kpid::alert::test_rig;

namespace {

double write_failures(Rig& rig, const std::string& module) {
  return metric(rig.metrics.scrape(), "kpid_state_write_failures_total{module=\"" + module + "\"}");
}

// Every key under `prefix` in the real store.
size_t stored(Rig& rig, const std::string& prefix) {
  size_t n = 0;
  REQUIRE(rig.store
              ->scan_state(prefix,
                           [&](std::string_view, std::string_view) {
                             ++n;
                             return true;
                           })
              .is_ok());
  return n;
}

// Fires the crit alert of kConfig (pending at kStart, firing a minute later) and delivers it.
std::string fire(Rig& rig) {
  rig.evaluate(250, Health::kCrit);
  rig.at(kStart + kMinute);
  rig.tick();
  auto firing = rig.alerts("firing");
  REQUIRE(firing.size() == 1);
  return firing[0].alert.id;
}

}  // namespace

TEST_CASE("write then apply: an alert transition whose write fails does not happen") {
  Rig rig;
  rig.state->fail_writes = true;
  rig.evaluate(250, Health::kCrit);
  CHECK(rig.alerts().empty());  // not pending: the record could not be written
  CHECK(stored(rig, "alert/") == 0);
  CHECK(write_failures(rig, "alert") >= 1);

  rig.state->fail_writes = false;
  rig.evaluate(250, Health::kCrit);
  REQUIRE(rig.alerts("pending").size() == 1);
  CHECK(rig.alerts("pending")[0].alert.id == "1");  // the failed attempt took no id

  // Pending -> firing while writes fail: still pending, nothing queued or sent.
  rig.state->fail_writes = true;
  rig.at(kStart + kMinute);
  rig.tick();
  CHECK(rig.alerts("pending").size() == 1);
  CHECK(rig.alerts("firing").empty());
  CHECK(rig.outbox->depth("hook") == 0);
  CHECK(rig.transport.sent.empty());
  CHECK(stored(rig, "outbox/") == 0);

  rig.state->fail_writes = false;
  rig.at(kStart + kMinute + kSecond);
  rig.tick();
  REQUIRE(rig.alerts("firing").size() == 1);
  CHECK(rig.transport.to("hook").size() == 1);

  // Resolving while writes fail: it stays firing, in memory and after a restart.
  rig.state->fail_writes = true;
  rig.at(kStart + 2 * kMinute);
  rig.evaluate(50, Health::kOk);
  rig.at(kStart + 3 * kMinute);
  rig.tick();
  CHECK(rig.alerts("firing").size() == 1);
  CHECK(rig.alerts("resolved").empty());
  rig.state->fail_writes = false;
  rig.restart();
  CHECK(rig.alerts("firing").size() == 1);
}

TEST_CASE("write then apply: an acknowledgement whose write fails is refused and not applied") {
  Rig rig;
  const std::string id = fire(rig);
  const size_t sent = rig.transport.sent.size();
  rig.state->fail_writes = true;
  auto acked = rig.alerter->acknowledge(id, "ana", "looking");
  REQUIRE_FALSE(acked.is_ok());
  CHECK(acked.status().code() == StatusCode::kUnavailable);
  CHECK(acked.status().message().find("No space left on device") != std::string::npos);
  CHECK_FALSE(rig.alerts()[0].alert.acknowledged.has_value());
  rig.tick();
  CHECK(rig.transport.sent.size() == sent);  // no alert.acknowledged went out

  rig.state->fail_writes = false;
  rig.restart();
  CHECK_FALSE(rig.alerts()[0].alert.acknowledged.has_value());
  auto again = rig.alerter->acknowledge(id, "ana", "looking");
  REQUIRE(again.is_ok());
  CHECK(again->alert.acknowledged->author == "ana");
}

TEST_CASE("write then apply: silences that cannot be written are neither added nor expired") {
  Rig rig;
  Silence s;
  s.matchers = {LabelMatcher::create(MatchType::kEqual, "kpi", "latency").value()};
  s.ends_at = kStart + 60 * kMinute;
  s.author = "ana";
  rig.state->fail_writes = true;
  auto added = rig.alerter->add_silence(s);
  REQUIRE_FALSE(added.is_ok());
  CHECK(added.status().code() == StatusCode::kUnavailable);
  CHECK(rig.alerter->silences().empty());
  CHECK(stored(rig, "silence/") == 0);

  rig.state->fail_writes = false;
  added = rig.alerter->add_silence(s);
  REQUIRE(added.is_ok());
  CHECK(added->id == "1");  // the refused one took no id

  rig.state->fail_writes = true;
  auto expired = rig.alerter->expire_silence(added->id);
  REQUIRE_FALSE(expired.is_ok());
  CHECK(expired.status().code() == StatusCode::kUnavailable);
  CHECK(rig.alerter->silences().at(0).active(kStart));
  rig.state->fail_writes = false;
  rig.restart();
  REQUIRE(rig.alerter->silences().size() == 1);
  CHECK(rig.alerter->silences()[0].active(kStart));
}

TEST_CASE("write then apply: an outbox entry that cannot be written is not queued") {
  Rig rig;
  Alert a;
  a.id = "7";
  a.severity = "critical";
  a.owner = "payments";
  rig.state->fail_writes = true;
  auto queued = rig.outbox->enqueue(kFiringEvent, a, boost::json::object{{"id", "7"}});
  REQUIRE_FALSE(queued.is_ok());
  CHECK(queued.status().code() == StatusCode::kUnavailable);
  CHECK(rig.outbox->depth("hook") == 0);
  CHECK(rig.outbox->depth("pd") == 0);
  CHECK(write_failures(rig, "outbox") == 1);
  CHECK(rig.outbox->deliver_due() == 0);
  rig.state->fail_writes = false;
  rig.restart();
  CHECK(rig.outbox->depth("hook") == 0);
  CHECK(stored(rig, "outbox/") == 0);

  queued = rig.outbox->enqueue(kFiringEvent, a, boost::json::object{{"id", "7"}});
  REQUIRE(queued.is_ok());
  CHECK(rig.outbox->depth("hook") == 1);
}

TEST_CASE("alerter: notified is true only once a receiver accepted the alert") {
  Rig rig;
  rig.transport.down = true;
  const std::string id = fire(rig);
  Alert a = rig.alerts()[0].alert;
  CHECK_FALSE(a.notified);
  CHECK(a.notification == "queued");
  rig.transport.down = false;
  rig.at(kStart + 2 * kMinute);  // past the retry backoff
  rig.tick();
  a = rig.alerts()[0].alert;
  CHECK(a.notified);
  CHECK(a.notification == "delivered");
  rig.restart();  // recorded
  CHECK(rig.alerts()[0].alert.notified);
  CHECK(rig.alerts()[0].alert.notification == "delivered");
}

TEST_CASE("alerter: an alert no receiver routes reports notified false, notification no_receiver") {
  // One receiver, for critical alerts only; the rule's alerts are warnings.
  Rig rig(R"toml(
[[receiver]]
name = "pd"
type = "pagerduty"
url = "http://127.0.0.1:1/v2/enqueue"
routing_key = "R0UTE"
severities = ["critical"]

[[kpi]]
id = "latency"
owner = "payments"
direction = "lower_is_better"
[kpi.value]
selector = "latency"
over_time = "last"
[kpi.band]
warn = 100
crit = 200
[[kpi.alert]]
condition = "warn"
severity = "warning"
)toml");
  rig.evaluate(150, Health::kWarn);
  auto firing = rig.alerts("firing");
  REQUIRE(firing.size() == 1);
  CHECK_FALSE(firing[0].alert.notified);
  CHECK(firing[0].alert.notification == "no_receiver");
  CHECK(rig.transport.sent.empty());
  auto json = to_json(firing[0].alert);
  CHECK(json.at("notified") == false);
  CHECK(json.at("notification") == "no_receiver");
}

TEST_CASE("alerter: no_data pages only about a KPI that had data") {
  Rig rig(kBase + "[[kpi.alert]]\ncondition = \"no_data\"\nfor = \"1m\"\n");
  // Never had data: no_data status, no alert, however long.
  rig.evaluate(std::nan(""), Health::kNoData, 0);
  rig.at(kStart + 20 * kMinute);
  rig.evaluate(std::nan(""), Health::kNoData, 0);
  rig.tick();
  CHECK(rig.alerts().empty());
  // Had data, then stopped: pending, then firing.
  rig.evaluate(std::nan(""), Health::kNoData, kStart);
  CHECK(rig.alerts("pending").size() == 1);
  rig.at(kStart + 21 * kMinute);
  rig.tick();
  CHECK(rig.alerts("firing").size() == 1);
}
