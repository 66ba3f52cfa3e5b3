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

// The variables label and annotation templates may use: of KPI rules, of SLO burn-rate rules.
std::span<const std::string_view> template_variables();
std::span<const std::string_view> slo_template_variables();

// The summary annotation a rule of condition `c` gets when it configures none.
std::string default_summary(Condition c, bool has_unit);

// Labels kpid sets itself on every alert; a rule may not override them.
std::span<const std::string_view> reserved_labels();

// One alert rule of one KPI, or one burn-rate rule of one SLO.
struct Rule {
  std::string kpi;             // "" for an SLO's rule
  std::string slo;             // set for an SLO's burn-rate rule (condition kBurnRate)
  DurationMs long_window = 0;  // burn-rate rules: both windows' rates must exceed `factor`
  DurationMs short_window = 0;
  double factor = 0;
  std::vector<std::string> receivers;  // names; empty: every receiver that routes it
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

// Compiles a rule's label and annotation templates against `variables` into rule.labels and
// rule.annotations, with `summary` and `description` (when not empty) as default annotations;
// problems (names, reserved labels, unknown variables) go to `errors` under `section`.
void compile_templates(const std::vector<kpi::TemplateOptions>& labels,
                       const std::vector<kpi::TemplateOptions>& annotations,
                       std::span<const std::string_view> variables, const std::string& section,
                       const std::string& summary, const std::string& description, Rule& rule,
                       std::vector<config::ConfigError>& errors);

// A [[datasource]]'s alert: alertname datasource_down, labels datasource="NAME" and
// severity="critical", firing once the source has failed for `down_for`, resolved by its next
// success. Its subject (Rule::kpi and Alert::kpi) is "datasource:NAME"; templates may use
// {{datasource}}, {{error}}, {{since}} and {{severity}}.
inline constexpr std::string_view kDatasourceSubjectPrefix = "datasource:";
Rule datasource_down_rule(const std::string& name, DurationMs down_for, DurationMs repeat_interval);
std::span<const std::string_view> datasource_template_variables();

// Compiles every KPI's [[kpi.alert]] rules, one datasource_down rule per [[datasource]] and
// every [[receiver]]. Rules with errors are left out.
AlertingSetup compile_alerting(const config::Config& config);

}  // namespace kpid::alert
