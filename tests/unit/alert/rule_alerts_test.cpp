// Prometheus rule files' alerts (rules module) as kpid alerts: recorded, announced, kept over a
// restart without a second announcement, acknowledged, resolved.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "alert/alert_rig.h"

using namespace kpid;
using namespace kpid::alert;
using namespace kpid::alert::test_rig;

namespace {

RuleAlertObservation observation(const std::string& state) {
  RuleAlertObservation o;
  o.group = "api:api";
  o.rule = "HighErrors";
  if (!state.empty()) {
    o.alerts.push_back({{{"alertname", "HighErrors"}, {"job", "api"}, {"severity", "critical"}},
                        {{"summary", "api fails"}},
                        state,
                        0.25,
                        kStart});
  }
  return o;
}

void evaluate_rule(Rig& rig, const std::string& state) {
  rig.alerter->rule_alerts_evaluated(observation(state));
  rig.tick();
}

}  // namespace

TEST_CASE("alerter: a rule file's alert is recorded, announced, kept over a restart, resolved") {
  Rig rig;
  rig.alerter->set_rule_groups({"api:api"});
  evaluate_rule(rig, "pending");
  auto pending = rig.alerts("pending");
  REQUIRE(pending.size() == 1);
  const Alert& p = pending[0].alert;
  CHECK(p.rule_group == "api:api");
  CHECK(p.name == "HighErrors");
  CHECK(p.severity == "critical");
  CHECK(p.labels.at("job") == "api");
  CHECK(p.pending_since == kStart);
  CHECK(rig.transport.to("hook").empty());

  rig.at(kStart + 10 * kSecond);
  evaluate_rule(rig, "firing");
  auto firing = rig.alerts("firing");
  REQUIRE(firing.size() == 1);
  CHECK(firing[0].alert.id == p.id);
  CHECK(firing[0].alert.firing_since == kStart + 10 * kSecond);
  CHECK(firing[0].alert.annotations.at("summary") == "api fails");
  REQUIRE(rig.transport.to("hook").size() == 1);
  CHECK(rig.transport.to("pd").size() == 1);  // critical routes to PagerDuty
  AlertFilter by_group;
  by_group.rule_group = "api:api";
  CHECK(rig.alerter->list(by_group).size() == 1);
  by_group.rule_group = "other:other";
  CHECK(rig.alerter->list(by_group).empty());

  // A restart: the rule re-enters pending (its `for` was not restored); the alert stays firing
  // and is not announced again.
  rig.restart();
  rig.alerter->set_rule_groups({"api:api"});
  rig.at(kStart + 20 * kSecond);
  evaluate_rule(rig, "pending");
  REQUIRE(rig.alerts("firing").size() == 1);
  CHECK(rig.transport.to("hook").size() == 1);
  REQUIRE(rig.alerter->acknowledge(p.id, "ana", "looking").is_ok());

  // Gone from the rule's result: resolved, and the receivers that heard it fire hear it end.
  rig.at(kStart + 30 * kSecond);
  evaluate_rule(rig, "");
  auto resolved = rig.alerts("resolved");
  REQUIRE(resolved.size() == 1);
  CHECK(resolved[0].alert.resolved_at == kStart + 30 * kSecond);
  bool heard_resolved = false;
  for (const auto& r : rig.transport.to("hook")) {
    heard_resolved =
        heard_resolved || r.json().as_object().at("event").as_string() == "alert.resolved";
  }
  CHECK(heard_resolved);
}

TEST_CASE(
    "alerter: a rule file's pending alert that stops is cancelled, its group's removal "
    "resolves the rest") {
  Rig rig;
  rig.alerter->set_rule_groups({"api:api"});
  evaluate_rule(rig, "pending");
  REQUIRE(rig.alerts("pending").size() == 1);
  evaluate_rule(rig, "inactive");
  CHECK(rig.alerts().empty());

  // Observations of a group the alerter does not hold are ignored.
  auto other = observation("firing");
  other.group = "gone:gone";
  rig.alerter->rule_alerts_evaluated(other);
  rig.tick();
  CHECK(rig.alerts().empty());

  evaluate_rule(rig, "firing");
  REQUIRE(rig.alerts("firing").size() == 1);
  rig.alerter->set_rule_groups({});
  rig.tick();
  CHECK(rig.alerts("resolved").size() == 1);
}
