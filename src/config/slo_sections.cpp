// [[slo]] tables: the SLI ([slo.events] or [slo.time_slices]), [[slo.alert]] burn-rate rules and
// [slo.okr]. What needs other parts of the config (a KPI that exists, PromQL that parses) is
// checked when the SLO module compiles them.
#include "loader.h"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

namespace kpid::config::detail {

namespace {

constexpr std::array kStatuses = {"ok", "warn", "crit", "anomalous", "no_data"};

}  // namespace

void Loader::load_slos(const toml::node& node, std::vector<slo::SloOptions>& out) {
  const toml::array* tables = node.as_array();
  if (tables == nullptr || !tables->is_array_of_tables()) {
    error(node, "slo", "expected [[slo]] tables");
    return;
  }
  for (const auto& element : *tables) {
    slo::SloOptions s;
    if (load_slo(*element.as_table(), out.size() + skipped_slos_, s)) {
      out.push_back(std::move(s));
    } else {
      ++skipped_slos_;
    }
  }
}

bool Loader::load_slo(const toml::table& t, size_t index, slo::SloOptions& s) {
  const size_t errors_before = errors_.size();
  s.pos = pos_of(t);
  const std::string section = load_id(t, "slo", index, "SLO", *slo_ids_, s.pos, s.id);
  check_keys(t, section,
             std::array{"id", "name", "description", "owner", "objective", "window", "interval",
                        "events", "time_slices", "alert", "default_alerts", "okr", "datasource"});
  get_string(t, section, "name", s.name);
  if (s.name.empty()) s.name = s.id;
  get_string(t, section, "description", s.description);
  get_string(t, section, "owner", s.owner);
  if (require(t, t, section, "objective")) {
    bool present = false;
    s.objective = get_number(t, section, "objective", 0, &present);
    s.objective_pos = pos_of(*t.get("objective"));
    if (present && !(s.objective > 0 && s.objective < 100)) {
      error(*t.get("objective"), section + ".objective",
            "must be a percentage between 0 and 100 (exclusive), e.g. 99.9");
    }
  }
  if (const toml::node* w = t.get("window")) {
    s.window_pos = pos_of(*w);
    if (!w->is_string()) {
      error(*w, section + ".window",
            "expected a string: a rolling duration such as \"28d\", or \"month\" or \"quarter\"");
    } else {
      s.window = *w->value<std::string>();
      if (s.window != "month" && s.window != "quarter") {
        auto length = parse_duration(s.window);
        if (!length || *length < 3'600'000 || *length > 400 * 86'400'000LL) {
          error(*w, section + ".window",
                "expected a rolling duration from 1h to 400d such as \"28d\", or \"month\" or "
                "\"quarter\"; got \"" +
                    s.window + "\"");
        }
      }
    }
  }
  get_duration(t, section, "interval", 1000, s.interval);
  if (const toml::node* source = t.get("datasource")) {
    get_string(t, section, "datasource", s.datasource);
    s.datasource_pos = pos_of(*source);
    if (source->is_string() && s.datasource.empty()) {
      error(*source, section + ".datasource",
            "must not be empty (leave it out to use the local store)");
    }
  }
  const bool has_events = t.contains("events");
  const bool has_slices = t.contains("time_slices");
  if (has_events == has_slices) {
    error(t, section,
          has_events ? "give one SLI: [slo.events] or [slo.time_slices], not both"
                     : "needs an SLI: [slo.events] (good or bad, and total) or "
                       "[slo.time_slices] (a KPI and its good statuses)");
  }
  if (const toml::table* e = has_events ? table_at(t, section, "events") : nullptr) {
    const std::string sub = section + ".events";
    slo::EventsOptions events;
    events.pos = pos_of(*e);
    check_keys(*e, sub, std::array{"good", "bad", "total"});
    auto expr = [&](const char* key, std::string& out, SourcePos& pos) {
      get_string(*e, sub, key, out);
      if (const toml::node* n = e->get(key)) {
        pos = pos_of(*n);
        if (n->is_string() && out.empty()) error(*n, sub + "." + key, "must not be empty");
      }
    };
    expr("good", events.good, events.good_pos);
    expr("bad", events.bad, events.bad_pos);
    expr("total", events.total, events.total_pos);
    if (e->contains("good") == e->contains("bad")) {
      error(*e, sub,
            e->contains("good") ? "give good or bad, not both"
                                : "needs good or bad: the counter of good (or of bad) events");
    }
    require(*e, *e, sub, "total");
    s.events = std::move(events);
  }
  if (const toml::table* ts = has_slices ? table_at(t, section, "time_slices") : nullptr) {
    const std::string sub = section + ".time_slices";
    slo::TimeSlicesOptions slices;
    slices.pos = pos_of(*ts);
    check_keys(*ts, sub, std::array{"kpi", "good", "expr", "op", "threshold", "no_data"});
    if (ts->contains("kpi") == ts->contains("expr")) {
      error(*ts, sub,
            ts->contains("kpi") ? "give kpi or expr, not both"
                                : "needs kpi (a KPI id and its good statuses) or expr (with op "
                                  "and threshold)");
    }
    if (ts->contains("kpi")) {
      get_string(*ts, sub, "kpi", slices.kpi);
      slices.kpi_pos = pos_of(*ts->get("kpi"));
    }
    if (ts->contains("expr")) {
      get_string(*ts, sub, "expr", slices.expr);
      slices.expr_pos = pos_of(*ts->get("expr"));
      if (require(*ts, *ts, sub, "op")) {
        get_choice(*ts, sub, "op", std::array{"lt", "lte", "gt", "gte"}, slices.op);
      }
      if (require(*ts, *ts, sub, "threshold")) {
        slices.threshold = get_number(*ts, sub, "threshold", 0);
      }
    } else {
      for (const char* key : {"op", "threshold"}) {
        if (const toml::node* n = ts->get(key)) {
          error(*n, sub + "." + key, "goes with expr, not with kpi");
        }
      }
    }
    if (const toml::node* g = ts->get("good")) {
      slices.good.clear();
      slices.good_pos = pos_of(*g);
      get_strings(*ts, sub, "good", slices.good);
      if (g->is_array() && slices.good.empty()) {
        error(*g, sub + ".good", "needs at least one status");
      }
      for (const auto& status : slices.good) {
        if (std::find(kStatuses.begin(), kStatuses.end(), status) == kStatuses.end()) {
          error(*g, sub + ".good",
                "unknown status \"" + status + "\"; expected ok, warn, crit, anomalous or no_data");
        }
      }
    }
    get_choice(*ts, sub, "no_data", std::array{"skip", "good", "bad"}, slices.no_data);
    s.time_slices = std::move(slices);
  }
  if (const toml::node* alerts = t.get("alert")) load_burn_alerts(*alerts, section, s.alerts);
  get_bool(t, section, "default_alerts", s.default_alerts);
  if (t.contains("okr")) {
    if (const toml::table* o = table_at(t, section, "okr")) {
      s.okr.emplace();
      load_slo_okr(*o, section + ".okr", *s.okr);
    }
  }
  return errors_.size() == errors_before;
}

void Loader::load_burn_alerts(const toml::node& node, const std::string& slo_section,
                              std::vector<slo::BurnAlertOptions>& out) {
  const toml::array* tables = node.as_array();
  if (tables == nullptr || !tables->is_array_of_tables()) {
    error(node, slo_section + ".alert", "expected [[slo.alert]] tables");
    return;
  }
  for (const auto& element : *tables) {
    const toml::table& t = *element.as_table();
    slo::BurnAlertOptions a;
    a.pos = pos_of(t);
    const std::string section = slo_section + ".alert[" + std::to_string(out.size()) + "]";
    check_keys(t, section,
               std::array{"name", "severity", "long_window", "short_window", "factor", "for",
                          "clear_for", "hysteresis", "repeat_interval", "receivers", "runbook_url",
                          "labels", "annotations"});
    get_string(t, section, "name", a.name);
    if (require(t, t, section, "severity"))
      get_choice(t, section, "severity", kSeverities, a.severity);
    if (require(t, t, section, "long_window")) {
      get_duration(t, section, "long_window", 60'000, a.long_window);
    }
    if (require(t, t, section, "short_window")) {
      get_duration(t, section, "short_window", 1'000, a.short_window);
    }
    if (a.long_window > 0 && a.short_window >= a.long_window && t.contains("short_window")) {
      error(*t.get("short_window"), section + ".short_window",
            "must be shorter than long_window (the short window makes the alert resolve soon "
            "after the burn stops)");
    }
    if (require(t, t, section, "factor")) {
      a.factor = get_number(t, section, "factor", 0);
      if (!(a.factor > 0)) error(*t.get("factor"), section + ".factor", "must be above 0");
    }
    get_duration(t, section, "for", 0, a.for_duration);
    get_duration(t, section, "clear_for", 0, a.clear_for);
    a.hysteresis = get_number(t, section, "hysteresis", 0);
    if (const toml::node* n = t.get("hysteresis"); n && a.hysteresis < 0) {
      error(*n, section + ".hysteresis", "must not be negative");
    }
    if (t.contains("repeat_interval")) {
      DurationMs repeat = 0;
      get_duration(t, section, "repeat_interval", 60'000, repeat);
      a.repeat_interval = repeat;
    }
    get_strings(t, section, "receivers", a.receivers);
    get_string(t, section, "runbook_url", a.runbook_url);
    load_templates(t, section, "labels", a.labels);
    load_templates(t, section, "annotations", a.annotations);
    out.push_back(std::move(a));
  }
}

void Loader::load_slo_okr(const toml::table& t, const std::string& section, slo::SloOkrOptions& c) {
  c.pos = pos_of(t);
  check_keys(t, section,
             std::array{"enabled", "on", "after", "objective", "budget_target", "burn_target",
                        "related", "period", "graduate_after"});
  get_bool(t, section, "enabled", c.enabled);
  if (const toml::node* on = t.get("on")) {
    c.on.clear();
    get_strings(t, section, "on", c.on);
    for (const auto& trigger : c.on) {
      if (trigger != "exhausted" && trigger != "projected") {
        error(*on, section + ".on",
              "unknown trigger \"" + trigger + "\"; expected exhausted or projected");
      }
    }
    if (on->is_array() && c.on.empty()) error(*on, section + ".on", "needs at least one trigger");
  }
  get_duration(t, section, "after", 0, c.after);
  get_string(t, section, "objective", c.objective);
  if (const toml::node* n = t.get("objective")) c.objective_pos = pos_of(*n);
  c.budget_target = get_number(t, section, "budget_target", c.budget_target);
  if (const toml::node* n = t.get("budget_target");
      n && !(c.budget_target > 0 && c.budget_target <= 100)) {
    error(*n, section + ".budget_target",
          "must be a percentage of the budget, above 0, at most 100");
  }
  c.burn_target = get_number(t, section, "burn_target", c.burn_target);
  if (const toml::node* n = t.get("burn_target"); n && !(c.burn_target > 0)) {
    error(*n, section + ".burn_target", "must be above 0");
  }
  get_strings(t, section, "related", c.related);
  if (const toml::node* n = t.get("related")) {
    c.related_pos = pos_of(*n);
    if (c.related.size() > 3) {
      error(*n, section + ".related",
            "at most 3 related KPIs: with the budget and burn-rate key results an OKR has 2-5");
    }
  }
  get_choice(t, section, "period", std::array{"month", "quarter", "half", "year"}, c.period);
  get_duration(t, section, "graduate_after", 0, c.graduate_after);
}

}  // namespace kpid::config::detail
