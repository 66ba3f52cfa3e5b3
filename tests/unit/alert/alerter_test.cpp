#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "alert/alert_rig.h"
#include "kpid/alert/alerter.h"
#include "kpid/alert/outbox.h"
#include "kpid/alert/rules.h"
#include "kpid/config/config.h"
#include "kpid/kpi/definition.h"
#include "kpid/store/rocksdb_store.h"
#include "support/fake_clock.h"
#include "support/temp_dir.h"

using namespace kpid;
using namespace kpid::alert;
using namespace kpid::alert::test_rig;

TEST_CASE("alerter: a breach is pending for `for`, then fires and is delivered to its receivers") {
  Rig rig;
  rig.evaluate(250, Health::kCrit);
  auto pending = rig.alerts("pending");
  REQUIRE(pending.size() == 1);
  CHECK(rig.transport.sent.empty());
  rig.at(kStart + 30 * kSecond);
  rig.tick();
  CHECK(rig.alerts("pending").size() == 1);
  rig.at(kStart + kMinute);
  rig.tick();  // `for` ran out between evaluations
  auto firing = rig.alerts("firing");
  REQUIRE(firing.size() == 1);
  const Alert& a = firing[0].alert;
  CHECK(a.id == pending[0].alert.id);
  CHECK(a.firing_since == kStart + kMinute);
  CHECK(a.pending_since == kStart);
  CHECK(a.labels.at("alertname") == "latency_crit");
  CHECK(a.labels.at("severity") == "critical");
  CHECK(a.labels.at("owner") == "payments");
  CHECK(a.labels.at("team") == "payments-oncall");
  CHECK(a.annotations.at("summary") == "Checkout latency is 250 ms, beyond its crit threshold 200");
  CHECK(a.annotations.at("dashboard") == "https://dash/latency");
  CHECK(a.threshold == 200);

  auto hook = rig.transport.to("hook");
  REQUIRE(hook.size() == 1);
  auto body = hook[0].json().as_object();
  CHECK(body.at("event").as_string() == "alert.firing");
  CHECK(body.at("alert").as_object().at("url").as_string() ==
        "http://kpid.test:9470/api/v1/alerts/" + a.episode);
  CHECK(rig.alerter->get(a.episode).is_ok());
  CHECK(hook[0].header("Idempotency-Key") == std::string(body.at("idempotency_key").as_string()));
  CHECK(hook[0].header("X-Kpid-Signature") == "sha256=" + hmac_sha256_hex("s3cret", hook[0].body));
  auto pd = rig.transport.to("pd");
  REQUIRE(pd.size() == 1);
  auto pd_body = pd[0].json().as_object();
  CHECK(pd_body.at("event_action").as_string() == "trigger");
  CHECK(pd_body.at("routing_key").as_string() == "R0UTE");
  // One PagerDuty incident per episode, the same from every replica (episode.h).
  REQUIRE_FALSE(a.episode.empty());
  CHECK(pd_body.at("dedup_key").as_string() == "kpid-" + a.episode);
  CHECK(body.at("idempotency_key").as_string() == a.episode + "-alert.firing");
  auto am = rig.transport.to("am");
  REQUIRE(am.size() == 1);
  auto am_alert = am[0].json().as_array().at(0).as_object();
  CHECK(am_alert.at("labels").as_object().at("alertname").as_string() == "latency_crit");
  CHECK(am_alert.at("annotations").as_object().at("runbook_url").as_string() ==
        "https://runbooks/latency");
  // The lease: four resend intervals from the send.
  CHECK(parse_time(am_alert.at("endsAt").as_string()).value() == kStart + kMinute + 4 * kMinute);

  auto detail = rig.alerter->get(a.id);
  REQUIRE(detail.is_ok());
  std::vector<std::string> kinds;
  for (const auto& e : detail->timeline) kinds.push_back(e.kind);
  CHECK(kinds == std::vector<std::string>{"pending", "firing", "queued", "delivered", "delivered",
                                          "delivered"});
}

TEST_CASE("alerter: a breach that ends before `for` leaves nothing behind") {
  Rig rig;
  rig.evaluate(250, Health::kCrit);
  REQUIRE(rig.alerts().size() == 1);
  const std::string id = rig.alerts()[0].alert.id;
  rig.at(kStart + 10 * kSecond);
  rig.evaluate(150, Health::kWarn);
  CHECK(rig.alerts("pending").empty());
  CHECK(rig.alerts("firing").empty());
  CHECK(rig.alerter->get(id).status().code() == StatusCode::kNotFound);
  CHECK(rig.transport.to("hook").empty());
}

