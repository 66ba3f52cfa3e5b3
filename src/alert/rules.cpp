#include "kpid/alert/rules.h"

#include <algorithm>
#include <array>
#include <set>

#include "kpid/core/labels.h"

namespace kpid::alert {

namespace {

constexpr std::array<std::string_view, 14> kVariables = {
    "kpi",       "kpi.name", "kpi.description", "owner",           "unit",           "value",
    "threshold", "target",   "baseline.lower",  "baseline.center", "baseline.upper", "severity",
    "condition", "status"};

constexpr std::array<std::string_view, 16> kSloVariables = {"slo",
                                                            "slo.name",
                                                            "slo.description",
                                                            "owner",
                                                            "objective",
                                                            "sli",
                                                            "value",
                                                            "threshold",
                                                            "burn_rate",
                                                            "burn_rate.short",
                                                            "factor",
                                                            "long_window",
                                                            "short_window",
                                                            "budget_remaining",
                                                            "severity",
                                                            "condition"};

// Labels kpid sets itself; a rule may not override them.
constexpr std::array<std::string_view, 6> kReservedLabels = {"alertname", "kpi",      "slo",
                                                             "condition", "severity", "owner"};

std::string default_severity(Condition c) { return c == Condition::kCrit ? "critical" : "warning"; }

}  // namespace

std::string default_summary(Condition c, bool has_unit) {
  const std::string value = has_unit ? "{{value}} {{unit}}" : "{{value}}";
  switch (c) {
    case Condition::kCrit:
    case Condition::kWarn:
      return "{{kpi.name}} is " + value + ", beyond its {{condition}} threshold {{threshold}}";
    case Condition::kAnomalous:
      return "{{kpi.name}} is " + value +
             ", outside its normal range {{baseline.lower}} to {{baseline.upper}}";
    case Condition::kNoData: return "{{kpi.name}} has no data";
    case Condition::kBurnRate:
      return "{{slo.name}} is burning its error budget {{burn_rate}}x as fast as it lasts over "
             "{{long_window}} ({{burn_rate.short}}x over {{short_window}}), above {{factor}}; "
             "{{budget_remaining}}% of the budget left";
  }
  return {};
}

namespace {

config::ConfigError error_at(const SourcePos& pos, std::string key, std::string message) {
  return {pos.file, pos.line, pos.column, std::move(key), std::move(message)};
}

}  // namespace

std::span<const std::string_view> template_variables() { return kVariables; }
std::span<const std::string_view> slo_template_variables() { return kSloVariables; }
std::span<const std::string_view> reserved_labels() { return kReservedLabels; }

std::string_view receiver_type_name(ReceiverType t) {
  switch (t) {
    case ReceiverType::kAlertmanager: return "alertmanager";
    case ReceiverType::kPagerDuty: return "pagerduty";
    case ReceiverType::kWebhook: return "webhook";
  }
  return "webhook";
}

bool Receiver::routes(std::string_view severity, std::string_view owner) const {
  auto allows = [](const std::vector<std::string>& list, std::string_view v) {
    return list.empty() || std::find(list.begin(), list.end(), v) != list.end();
  };
  return allows(severities, severity) && allows(owners, owner);
}

void compile_templates(const std::vector<kpi::TemplateOptions>& labels,
                       const std::vector<kpi::TemplateOptions>& annotations,
                       std::span<const std::string_view> variables, const std::string& section,
                       const std::string& summary, const std::string& description, Rule& rule,
                       std::vector<config::ConfigError>& errors) {
  auto compile = [&](const std::vector<kpi::TemplateOptions>& in, const char* what,
                     std::vector<std::pair<std::string, Template>>& out) {
    for (const auto& tc : in) {
      const std::string key = section + "." + what + "." + tc.name;
      if (!is_label_name(tc.name)) {
        errors.push_back(
            error_at(tc.pos, key, "names must match [a-zA-Z_][a-zA-Z0-9_]* (Alertmanager's rule)"));
        continue;
      }
      if (std::string_view(what) == "labels" &&
          std::find(kReservedLabels.begin(), kReservedLabels.end(), tc.name) !=
              kReservedLabels.end()) {
        errors.push_back(error_at(tc.pos, key,
                                  "kpid sets this label itself (alertname, kpi, slo, condition, "
                                  "severity and owner are reserved)"));
        continue;
      }
      auto t = Template::parse(tc.text, variables);
      if (!t) {
        errors.push_back(error_at(tc.pos, key, t.status().message()));
        continue;
      }
      out.emplace_back(tc.name, std::move(*t));
    }
  };
  compile(labels, "labels", rule.labels);
  std::vector<std::pair<std::string, Template>> configured;
  compile(annotations, "annotations", configured);
  auto add_default = [&](const std::string& name, const std::string& text) {
    bool given = std::any_of(configured.begin(), configured.end(),
                             [&](const auto& a) { return a.first == name; });
    if (!given && !text.empty()) {
      rule.annotations.emplace_back(name, *Template::parse(text, variables));
    }
  };
  add_default("summary", summary);
  add_default("description", description);
  for (auto& a : configured) rule.annotations.push_back(std::move(a));
}

std::span<const std::string_view> datasource_template_variables() {
  static constexpr std::array<std::string_view, 4> kNames = {"datasource", "error", "since",
                                                             "severity"};
  return kNames;
}

Rule datasource_down_rule(const std::string& name, DurationMs down_for,
                          DurationMs repeat_interval) {
  Rule rule;
  rule.kpi = std::string(kDatasourceSubjectPrefix) + name;
  rule.condition = Condition::kCrit;
  rule.name = "datasource_down";
  rule.severity = "critical";
  rule.timing = {down_for, 0};
  rule.repeat_interval = repeat_interval;
  // Fixed texts: both parse (no unknown variables), so value() holds.
  rule.annotations.emplace_back(
      "summary", *Template::parse("data source {{datasource}} has been failing since {{since}}",
                                  datasource_template_variables()));
  rule.annotations.emplace_back("description",
                                *Template::parse("{{error}}", datasource_template_variables()));
  return rule;
}

AlertingSetup compile_alerting(const config::Config& config) {
  AlertingSetup setup;
  for (const auto& kpi : config.kpis) {
    for (const auto& rc : kpi.alerts) {
      const size_t errors_before = setup.errors.size();
      const std::string section = "kpi." + kpi.id + ".alert." + rc.condition;
      Rule rule;
      rule.kpi = kpi.id;
      rule.condition = parse_condition(rc.condition).value_or(Condition::kCrit);
      rule.name = rc.name.empty() ? kpi.id + "_" + rc.condition : rc.name;
      rule.timing = {rc.for_duration, rc.clear_for};
      rule.hysteresis = rc.hysteresis;
      rule.severity = rc.severity.empty() ? default_severity(rule.condition) : rc.severity;
      rule.runbook_url = rc.runbook_url;
      rule.repeat_interval = rc.repeat_interval.value_or(config.alerting.repeat_interval);
      if ((rule.condition == Condition::kCrit || rule.condition == Condition::kWarn) && !kpi.band) {
        setup.errors.push_back(
            error_at(rc.pos, section + ".condition",
                     "condition \"" + rc.condition + "\" needs a [kpi.band] on KPI " + kpi.id));
      }
      if (rule.condition == Condition::kAnomalous && !kpi.baseline) {
        setup.errors.push_back(
            error_at(rc.pos, section + ".condition",
                     "condition \"anomalous\" needs a [kpi.baseline] on KPI " + kpi.id));
      }
      compile_templates(rc.labels, rc.annotations, kVariables, section,
                        default_summary(rule.condition, !kpi.unit.empty()),
                        kpi.description.empty() ? "" : "{{kpi.description}}", rule, setup.errors);
      if (setup.errors.size() == errors_before) setup.rules.push_back(std::move(rule));
    }
  }

  // One datasource_down rule per [[datasource]] (datasource_down_rule).
  for (const auto& d : config.datasources) {
    setup.rules.push_back(
        datasource_down_rule(d.name, d.down_for, config.alerting.repeat_interval));
  }

  for (const auto& rc : config.receivers) {
    Receiver r;
    r.name = rc.name;
    r.type = rc.type == "alertmanager" ? ReceiverType::kAlertmanager
             : rc.type == "pagerduty"  ? ReceiverType::kPagerDuty
                                       : ReceiverType::kWebhook;
    std::string url = rc.url;
    if (url.empty() && r.type == ReceiverType::kPagerDuty) {
      url = "https://events.pagerduty.com/v2/enqueue";
    }
    if (url.empty()) continue;  // the loader reported it ("is required")
    auto parsed = net::parse_url(url);
    if (!parsed) {
      setup.errors.push_back(error_at(rc.url_pos.line ? rc.url_pos : rc.pos,
                                      "receiver." + rc.name + ".url", parsed.status().message()));
      continue;
    }
    r.url = *parsed;
    if (r.type == ReceiverType::kAlertmanager) {
      // The base URL of an Alertmanager, as in Prometheus' alertmanager config.
      std::string base = r.url.target;
      while (!base.empty() && base.back() == '/') base.pop_back();
      r.url.target = base + "/api/v2/alerts";
    }
    r.severities = rc.severities;
    r.owners = rc.owners;
    r.timeout = rc.timeout;
    r.ca_file = rc.ca_file;
    r.routing_key = rc.routing_key;
    r.secret = rc.secret;
    r.resend_interval = rc.resend_interval;
    setup.receivers.push_back(std::move(r));
  }
  if (!config.alerting.external_url.empty()) {
    if (auto u = net::parse_url(config.alerting.external_url); !u) {
      setup.errors.push_back(error_at(config.alerting.external_url_pos, "alerting.external_url",
                                      u.status().message()));
    }
  }
  config::sort_errors(setup.errors);
  return setup;
}

}  // namespace kpid::alert
