// Episode keys: two replicas fed the same evaluations at slightly different wall times name
// the same episodes and send every notification with the same key.
#include "alert_rig.h"

#include <set>

#include "kpid/alert/episode.h"

using namespace kpid;
using namespace kpid::alert;
using namespace kpid::alert::test_rig;

namespace {

// One evaluation as the evaluator hands it over: the data's time is the newest sample's.
void feed(Rig& rig, TimestampMs wall, TimestampMs sample_time, double value, Health status) {
  rig.at(wall);
  kpi::KpiView view;
  view.definition = rig.definitions.at(0);
  view.value = value;
  view.status = status;
  view.first_sample = kStart;
  view.last_sample = sample_time;
  view.evaluated_at = wall;
  rig.alerter->evaluated(view);
  rig.alerter->run_once();
  rig.outbox->deliver_due();
}

void tick_at(Rig& rig, TimestampMs wall) {
  rig.at(wall);
  rig.tick();
}

// What a receiver deduplicating by key sees: each (key, event) once.
std::vector<std::string> keys(const Rig& rig, const std::string& receiver) {
  std::vector<std::string> out;
  for (const auto& s : rig.transport.to(receiver)) {
    if (receiver == "hook") out.push_back(s.header("Idempotency-Key") + " " + s.event());
    if (receiver == "pd") {
      out.push_back(std::string(s.json().as_object().at("dedup_key").as_string()) + " " +
                    s.event());
    }
  }
  return out;
}

}  // namespace

TEST_CASE("episode: the start is the data's time on the interval grid", "[alert][episode]") {
  CHECK(episode_start(kStart + 59'999, kMinute) == kStart - kStart % kMinute + kMinute);
  CHECK(episode_start(120'000, kMinute) == 120'000);
  CHECK(episode_start(-1, kMinute) == -kMinute);
  CHECK(episode_start(1234, 0) == 1234);
  const std::map<std::string, std::string> labels{{"alertname", "x"}, {"kpi", "k"}};
  const std::string key = episode_key("k/crit", labels, 60'000, 0);
  CHECK(key.size() == 32);
  CHECK(key == episode_key("k/crit", labels, 60'000, 0));
  CHECK(key != episode_key("k/crit", labels, 120'000, 0));
  CHECK(key != episode_key("k/crit", labels, 60'000, 1));
  CHECK(key != episode_key("k/warn", labels, 60'000, 0));
  CHECK(key != episode_key("k/crit", {{"alertname", "y"}, {"kpi", "k"}}, 60'000, 0));
}

TEST_CASE("episode: two replicas at different wall times send the same keys", "[alert][episode]") {
  Rig a;
  Rig b;
  // The same samples reach replica b 700 ms later; its ticks run 1.1 s later.
  const TimestampMs lag = 700;
  const TimestampMs t0 = kStart + 10 * kSecond;
  for (Rig* r : {&a, &b}) {
    const TimestampMs d = r == &a ? 0 : lag;
    feed(*r, t0 + d, t0, 250, Health::kCrit);  // pending
    feed(*r, t0 + 30 * kSecond + d, t0 + 30 * kSecond, 260, Health::kCrit);
    tick_at(*r, t0 + kMinute + (r == &a ? 0 : 1'100));       // fires
    tick_at(*r, t0 + 11 * kMinute + (r == &a ? 0 : 1'100));  // repeat 1
    tick_at(*r, t0 + 21 * kMinute + (r == &a ? 0 : 1'100));  // repeat 2
    feed(*r, t0 + 22 * kMinute + d, t0 + 22 * kMinute, 50, Health::kOk);
    tick_at(*r, t0 + 23 * kMinute + d);  // clear_for ran out
    // A second episode of the same rule: a new key.
    feed(*r, t0 + 30 * kMinute + d, t0 + 30 * kMinute, 300, Health::kCrit);
    tick_at(*r, t0 + 31 * kMinute + d);
    tick_at(*r, t0 + 31 * kMinute + 500 + d);
  }
  const auto hook_a = keys(a, "hook");
  const auto hook_b = keys(b, "hook");
  REQUIRE(hook_a.size() == 5);  // firing, repeat, repeat, resolved, firing again
  CHECK(hook_a == hook_b);
  CHECK(std::set<std::string>(hook_a.begin(), hook_a.end()).size() == hook_a.size());
  CHECK(keys(a, "pd") == keys(b, "pd"));

  const auto alerts_a = a.alerts();
  const auto alerts_b = b.alerts();
  REQUIRE(alerts_a.size() == 2);
  REQUIRE(alerts_b.size() == 2);
  CHECK(alerts_a[0].alert.episode == alerts_b[0].alert.episode);
  CHECK(alerts_a[1].alert.episode == alerts_b[1].alert.episode);
  CHECK(alerts_a[0].alert.episode != alerts_a[1].alert.episode);
  // The per-replica bookkeeping does differ: the wall times.
  CHECK(alerts_a[1].alert.pending_since != alerts_b[1].alert.pending_since);
  const auto repeats = a.transport.to("hook");
  CHECK(repeats[1].header("Idempotency-Key") == alerts_a[1].alert.episode + "-alert.repeat-1");
  CHECK(repeats[2].header("Idempotency-Key") == alerts_a[1].alert.episode + "-alert.repeat-2");
}

TEST_CASE("episode: a breach back within one interval is another episode", "[alert][episode]") {
  Rig rig(kWarnConfig);  // fires and resolves at once
  const TimestampMs t0 = kStart - kStart % kMinute;
  feed(rig, t0 + 1'000, t0 + 1'000, 150, Health::kWarn);
  feed(rig, t0 + 2'000, t0 + 2'000, 50, Health::kOk);
  feed(rig, t0 + 3'000, t0 + 3'000, 150, Health::kWarn);
  const auto alerts = rig.alerts();
  REQUIRE(alerts.size() == 2);
  CHECK(alerts[0].alert.episode_start == alerts[1].alert.episode_start);
  CHECK(alerts[0].alert.episode != alerts[1].alert.episode);
}

TEST_CASE("episode: alerts recorded before episodes keep their old keys", "[alert][episode]") {
  Alert old;
  old.id = "7";
  CHECK(notification_key(old, kFiringEvent).empty());
  Notification n;
  n.receiver = "hook";
  n.event = std::string(kFiringEvent);
  n.alert_id = "7";
  n.seq = 3;
  CHECK(n.idempotency_key() == "7-3");
  n.key = "abc-alert.firing";
  CHECK(n.idempotency_key() == "abc-alert.firing");
  auto back = notification_from_json(to_json(n));
  REQUIRE(back.is_ok());
  CHECK(back->key == n.key);
}
