#include "functions.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kpid::query::detail {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The same from merged sketches: each rank's value within the sketch's relative error, the
// extremes exact.
double sketch_quantile(double q, std::span<const store::Rollup> buckets) {
  if (std::isnan(q)) return kNaN;
  store::DDSketch merged(buckets.front().sketch.relative_accuracy(),
                         buckets.front().sketch.max_buckets());
  for (const auto& b : buckets) {
    // Sketches of one store share their accuracy; a bucket that does not is left out.
    (void)merged.merge(b.sketch);
  }
  const uint64_t n = merged.count();
  if (n == 0) return kNaN;
  if (q < 0) return -kInf;
  if (q > 1) return kInf;
  auto at_rank = [&](uint64_t k) {
    if (k == 0) return merged.quantile(0);
    if (k >= n - 1) return merged.quantile(1);
    // DDSketch::quantile(p) reads rank floor(p * (n - 1)); aim at the middle of rank k.
    return merged.quantile((static_cast<double>(k) + 0.5) / static_cast<double>(n - 1));
  };
  const double rank = q * static_cast<double>(n - 1);
  const double floor_rank = std::floor(rank);
  const uint64_t k = static_cast<uint64_t>(floor_rank);
  const double weight = rank - floor_rank;
  const double lower = at_rank(k);
  if (weight == 0) return lower;
  return lower * (1 - weight) + at_rank(k + 1) * weight;
}

}  // namespace

double quantile_of(double q, std::vector<double>& values) {
  if (values.empty() || std::isnan(q)) return kNaN;
  if (q < 0) return -kInf;
  if (q > 1) return kInf;
  std::sort(values.begin(), values.end(), [](double a, double b) {
    if (std::isnan(a)) return !std::isnan(b);
    return !std::isnan(b) && a < b;
  });
  const double n = static_cast<double>(values.size());
  const double rank = q * (n - 1);
  const double lower = std::max(0.0, std::floor(rank));
  const double upper = std::min(n - 1, lower + 1);
  const double weight = rank - std::floor(rank);
  return values[static_cast<size_t>(lower)] * (1 - weight) +
         values[static_cast<size_t>(upper)] * weight;
}

void kahan_add(double inc, double& sum, double& c) {
  const double t = sum + inc;
  if (std::isinf(t)) {
    c = 0;
  } else if (std::abs(sum) >= std::abs(inc)) {
    c += (sum - t) + inc;  // Neumaier: the larger term goes first
  } else {
    c += (inc - t) + sum;
  }
  sum = t;
}

void MeanAccumulator::add(double v) {
  count_ += 1;
  if (!incremental_) {
    double sum = sum_;
    double c = c_;
    kahan_add(v, sum, c);
    if (count_ == 1 || !std::isinf(sum)) {
      sum_ = sum;
      c_ = c;
      return;
    }
    // The sum overflows: continue with an incremental mean.
    incremental_ = true;
    mean_ = sum_ / (count_ - 1);
    c_ /= count_ - 1;
  }
  if (std::isinf(mean_)) {
    // Inf - Inf would turn an infinite mean into NaN; it stays as it is unless v is NaN or the
    // opposite infinity.
    if (std::isinf(v) && (mean_ > 0) == (v > 0)) return;
    if (!std::isinf(v) && !std::isnan(v)) return;
  }
  const double corrected = mean_ + c_;
  kahan_add(v / count_ - corrected / count_, mean_, c_);
}

double MeanAccumulator::value() const {
  if (incremental_) return mean_ + c_;
  return (sum_ + c_) / count_;
}

double extrapolated_rate(uint64_t count, TimestampMs first_t, double first_v, TimestampMs last_t,
                         double delta, RangeWindow window, bool is_counter, bool is_rate) {
  double to_start = static_cast<double>(first_t - window.start) / 1000;
  const double to_end = static_cast<double>(window.end - last_t) / 1000;
  const double sampled = static_cast<double>(last_t - first_t) / 1000;
  const double average_gap = sampled / static_cast<double>(count - 1);
  if (is_counter && delta > 0 && first_v >= 0) {
    // A counter cannot have been below zero: don't extrapolate past where it would be zero.
    const double to_zero = sampled * (first_v / delta);
    if (to_zero < to_start) to_start = to_zero;
  }
  // Extrapolate to a window edge only when the edge is about one sample gap away; otherwise
  // assume the series starts or ends half a gap beyond its first or last sample.
  const double threshold = average_gap * 1.1;
  double interval = sampled;
  interval += to_start < threshold ? to_start : average_gap / 2;
  interval += to_end < threshold ? to_end : average_gap / 2;
  double factor = interval / sampled;
  if (is_rate) factor /= static_cast<double>(window.end - window.start) / 1000;
  return delta * factor;
}

bool rollups_differ_from_raw(Function f, std::span<const store::Rollup> buckets) {
  if (f != Function::kRate && f != Function::kIncrease) return false;
  return std::any_of(buckets.begin(), buckets.end(),
                     [](const store::Rollup& b) { return !std::isfinite(b.sum); });
}

bool has_rollup_kernel(Function f) {
  switch (f) {
    case Function::kCountOverTime:
    case Function::kLastOverTime:
    case Function::kSumOverTime:
    case Function::kAvgOverTime:
    case Function::kMinOverTime:
    case Function::kMaxOverTime:
    case Function::kStddevOverTime:
    case Function::kStdvarOverTime:
    case Function::kQuantileOverTime:
    case Function::kRate:
    case Function::kIncrease: return true;
    default: return false;
  }
}

