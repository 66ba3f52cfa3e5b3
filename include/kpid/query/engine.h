#pragma once
// Evaluation of PromQL queries (promql.h) over the store, with Prometheus' semantics,
// plus the series and label lookups of the Prometheus API.
//
// Semantics: an instant vector selector takes each series' latest sample in
// (t - offset - lookback_delta, t - offset]; a range selector `[R]` takes the samples in
// (t - offset - R, t - offset] (left-open, as Prometheus 3; Prometheus 2 closed both ends), which
// is what makes rollup buckets line up with ranges. A range query evaluates the expression at
// start, start + step, ... <= end. Functions, aggregations, arithmetic and `bool` comparisons
// drop __name__ (last_over_time and filtering comparisons keep it), as Prometheus does.
//
// Resolution: a range function f(sel[R]) at evaluation times T (after offset) reads
//   - 1h rollups when R and every T are multiples of 1h, else 5m rollups when they are multiples
//     of 5m, else raw samples. Rollup buckets are left-open like ranges, so these results equal
//     the raw ones (up to float summation order) for count/sum/avg/min/max/last/rate/increase;
//     stddev/stdvar combine per-bucket (count, sum, sum_squares) with Chan's formula (less
//     precise when the values' spread is tiny next to their magnitude). quantile_over_time uses
//     rollups only when R >= 1h and merges their DDSketches, interpolating between ranks as
//     Prometheus does: within the sketch's 1% relative error for values of one sign; NaN and
//     infinite samples are left out of sketches.
//   - APPROXIMATE: when a window reaches back past store.raw_horizon() (raw samples may be
//     gone), rollups are used even when unaligned: every window is widened outward to whole
//     buckets of the finest resolution whose retention still covers the oldest window, and f is
//     computed over the widened window (rate divides by the widened width, increase and
//     count/sum cover it).
//   - a plain instant vector selector inside a range query whose start (after offset) and step
//     are multiples of 5m, with lookback_delta exactly 5m, reads the 5m rollups' `last`
//     (the bucket (t - 5m, t] is exactly the lookback window); otherwise it reads raw samples,
//     so it finds nothing once they have expired.
// QueryStats (and the optional kpid_query_reads_total metric) report which resolution each
// series read used.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/metrics/metrics.h"
#include "kpid/query/options.h"
#include "kpid/query/promql.h"
#include "kpid/store/sample_store.h"

namespace prometheus {
class Counter;
}

namespace kpid::query {

// What stops one query before it completes; the default stops nothing (the KPI evaluator's own
// queries). Evaluation checks these between series and every few steps, so a query past them
// stops within milliseconds, with:
//   - deadline_exceeded "query timed out in expression evaluation" once `deadline` has passed;
//   - cancelled "query was canceled in expression evaluation" once `*cancel` is true;
//   - resource_exhausted "query processing would load too many samples into memory in query
//     execution" once the samples it holds exceed `max_samples`: the samples or rollup buckets
//     read for the series being evaluated plus every point its expression's nodes hold (a
//     node's points are released once its parent has computed from them), as Prometheus'
//     query.max-samples counts them.
struct QueryLimits {
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  uint64_t max_samples = 0;                   // 0: no budget
  const std::atomic<bool>* cancel = nullptr;  // read from the evaluating thread; may be null
};

// The messages of QueryLimits' errors, as Prometheus words them.
inline constexpr const char* kQueryTimeoutMessage = "query timed out in expression evaluation";
inline constexpr const char* kQueryCancelledMessage = "query was canceled in expression evaluation";
inline constexpr const char* kTooManySamplesMessage =
    "query processing would load too many samples into memory in query execution";

// Series reads done by one query, by resolution. Widened reads (unaligned windows served from
// rollups because raw samples may have expired) are also counted in their resolution.
struct QueryStats {
  uint64_t raw_reads = 0;
  uint64_t rollup_5m_reads = 0;
  uint64_t rollup_1h_reads = 0;
  uint64_t widened_reads = 0;
};

// A series' labels: as the store handed them out (SeriesRef) or computed ones, shared.
using LabelsPtr = std::shared_ptr<const Labels>;

struct Series {
  LabelsPtr labels;
  std::vector<store::Point> points;  // in time order
};

// A query's value, as the Prometheus API reports it.
struct QueryResult {
  ValueType type = ValueType::kVector;
  // kScalar and kString: the value at `time`.
  TimestampMs time = 0;
  double scalar = 0;
  std::string string;
  // kVector: one point per series, stamped with the evaluation time. kMatrix: an instant
  // query's raw samples of a range selector, or a range query's points (one per step that has
  // a value). Sorted by labels.
  std::vector<Series> series;
};

// Thread-safe; the store (and `metrics`, when given) must outlive the engine.
class Engine {
 public:
  // With `metrics`, registers kpid_query_reads_total{resolution="raw|5m|1h"}.
  Engine(const store::SampleStore& store, QueryOptions options,
         metrics::Metrics* metrics = nullptr);

