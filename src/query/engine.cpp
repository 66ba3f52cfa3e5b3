#include "kpid/query/engine.h"

#include <prometheus/counter.h>

#include <algorithm>
#include <set>

#include "evaluator.h"
#include "kpid/query/selector.h"
#include "query_guard.h"

namespace kpid::query {

Engine::Engine(const store::SampleStore& store, QueryOptions options, metrics::Metrics* metrics)
    : store_(store),
      lookback_delta_(options.lookback_delta),
      max_points_(options.max_points_per_series),
      timeout_(options.timeout),
      max_samples_(options.max_samples),
      default_subquery_step_(options.default_subquery_step) {
  if (metrics != nullptr) {
    auto& family = prometheus::BuildCounter()
                       .Name("kpid_query_reads_total")
                       .Help(
                           "Series reads by query evaluation, by the resolution read: raw "
                           "samples or 5m/1h rollups")
                       .Register(metrics->registry());
    raw_reads_ = &family.Add({{"resolution", "raw"}});
    rollup_5m_reads_ = &family.Add({{"resolution", "5m"}});
    rollup_1h_reads_ = &family.Add({{"resolution", "1h"}});
  }
}

void Engine::set_options(QueryOptions options) {
  lookback_delta_.store(options.lookback_delta);
  max_points_.store(options.max_points_per_series);
  timeout_.store(options.timeout);
  max_samples_.store(options.max_samples);
  default_subquery_step_.store(options.default_subquery_step);
}

QueryOptions Engine::options() const {
  QueryOptions o{lookback_delta_.load(), max_points_.load(), timeout_.load(), max_samples_.load()};
  o.default_subquery_step = default_subquery_step_.load();
  return o;
}

Status Engine::check_range(TimestampMs start, TimestampMs end, DurationMs step) const {
  if (end < start) {
    return Status::invalid_argument("end timestamp must not be before start time");
  }
  if (step <= 0) {
    return Status::invalid_argument(
        "zero or negative query resolution step widths are not accepted. Try a positive "
        "integer");
  }
  const int64_t max_points = max_points_.load();
  if ((end - start) / step >= max_points) {
    return Status::invalid_argument("exceeded maximum resolution of " + std::to_string(max_points) +
                                    " points per timeseries. Try decreasing the query "
                                    "resolution (?step=XX)");
  }
  return Status::ok();
}

Status Engine::check_range_expr(const Expr& expr) {
  if (expr.type != ValueType::kScalar && expr.type != ValueType::kVector) {
    return Status::invalid_argument(std::string("invalid expression type \"") +
                                    documented_type(expr.type) +
                                    "\" for range query, must be Scalar or instant Vector");
  }
  return Status::ok();
}

Result<QueryResult> Engine::instant(std::string_view query, TimestampMs time, QueryStats* stats,
                                    const QueryLimits& limits) const {
  auto expr = parse_promql(query);
  if (!expr) return expr.status();
  return instant(**expr, time, stats, limits);
}

Result<QueryResult> Engine::instant(const Expr& expr, TimestampMs time, QueryStats* stats,
                                    const QueryLimits& limits) const {
  return evaluate(expr, time, time, 1, false, stats, limits);
}

Result<QueryResult> Engine::range(std::string_view query, TimestampMs start, TimestampMs end,
                                  DurationMs step, QueryStats* stats,
                                  const QueryLimits& limits) const {
  if (auto st = check_range(start, end, step); !st) return st;
  auto expr = parse_promql(query);
  if (!expr) return expr.status();
  return range(**expr, start, end, step, stats, limits);
}

Result<QueryResult> Engine::range(const Expr& expr, TimestampMs start, TimestampMs end,
                                  DurationMs step, QueryStats* stats,
                                  const QueryLimits& limits) const {
  if (auto st = check_range(start, end, step); !st) return st;
  if (auto st = check_range_expr(expr); !st) return st;
  return evaluate(expr, start, end, step, true, stats, limits);
}

namespace {

// Whether `expr` is a call of sort, sort_desc, sort_by_label or sort_by_label_desc (maybe in
// parentheses), whose instant vector keeps the function's order as in Prometheus.
bool sorts_result(const Expr& expr) {
  const Expr* e = &expr;
  while (const auto* paren = std::get_if<ParenExpr>(&e->node)) e = paren->expr.get();
  const auto* call = std::get_if<Call>(&e->node);
  if (call == nullptr) return false;
  switch (call->function) {
    case Function::kSort:
    case Function::kSortDesc:
    case Function::kSortByLabel:
    case Function::kSortByLabelDesc: return true;
    default: return false;
  }
}

}  // namespace

Result<QueryResult> Engine::evaluate(const Expr& expr, TimestampMs start, TimestampMs end,
                                     DurationMs step, bool range_query, QueryStats* stats,
                                     const QueryLimits& limits) const {
  // Far beyond any real timestamp; keeps time - offset - range - lookback within int64.
  constexpr TimestampMs kMaxTime = TimestampMs{1} << 61;
  if (start < -kMaxTime || end > kMaxTime) {
    return Status::invalid_argument("query time out of range");
  }
  detail::StepGrid grid;
  grid.start = start;
  grid.step = step;
  grid.count = static_cast<size_t>((end - start) / step) + 1;
  grid.range_query = range_query;
  grid.end = end;
  QueryStats local;
  detail::Evaluator evaluator(store_, grid, lookback_delta_.load(), local, limits,
                              default_subquery_step_.load());
  auto value = evaluator.eval(expr);

  if (raw_reads_ != nullptr) {
    raw_reads_->Increment(static_cast<double>(local.raw_reads));
    rollup_5m_reads_->Increment(static_cast<double>(local.rollup_5m_reads));
    rollup_1h_reads_->Increment(static_cast<double>(local.rollup_1h_reads));
  }
  if (stats != nullptr) *stats = local;
  if (!value) return value.status();

  QueryResult r;
  r.time = start;
  if (value->type == ValueType::kScalar) {
    if (!range_query) {
      r.type = ValueType::kScalar;
      r.scalar = value->scalars[0];
      return r;
    }
    // A range query's scalar is a matrix of one series without labels.
    r.type = ValueType::kMatrix;
    Series s{std::make_shared<const Labels>(), {}};
    for (size_t k = 0; k < grid.count; ++k) s.points.push_back({grid.at(k), value->scalars[k]});
    r.series.push_back(std::move(s));
    return r;
  }
  if (value->type == ValueType::kString) {
    r.type = ValueType::kString;
    r.string = std::move(value->string);
    return r;
  }
  r.type = range_query ? ValueType::kMatrix : value->type;
  r.series = std::move(value->series);
  // The order is the answer: topk/bottomk's or a sort function's, as Prometheus keeps it.
  if (!range_query && (value->keep_order || sorts_result(expr))) return r;
  std::stable_sort(r.series.begin(), r.series.end(), [](const Series& a, const Series& b) {
    return a.labels->items() < b.labels->items();
  });
  return r;
}

Result<std::vector<store::SeriesRef>> Engine::series(std::span<const std::string> selectors,
                                                     TimestampMs start, TimestampMs end,
                                                     const QueryLimits& limits) const {
  std::set<store::SeriesId> seen;
  std::vector<store::SeriesRef> out;
  detail::QueryGuard guard(limits);
  for (const auto& selector : selectors) {
    auto matchers = parse_selector(selector);
    if (!matchers) return matchers.status();
    for (const auto& ref : store_.select(*matchers)) {
      if (auto st = guard.tick(); !st) return st;
      if (seen.count(ref.id) != 0) continue;
      auto has = store_.has_samples(ref.id, start, end);
      if (!has) return has.status();
      if (!*has) continue;
      seen.insert(ref.id);
      out.push_back(ref);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.labels->items() < b.labels->items(); });
  return out;
}

Result<std::vector<std::string>> Engine::label_names(std::span<const std::string> selectors,
                                                     TimestampMs start, TimestampMs end,
                                                     const QueryLimits& limits) const {
  if (selectors.empty()) return store_.label_names();
  auto refs = series(selectors, start, end, limits);
  if (!refs) return refs.status();
  std::set<std::string> names;
  for (const auto& ref : *refs) {
    for (const auto& l : ref.labels->items()) names.insert(l.name);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Result<std::vector<std::string>> Engine::label_values(std::string_view name,
                                                      std::span<const std::string> selectors,
                                                      TimestampMs start, TimestampMs end,
                                                      const QueryLimits& limits) const {
  if (selectors.empty()) return store_.label_values(name);
  auto refs = series(selectors, start, end, limits);
  if (!refs) return refs.status();
  std::set<std::string> values;
  for (const auto& ref : *refs) {
    if (auto v = ref.labels->get(name); !v.empty()) values.insert(std::string(v));
  }
  return std::vector<std::string>(values.begin(), values.end());
}

}  // namespace kpid::query
