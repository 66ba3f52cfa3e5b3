#pragma once
// The arithmetic of a KPI's health: static threshold bands checked against a direction, the
// status a value gets from them, rolling baselines (the normal operating range) computed from
// rollup buckets, and thresholds suggested from a baseline. Pure functions over values; the
// evaluator that feeds them samples comes on top.

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/store/sample_store.h"

namespace kpid::kpi {

enum class Direction { kHigherIsBetter, kLowerIsBetter, kInRange };
// kUnknown: the KPI's [[datasource]] failed, so its value is not known (neither no_data nor a
// recovery; alerts hold as they are).
enum class Health { kOk, kWarn, kCrit, kAnomalous, kNoData, kUnknown };

// "higher_is_better", "lower_is_better", "in_range"; "ok", "warn", ...
std::string_view direction_name(Direction d);
std::optional<Direction> parse_direction(std::string_view text);
std::string_view health_name(Health h);

// Static thresholds. For higher_is_better and lower_is_better: `warn` and `crit` (and an
// optional `target`) on the bad side of the target. For in_range: a lower pair (crit_low <
// warn_low) and an upper pair (warn_high < crit_high), target optional in between.
struct Band {
  std::optional<double> target;
  double warn = 0;
  double crit = 0;
  double warn_low = 0;
  double crit_low = 0;
  double warn_high = 0;
  double crit_high = 0;
};

// "" when the band is consistent with the direction, else what is wrong, e.g. "for
// lower_is_better, crit (3) must be above warn (5)".
std::string check_band(Direction direction, const Band& band);

// ok, warn or crit. A value beyond a threshold (strictly) is in that level: for
// lower_is_better, value > crit is crit and value > warn is warn. NaN is no_data.
Health classify(Direction direction, const Band& band, double value);

// The normal operating range.
struct Baseline {
  double lower = 0;
  double center = 0;
  double upper = 0;
};

// Whether `value` is outside the baseline on the bad side for the direction (either side for
// in_range).
bool is_anomalous(Direction direction, const Baseline& baseline, double value);

// Baselines are computed over a KPI's value history: its value evaluated at regular steps
// (every 5 minutes or every hour) across the baseline window, in time order. NaN values are
// skipped. Each fails (not_found) when no value is left.

// Between quantiles q_low and q_high of the values (interpolated between ranks, as PromQL's
// quantile_over_time); the center is the median.
Result<Baseline> quantile_baseline(std::span<const store::Point> history, double q_low = 0.05,
                                   double q_high = 0.95);

// mean ± k·σ of the values (population σ).
Result<Baseline> stddev_baseline(std::span<const store::Point> history, double k = 2);

// Exponentially weighted mean and variance of the values in time order, each step weighting the
// new value by `alpha` (0 < alpha <= 1); mean ± k·σ.
Result<Baseline> ewma_baseline(std::span<const store::Point> history, double alpha, double k = 2);

// Seasonal: for each week the history covers, the mean of the values in the same hour of the
// week as `at` (a value stamped T describes the step ending at T, so it counts for the hour of
// T - 1ms), in completed hours only (not the one `at` is in); mean ± k·σ of those weekly means.
// Fails (not_found) with fewer than 2 such weeks.
Result<Baseline> seasonal_baseline(std::span<const store::Point> history, TimestampMs at,
                                   double k = 2);

// The share (0-1) of the history's values that the band classifies warn or crit; NaN values
// are left out. not_found when there are none.
Result<double> breach_fraction(Direction direction, const Band& band,
                               std::span<const store::Point> history);

// Thresholds suggested from a baseline: warn at the bound on the bad side, crit half the
// baseline's width further out (for a range of 2.5-3.5 with center 3: warn 3.5, crit 4).
// For in_range both pairs are filled.
Band suggest_thresholds(Direction direction, const Baseline& baseline);

}  // namespace kpid::kpi
