#pragma once
// A KPI definition as the evaluator uses it: the config's [[kpi]] table checked (band against
// direction, selectors parsed) and its value compiled to PromQL expressions, so live values,
// value history and charts all come from the same query engine with the same semantics.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kpid/config/config.h"
#include "kpid/core/labels.h"
#include "kpid/core/time.h"
#include "kpid/kpi/band.h"
#include "kpid/query/promql.h"

namespace kpid::kpi {

enum class BaselineMethod { kQuantile, kStddev, kEwma, kSeasonal };
std::string_view baseline_method_name(BaselineMethod m);

// across(over_time(selector[window])).
struct Term {
  std::string selector;
  std::vector<LabelMatcher> matchers;
  std::string over_time;  // avg, min, max, sum, last, rate, increase, quantile
  double quantile = 0.5;
  DurationMs window = 300'000;
  std::string across = "sum";

  // The term as PromQL, with its window replaced by `window` (e.g. rounded up to whole rollup
  // buckets for history): "max(quantile_over_time(0.95, latency_ms[5m]))".
  std::string promql(DurationMs window) const;
};

struct BaselineSpec {
  BaselineMethod method = BaselineMethod::kQuantile;
  DurationMs window = 30 * 86'400'000LL;
  double quantile_low = 0.05;
  double quantile_high = 0.95;
  double k = 2;
  double alpha = 0.1;
  DurationMs min_history = 86'400'000;
  DurationMs refresh = 3'600'000;
  friend bool operator==(const BaselineSpec&, const BaselineSpec&) = default;
};

struct Definition {
  std::string id;
  std::string name;
  std::string description;
  std::string owner;
  std::string unit;
  std::string review;
  Direction direction = Direction::kLowerIsBetter;
  // The value: a PromQL expression ([kpi.value] expr), else the shorthand terms.
  std::string expr;
  DurationMs expr_window = 0;       // with expr: its longest range, or 5m (the lookback)
  Term numerator;                   // the value, or a ratio's numerator (unused with expr)
  std::optional<Term> denominator;  // set for a ratio
  double scale = 1;                 // a ratio is numerator / denominator * scale
  // Every selector the value reads (each a list of matchers): samples of a series any of them
  // matches mark the KPI for evaluation and keep it fresh.
  std::vector<std::vector<LabelMatcher>> selectors;
  std::optional<DurationMs> interval;  // re-evaluated at least this often; unset: the default
  std::optional<Band> band;
  std::optional<BaselineSpec> baseline;
  DurationMs stale_after = 300'000;  // no_data once the newest sample is older than this
  // The [[datasource]] it is evaluated on ("": the local store). Such a KPI is not fed by
  // local samples: it is evaluated on its interval, at times aligned to it.
  std::string datasource;

  // The longest window its value reads: of its terms, or of the expression's range selectors
  // and subqueries (5m, the lookback, when it has none).
  DurationMs window() const;
  // The value as one PromQL expression: `expr`, or the shorthand expanded (a ratio as
  // "(a) / (b) * scale").
  std::string promql() const;
  // Whether the value (what is measured, not its name or band) is the same: history and
  // baselines carry over a reload only then.
  bool same_value(const Definition& other) const;
};

struct CompileResult {
  std::vector<Definition> kpis;
  std::vector<config::ConfigError> errors;  // with the file, line and key of each problem
  bool ok() const { return errors.empty(); }
};

// Why `expr` cannot be a KPI's value, or empty when it can: it must be an instant vector or a
// scalar, and able to yield only one series (no several groups or selected series, e.g.
// `sum by (route) (...)`, a bare selector, `topk(3, ...)`).
std::string value_expr_problem(const query::Expr& expr);

// The selectors `expr` reads (each a list of matchers), and the longest range it reads
// (range selectors, subqueries, offsets aside; 0 when none).
std::vector<std::vector<LabelMatcher>> expr_selectors(const query::Expr& expr);
DurationMs expr_longest_range(const query::Expr& expr);

// Checks what the config loader cannot (band order for the direction, selector syntax) and
// builds the definitions. Definitions with errors are left out.
CompileResult compile(const std::vector<kpi::KpiOptions>& kpis);

// Where practice says a KPI set is going wrong; warnings, not errors: more than
// `max_per_owner` KPIs for one owner, a KPI without owner or without band.
std::vector<config::ConfigError> lint(const std::vector<kpi::KpiOptions>& kpis,
                                      size_t max_per_owner = 10);

bool operator==(const Band& a, const Band& b);

}  // namespace kpid::kpi