TEST_CASE("alerter: hysteresis and clear_for turn a flapping value into one alert") {
  Rig rig;
  rig.evaluate(250, Health::kCrit);
  rig.at(kStart + kMinute);
  rig.evaluate(250, Health::kCrit);
  REQUIRE(rig.alerts("firing").size() == 1);
  // Hovering around the threshold, inside the margin (180-200) or above it: never resolves.
  TimestampMs t = kStart + kMinute;
  for (int i = 0; i < 40; ++i) {
    t += 5 * kSecond;
    rig.at(t);
    const bool above = i % 2 == 0;
    rig.evaluate(above ? 205 : 185, above ? Health::kCrit : Health::kWarn);
  }
  CHECK(rig.alerts().size() == 1);
  CHECK(rig.alerts("firing").size() == 1);
  // Back inside by the margin, but not for clear_for: still firing.
  rig.at(t += 5 * kSecond);
  rig.evaluate(170, Health::kWarn);
  rig.at(t += 20 * kSecond);
  rig.evaluate(175, Health::kWarn);
  CHECK(rig.alerts("firing").size() == 1);
  rig.at(t += 10 * kSecond);
  rig.tick();
  REQUIRE(rig.alerts("resolved").size() == 1);
  CHECK(rig.alerts().size() == 1);
  auto hook = rig.transport.to("hook");
  REQUIRE(hook.size() == 2);
  CHECK(hook[0].event() == "alert.firing");
  CHECK(hook[1].event() == "alert.resolved");
}

TEST_CASE("alerter: a firing alert is repeated until acknowledged, acknowledging tells PagerDuty") {
  Rig rig;
  rig.evaluate(250, Health::kCrit);
  rig.at(kStart + kMinute);
  rig.tick();
  REQUIRE(rig.transport.to("hook").size() == 1);
  rig.at(kStart + kMinute + 10 * kMinute);
  rig.tick();
  auto hook = rig.transport.to("hook");
  REQUIRE(hook.size() == 2);
  CHECK(hook[1].event() == "alert.repeat");
  CHECK(rig.transport.to("pd").size() == 2);
  // Alertmanager repeats by itself; kpid only renews the lease (every resend_interval).
  CHECK(rig.transport.to("am").size() >= 2);
  for (const auto& s : rig.transport.to("am")) CHECK(s.event() == "am");

  const std::string id = rig.alerts("firing")[0].alert.id;
  auto acked = rig.alerter->acknowledge(id, "alice", "looking");
  REQUIRE(acked.is_ok());
  CHECK(acked->alert.acknowledged->author == "alice");
  rig.tick();
  auto pd = rig.transport.to("pd");
  REQUIRE(pd.size() == 3);
  CHECK(pd[2].event() == "acknowledge");
  CHECK(pd[2].json().as_object().at("dedup_key") == pd[0].json().as_object().at("dedup_key"));
  CHECK(rig.transport.to("hook").back().event() == "alert.acknowledged");
  CHECK(rig.alerter->acknowledge(id, "bob", "").status().code() == StatusCode::kInvalidArgument);
  AlertFilter by_ack;
  by_ack.acknowledged = true;
  CHECK(rig.alerter->list(by_ack).size() == 1);
  by_ack.acknowledged = false;
  CHECK(rig.alerter->list(by_ack).empty());

  const size_t before = rig.transport.to("hook").size();
  rig.at(kStart + kMinute + 40 * kMinute);
  rig.tick();
  CHECK(rig.transport.to("hook").size() == before);  // no repeats once acknowledged
}

