// The range functions beyond the *_over_time aggregates, rate and increase: irate, delta, idelta,
// deriv, predict_linear, holt_winters (double_exponential_smoothing), changes, resets,
// present_over_time, absent_over_time and mad_over_time, each as Prometheus computes it over the
// raw samples of one window (promql/functions.go).
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>

#include "functions.h"

namespace kpid::query::detail {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// irate and idelta: the last two samples only (irate reads a drop as a counter reset).
std::optional<double> instant_value(std::span<const store::Point> samples, bool is_rate) {
  if (samples.size() < 2) return std::nullopt;
  const store::Point& last = samples[samples.size() - 1];
  const store::Point& previous = samples[samples.size() - 2];
  double value = last.value - previous.value;
  if (is_rate && last.value < previous.value) value = last.value;
  const TimestampMs interval = last.timestamp - previous.timestamp;
  if (interval == 0) return std::nullopt;
  if (is_rate) value /= static_cast<double>(interval) / 1000;
  return value;
}

// Least squares of value over seconds since `intercept_time`, with compensated sums; a constant
// series has slope 0 (NaN when the constant is infinite), as Prometheus' linearRegression.
std::pair<double, double> linear_regression(std::span<const store::Point> samples,
                                            TimestampMs intercept_time) {
  double n = 0;
  double sum_x = 0, c_x = 0;
  double sum_y = 0, c_y = 0;
  double sum_xy = 0, c_xy = 0;
  double sum_x2 = 0, c_x2 = 0;
  const double init_y = samples.front().value;
  bool const_y = true;
  for (const auto& p : samples) {
    if (const_y && p.value != init_y) const_y = false;
    n += 1;
    const double x = static_cast<double>(p.timestamp - intercept_time) / 1000;
    kahan_add(x, sum_x, c_x);
    kahan_add(p.value, sum_y, c_y);
    kahan_add(x * p.value, sum_xy, c_xy);
    kahan_add(x * x, sum_x2, c_x2);
  }
  if (const_y) {
    if (std::isinf(init_y)) return {kNaN, kNaN};
    return {0, init_y};
  }
  sum_x += c_x;
  sum_y += c_y;
  sum_xy += c_xy;
  sum_x2 += c_x2;
  const double cov_xy = sum_xy - sum_x * sum_y / n;
  const double var_x = sum_x2 - sum_x * sum_x / n;
  const double slope = cov_xy / var_x;
  const double intercept = sum_y / n - slope * sum_x / n;
  return {slope, intercept};
}

// Holt's linear (double exponential) smoothing: the last smoothed value.
double double_exponential_smoothing(std::span<const store::Point> samples, double sf, double tf) {
  double s0 = 0;
  double s1 = samples[0].value;
  double b = samples[1].value - samples[0].value;
  for (size_t i = 1; i < samples.size(); ++i) {
    const double x = sf * samples[i].value;
    // The trend: the first step keeps the initial one.
    if (i > 1) b = tf * (s1 - s0) + (1 - tf) * b;
    const double y = (1 - sf) * (s1 + b);
    s0 = s1;
    s1 = x + y;
  }
  return s1;
}

// Go's %f: six decimals, infinities as +Inf and -Inf.
std::string go_fixed(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%f", v);
  return buf;
}

}  // namespace

Status check_range_params(Function f, std::span<const double> params) {
  if (f != Function::kHoltWinters && f != Function::kDoubleExponentialSmoothing) {
    return Status::ok();
  }
  // A NaN factor passes (every comparison with NaN is false) and yields NaN, as in Prometheus.
  const double sf = params[0];
  const double tf = params[1];
  if (sf <= 0 || sf >= 1) {
    return Status::invalid_argument("invalid smoothing factor. Expected: 0 < sf < 1, got: " +
                                    go_fixed(sf));
  }
  if (tf <= 0 || tf >= 1) {
    return Status::invalid_argument("invalid trend factor. Expected: 0 < tf < 1, got: " +
                                    go_fixed(tf));
  }
  return Status::ok();
}

std::optional<double> over_raw_more(Function f, std::span<const store::Point> samples,
                                    RangeWindow window, TimestampMs eval_time,
                                    std::span<const double> params, std::vector<double>& scratch) {
  switch (f) {
    case Function::kIrate: return instant_value(samples, true);
    case Function::kIdelta: return instant_value(samples, false);
    case Function::kDelta:
      if (samples.size() < 2) return std::nullopt;
      return extrapolated_rate(samples.size(), samples.front().timestamp, samples.front().value,
                               samples.back().timestamp,
                               samples.back().value - samples.front().value, window, false, false);
    case Function::kDeriv: {
      if (samples.size() < 2) return std::nullopt;
      // Seconds from the first sample keep x small (Prometheus issue 2674).
      return linear_regression(samples, samples.front().timestamp).first;
    }
    case Function::kPredictLinear: {
      if (samples.size() < 2) return std::nullopt;
      const auto [slope, intercept] = linear_regression(samples, eval_time);
      return slope * params[0] + intercept;
    }
    case Function::kHoltWinters:
    case Function::kDoubleExponentialSmoothing:
      if (samples.size() < 2) return std::nullopt;
      return double_exponential_smoothing(samples, params[0], params[1]);
    case Function::kChanges: {
      double changes = 0;
      double prev = samples.front().value;
      for (const auto& p : samples.subspan(1)) {
        if (p.value != prev && !(std::isnan(p.value) && std::isnan(prev))) ++changes;
        prev = p.value;
      }
      return changes;
    }
    case Function::kResets: {
      double resets = 0;
      double prev = samples.front().value;
      for (const auto& p : samples.subspan(1)) {
        if (p.value < prev) ++resets;
        prev = p.value;
      }
      return resets;
    }
    case Function::kPresentOverTime:
    case Function::kAbsentOverTime: return 1.0;  // absent_over_time: where this is missing
    case Function::kMadOverTime: {
      // The median of the absolute deviations from the median.
      scratch.clear();
      for (const auto& p : samples) scratch.push_back(p.value);
      const double median = quantile_of(0.5, scratch);
      for (double& v : scratch) v = std::fabs(v - median);
      return quantile_of(0.5, scratch);
    }
    default: return std::nullopt;
  }
}

}  // namespace kpid::query::detail
