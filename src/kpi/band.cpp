#include "kpid/kpi/band.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <vector>

namespace kpid::kpi {

namespace {

std::string number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

// "for D, A (a) must be above B (b)" when !(a > b).
std::string above(Direction d, const char* a_name, double a, const char* b_name, double b) {
  if (a > b) return "";
  return "for " + std::string(direction_name(d)) + ", " + a_name + " (" + number(a) +
         ") must be above " + b_name + " (" + number(b) + ")";
}

Status no_values() { return Status::not_found("no values in the baseline window"); }

std::vector<double> finite_values(std::span<const store::Point> history) {
  std::vector<double> values;
  values.reserve(history.size());
  for (const auto& p : history) {
    if (std::isfinite(p.value)) values.push_back(p.value);
  }
  return values;
}

// Quantile q of sorted values, interpolating between ranks (q * (n - 1)).
double quantile_sorted(const std::vector<double>& sorted, double q) {
  const double rank = q * static_cast<double>(sorted.size() - 1);
  const auto lower = static_cast<size_t>(std::floor(rank));
  const size_t upper = std::min(lower + 1, sorted.size() - 1);
  const double weight = rank - static_cast<double>(lower);
  return sorted[lower] * (1 - weight) + sorted[upper] * weight;
}

Baseline around(double mean, double sigma, double k) {
  return {mean - k * sigma, mean, mean + k * sigma};
}

int64_t hour_of_week(TimestampMs t) {
  constexpr int64_t kHour = 3'600'000;
  int64_t hours = t / kHour;
  if (t % kHour != 0 && t < 0) --hours;  // floor
  // Hours since a Monday 00:00 UTC: the epoch was a Thursday, 72 hours after one.
  return ((hours + 72) % 168 + 168) % 168;
}

}  // namespace

std::string_view direction_name(Direction d) {
  switch (d) {
    case Direction::kHigherIsBetter: return "higher_is_better";
    case Direction::kLowerIsBetter: return "lower_is_better";
    case Direction::kInRange: return "in_range";
  }
  return "?";
}

std::optional<Direction> parse_direction(std::string_view text) {
  for (Direction d : {Direction::kHigherIsBetter, Direction::kLowerIsBetter, Direction::kInRange}) {
    if (direction_name(d) == text) return d;
  }
  return std::nullopt;
}

std::string_view health_name(Health h) {
  switch (h) {
    case Health::kOk: return "ok";
    case Health::kWarn: return "warn";
    case Health::kCrit: return "crit";
    case Health::kAnomalous: return "anomalous";
    case Health::kNoData: return "no_data";
    case Health::kUnknown: return "unknown";
  }
  return "?";
}

std::string check_band(Direction d, const Band& b) {
  std::string e;
  switch (d) {
    case Direction::kLowerIsBetter:
      e = above(d, "crit", b.crit, "warn", b.warn);
      if (e.empty() && b.target) e = above(d, "warn", b.warn, "target", *b.target);
      break;
    case Direction::kHigherIsBetter:
      e = above(d, "warn", b.warn, "crit", b.crit);
      if (e.empty() && b.target) e = above(d, "target", *b.target, "warn", b.warn);
      break;
    case Direction::kInRange:
      e = above(d, "warn_low", b.warn_low, "crit_low", b.crit_low);
      if (e.empty()) e = above(d, "warn_high", b.warn_high, "warn_low", b.warn_low);
      if (e.empty()) e = above(d, "crit_high", b.crit_high, "warn_high", b.warn_high);
      if (e.empty() && b.target && (*b.target < b.warn_low || *b.target > b.warn_high)) {
        e = "for in_range, target (" + number(*b.target) + ") must lie between warn_low (" +
            number(b.warn_low) + ") and warn_high (" + number(b.warn_high) + ")";
      }
      break;
  }
  return e;
}

Health classify(Direction d, const Band& b, double v) {
  if (std::isnan(v)) return Health::kNoData;
  switch (d) {
    case Direction::kLowerIsBetter:
      return v > b.crit ? Health::kCrit : v > b.warn ? Health::kWarn : Health::kOk;
    case Direction::kHigherIsBetter:
      return v < b.crit ? Health::kCrit : v < b.warn ? Health::kWarn : Health::kOk;
    case Direction::kInRange:
      if (v < b.crit_low || v > b.crit_high) return Health::kCrit;
      if (v < b.warn_low || v > b.warn_high) return Health::kWarn;
      return Health::kOk;
  }
  return Health::kNoData;
}

bool is_anomalous(Direction d, const Baseline& base, double v) {
  if (std::isnan(v)) return false;
  switch (d) {
    case Direction::kLowerIsBetter: return v > base.upper;
    case Direction::kHigherIsBetter: return v < base.lower;
    case Direction::kInRange: return v < base.lower || v > base.upper;
  }
  return false;
}

Result<Baseline> quantile_baseline(std::span<const store::Point> history, double q_low,
                                   double q_high) {
  std::vector<double> values = finite_values(history);
  if (values.empty()) return no_values();
  std::sort(values.begin(), values.end());
  return Baseline{quantile_sorted(values, q_low), quantile_sorted(values, 0.5),
                  quantile_sorted(values, q_high)};
}

Result<Baseline> stddev_baseline(std::span<const store::Point> history, double k) {
  // Welford's update: stable where the spread is small next to the values.
  double n = 0;
  double mean = 0;
  double m2 = 0;
  for (const auto& p : history) {
    if (!std::isfinite(p.value)) continue;
    n += 1;
    const double delta = p.value - mean;
    mean += delta / n;
    m2 += delta * (p.value - mean);
  }
  if (n == 0) return no_values();
  return around(mean, std::sqrt(m2 / n), k);
}

Result<Baseline> ewma_baseline(std::span<const store::Point> history, double alpha, double k) {
  if (!(alpha > 0 && alpha <= 1)) return Status::invalid_argument("ewma alpha must be in (0, 1]");
  bool started = false;
  double mean = 0;
  double variance = 0;
  for (const auto& p : history) {
    const double x = p.value;
    if (!std::isfinite(x)) continue;
    if (!started) {
      mean = x;
      started = true;
      continue;
    }
    const double diff = x - mean;
    const double step = alpha * diff;
    mean += step;
    variance = (1 - alpha) * (variance + diff * step);
  }
  if (!started) return no_values();
  return around(mean, std::sqrt(variance), k);
}

Result<Baseline> seasonal_baseline(std::span<const store::Point> history, TimestampMs at,
                                   double k) {
  constexpr int64_t kWeek = 7 * 86'400'000LL;
  const int64_t hour = hour_of_week(at);
  // Only completed hours: the hour `at` is in would otherwise pull the range toward itself.
  const TimestampMs hour_start = (at >= 0 ? at : at - 3'600'000 + 1) / 3'600'000 * 3'600'000;
  // week number -> (sum, count) of the values in that week's matching hour
  std::map<int64_t, std::pair<double, double>> weeks;
  for (const auto& p : history) {
    if (!std::isfinite(p.value) || p.timestamp - 1 >= hour_start ||
        hour_of_week(p.timestamp - 1) != hour) {
      continue;
    }
    int64_t t = p.timestamp - 1;
    int64_t week = (t >= 0 ? t : t - kWeek + 1) / kWeek;
    auto& cell = weeks[week];
    cell.first += p.value;
    cell.second += 1;
  }
  if (weeks.size() < 2) {
    return Status::not_found("fewer than 2 weeks of data at this hour of the week");
  }
  std::vector<double> means;
  for (const auto& [week, cell] : weeks) means.push_back(cell.first / cell.second);
  double mean = 0;
  for (double x : means) mean += x;
  mean /= static_cast<double>(means.size());
  double m2 = 0;
  for (double x : means) m2 += (x - mean) * (x - mean);
  return around(mean, std::sqrt(m2 / static_cast<double>(means.size())), k);
}

Result<double> breach_fraction(Direction direction, const Band& band,
                               std::span<const store::Point> history) {
  double total = 0;
  double breached = 0;
  for (const auto& p : history) {
    if (std::isnan(p.value)) continue;
    total += 1;
    Health h = classify(direction, band, p.value);
    if (h == Health::kWarn || h == Health::kCrit) breached += 1;
  }
  if (total == 0) return no_values();
  return breached / total;
}

Band suggest_thresholds(Direction d, const Baseline& base) {
  Band b;
  b.target = base.center;
  const double up = base.upper - base.center;
  const double down = base.center - base.lower;
  switch (d) {
    case Direction::kLowerIsBetter:
      b.warn = base.upper;
      b.crit = base.upper + up;
      break;
    case Direction::kHigherIsBetter:
      b.warn = base.lower;
      b.crit = base.lower - down;
      break;
    case Direction::kInRange:
      b.warn_low = base.lower;
      b.crit_low = base.lower - down;
      b.warn_high = base.upper;
      b.crit_high = base.upper + up;
      break;
  }
  return b;
}

}  // namespace kpid::kpi