TEST_CASE("alerter: a silence holds notifications back, the alert is announced when it ends") {
  Rig rig;
  Silence s;
  s.matchers.push_back(LabelMatcher::create(MatchType::kEqual, "kpi", "latency").value());
  s.ends_at = kStart + 5 * kMinute;
  s.author = "bob";
  s.comment = "deploy";
  auto added = rig.alerter->add_silence(s);
  REQUIRE(added.is_ok());
  rig.evaluate(250, Health::kCrit);
  rig.at(kStart + kMinute);
  rig.tick();
  auto firing = rig.alerts("firing");
  REQUIRE(firing.size() == 1);
  CHECK(firing[0].silenced_by == std::vector<std::string>{added->id});
  AlertFilter silenced;
  silenced.silenced = true;
  CHECK(rig.alerter->list(silenced).size() == 1);
  silenced.silenced = false;
  CHECK(rig.alerter->list(silenced).empty());
  CHECK(rig.transport.sent.empty());
  CHECK(rig.alerter->expire_silence(added->id).is_ok());
  rig.tick();
  auto hook = rig.transport.to("hook");
  REQUIRE(hook.size() == 1);
  CHECK(hook[0].event() == "alert.firing");
  // Errors: a silence that ends before it starts, an unknown one.
  Silence bad = s;
  bad.starts_at = kStart + 10 * kMinute;
  bad.ends_at = kStart + 9 * kMinute;
  CHECK(rig.alerter->add_silence(bad).status().code() == StatusCode::kInvalidArgument);
  CHECK(rig.alerter->expire_silence("99").status().code() == StatusCode::kNotFound);
}

TEST_CASE("alerter: a restart keeps a firing alert and does not announce it again") {
  Rig rig;
  rig.evaluate(250, Health::kCrit);
  rig.at(kStart + kMinute);
  rig.tick();
  REQUIRE(rig.transport.to("hook").size() == 1);
  const Alert before = rig.alerts("firing").at(0).alert;
  rig.restart();
  rig.at(kStart + 2 * kMinute);
  rig.evaluate(260, Health::kCrit);
  auto firing = rig.alerts("firing");
  REQUIRE(firing.size() == 1);
  CHECK(firing[0].alert.id == before.id);
  CHECK(firing[0].alert.firing_since == before.firing_since);
  CHECK(rig.transport.to("hook").size() == 1);
  rig.evaluate(100, Health::kOk);
  rig.at(kStart + 3 * kMinute);
  rig.evaluate(100, Health::kOk);
  auto hook = rig.transport.to("hook");
  REQUIRE(hook.size() == 2);
  CHECK(hook[1].event() == "alert.resolved");
  // A new breach is a new alert with a new id.
  rig.at(kStart + 4 * kMinute);
  rig.evaluate(250, Health::kCrit);
  CHECK(rig.alerts("pending").at(0).alert.id != before.id);
}

TEST_CASE("alerter: routing by severity, warn rule alerts on crit too") {
  Rig rig(kBothConfig);
  rig.evaluate(150, Health::kWarn);  // the warn rule has no `for`
  auto firing = rig.alerts("firing");
  REQUIRE(firing.size() == 1);
  CHECK(firing[0].alert.severity == "info");
  CHECK(firing[0].alert.threshold == 100);
  CHECK(rig.transport.to("hook").size() == 1);
  CHECK(rig.transport.to("pd").empty());  // pd takes only critical
  rig.at(kStart + 10 * kSecond);
  rig.evaluate(250, Health::kCrit);  // worse: warn still breached, crit pending
  CHECK(rig.alerts("firing").size() == 1);
  CHECK(rig.alerts("pending").size() == 1);
  AlertFilter f;
  f.owner = "payments";
  f.severity = "info";
  CHECK(rig.alerter->list(f).size() == 1);
  f.owner = "nobody";
  CHECK(rig.alerter->list(f).empty());
}

TEST_CASE("alerter: removing a rule resolves its open alert") {
  Rig rig(kBothConfig);
  rig.evaluate(150, Health::kWarn);
  REQUIRE(rig.alerts("firing").size() == 1);
  std::vector<Rule> crit_only;
  for (const auto& r : rig.rules) {
    if (r.condition == Condition::kCrit) crit_only.push_back(r);
  }
  rig.alerter->set_rules(crit_only);
  rig.tick();
  CHECK(rig.alerts("resolved").size() == 1);
  CHECK(rig.transport.to("hook").back().event() == "alert.resolved");
}

