#include "kpid/rules/alerter_bridge.h"

namespace kpid::rules {

void AlerterBridge::rule_evaluated(const AlertRuleEvaluation& evaluation) {
  alert::RuleAlertObservation obs;
  obs.group = evaluation.group_id;
  obs.rule = evaluation.rule;
  for (const auto& a : evaluation.alerts) {
    obs.alerts.push_back(
        {a.labels, a.annotations, alert_state_name(a.state), a.value, a.active_at});
  }
  alerter_.rule_alerts_evaluated(std::move(obs));
}

}  // namespace kpid::rules
