#pragma once
// Range-function kernels (over raw samples and over rollup buckets) and the compensated sums
// and means shared with aggregations. Private to the query module.

#include <cmath>
#include <optional>
#include <span>
#include <vector>

#include "kpid/query/promql.h"
#include "kpid/store/sample_store.h"

namespace kpid::query::detail {

// Neumaier-compensated summation step, as Prometheus' kahanSumInc: adds `inc` to `sum` and the
// running compensation `c`.
void kahan_add(double inc, double& sum, double& c);
// The compensated total (an infinite sum is returned as is).
inline double kahan_value(double sum, double c) { return std::isinf(sum) ? sum : sum + c; }

// A mean as Prometheus computes avg and avg_over_time: a compensated sum divided by the count,
// switching to an incremental mean when the sum would overflow.
class MeanAccumulator {
 public:
  void add(double v);
  double value() const;
  double count() const { return count_; }

 private:
  double sum_ = 0;
  double c_ = 0;
  double mean_ = 0;
  double count_ = 0;
  bool incremental_ = false;
};

// The window (start, end] a range function sees at one evaluation time.
struct RangeWindow {
  TimestampMs start;
  TimestampMs end;
};

// f over the (non-empty, time-ordered) samples of one window; nullopt when f has no value there
// (rate and increase need two samples). `param` is quantile_over_time's φ; `scratch` is reused
// between calls to avoid allocating per window.
std::optional<double> over_raw(Function f, std::span<const store::Point> samples,
                               RangeWindow window, double param, std::vector<double>& scratch);

// f over the (non-empty, time-ordered) rollup buckets covering one window.
std::optional<double> over_rollups(Function f, std::span<const store::Rollup> buckets,
                                   RangeWindow window, double param);

// Prometheus' extrapolatedRate for a window with `count` >= 2 samples, the first and last of
// them, and the counter-reset-corrected (when is_counter) change between them.
double extrapolated_rate(uint64_t count, TimestampMs first_t, double first_v, TimestampMs last_t,
                         double delta, RangeWindow window, bool is_counter, bool is_rate);

}  // namespace kpid::query::detail