TEST_CASE("outbox: retries with backoff while a receiver is down, in order, across a restart") {
  Rig rig(kWarnConfig);
  rig.transport.down = true;
  rig.evaluate(150, Health::kWarn);  // fires at once
  rig.at(kStart + kSecond);
  rig.evaluate(50, Health::kOk);  // resolves at once (warn rule has no clear_for)
  CHECK(rig.outbox->depth("hook") == 2);
  CHECK(rig.transport.sent.empty());
  // Backoff: 1 s, 2 s, 4 s, 8 s (capped), each with jitter down to half.
  for (int i = 0; i < 6; ++i) {
    rig.at(rig.clock.now_ms() + 8 * kSecond);
    rig.tick();
  }
  CHECK(rig.outbox->depth("hook") == 2);
  const std::string text = rig.metrics.scrape();
  CHECK(metric(text, "kpid_outbox_delivery_failures_total{receiver=\"hook\"}") >= 6);
  CHECK(metric(text, "kpid_outbox_depth{receiver=\"hook\"}") == 2);
  rig.restart();
  CHECK(rig.outbox->depth("hook") == 2);
  rig.transport.down = false;
  rig.at(rig.clock.now_ms() + 8 * kSecond);
  rig.tick();
  auto hook = rig.transport.to("hook");
  REQUIRE(hook.size() == 2);
  CHECK(hook[0].event() == "alert.firing");
  CHECK(hook[1].event() == "alert.resolved");
  CHECK(hook[0].header("Idempotency-Key") != hook[1].header("Idempotency-Key"));
  CHECK(rig.outbox->depth("hook") == 0);
  rig.restart();
  rig.tick();
  CHECK(rig.transport.to("hook").size() == 2);  // delivered ones are gone for good
}

TEST_CASE("outbox: Alertmanager gets the newest state only, old notifications expire") {
  Rig rig(kWarnConfig);
  rig.transport.down = true;
  rig.evaluate(150, Health::kWarn);
  rig.at(kStart + kSecond);
  rig.evaluate(50, Health::kOk);
  // For Alertmanager the resolved notification replaced the waiting firing one.
  CHECK(rig.outbox->depth("am") <= 2);
  rig.at(kStart + 2 * 3'600'000);  // past notification_max_age
  rig.tick();
  CHECK(rig.outbox->depth("hook") == 0);
  CHECK(rig.outbox->depth("am") == 0);
  const std::string text = rig.metrics.scrape();
  CHECK(metric(text, "kpid_outbox_expired_total{receiver=\"hook\"}") == 2);
  rig.transport.down = false;
  rig.tick();
  CHECK(rig.transport.sent.empty());
}

TEST_CASE("outbox: Alertmanager coalescing keeps one waiting notification per alert") {
  Rig rig(kWarnConfig);
  rig.transport.down = true;
  rig.evaluate(150, Health::kWarn);  // firing: in flight and failing
  rig.at(kStart + kSecond);
  rig.evaluate(50, Health::kOk);  // resolved
  CHECK(rig.outbox->depth("am") == 1);
  CHECK(rig.outbox->depth("hook") == 2);
  rig.transport.down = false;
  rig.at(kStart + 30 * kSecond);
  rig.tick();
  auto am = rig.transport.to("am");
  REQUIRE(am.size() == 1);
  auto alert = am[0].json().as_array().at(0).as_object();
  CHECK(parse_time(alert.at("endsAt").as_string()).value() == kStart + kSecond);
}

