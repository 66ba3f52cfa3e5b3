// [[kpi]] tables: the value, band, baseline, [[kpi.alert]] rules and [kpi.okr].
#include "loader.h"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace kpid::config::detail {

void Loader::load_include(const toml::node& node, const std::string& key,
                          std::vector<std::string>& out) {
  const toml::array* patterns = node.as_array();
  if (patterns == nullptr) {
    error(node, key, "expected an array of file patterns, e.g. [\"kpis.d/*.toml\"]");
    return;
  }
  for (const auto& p : *patterns) {
    if (!p.is_string() || p.value<std::string>()->empty()) {
      error(p, key, "expected a non-empty string (a file pattern)");
      continue;
    }
    out.push_back(*p.value<std::string>());
  }
}

void Loader::load_kpis(const toml::node& node, std::vector<kpi::KpiOptions>& out) {
  const toml::array* tables = node.as_array();
  if (tables == nullptr || !tables->is_array_of_tables()) {
    error(node, "kpi", "expected [[kpi]] tables");
    return;
  }
  for (const auto& element : *tables) {
    kpi::KpiOptions kpi;
    if (load_kpi(*element.as_table(), out.size() + skipped_kpis_, kpi)) {
      out.push_back(std::move(kpi));
    } else {
      ++skipped_kpis_;
    }
  }
}

std::string Loader::load_id(const toml::table& t, const std::string& table, size_t index,
                            const char* what, std::map<std::string, SourcePos>& ids,
                            const SourcePos& pos, std::string& id) {
  static constexpr std::string_view kIdChars =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
  std::string section = table + "[" + std::to_string(index) + "]";
  const toml::node* node = t.get("id");
  if (node == nullptr) {
    error(t, section + ".id", "is required");
    return section;
  }
  if (!node->is_string()) {
    error(*node, section + ".id", "expected a string");
    return section;
  }
  id = *node->value<std::string>();
  section = table + "." + id;
  if (id.empty() || id.size() > 128 || id.find_first_not_of(kIdChars) != std::string::npos) {
    error(*node, section + ".id",
          "must be 1-128 characters of letters, digits, '_', '.' and '-' (it appears in URLs "
          "and metric labels)");
  } else if (table == "slo" && id == "rules") {
    error(*node, section + ".id",
          "\"rules\" is reserved: GET /api/v1/slos/rules serves every SLO's Prometheus rules");
  } else if (auto [it, fresh] = ids.emplace(id, pos); !fresh) {
    error(*node, section + ".id",
          "duplicate " + std::string(what) + " id; first defined at " + it->second.file + ":" +
              std::to_string(it->second.line));
  }
  return section;
}

bool Loader::load_kpi(const toml::table& t, size_t index, kpi::KpiOptions& k) {
  const size_t errors_before = errors_.size();
  k.pos = pos_of(t);
  const std::string section = load_id(t, "kpi", index, "KPI", *ids_, k.pos, k.id);
  check_keys(
      t, section,
      std::array{"id", "name", "description", "owner", "unit", "review", "direction", "value",
                 "band", "baseline", "stale_after", "interval", "alert", "okr", "datasource"});
  get_string(t, section, "name", k.name);
  if (k.name.empty()) k.name = k.id;
  get_string(t, section, "description", k.description);
  get_string(t, section, "owner", k.owner);
  get_string(t, section, "unit", k.unit);
  get_choice(t, section, "review", std::array{"daily", "weekly", "monthly"}, k.review);
  bool direction_ok =
      require(t, t, section, "direction") &&
      get_choice(t, section, "direction",
                 std::array{"higher_is_better", "lower_is_better", "in_range"}, k.direction);
  if (require(t, t, section, "value")) {
    if (const toml::table* v = table_at(t, section, "value")) {
      load_value(*v, section + ".value", k.value);
    }
  }
  if (t.contains("band")) {
    if (const toml::table* b = table_at(t, section, "band"); b && direction_ok) {
      k.band.emplace();
      load_band(*b, section + ".band", k.direction == "in_range", *k.band);
    }
  }
  if (t.contains("baseline")) {
    if (const toml::table* b = table_at(t, section, "baseline")) {
      k.baseline.emplace();
      load_baseline(*b, section + ".baseline", *k.baseline);
    }
  }
  get_duration(t, section, "stale_after", 1000, k.stale_after);
  get_duration(t, section, "interval", 1000, k.interval);
  if (const toml::node* source = t.get("datasource")) {
    get_string(t, section, "datasource", k.datasource);
    k.datasource_pos = pos_of(*source);
  }
  if (const toml::node* alerts = t.get("alert")) load_alert_rules(*alerts, section, k.alerts);
  if (t.contains("okr")) {
    if (const toml::table* o = table_at(t, section, "okr")) {
      k.okr.emplace();
      load_kpi_okr(*o, section + ".okr", *k.okr);
    }
  }
  return errors_.size() == errors_before;
}

