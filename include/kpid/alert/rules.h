#pragma once
// Alert rules and receivers compiled from the configuration: templates parsed against the
// variables a notification can use, defaults filled in (alertname, severity, summary), URLs
// parsed. Errors carry the file, line and key of the value at fault.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kpid/alert/rule.h"
#include "kpid/alert/template.h"
#include "kpid/config/config.h"
#include "kpid/net/http_client.h"

namespace kpid::alert {

// The variables label and annotation templates may use.
std::span<const std::string_view> template_variables();

// One alert rule of one KPI.
struct Rule {
  std::string kpi;
  Condition condition = Condition::kCrit;
  std::string name;  // the alertname
  Timing timing;
  double hysteresis = 0;
  std::string severity;
  std::string runbook_url;
  DurationMs repeat_interval = 0;
  std::vector<std::pair<std::string, Template>> labels;
  // summary and description always, plus the configured ones.
  std::vector<std::pair<std::string, Template>> annotations;
};

enum class ReceiverType { kAlertmanager, kPagerDuty, kWebhook };
std::string_view receiver_type_name(ReceiverType t);

struct Receiver {
  std::string name;
  ReceiverType type = ReceiverType::kWebhook;
  net::Url url;                         // alertmanager: base URL; others: where to POST
  std::vector<std::string> severities;  // empty: all
  std::vector<std::string> owners;      // empty: all
  DurationMs timeout = 10'000;
  std::string ca_file;
  std::string routing_key;
  std::string secret;
  DurationMs resend_interval = 60'000;

  // Whether alerts of this severity and owner go to this receiver.
  bool routes(std::string_view severity, std::string_view owner) const;
};

struct AlertingSetup {
  std::vector<Rule> rules;  // in KPI order, then rule order
  std::vector<Receiver> receivers;
  std::vector<config::ConfigError> errors;
  bool ok() const { return errors.empty(); }
};

// Compiles every KPI's [[kpi.alert]] rules and every [[receiver]]. Rules with errors are left
// out.
AlertingSetup compile_alerting(const config::Config& config);

}  // namespace kpid::alert
