#include "kpid/slo/definition.h"

#include <algorithm>
#include <set>

#include "kpid/query/promql.h"

namespace kpid::slo {

namespace {

constexpr DurationMs kDay = 86'400'000;
constexpr DurationMs kDefaultInterval = 30'000;
// The burn-rate windows the ledger serves exactly from its per-evaluation entries.
constexpr DurationMs kLongestCalendarWindow = 92 * kDay;

config::ConfigError error_at(const SourcePos& pos, std::string key, std::string message) {
  return {pos.file, pos.line, pos.column, std::move(key), std::move(message)};
}

std::optional<kpi::Health> parse_health(std::string_view text) {
  for (auto h : {kpi::Health::kOk, kpi::Health::kWarn, kpi::Health::kCrit, kpi::Health::kAnomalous,
                 kpi::Health::kNoData, kpi::Health::kUnknown}) {
    if (kpi::health_name(h) == text) return h;
  }
  return std::nullopt;
}

// An events expression: PromQL that yields series (the counters), not a scalar or range.
bool check_counter_expr(const std::string& text, const SourcePos& pos, const std::string& key,
                        std::vector<config::ConfigError>& errors) {
  auto parsed = query::parse_promql(text);
  if (!parsed) {
    errors.push_back(error_at(pos, key, "invalid PromQL: " + parsed.status().message()));
    return false;
  }
  if ((*parsed)->type != query::ValueType::kVector) {
    errors.push_back(
        error_at(pos, key,
                 std::string("must be an instant vector of counters (a selector such as "
                             "http_requests_total{code=~\"5..\"}, or a sum of them), got ") +
                     query::documented_type((*parsed)->type)));
    return false;
  }
  if (kpi::expr_selectors(**parsed).empty()) {
    errors.push_back(error_at(pos, key, "reads no series: the events must come from counters"));
    return false;
  }
  return true;
}

}  // namespace

std::string counted_selector(std::string_view expr) {
  auto parsed = query::parse_promql(expr);
  if (!parsed) return "";
  auto plain = [](const query::Expr& e) {
    const auto* s = std::get_if<query::VectorSelector>(&e.node);
    return s != nullptr && !s->has_offset && !s->at.present();
  };
  const query::Expr* e = parsed->get();
  if (plain(*e)) return std::string(expr);  // as written
  while (const auto* p = std::get_if<query::ParenExpr>(&e->node)) e = p->expr.get();
  if (plain(*e)) return query::print_expr(*e);
  if (const auto* a = std::get_if<query::AggregateExpr>(&e->node);
      a != nullptr && a->op == query::AggregateOp::kSum) {
    const query::Expr* inner = a->expr.get();
    while (const auto* p = std::get_if<query::ParenExpr>(&inner->node)) inner = p->expr.get();
    if (plain(*inner)) return query::print_expr(*inner);
  }
  return "";
}

std::string_view sli_kind_name(SliKind k) {
  return k == SliKind::kEvents ? "events" : "time_slices";
}

std::string default_alert_name(std::string_view id, DurationMs long_window,
                               DurationMs short_window) {
  return std::string(id) + "_burn_" + format_duration(long_window) + "_" +
         format_duration(short_window);
}

std::vector<BurnAlert> default_alerts(std::string_view id) {
  auto make = [&](DurationMs long_window, DurationMs short_window, double factor,
                  const char* severity) {
    BurnAlert a;
    a.name = default_alert_name(id, long_window, short_window);
    a.severity = severity;
    a.long_window = long_window;
    a.short_window = short_window;
    a.factor = factor;
    return a;
  };
  return {make(3'600'000, 300'000, 14.4, "critical"), make(21'600'000, 1'800'000, 6, "critical"),
          make(3 * kDay, 21'600'000, 1, "warning")};
}

Definition::Span Definition::window_at(TimestampMs now) const {
  if (!calendar.empty()) {
    const auto [start, end] = calendar_period(calendar == "quarter" ? 3 : 1, now);
    return {start, end};
  }
  return {now - window, now};
}

DurationMs Definition::longest_window() const {
  DurationMs longest = calendar.empty() ? window : kLongestCalendarWindow;
  longest = std::max(longest, kBurnWindows[std::size(kBurnWindows) - 1]);
  for (const auto& a : alerts) longest = std::max(longest, a.long_window);
  return longest;
}

CompileResult compile(const config::Config& config, const std::vector<kpi::Definition>& kpis) {
  CompileResult result;
  std::set<std::string> receivers;
  for (const auto& r : config.receivers) receivers.insert(r.name);
  for (const SloOptions& o : config.slos) {
    const size_t errors_before = result.errors.size();
    const std::string section = "slo." + o.id;
    Definition d;
    d.id = o.id;
    d.name = o.name.empty() ? o.id : o.name;
    d.description = o.description;
    d.owner = o.owner;
    d.objective = o.objective;
    d.window_text = o.window;
    if (o.window == "month" || o.window == "quarter") {
      d.calendar = o.window;
    } else if (auto length = parse_duration(o.window)) {
      d.window = *length;
    }
    d.interval = o.interval > 0 ? o.interval : kDefaultInterval;
    d.origin = o.origin;
    d.pos = o.pos;
    d.okr = o.okr;
    d.datasource = o.datasource;
    if (o.events) {
      d.kind = SliKind::kEvents;
      const EventsOptions& e = *o.events;
      if (!e.good.empty() &&
          check_counter_expr(e.good, e.good_pos, section + ".events.good", result.errors)) {
        d.good = e.good;
      }
      if (!e.bad.empty() &&
          check_counter_expr(e.bad, e.bad_pos, section + ".events.bad", result.errors)) {
        d.bad = e.bad;
      }
      if (check_counter_expr(e.total, e.total_pos, section + ".events.total", result.errors)) {
        d.total = e.total;
      }
    } else if (o.time_slices) {
      d.kind = SliKind::kTimeSlices;
      const TimeSlicesOptions& t = *o.time_slices;
      d.no_data = t.no_data;
      if (!t.kpi.empty()) {
        d.kpi = t.kpi;
        const bool known = std::any_of(kpis.begin(), kpis.end(),
                                       [&](const kpi::Definition& k) { return k.id == t.kpi; });
        if (!known) {
          result.errors.push_back(
              error_at(t.kpi_pos, section + ".time_slices.kpi", "unknown KPI \"" + t.kpi + "\""));
        }
        if (!o.datasource.empty()) {
          result.errors.push_back(error_at(o.datasource_pos, section + ".datasource",
                                           "a time-slice SLO on a KPI follows the KPI's status; "
                                           "set datasource on the KPI instead"));
        }
        for (const auto& g : t.good) {
          if (auto h = parse_health(g)) d.good_statuses.push_back(*h);
        }
      } else {
        auto parsed = query::parse_promql(t.expr);
        if (!parsed) {
          result.errors.push_back(error_at(t.expr_pos, section + ".time_slices.expr",
                                           "invalid PromQL: " + parsed.status().message()));
        } else if (std::string problem = kpi::value_expr_problem(**parsed); !problem.empty()) {
          result.errors.push_back(error_at(t.expr_pos, section + ".time_slices.expr",
                                           problem + " (each slice compares one number with "
                                                     "the threshold)"));
        }
        d.slice_expr = t.expr;
        d.slice_op = t.op;
        d.slice_threshold = t.threshold;
      }
    }
    std::vector<BurnAlertOptions> alert_options = o.alerts;
    if (alert_options.empty() && o.default_alerts) {
      for (const BurnAlert& a : default_alerts(d.id)) {
        BurnAlertOptions ao;
        ao.name = a.name;
        ao.severity = a.severity;
        ao.long_window = a.long_window;
        ao.short_window = a.short_window;
        ao.factor = a.factor;
        ao.pos = o.pos;
        alert_options.push_back(std::move(ao));
      }
    }
    std::set<std::string> names;
    std::vector<alert::Rule> rules;
    for (size_t i = 0; i < alert_options.size(); ++i) {
      const BurnAlertOptions& ao = alert_options[i];
      const std::string key = section + ".alert[" + std::to_string(i) + "]";
      BurnAlert a;
      a.name =
          ao.name.empty() ? default_alert_name(d.id, ao.long_window, ao.short_window) : ao.name;
      a.severity = ao.severity.empty() ? "critical" : ao.severity;
      a.long_window = ao.long_window;
      a.short_window = ao.short_window;
      a.factor = ao.factor;
      a.for_duration = ao.for_duration;
      a.clear_for = ao.clear_for;
      a.hysteresis = ao.hysteresis;
      a.receivers = ao.receivers;
      if (!names.insert(a.name).second) {
        result.errors.push_back(
            error_at(ao.pos, key + ".name", "duplicate alert name \"" + a.name + "\" in the SLO"));
      }
      if (a.short_window < d.interval) {
        result.errors.push_back(
            error_at(ao.pos, key + ".short_window",
                     "must be at least the SLO's interval (" + format_duration(d.interval) + ")"));
      }
      for (const auto& r : a.receivers) {
        if (!receivers.contains(r)) {
          result.errors.push_back(
              error_at(ao.pos, key + ".receivers", "unknown receiver \"" + r + "\""));
        }
      }
      alert::Rule rule;
      rule.slo = d.id;
      rule.condition = alert::Condition::kBurnRate;
      rule.name = a.name;
      rule.timing = {a.for_duration, a.clear_for};
      rule.hysteresis = a.hysteresis;
      rule.severity = a.severity;
      rule.runbook_url = ao.runbook_url;
      rule.repeat_interval = ao.repeat_interval.value_or(config.alerting.repeat_interval);
      rule.long_window = a.long_window;
      rule.short_window = a.short_window;
      rule.factor = a.factor;
      rule.receivers = a.receivers;
      alert::compile_templates(ao.labels, ao.annotations, alert::slo_template_variables(), key,
                               alert::default_summary(alert::Condition::kBurnRate, false),
                               d.description.empty() ? "" : "{{slo.description}}", rule,
                               result.errors);
      d.alerts.push_back(std::move(a));
      rules.push_back(std::move(rule));
    }
    if (d.okr) {
      for (const auto& k : d.okr->related) {
        const bool known = std::any_of(kpis.begin(), kpis.end(),
                                       [&](const kpi::Definition& def) { return def.id == k; });
        if (!known) {
          result.errors.push_back(
              error_at(d.okr->related_pos, section + ".okr.related", "unknown KPI \"" + k + "\""));
        }
      }
    }
    if (result.errors.size() != errors_before) continue;
    result.slos.push_back(std::move(d));
    for (auto& r : rules) result.rules.push_back(std::move(r));
  }
  return result;
}

}  // namespace kpid::slo
