#include "history.h"

#include <algorithm>
#include <cmath>
#include <stop_token>

namespace kpid::kpi {

namespace {

using detail::kNaN;

constexpr DurationMs k5m = 5 * 60'000;
constexpr DurationMs k1h = 60 * 60'000;
// Steps per range query when the computation can be cancelled.
constexpr int64_t kCancellablePiece = 256;

Status cancelled() { return Status::unavailable("cancelled: kpid is stopping"); }

Status several_series(size_t count) {
  return Status::invalid_argument("the value expression yielded " + std::to_string(count) +
                                  " series; a KPI's value must be one");
}

// The one value of a term or value expression: a scalar, or the only series' value; NaN when
// no series had a value.
Result<double> term_value(const query::Engine& engine, const query::Expr& expr, TimestampMs t) {
  auto result = engine.instant(expr, t);
  if (!result) return result.status();
  if (result->type == query::ValueType::kScalar) return result->scalar;
  if (result->series.size() > 1) return several_series(result->series.size());
  if (result->series.empty() || result->series.front().points.empty()) return kNaN;
  return result->series.front().points.front().value;
}

double ratio(const Definition& d, double numerator, double denominator) {
  if (std::isnan(numerator) || std::isnan(denominator) || denominator == 0) return kNaN;
  return numerator / denominator * d.scale;
}

// Range query of `expr` in pieces the engine's max_points_per_series allows. When `stop` can be
// requested, in pieces of at most kCancellablePiece steps, checking it before each: a year of
// history is read in ~35 pieces, so a stop waits for one of them at most.
Status range_points(const query::Engine& engine, const query::Expr& expr, TimestampMs first,
                    TimestampMs last, DurationMs step, std::vector<store::Point>& out,
                    const std::stop_token& stop) {
  int64_t per_query = std::max<int64_t>(1, engine.options().max_points_per_series);
  if (stop.stop_possible()) per_query = std::min(per_query, kCancellablePiece);
  for (TimestampMs from = first; from <= last; from += per_query * step) {
    if (stop.stop_requested()) return cancelled();
    const TimestampMs to = std::min(last, from + (per_query - 1) * step);
    auto result = engine.range(expr, from, to, step);
    if (!result) return result.status();
    if (result->series.size() > 1) return several_series(result->series.size());
    if (!result->series.empty()) {
      const auto& points = result->series.front().points;
      out.insert(out.end(), points.begin(), points.end());
    }
  }
  return Status::ok();
}

// Joins numerator and denominator points by timestamp into ratio points.
std::vector<store::Point> join_ratio(const Definition& d, const std::vector<store::Point>& num,
                                     const std::vector<store::Point>& den) {
  std::vector<store::Point> out;
  size_t j = 0;
  for (const auto& p : num) {
    while (j < den.size() && den[j].timestamp < p.timestamp) ++j;
    if (j == den.size() || den[j].timestamp != p.timestamp) continue;
    const double v = ratio(d, p.value, den[j].value);
    if (!std::isnan(v)) out.push_back({p.timestamp, v});
  }
  return out;
}

}  // namespace

namespace detail {

Result<query::ExprPtr> term_expr(const Term& term, DurationMs window) {
  return query::parse_promql(term.promql(window));
}

Result<query::ExprPtr> value_expr(const Definition& d) {
  return d.expr.empty() ? term_expr(d.numerator, d.numerator.window) : query::parse_promql(d.expr);
}

Result<double> value_of(const query::Engine& engine, const Definition& d, const query::Expr& num,
                        const query::Expr* den, TimestampMs time) {
  auto n = term_value(engine, num, time);
  if (!n || den == nullptr) return n;
  auto v = term_value(engine, *den, time);
  if (!v) return v.status();
  return ratio(d, *n, *v);
}

Result<std::vector<store::Point>> value_points(const query::Engine& engine, const Definition& d,
                                               DurationMs num_window, DurationMs den_window,
                                               TimestampMs first, TimestampMs last, DurationMs step,
                                               const std::stop_token& stop) {
  auto points = [&](const Term& term, DurationMs window, std::vector<store::Point>& into) {
    auto expr = term_expr(term, window);
    return expr ? range_points(engine, **expr, first, last, step, into, stop) : expr.status();
  };
  std::vector<store::Point> num;
  if (!d.expr.empty()) {
    // An expression's ranges are its own: its history is the expression over time.
    auto expr = query::parse_promql(d.expr);
    if (!expr) return expr.status();
    if (auto s = range_points(engine, **expr, first, last, step, num, stop); !s) return s;
  } else if (auto s = points(d.numerator, num_window, num); !s) {
    return s;
  }
  if (!d.denominator) {
    std::erase_if(num, [](const store::Point& p) { return std::isnan(p.value); });
    return num;
  }
  std::vector<store::Point> den;
  if (auto s = points(*d.denominator, den_window, den); !s) return s;
  return join_ratio(d, num, den);
}

TimestampMs next_refresh_after(const Definition& d, TimestampMs now) {
  const BaselineSpec spec = history_spec(d);
  TimestampMs next = now + spec.refresh;
  // The seasonal range is per hour of the week: recompute as each hour begins.
  if (d.baseline && spec.method == BaselineMethod::kSeasonal) {
    next = std::min(next, (now / k1h + 1) * k1h);
  }
  return next;
}

}  // namespace detail

// --- free functions ---------------------------------------------------------------------------

std::vector<std::string> remote_queries(const Definition& kpi) {
  std::vector<std::string> out;
  out.push_back(kpi.expr.empty() ? kpi.numerator.promql(kpi.numerator.window) : kpi.expr);
  if (kpi.denominator) out.push_back(kpi.denominator->promql(kpi.denominator->window));
  return out;
}

Result<double> value_from_answers(const Definition& kpi, const query::QueryResult& numerator,
                                  const query::QueryResult* denominator) {
  // As term_value() reads the local engine's answer.
  auto one = [](const query::QueryResult& r) -> Result<double> {
    if (r.type == query::ValueType::kScalar) return r.scalar;
    if (r.series.size() > 1) return several_series(r.series.size());
    if (r.series.empty() || r.series.front().points.empty()) return kNaN;
    return r.series.front().points.front().value;
  };
  auto n = one(numerator);
  if (!n || denominator == nullptr) return n;
  auto d = one(*denominator);
  if (!d) return d.status();
  return ratio(kpi, *n, *d);
}

Result<double> evaluate_value(const query::Engine& engine, const Definition& kpi,
                              TimestampMs time) {
  auto num = detail::value_expr(kpi);
  if (!num) return num.status();
  query::ExprPtr den;
  if (kpi.denominator) {
    auto parsed = detail::term_expr(*kpi.denominator, kpi.denominator->window);
    if (!parsed) return parsed.status();
    den = std::move(parsed).value();
  }
  return detail::value_of(engine, kpi, **num, den.get(), time);
}

Result<std::vector<store::Point>> value_history(const query::Engine& engine, const Definition& kpi,
                                                TimestampMs start, TimestampMs end,
                                                const std::stop_token& stop) {
  const bool quantile = kpi.promql().find("quantile_over_time") != std::string::npos;
  // Quantiles come from sketches only over whole hours; otherwise 5m steps while that keeps
  // the history at 10,000 values or fewer.
  const DurationMs step = quantile || (end - start) / k5m > 10'000 ? k1h : k5m;
  const TimestampMs first = (start >= 0 ? start / step + 1 : start / step) * step;
  const TimestampMs last = (end >= 0 ? end / step : (end - step + 1) / step) * step;
  if (first > last) return std::vector<store::Point>();
  auto whole_steps = [step](DurationMs window) { return (window + step - 1) / step * step; };
  return detail::value_points(engine, kpi, whole_steps(kpi.numerator.window),
                              kpi.denominator ? whole_steps(kpi.denominator->window) : 0, first,
                              last, step, stop);
}

namespace detail {

HistoryUpdate compute_history(const query::Engine& engine, const Definition& d, TimestampMs now,
                              const std::stop_token& stop) {
  HistoryUpdate update;
  update.at = now;
  const BaselineSpec spec = history_spec(d);
  auto history = value_history(engine, d, now - spec.window, now, stop);
  if (!history) {
    update.cancelled = stop.stop_requested();
    update.error = history.status().message();
    return update;
  }
  const auto& points = *history;
  update.points = points.size();
  update.history_start = points.empty() ? 0 : points.front().timestamp;
  const bool enough = !points.empty() && now - update.history_start >= spec.min_history;
  if (enough) {
    if (auto range = quantile_baseline(points, 0.05, 0.95)) {
      update.suggested = suggest_thresholds(d.direction, *range);
    }
    if (d.band) {
      if (auto f = breach_fraction(d.direction, *d.band, points)) update.breach_fraction = *f;
    }
  }
  if (d.baseline) {
    Result<Baseline> range = Status::not_found("");
    switch (spec.method) {
      case BaselineMethod::kQuantile:
        range = quantile_baseline(points, spec.quantile_low, spec.quantile_high);
        break;
      case BaselineMethod::kStddev: range = stddev_baseline(points, spec.k); break;
      case BaselineMethod::kEwma: range = ewma_baseline(points, spec.alpha, spec.k); break;
      case BaselineMethod::kSeasonal: range = seasonal_baseline(points, now, spec.k); break;
    }
    if (range) update.baseline = BaselineState{*range, enough, now};
  }
  return update;
}

}  // namespace detail

}  // namespace kpid::kpi
