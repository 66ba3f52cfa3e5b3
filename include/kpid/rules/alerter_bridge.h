#pragma once
// Hands alerting rules' evaluations to kpid's alerter, which routes them through receivers
// with acknowledgements and silences like KPI and SLO alerts.

#include "kpid/alert/alerter.h"
#include "kpid/rules/evaluator.h"

namespace kpid::rules {

class AlerterBridge final : public AlertSink {
 public:
  explicit AlerterBridge(alert::Alerter& alerter) : alerter_(alerter) {}
  void rule_evaluated(const AlertRuleEvaluation& evaluation) override;

 private:
  alert::Alerter& alerter_;
};

}  // namespace kpid::rules
