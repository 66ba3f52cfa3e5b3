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

// Labels kpid sets itself; a rule may not override them.
constexpr std::array<std::string_view, 5> kReservedLabels = {"alertname", "kpi", "condition",
                                                             "severity", "owner"};

std::string default_severity(Condition c) { return c == Condition::kCrit ? "critical" : "warning"; }

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
  }
  return {};
}

config::ConfigError error_at(const SourcePos& pos, std::string key, std::string message) {
  return {pos.file, pos.line, pos.column, std::move(key), std::move(message)};
}

}  // namespace

std::span<const std::string_view> template_variables() { return kVariables; }

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
      auto compile_templates = [&](const std::vector<kpi::TemplateOptions>& in, const char* what,
                                   std::vector<std::pair<std::string, Template>>& out) {
        for (const auto& tc : in) {
          const std::string key = section + "." + what + "." + tc.name;
          if (!is_label_name(tc.name)) {
            setup.errors.push_back(error_at(
                tc.pos, key, "names must match [a-zA-Z_][a-zA-Z0-9_]* (Alertmanager's rule)"));
            continue;
          }
          if (std::string_view(what) == "labels" &&
              std::find(kReservedLabels.begin(), kReservedLabels.end(), tc.name) !=
                  kReservedLabels.end()) {
            setup.errors.push_back(error_at(tc.pos, key,
                                            "kpid sets this label itself (alertname, kpi, "
                                            "condition, severity and owner are reserved)"));
            continue;
          }
          auto t = Template::parse(tc.text, kVariables);
          if (!t) {
            setup.errors.push_back(error_at(tc.pos, key, t.status().message()));
            continue;
          }
          out.emplace_back(tc.name, std::move(*t));
        }
      };
      compile_templates(rc.labels, "labels", rule.labels);
      std::vector<std::pair<std::string, Template>> annotations;
      compile_templates(rc.annotations, "annotations", annotations);
      auto add_default = [&](const std::string& name, const std::string& text) {
        bool configured = std::any_of(annotations.begin(), annotations.end(),
                                      [&](const auto& a) { return a.first == name; });
        if (!configured && !text.empty()) {
          rule.annotations.emplace_back(name, *Template::parse(text, kVariables));
        }
      };
      add_default("summary", default_summary(rule.condition, !kpi.unit.empty()));
      add_default("description", kpi.description.empty() ? "" : "{{kpi.description}}");
      for (auto& a : annotations) rule.annotations.push_back(std::move(a));
      if (setup.errors.size() == errors_before) setup.rules.push_back(std::move(rule));
    }
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
