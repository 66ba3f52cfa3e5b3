#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kpid/kpi/band.h"

using namespace kpid;
using namespace kpid::kpi;

namespace {

constexpr TimestampMs kHour = 3'600'000;
constexpr TimestampMs kWeek = 168 * kHour;
constexpr TimestampMs kMonday = 1'700'438'400'000;  // Mon 2023-11-20 00:00 UTC

Band lower_band() {
  Band b;
  b.target = 1;
  b.warn = 2;
  b.crit = 5;
  return b;
}

}  // namespace

TEST_CASE("kpi: bands are checked against their direction") {
  CHECK(check_band(Direction::kLowerIsBetter, lower_band()).empty());
  Band swapped = lower_band();
  std::swap(swapped.warn, swapped.crit);
  CHECK(check_band(Direction::kLowerIsBetter, swapped) ==
        "for lower_is_better, crit (2) must be above warn (5)");
  Band higher;
  higher.target = 99.9;
  higher.warn = 99.5;
  higher.crit = 99;
  CHECK(check_band(Direction::kHigherIsBetter, higher).empty());
  higher.target = 99.2;
  CHECK(check_band(Direction::kHigherIsBetter, higher) ==
        "for higher_is_better, target (99.2) must be above warn (99.5)");
  Band range;
  range.crit_low = 10;
  range.warn_low = 20;
  range.warn_high = 30;
  range.crit_high = 40;
  CHECK(check_band(Direction::kInRange, range).empty());
  range.target = 35;
  CHECK(check_band(Direction::kInRange, range).find("must lie between") != std::string::npos);
  range.target.reset();
  range.warn_high = 15;
  CHECK(check_band(Direction::kInRange, range).find("warn_high (15) must be above warn_low (20)") !=
        std::string::npos);
  CHECK(parse_direction("in_range") == Direction::kInRange);
  CHECK(!parse_direction("up"));
}

TEST_CASE("kpi: a value beyond a threshold takes its level, NaN is no data") {
  const Band b = lower_band();
  CHECK(classify(Direction::kLowerIsBetter, b, 1.5) == Health::kOk);
  CHECK(classify(Direction::kLowerIsBetter, b, 2) == Health::kOk);  // at warn: not beyond
  CHECK(classify(Direction::kLowerIsBetter, b, 2.01) == Health::kWarn);
  CHECK(classify(Direction::kLowerIsBetter, b, 5.5) == Health::kCrit);
  CHECK(classify(Direction::kLowerIsBetter, b, std::nan("")) == Health::kNoData);
  Band h;
  h.warn = 99.5;
  h.crit = 99;
  CHECK(classify(Direction::kHigherIsBetter, h, 99.7) == Health::kOk);
  CHECK(classify(Direction::kHigherIsBetter, h, 99.2) == Health::kWarn);
  CHECK(classify(Direction::kHigherIsBetter, h, 98) == Health::kCrit);
  Band r;
  r.crit_low = 10;
  r.warn_low = 20;
  r.warn_high = 30;
  r.crit_high = 40;
  CHECK(classify(Direction::kInRange, r, 25) == Health::kOk);
  CHECK(classify(Direction::kInRange, r, 15) == Health::kWarn);
  CHECK(classify(Direction::kInRange, r, 35) == Health::kWarn);
  CHECK(classify(Direction::kInRange, r, 5) == Health::kCrit);
  CHECK(classify(Direction::kInRange, r, 45) == Health::kCrit);
}

TEST_CASE("kpi: anomalies are on the bad side of the baseline") {
  const Baseline base{10, 15, 20};
  CHECK(is_anomalous(Direction::kLowerIsBetter, base, 21));
  CHECK_FALSE(is_anomalous(Direction::kLowerIsBetter, base, 5));
  CHECK(is_anomalous(Direction::kHigherIsBetter, base, 5));
  CHECK_FALSE(is_anomalous(Direction::kHigherIsBetter, base, 25));
  CHECK(is_anomalous(Direction::kInRange, base, 5));
  CHECK(is_anomalous(Direction::kInRange, base, 25));
  CHECK_FALSE(is_anomalous(Direction::kInRange, base, 12));
  CHECK_FALSE(is_anomalous(Direction::kInRange, base, std::nan("")));
}

