#include "kpid/kpi/definition.h"

#include <map>
#include <sstream>

#include "kpid/query/selector.h"

namespace kpid::kpi {

namespace {

std::string number(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

std::optional<BaselineMethod> parse_method(std::string_view text) {
  for (BaselineMethod m : {BaselineMethod::kQuantile, BaselineMethod::kStddev,
                           BaselineMethod::kEwma, BaselineMethod::kSeasonal}) {
    if (baseline_method_name(m) == text) return m;
  }
  return std::nullopt;
}

config::ConfigError error_at(const SourcePos& pos, std::string key, std::string message) {
  return {pos.file, pos.line, pos.column, std::move(key), std::move(message)};
}

// Parses a term's selector; the error points at the selector's position in the file.
bool compile_term(const kpi::TermOptions& c, const std::string& key, Term& term,
                  std::vector<config::ConfigError>& errors) {
  auto matchers = query::parse_selector(c.selector);
  if (!matchers) {
    errors.push_back(error_at(c.selector_pos, key + ".selector",
                              "invalid selector: " + matchers.status().message()));
    return false;
  }
  term.selector = c.selector;
  term.matchers = std::move(matchers).value();
  term.over_time = c.over_time;
  term.quantile = c.quantile;
  term.window = c.window;
  term.across = c.across;
  // The compiled expression must parse: it is what the evaluator runs.
  if (auto parsed = query::parse_promql(term.promql(term.window)); !parsed) {
    errors.push_back(error_at(c.selector_pos, key + ".selector",
                              "cannot be evaluated: " + parsed.status().message()));
    return false;
  }
  return true;
}

}  // namespace

std::string_view baseline_method_name(BaselineMethod m) {
  switch (m) {
    case BaselineMethod::kQuantile: return "quantile";
    case BaselineMethod::kStddev: return "stddev";
    case BaselineMethod::kEwma: return "ewma";
    case BaselineMethod::kSeasonal: return "seasonal";
  }
  return "?";
}

std::string Term::promql(DurationMs range) const {
  const std::string matrix = selector + "[" + format_duration(range) + "]";
  std::string inner;
  if (over_time == "rate" || over_time == "increase") {
    inner = over_time + "(" + matrix + ")";
  } else if (over_time == "quantile") {
    inner = "quantile_over_time(" + number(quantile) + ", " + matrix + ")";
  } else {
    inner = over_time + "_over_time(" + matrix + ")";
  }
  return across + "(" + inner + ")";
}

DurationMs Definition::window() const {
  return denominator ? std::max(numerator.window, denominator->window) : numerator.window;
}

std::string Definition::promql() const {
  if (!denominator) return numerator.promql(numerator.window);
  std::string out = "(" + numerator.promql(numerator.window) + ") / (" +
                    denominator->promql(denominator->window) + ")";
  if (scale != 1) out += " * " + number(scale);
  return out;
}

bool Definition::same_value(const Definition& o) const { return promql() == o.promql(); }

bool operator==(const Band& a, const Band& b) {
  return a.target == b.target && a.warn == b.warn && a.crit == b.crit && a.warn_low == b.warn_low &&
         a.crit_low == b.crit_low && a.warn_high == b.warn_high && a.crit_high == b.crit_high;
}

CompileResult compile(const std::vector<kpi::KpiOptions>& kpis) {
  CompileResult result;
  for (const auto& c : kpis) {
    const size_t errors_before = result.errors.size();
    const std::string key = "kpi." + c.id;
    Definition d;
    d.id = c.id;
    d.name = c.name;
    d.description = c.description;
    d.owner = c.owner;
    d.unit = c.unit;
    d.review = c.review;
    auto direction = parse_direction(c.direction);
    if (!direction) {
      result.errors.push_back(error_at(c.pos, key + ".direction", "unknown direction"));
      continue;
    }
    d.direction = *direction;
    if (c.value.ratio) {
      compile_term(c.value.term, key + ".value.numerator", d.numerator, result.errors);
      d.denominator.emplace();
      compile_term(c.value.denominator, key + ".value.denominator", *d.denominator, result.errors);
      d.scale = c.value.scale;
    } else {
      compile_term(c.value.term, key + ".value", d.numerator, result.errors);
    }
    if (c.band) {
      Band b;
      b.target = c.band->target;
      b.warn = c.band->warn;
      b.crit = c.band->crit;
      b.warn_low = c.band->warn_low;
      b.crit_low = c.band->crit_low;
      b.warn_high = c.band->warn_high;
      b.crit_high = c.band->crit_high;
      if (std::string problem = check_band(d.direction, b); !problem.empty()) {
        result.errors.push_back(error_at(c.band->pos, key + ".band", problem));
      }
      d.band = b;
    }
    if (c.baseline) {
      BaselineSpec s;
      auto method = parse_method(c.baseline->method);
      if (!method) {
        result.errors.push_back(error_at(c.pos, key + ".baseline.method", "unknown method"));
      } else {
        s.method = *method;
      }
      s.window = c.baseline->window;
      s.quantile_low = c.baseline->quantile_low;
      s.quantile_high = c.baseline->quantile_high;
      s.k = c.baseline->k;
      s.alpha = c.baseline->alpha;
      s.min_history = c.baseline->min_history;
      s.refresh = c.baseline->refresh;
      d.baseline = s;
    }
    d.stale_after = c.stale_after > 0 ? c.stale_after : d.window();
    if (result.errors.size() == errors_before) result.kpis.push_back(std::move(d));
  }
  return result;
}

std::vector<config::ConfigError> lint(const std::vector<kpi::KpiOptions>& kpis,
                                      size_t max_per_owner) {
  std::vector<config::ConfigError> warnings;
  std::map<std::string, std::vector<const kpi::KpiOptions*>> by_owner;
  for (const auto& c : kpis) {
    const std::string key = "kpi." + c.id;
    if (c.owner.empty()) {
      warnings.push_back(
          error_at(c.pos, key + ".owner", "no owner: a KPI nobody owns is one nobody acts on"));
    } else {
      by_owner[c.owner].push_back(&c);
    }
    if (!c.band) {
      warnings.push_back(error_at(c.pos, key + ".band",
                                  "no band: without thresholds it can only be anomalous, never "
                                  "warn or crit"));
    }
  }
  for (const auto& [owner, owned] : by_owner) {
    if (owned.size() <= max_per_owner) continue;
    const auto* first_over = owned[max_per_owner];
    warnings.push_back(error_at(first_over->pos, "kpi." + first_over->id + ".owner",
                                "owner \"" + owner + "\" has " + std::to_string(owned.size()) +
                                    " KPIs; more than " + std::to_string(max_per_owner) +
                                    " per owner is more than one team watches"));
  }
  return warnings;
}

}  // namespace kpid::kpi