  // Applies new limits to queries started from now on (config reload).
  void set_options(QueryOptions options);
  QueryOptions options() const;

  // Evaluates `query` at `time`. Errors: a parse or type error (invalid_argument, message
  // "LINE:COL: parse error: ..."), an evaluation error (invalid_argument, e.g. many-to-many
  // matching), a storage failure (the store's code), or a limit's (QueryLimits).
  Result<QueryResult> instant(std::string_view query, TimestampMs time, QueryStats* stats = nullptr,
                              const QueryLimits& limits = {}) const;
  Result<QueryResult> instant(const Expr& expr, TimestampMs time, QueryStats* stats = nullptr,
                              const QueryLimits& limits = {}) const;

  // Evaluates `query` at start, start + step, ... <= end; the result is always a matrix (a
  // scalar becomes one series without labels). Fails as instant() does, and with
  // invalid_argument when check_range() or check_range_expr() does.
  Result<QueryResult> range(std::string_view query, TimestampMs start, TimestampMs end,
                            DurationMs step, QueryStats* stats = nullptr,
                            const QueryLimits& limits = {}) const;
  Result<QueryResult> range(const Expr& expr, TimestampMs start, TimestampMs end, DurationMs step,
                            QueryStats* stats = nullptr, const QueryLimits& limits = {}) const;

  // The range parameters' checks: end before start, step <= 0, more steps than
  // max_points_per_series (messages as Prometheus').
  Status check_range(TimestampMs start, TimestampMs end, DurationMs step) const;
  // Only scalars and instant vectors can be range-queried.
  static Status check_range_expr(const Expr& expr);

  // Series matching any of `selectors` with a sample in [start, end], without duplicates. The
  // scan stops at `limits`' deadline or cancellation (their errors; max_samples is not used).
  Result<std::vector<store::SeriesRef>> series(std::span<const std::string> selectors,
                                               TimestampMs start, TimestampMs end,
                                               const QueryLimits& limits = {}) const;
  // Label names (or values of `name`) of the series matching any selector in [start, end];
  // with no selectors, of every series. Sorted, unique. Stops as series() does.
  Result<std::vector<std::string>> label_names(std::span<const std::string> selectors,
                                               TimestampMs start, TimestampMs end,
                                               const QueryLimits& limits = {}) const;
  Result<std::vector<std::string>> label_values(std::string_view name,
                                                std::span<const std::string> selectors,
                                                TimestampMs start, TimestampMs end,
                                                const QueryLimits& limits = {}) const;

 private:
  Result<QueryResult> evaluate(const Expr& expr, TimestampMs start, TimestampMs end,
                               DurationMs step, bool range_query, QueryStats* stats,
                               const QueryLimits& limits) const;

  const store::SampleStore& store_;
  std::atomic<DurationMs> lookback_delta_;
  std::atomic<int64_t> max_points_;
  std::atomic<DurationMs> timeout_;
  std::atomic<uint64_t> max_samples_;
  std::atomic<DurationMs> default_subquery_step_;
  prometheus::Counter* raw_reads_ = nullptr;
  prometheus::Counter* rollup_5m_reads_ = nullptr;
  prometheus::Counter* rollup_1h_reads_ = nullptr;
};

}  // namespace kpid::query