std::optional<double> over_raw(Function f, std::span<const store::Point> samples,
                               RangeWindow window, TimestampMs eval_time,
                               std::span<const double> params, std::vector<double>& scratch) {
  switch (f) {
    case Function::kCountOverTime: return static_cast<double>(samples.size());
    case Function::kLastOverTime: return samples.back().value;
    case Function::kSumOverTime: {
      double sum = 0;
      double c = 0;
      for (const auto& p : samples) kahan_add(p.value, sum, c);
      return kahan_value(sum, c);
    }
    case Function::kAvgOverTime: {
      MeanAccumulator mean;
      for (const auto& p : samples) mean.add(p.value);
      return mean.value();
    }
    case Function::kMinOverTime: {
      double m = samples.front().value;
      for (const auto& p : samples) {
        if (p.value < m || std::isnan(m)) m = p.value;
      }
      return m;
    }
    case Function::kMaxOverTime: {
      double m = samples.front().value;
      for (const auto& p : samples) {
        if (p.value > m || std::isnan(m)) m = p.value;
      }
      return m;
    }
    case Function::kStddevOverTime:
    case Function::kStdvarOverTime: {
      // Welford's algorithm with compensated sums, as Prometheus.
      double count = 0;
      double mean = 0;
      double c_mean = 0;
      double aux = 0;
      double c_aux = 0;
      for (const auto& p : samples) {
        count += 1;
        const double delta = p.value - (mean + c_mean);
        kahan_add(delta / count, mean, c_mean);
        kahan_add(delta * (p.value - (mean + c_mean)), aux, c_aux);
      }
      const double variance = (aux + c_aux) / count;
      return f == Function::kStdvarOverTime ? variance : std::sqrt(variance);
    }
    case Function::kQuantileOverTime: {
      scratch.clear();
      for (const auto& p : samples) scratch.push_back(p.value);
      return quantile_of(params[0], scratch);
    }
    case Function::kRate:
    case Function::kIncrease: {
      if (samples.size() < 2) return std::nullopt;
      double delta = samples.back().value - samples.front().value;
      double prev = samples.front().value;
      for (const auto& p : samples.subspan(1)) {
        if (p.value < prev) delta += prev;  // a counter reset: the counter restarted from 0
        prev = p.value;
      }
      return extrapolated_rate(samples.size(), samples.front().timestamp, samples.front().value,
                               samples.back().timestamp, delta, window, true, f == Function::kRate);
    }
    default: return over_raw_more(f, samples, window, eval_time, params, scratch);
  }
}

std::optional<double> over_rollups(Function f, std::span<const store::Rollup> buckets,
                                   RangeWindow window, double param) {
  switch (f) {
    case Function::kCountOverTime: {
      uint64_t n = 0;
      for (const auto& b : buckets) n += b.count;
      return static_cast<double>(n);
    }
    case Function::kLastOverTime: return buckets.back().last;
    case Function::kSumOverTime:
    case Function::kAvgOverTime: {
      double sum = 0;
      double c = 0;
      uint64_t n = 0;
      for (const auto& b : buckets) {
        kahan_add(b.sum, sum, c);
        n += b.count;
      }
      const double total = kahan_value(sum, c);
      return f == Function::kSumOverTime ? total : total / static_cast<double>(n);
    }
    case Function::kMinOverTime: {
      double m = buckets.front().min;
      for (const auto& b : buckets) {
        if (b.min < m || std::isnan(m)) m = b.min;
      }
      return m;
    }
    case Function::kMaxOverTime: {
      double m = buckets.front().max;
      for (const auto& b : buckets) {
        if (b.max > m || std::isnan(m)) m = b.max;
      }
      return m;
    }
    case Function::kStddevOverTime:
    case Function::kStdvarOverTime: {
      // Per bucket: n, mean and M2 = Σ(x - mean)² = Σx² - (Σx)²/n; buckets combined with
      // Chan et al.'s parallel update.
      double n = 0;
      double mean = 0;
      double m2 = 0;
      for (const auto& b : buckets) {
        const double nb = static_cast<double>(b.count);
        const double mean_b = b.sum / nb;
        double m2_b = b.sum_squares - b.sum * mean_b;
        if (m2_b < 0) m2_b = 0;  // rounding; a variance is never negative
        if (n == 0) {
          n = nb;
          mean = mean_b;
          m2 = m2_b;
          continue;
        }
        const double total = n + nb;
        const double delta = mean_b - mean;
        mean += delta * nb / total;
        m2 += m2_b + delta * delta * n * nb / total;
        n = total;
      }
      const double variance = m2 / n;
      return f == Function::kStdvarOverTime ? variance : std::sqrt(variance);
    }
    case Function::kQuantileOverTime: return sketch_quantile(param, buckets);
    case Function::kRate:
    case Function::kIncrease: {
      uint64_t n = 0;
      double delta = 0;
      for (size_t i = 0; i < buckets.size(); ++i) {
        const auto& b = buckets[i];
        n += b.count;
        delta += b.increase;
        if (i > 0) {
          // The step from the previous bucket's last sample to this one's first.
          const double prev = buckets[i - 1].last;
          delta += b.first >= prev ? b.first - prev : b.first;
        }
      }
      if (n < 2) return std::nullopt;
      return extrapolated_rate(n, buckets.front().first_timestamp, buckets.front().first,
                               buckets.back().last_timestamp, delta, window, true,
                               f == Function::kRate);
    }
    default: return std::nullopt;
  }
}

}  // namespace kpid::query::detail