TEST_CASE("alert rules: config errors name the key and the line") {
  auto errors_of = [](const std::string& toml) {
    auto loaded = config::parse_config(toml, "kpid.toml", {});
    std::vector<std::string> out;
    for (const auto& e : loaded.errors) out.push_back(e.to_string());
    if (loaded.ok()) {
      for (const auto& e : compile_alerting(loaded.config).errors) out.push_back(e.to_string());
    }
    return out;
  };
  const std::string kpi = R"toml(
[[kpi]]
id = "lat"
direction = "lower_is_better"
[kpi.value]
selector = "lat"
over_time = "last"
)toml";
  auto e = errors_of(
      kpi + "[[kpi.alert]]\ncondition = \"crit\"\nannotations = { summary = \"{{nope}}\" }\n");
  REQUIRE(e.size() == 2);
  CHECK(e[0] ==
        "kpid.toml:8:1: kpi.lat.alert.crit.condition: condition \"crit\" needs a [kpi.band] on KPI "
        "lat");
  CHECK(e[1].find("kpid.toml:10:27: kpi.lat.alert.crit.annotations.summary: unknown variable") ==
        0);

  e = errors_of(kpi + "[[kpi.alert]]\ncondition = \"boom\"\nfor = 5\n");
  REQUIRE(e.size() == 2);
  CHECK(e[0].find("kpi.lat.alert[0].condition: unknown value \"boom\"") != std::string::npos);
  CHECK(e[1].find(".for: expected a duration string") != std::string::npos);

  e = errors_of(kpi +
                "[[kpi.alert]]\ncondition = \"no_data\"\n[[kpi.alert]]\ncondition = \"no_data\"\n");
  REQUIRE(e.size() == 1);
  CHECK(e[0] ==
        "kpid.toml:11:13: kpi.lat.alert.no_data.condition: a KPI has at most one alert "
        "rule per condition; another is at line 8");

  e = errors_of(
      kpi +
      "[[kpi.alert]]\ncondition = \"no_data\"\nlabels = { kpi = \"x\", \"bad-name\" = \"y\" }\n");
  REQUIRE(e.size() == 2);
  CAPTURE(e[0], e[1]);
  CHECK(e[0].find("labels.kpi: kpid sets this label itself") != std::string::npos);
  CHECK(e[1].find("labels.bad-name: names must match") != std::string::npos);

  e = errors_of(R"toml(
[[receiver]]
name = "pd"
type = "pagerduty"
secret = "x"
[[receiver]]
name = "hook"
type = "webhook"
severities = ["fatal"]
[[receiver]]
name = "hook"
type = "alertmanager"
url = "ftp://x"
)toml");
  REQUIRE(e.size() == 5);
  CHECK(e[0] == "kpid.toml:2:1: receiver.pd.routing_key: is required for type = \"pagerduty\"");
  CHECK(e[1] == "kpid.toml:5:10: receiver.pd.secret: applies only to type = \"webhook\"");
  CHECK(e[2].find("receiver.hook.url: is required for type = \"webhook\"") != std::string::npos);
  CHECK(e[3].find("receiver.hook.severities: unknown severity \"fatal\"") != std::string::npos);
  CHECK(e[4].find("kpid.toml:11:8: receiver.hook.name: duplicate receiver name") == 0);
}

TEST_CASE("alert rules: the shipped configs compile, with the example rules") {
  for (const char* file : {"/config/kpid.toml", "/config/alerting.example.toml"}) {
    auto loaded = config::load_config(std::string(KPID_SOURCE_DIR) + file, {});
    REQUIRE(loaded.ok());
    auto setup = compile_alerting(loaded.config);
    INFO(file << (setup.errors.empty() ? "" : ": " + setup.errors[0].to_string()));
    REQUIRE(setup.ok());
    REQUIRE(setup.rules.size() == 4);
    const Rule& r = setup.rules[0];
    CHECK(r.name == "CheckoutLatencyCritical");
    CHECK(r.timing.for_duration == 2 * kMinute);
    CHECK(r.hysteresis == 50);
    CHECK(r.repeat_interval == 60 * kMinute);
  }
}

TEST_CASE("alerter: resolved alerts and expired silences are forgotten after resolved_retention") {
  Rig rig(kWarnConfig);
  rig.evaluate(150, Health::kWarn);
  rig.at(kStart + kSecond);
  rig.evaluate(50, Health::kOk);
  REQUIRE(rig.alerts("resolved").size() == 1);
  const std::string id = rig.alerts()[0].alert.id;
  Silence s;
  s.matchers.push_back(LabelMatcher::create(MatchType::kEqual, "owner", "payments").value());
  s.ends_at = kStart + kMinute;
  s.author = "bob";
  s.comment = "test";
  REQUIRE(rig.alerter->add_silence(s).is_ok());
  rig.at(kStart + 7 * 24 * 60 * kMinute);  // the default retention, 7 days: not yet past it
  rig.tick();
  CHECK(rig.alerts().size() == 1);
  CHECK(rig.alerter->silences().size() == 1);
  rig.at(kStart + 7 * 24 * 60 * kMinute + 2 * kMinute);
  rig.tick();
  CHECK(rig.alerts().empty());
  CHECK(rig.alerter->get(id).status().code() == StatusCode::kNotFound);
  CHECK(rig.alerter->silences().empty());
  rig.restart();  // gone from the store too, timeline included
  CHECK(rig.alerts().empty());
  CHECK(rig.alerter->silences().empty());
  size_t left = 0;
  REQUIRE(rig.store
              ->scan_state("alertev/",
                           [&](std::string_view, std::string_view) {
                             ++left;
                             return true;
                           })
              .is_ok());
  CHECK(left == 0);
}
