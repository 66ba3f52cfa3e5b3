#pragma once
// Range-function kernels (over raw samples and over rollup buckets) and the compensated sums
// and means shared with aggregations. Private to the query module.

#include <cmath>
#include <optional>
#include <span>
#include <vector>

#include "kpid/core/status.h"
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
// (rate and increase need two samples). `eval_time` is the step's time (the window's end plus
// the offset; predict_linear predicts from it). `params` are f's scalar arguments at this step in
// call order without the range vector (quantile_over_time's φ; predict_linear's t; holt_winters'
// sf and tf), checked by check_range_params first. `scratch` is reused between calls to avoid
// allocating per window.
std::optional<double> over_raw(Function f, std::span<const store::Point> samples,
                               RangeWindow window, TimestampMs eval_time,
                               std::span<const double> params, std::vector<double>& scratch);

// The range functions added with all of PromQL (irate ... mad_over_time), for over_raw.
std::optional<double> over_raw_more(Function f, std::span<const store::Point> samples,
                                    RangeWindow window, TimestampMs eval_time,
                                    std::span<const double> params, std::vector<double>& scratch);

// The error Prometheus raises when f is called with these scalar arguments (holt_winters'
// factors outside (0, 1)); raised only where a series has samples in the window, as Prometheus.
Status check_range_params(Function f, std::span<const double> params);

// Whether over_rollups would answer f over `buckets` differently from the raw samples: rate
// and increase sum per-bucket increments, which equals Prometheus' last - first + resets only
// while every value is finite (a NaN or ±Inf sample makes the bucket's sum non-finite).
bool rollups_differ_from_raw(Function f, std::span<const store::Rollup> buckets);

// Whether over_rollups computes f (with the answer the raw samples give when the windows are
// bucket-aligned); other range functions read raw samples.
bool has_rollup_kernel(Function f);

// Prometheus' quantile(): NaN for no values or a NaN φ, -Inf/+Inf for φ outside [0, 1], else
// linear interpolation between the two closest ranks (NaN samples sort first). Sorts `values`.
double quantile_of(double q, std::vector<double>& values);

// f over the (non-empty, time-ordered) rollup buckets covering one window.
std::optional<double> over_rollups(Function f, std::span<const store::Rollup> buckets,
                                   RangeWindow window, double param);

// Prometheus' extrapolatedRate for a window with `count` >= 2 samples, the first and last of
// them, and the counter-reset-corrected (when is_counter) change between them.
double extrapolated_rate(uint64_t count, TimestampMs first_t, double first_v, TimestampMs last_t,
                         double delta, RangeWindow window, bool is_counter, bool is_rate);

}  // namespace kpid::query::detail
