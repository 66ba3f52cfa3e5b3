#pragma once
// Evaluation of a type-checked PromQL expression over a grid of evaluation times, node by node
// as Prometheus 2.x does: each node's value covers every step at once, so each series is read
// from the store once per query. Private to the query module.

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kpid/query/engine.h"
#include "kpid/query/promql.h"
#include "kpid/store/sample_store.h"
#include "query_guard.h"

namespace kpid::query::detail {

// The evaluation times: start, start + step, ... (count of them); one for an instant query.
struct StepGrid {
  TimestampMs start = 0;
  DurationMs step = 1;
  size_t count = 1;
  bool range_query = false;
  // The query's `end` parameter, which @ end() means (the last step may come before it).
  std::optional<TimestampMs> end;
  TimestampMs at(size_t k) const { return start + static_cast<int64_t>(k) * step; }
  TimestampMs last() const { return at(count - 1); }
};

// An expression's value at every step.
struct Value {
  ValueType type = ValueType::kScalar;
  std::vector<double> scalars;  // kScalar: one per step
  // kVector: points stamped with step times; kMatrix (instant queries only): raw samples.
  std::vector<Series> series;
  std::string string;
  // kVector of an instant query: the series are in Prometheus' order (topk's, bottomk's), which
  // the result keeps rather than sorting by labels.
  bool keep_order = false;
};

class Evaluator {
 public:
  // `stats` receives one count per series read; `limits` stop the evaluation early. All
  // references must outlive the evaluator.
  // `subquery_step` is the step of subqueries written without one (`x[5m:]`).
  Evaluator(const store::SampleStore& store, const StepGrid& grid, DurationMs lookback_delta,
            QueryStats& stats, const QueryLimits& limits, DurationMs subquery_step = 60'000)
      : store_(store),
        grid_(grid),
        query_start_(grid.start),
        query_end_(grid.end.value_or(grid.last())),
        lookback_(lookback_delta),
        subquery_step_(subquery_step),
        stats_(stats),
        guard_(limits) {}

  // Errors: evaluation errors (invalid_argument, Prometheus' messages), storage failures, and
  // the limits' (deadline_exceeded, cancelled, resource_exhausted).
  Result<Value> eval(const Expr& expr);

 private:
  Result<Value> eval_node(const NumberLiteral& n);
  Result<Value> eval_node(const StringLiteral& n);
  Result<Value> eval_node(const VectorSelector& n);
  Result<Value> eval_node(const MatrixSelector& n);
  Result<Value> eval_node(const UnaryExpr& n);
  Result<Value> eval_node(const BinaryExpr& n);
  Result<Value> eval_node(const Call& n);
  Result<Value> eval_node(const AggregateExpr& n);
  Result<Value> eval_node(const ParenExpr& n);
  Result<Value> eval_node(const SubqueryExpr& n);

  Result<Value> select_vector(const VectorSelector& n);
  // The time an @ modifier fixes (start() and end() are the query's), if any.
  std::optional<TimestampMs> at_time(const AtModifier& at) const;
  // `compute` evaluated at time t alone, its value repeated at every step of the grid: how a
  // step-invariant (@) expression is evaluated.
  template <typename F>
  Result<Value> at_fixed(TimestampMs t, F&& compute);
  // A range function over the series of an evaluated subquery (windows as for a selector).
  Result<Value> eval_subquery_function(Function f, const SubqueryExpr& sq,
                                       std::span<const std::vector<double>> params);
  Result<Value> set_operation(const BinaryExpr& n, const Value& lhs, const Value& rhs);

  // `params`: the function's scalar arguments in call order, each with one value per step.
  Result<Value> eval_range_function(Function f, const MatrixSelector& ms,
                                    std::span<const std::vector<double>> params);
  // The functions of instant vectors and scalars (functions_instant.cpp).
  Result<Value> eval_function(const Call& n);
  Result<Value> eval_timestamp(const VectorSelector& vs);
  Result<Value> eval_absent(const Call& n);
  Result<Value> eval_histogram_quantile(const Call& n);
  Result<Value> eval_label_function(const Call& n);
  Result<Value> eval_sort(const Call& n);
  // absent() and absent_over_time(): 1 at the steps where `in` has no element, labelled from
  // `arg`'s equality matchers.
  Value absent_steps(const Value& in, const Expr& arg) const;
  // The step a point of an instant vector belongs to.
  size_t step_of(TimestampMs t) const;
  Result<Value> vector_vector(const BinaryExpr& n, Value lhs, Value rhs);
  // Every aggregation (aggregations.cpp); `param` is the evaluated parameter, if any.
  Result<Value> aggregate(const AggregateExpr& n, Value in, const Value* param);

  const store::SampleStore& store_;
  StepGrid grid_;  // the current node's steps (a subquery's while its operand is evaluated)
  TimestampMs query_start_;
  TimestampMs query_end_;
  DurationMs lookback_;
  DurationMs subquery_step_;
  QueryStats& stats_;
  QueryGuard guard_;
  // Reused between series so reads don't allocate once warmed up.
  std::vector<store::Point> samples_;
  std::vector<store::Rollup> rollups_;
  std::vector<double> scratch_;
};

}  // namespace kpid::query::detail