void Loader::load_alert_rules(const toml::node& node, const std::string& kpi_section,
                              std::vector<kpi::AlertRuleOptions>& out) {
  const toml::array* tables = node.as_array();
  if (tables == nullptr || !tables->is_array_of_tables()) {
    error(node, kpi_section + ".alert", "expected [[kpi.alert]] tables");
    return;
  }
  for (const auto& element : *tables) {
    const toml::table& t = *element.as_table();
    kpi::AlertRuleOptions rule;
    rule.pos = pos_of(t);
    std::string section = kpi_section + ".alert[" + std::to_string(out.size()) + "]";
    check_keys(t, section,
               std::array{"condition", "name", "for", "clear_for", "hysteresis", "severity",
                          "runbook_url", "repeat_interval", "labels", "annotations"});
    if (require(t, t, section, "condition") &&
        get_choice(t, section, "condition", kConditions, rule.condition)) {
      section = kpi_section + ".alert." + rule.condition;
      for (const auto& other : out) {
        if (other.condition == rule.condition) {
          error(*t.get("condition"), section + ".condition",
                "a KPI has at most one alert rule per condition; another is at line " +
                    std::to_string(other.pos.line));
        }
      }
    }
    get_string(t, section, "name", rule.name);
    get_duration(t, section, "for", 0, rule.for_duration);
    get_duration(t, section, "clear_for", 0, rule.clear_for);
    rule.hysteresis = get_number(t, section, "hysteresis", 0);
    if (const toml::node* n = t.get("hysteresis"); n && rule.hysteresis < 0) {
      error(*n, section + ".hysteresis", "must not be negative");
    }
    get_choice(t, section, "severity", kSeverities, rule.severity);
    get_string(t, section, "runbook_url", rule.runbook_url);
    if (t.contains("repeat_interval")) {
      DurationMs repeat = 0;
      get_duration(t, section, "repeat_interval", 60'000, repeat);
      rule.repeat_interval = repeat;
    }
    load_templates(t, section, "labels", rule.labels);
    load_templates(t, section, "annotations", rule.annotations);
    out.push_back(std::move(rule));
  }
}

void Loader::load_templates(const toml::table& t, const std::string& section, const char* key,
                            std::vector<kpi::TemplateOptions>& out) {
  const toml::table* table = table_at(t, section, key);
  if (table == nullptr) return;
  for (const auto& [name, value] : *table) {
    std::string full = section + "." + key + "." + std::string(name.str());
    if (!value.is_string()) {
      error(value, full, "expected a string (a template such as \"{{kpi}} is {{value}}\")");
      continue;
    }
    out.push_back({std::string(name.str()), *value.value<std::string>(), pos_of(value)});
  }
}

void Loader::load_kpi_okr(const toml::table& t, const std::string& section,
                          kpi::OkrDraftOptions& c) {
  c.pos = pos_of(t);
  check_keys(t, section,
             std::array{"enabled", "after", "severities", "objective", "key_result", "guardrail",
                        "target", "related", "period", "graduate_after"});
  get_bool(t, section, "enabled", c.enabled);
  get_duration(t, section, "after", 0, c.after);
  if (t.contains("severities")) {
    c.severities.clear();
    get_strings(t, section, "severities", c.severities);
    for (const auto& s : c.severities) {
      if (std::find(kSeverities.begin(), kSeverities.end(), s) == kSeverities.end()) {
        error(*t.get("severities"), section + ".severities",
              "unknown severity \"" + s + "\"; expected critical, error, warning or info");
      }
    }
  }
  auto text = [&](const char* key, std::string& out, SourcePos& pos) {
    get_string(t, section, key, out);
    if (const toml::node* n = t.get(key)) pos = pos_of(*n);
  };
  text("objective", c.objective, c.objective_pos);
  text("key_result", c.key_result, c.key_result_pos);
  text("guardrail", c.guardrail, c.guardrail_pos);
  get_choice(t, section, "target", std::array{"band", "baseline"}, c.target);
  get_strings(t, section, "related", c.related);
  if (const toml::node* n = t.get("related")) c.related_pos = pos_of(*n);
  if (c.related.empty() || c.related.size() > 4) {
    error(t.contains("related") ? *t.get("related") : static_cast<const toml::node&>(t),
          section + ".related",
          "needs 1 to 4 related KPI ids: their guardrails and the KPI's own key result make "
          "the 2-5 key results of an OKR");
  }
  get_choice(t, section, "period", std::array{"month", "quarter", "half", "year"}, c.period);
  get_duration(t, section, "graduate_after", 0, c.graduate_after);
}

void Loader::load_value(const toml::table& t, const std::string& section, kpi::ValueOptions& v) {
  if (t.contains("expr")) {
    // Any PromQL: the shorthand keys would say something else about the same value.
    check_keys(t, section, std::array{"expr"});
    get_string(t, section, "expr", v.expr);
    v.expr_pos = pos_of(*t.get("expr"));
    if (t.get("expr")->is_string() && v.expr.empty()) {
      error(*t.get("expr"), section + ".expr", "must not be empty");
    }
    return;
  }
  if (t.contains("numerator") || t.contains("denominator")) {
    v.ratio = true;
    check_keys(t, section, std::array{"numerator", "denominator", "scale"});
    if (require(t, t, section, "numerator")) {
      if (const toml::table* n = table_at(t, section, "numerator")) {
        load_term(*n, section + ".numerator", v.term);
      }
    }
    if (require(t, t, section, "denominator")) {
      if (const toml::table* d = table_at(t, section, "denominator")) {
        load_term(*d, section + ".denominator", v.denominator);
      }
    }
    v.scale = get_number(t, section, "scale", 1);
    if (const toml::node* n = t.get("scale"); n && v.scale == 0) {
      error(*n, section + ".scale", "must not be 0");
    }
    return;
  }
  if (t.contains("scale")) {
    error(*t.get("scale"), section + ".scale",
          "applies only to a ratio (value.numerator and value.denominator)");
  }
  load_term(t, section, v.term);
}

void Loader::load_term(const toml::table& t, const std::string& section, kpi::TermOptions& term) {
  check_keys(t, section, std::array{"selector", "over_time", "quantile", "window", "across"});
  if (require(t, t, section, "selector")) {
    get_string(t, section, "selector", term.selector);
    term.selector_pos = pos_of(*t.get("selector"));
    if (t.get("selector")->is_string() && term.selector.empty()) {
      error(*t.get("selector"), section + ".selector", "must not be empty");
    }
  }
  if (require(t, t, section, "over_time")) {
    get_choice(t, section, "over_time",
               std::array{"avg", "min", "max", "sum", "last", "rate", "increase", "quantile"},
               term.over_time);
  }
  if (term.over_time == "quantile") {
    if (require(t, t, section, "quantile")) {
      term.quantile = get_number(t, section, "quantile", 0.5);
      if (term.quantile < 0 || term.quantile > 1) {
        error(*t.get("quantile"), section + ".quantile", "must be between 0 and 1");
      }
    }
  } else if (const toml::node* q = t.get("quantile")) {
    error(*q, section + ".quantile", "applies only to over_time = \"quantile\"");
  }
  get_duration(t, section, "window", 1000, term.window);
  get_choice(t, section, "across", std::array{"sum", "avg", "min", "max"}, term.across);
}

void Loader::load_band(const toml::table& t, const std::string& section, bool in_range,
                       kpi::BandOptions& b) {
  b.pos = pos_of(t);
  bool present = false;
  double target = get_number(t, section, "target", 0, &present);
  if (present) b.target = target;
  if (in_range) {
    check_keys(t, section, std::array{"target", "warn_low", "crit_low", "warn_high", "crit_high"});
    for (const char* key : {"warn_low", "crit_low", "warn_high", "crit_high"}) {
      if (!t.contains(key)) {
        error(t, section + "." + key, "is required for direction = \"in_range\"");
      }
    }
    b.warn_low = get_number(t, section, "warn_low", 0);
    b.crit_low = get_number(t, section, "crit_low", 0);
    b.warn_high = get_number(t, section, "warn_high", 0);
    b.crit_high = get_number(t, section, "crit_high", 0);
  } else {
    check_keys(t, section, std::array{"target", "warn", "crit"});
    for (const char* key : {"warn", "crit"}) {
      if (!t.contains(key)) error(t, section + "." + key, "is required");
    }
    b.warn = get_number(t, section, "warn", 0);
    b.crit = get_number(t, section, "crit", 0);
  }
}

void Loader::load_baseline(const toml::table& t, const std::string& section,
                           kpi::BaselineOptions& b) {
  check_keys(t, section,
             std::array{"method", "window", "quantiles", "k", "alpha", "min_history", "refresh"});
  get_choice(t, section, "method", std::array{"quantile", "stddev", "ewma", "seasonal"}, b.method);
  constexpr DurationMs kHour = 3'600'000;
  constexpr DurationMs kDay = 24 * kHour;
  get_duration(t, section, "window", kHour, b.window);
  if (const toml::node* n = t.get("window"); n && b.window > 366 * kDay) {
    error(*n, section + ".window", "must be at most 366d");
  }
  if (const toml::node* n = t.get("window"); b.method == "seasonal" && b.window < 14 * kDay) {
    error(n ? *n : static_cast<const toml::node&>(t), section + ".window",
          "method = \"seasonal\" needs a window of at least 2 weeks (\"14d\")");
  }
  if (const toml::node* n = t.get("quantiles")) {
    const toml::array* q = n->as_array();
    if (b.method != "quantile") {
      error(*n, section + ".quantiles", "applies only to method = \"quantile\"");
    } else if (q == nullptr || q->size() != 2 || !(*q)[0].is_number() || !(*q)[1].is_number()) {
      error(*n, section + ".quantiles", "expected two numbers, e.g. [0.05, 0.95]");
    } else {
      b.quantile_low = number_of((*q)[0]);
      b.quantile_high = number_of((*q)[1]);
      if (!(b.quantile_low >= 0 && b.quantile_low < b.quantile_high && b.quantile_high <= 1)) {
        error(*n, section + ".quantiles", "expected 0 <= low < high <= 1");
      }
    }
  }
  if (const toml::node* n = t.get("k")) {
    b.k = get_number(t, section, "k", b.k);
    if (b.method == "quantile") {
      error(*n, section + ".k", "applies only to methods stddev, ewma and seasonal");
    } else if (!(b.k > 0)) {
      error(*n, section + ".k", "must be above 0");
    }
  }
  if (const toml::node* n = t.get("alpha")) {
    b.alpha = get_number(t, section, "alpha", b.alpha);
    if (b.method != "ewma") {
      error(*n, section + ".alpha", "applies only to method = \"ewma\"");
    } else if (!(b.alpha > 0 && b.alpha <= 1)) {
      error(*n, section + ".alpha", "must be above 0 and at most 1");
    }
  }
  get_duration(t, section, "min_history", 0, b.min_history);
  if (const toml::node* n = t.get("min_history"); n && b.min_history > b.window) {
    error(*n, section + ".min_history", "must not exceed the baseline window");
  }
  get_duration(t, section, "refresh", 60'000, b.refresh);
}

}  // namespace kpid::config::detail