TEST_CASE("kpi: quantile and stddev baselines match a direct computation over the history") {
  std::mt19937_64 rng(4);
  std::normal_distribution<double> noise(0, 3);
  std::vector<store::Point> points;
  std::vector<double> values;
  for (int i = 0; i < 24 * 60; ++i) {  // a day at one per minute, around a large offset
    const double v = 1e6 + noise(rng);
    points.push_back({kMonday + 60'000 * (i + 1), v});
    values.push_back(v);
  }
  points.push_back({kMonday, std::nan("")});  // skipped

  std::sort(values.begin(), values.end());
  // Rank q * (n - 1), interpolated between its neighbours.
  auto exact = [&](double q) {
    const double rank = q * static_cast<double>(values.size() - 1);
    const auto i = static_cast<size_t>(rank);
    return values[i] + (values[i + 1] - values[i]) * (rank - static_cast<double>(i));
  };
  auto q = quantile_baseline(points);
  REQUIRE(q.is_ok());
  CHECK(q->lower == Approx(exact(0.05)).epsilon(1e-12));
  CHECK(q->center == Approx(exact(0.5)).epsilon(1e-12));
  CHECK(q->upper == Approx(exact(0.95)).epsilon(1e-12));
  auto narrow = quantile_baseline(points, 0.25, 0.75);
  REQUIRE(narrow.is_ok());
  CHECK(narrow->lower == Approx(exact(0.25)).epsilon(1e-12));
  CHECK(narrow->upper == Approx(exact(0.75)).epsilon(1e-12));

  double mean = 0;
  for (double v : values) mean += v;
  mean /= static_cast<double>(values.size());
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  const double sigma = std::sqrt(var / static_cast<double>(values.size()));
  auto s = stddev_baseline(points, 3);
  REQUIRE(s.is_ok());
  CHECK(s->center == Approx(mean).epsilon(1e-12));
  CHECK(s->upper - s->center == Approx(3 * sigma).epsilon(1e-6));
  CHECK(s->center - s->lower == Approx(3 * sigma).epsilon(1e-6));

  CHECK(quantile_baseline({}).status().code() == StatusCode::kNotFound);
  CHECK(stddev_baseline({}).status().code() == StatusCode::kNotFound);
}

TEST_CASE("kpi: ewma baseline follows the recent level") {
  std::vector<store::Point> points;
  for (int h = 0; h < 48; ++h) {
    const double level = h < 24 ? 10 : 20;  // a step up halfway
    points.push_back({kMonday + h * kHour + 1000, level + (h % 2 == 0 ? 1 : -1)});
  }
  // The same recurrence, computed here over the values.
  const double alpha = 0.2;
  double mean = points[0].value;
  double variance = 0;
  for (size_t i = 1; i < points.size(); ++i) {
    const double diff = points[i].value - mean;
    mean += alpha * diff;
    variance = (1 - alpha) * (variance + alpha * diff * diff);
  }
  auto e = ewma_baseline(points, alpha, 2);
  REQUIRE(e.is_ok());
  CHECK(e->center == Approx(mean));
  CHECK(e->upper == Approx(mean + 2 * std::sqrt(variance)));
  CHECK(e->center > 19);  // adapted to the new level
  CHECK(ewma_baseline(points, 0, 2).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("kpi: seasonal baseline compares the same hour of the week") {
  // Four weeks of a weekly cycle (busy weekday afternoons) plus week-to-week drift.
  std::vector<store::Point> points;
  auto level = [](TimestampMs t, int week) {
    const int64_t hour_of_week = ((t - kMonday) / kHour) % 168;
    const bool weekday = hour_of_week < 120;
    const int64_t hour_of_day = hour_of_week % 24;
    return (weekday && hour_of_day >= 12 && hour_of_day < 18 ? 500.0 : 100.0) + 10.0 * week;
  };
  for (int week = 0; week < 4; ++week) {
    for (int64_t m = 0; m < 168 * 60; m += 10) {
      const TimestampMs t = kMonday + week * kWeek + m * 60'000 + 1;
      points.push_back({t, level(t, week)});
    }
  }
  // Tuesday 14:30 of week 5: the same hour in weeks 0..3 had 500, 510, 520, 530.
  const TimestampMs at = kMonday + 4 * kWeek + 24 * kHour + 14 * kHour + 30 * 60'000;
  auto s = seasonal_baseline(points, at, 2);
  REQUIRE(s.is_ok());
  const double mean = 515;
  const double sigma = std::sqrt((15.0 * 15 + 5 * 5 + 5 * 5 + 15 * 15) / 4);
  CHECK(s->center == Approx(mean));
  CHECK(s->upper == Approx(mean + 2 * sigma));
  // Sunday 03:00 of week 3: the quiet level of weeks 0-2; the hour under way is not counted.
  auto quiet = seasonal_baseline(points, kMonday + 4 * kWeek - 21 * kHour, 2);
  REQUIRE(quiet.is_ok());
  CHECK(quiet->center == Approx(110));
  // One week is not enough.
  std::vector<store::Point> one_week(points.begin(), points.begin() + 168 * 6);
  CHECK(seasonal_baseline(one_week, at).status().code() == StatusCode::kNotFound);
}

TEST_CASE("kpi: thresholds are suggested from the bad side of the baseline") {
  // Monthly churn ranged 2.5-3.5% over the year: warn 3.5%, crit 4%.
  const Baseline churn{2.5, 3.0, 3.5};
  const Band b = suggest_thresholds(Direction::kLowerIsBetter, churn);
  CHECK(b.warn == Approx(3.5));
  CHECK(b.crit == Approx(4.0));
  CHECK(*b.target == Approx(3.0));
  CHECK(check_band(Direction::kLowerIsBetter, b).empty());
  const Band up = suggest_thresholds(Direction::kHigherIsBetter, {98, 99, 100});
  CHECK(up.warn == Approx(98));
  CHECK(up.crit == Approx(97));
  CHECK(check_band(Direction::kHigherIsBetter, up).empty());
  const Band range = suggest_thresholds(Direction::kInRange, {20, 25, 35});
  CHECK(range.warn_low == Approx(20));
  CHECK(range.crit_low == Approx(15));
  CHECK(range.warn_high == Approx(35));
  CHECK(range.crit_high == Approx(45));
  CHECK(check_band(Direction::kInRange, range).empty());
}

TEST_CASE("kpi: breach fraction counts the history values the band puts in warn or crit") {
  std::vector<store::Point> history;
  for (int i = 0; i < 10; ++i) history.push_back({kMonday + i * kHour, static_cast<double>(i)});
  history.push_back({kMonday + 10 * kHour, std::nan("")});
  // lower_is_better, warn 2, crit 5: values 3..9 (7 of 10) are beyond warn.
  auto f = breach_fraction(Direction::kLowerIsBetter, lower_band(), history);
  REQUIRE(f.is_ok());
  CHECK(*f == Approx(0.7));
  CHECK(breach_fraction(Direction::kLowerIsBetter, lower_band(), {}).status().code() ==
        StatusCode::kNotFound);
}
