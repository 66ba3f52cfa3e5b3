// Prometheus stale markers in queries: an instant selector whose newest sample in the lookback
// is a marker has no value (until the series reappears); range selectors and range functions
// never see markers, from raw samples or from rollups; an ordinary NaN stays a value.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "kpid/core/stale_marker.h"
#include "query_fixture.h"

using namespace kpid;
using namespace kpid::query;
using namespace kpid::testing;
using store::Point;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One minute past a 5m boundary, so instant evaluations at B + n seconds read raw samples.
TimestampMs B() { return base_time() + kMin + 7; }
TimestampMs at(double seconds) { return B() + static_cast<TimestampMs>(seconds * 1000); }

struct Data : QueryFixture {
  Data() {
    // A scraped gauge that goes away at 30 s (its marker) and comes back at 60 s; `clean` is
    // the same without the marker, so every range function must agree on both.
    const std::vector<Point> samples = {
        {at(0), 1}, {at(10), 2}, {at(20), 3}, {at(60), 5}, {at(70), 6}};
    std::vector<Point> with = samples;
    with.insert(with.begin() + 3, Point{at(30), kStaleNaN});
    add({{"__name__", "s"}}, with);
    add({{"__name__", "clean"}}, samples);
    // A counter whose last sample before its marker is the newest in a window.
    add({{"__name__", "c"}}, {{at(0), 10}, {at(10), 20}, {at(20), 30}, {at(30), kStaleNaN}});
    add({{"__name__", "c_clean"}}, {{at(0), 10}, {at(10), 20}, {at(20), 30}});
    // A series that ends for good at 20 s.
    add({{"__name__", "gone"}}, {{at(0), 1}, {at(10), 2}, {at(20), kStaleNaN}});
    // An ordinary NaN is a value.
    add({{"__name__", "n"}}, {{at(0), 1}, {at(10), kNaN}});
  }

  bool present(const std::string& q, TimestampMs t) const { return !instant(q, t).series.empty(); }
};

// step -> value of a one-series range result (empty when no series).
std::map<TimestampMs, double> points_of(const QueryResult& r) {
  std::map<TimestampMs, double> out;
  REQUIRE(r.series.size() <= 1);
  if (!r.series.empty()) {
    for (const auto& p : r.series[0].points) out[p.timestamp] = p.value;
  }
  return out;
}

}  // namespace

TEST_CASE("stale: the marker is one NaN bit pattern, not every NaN", "[stale]") {
  CHECK(std::isnan(kStaleNaN));
  CHECK(is_stale_marker(kStaleNaN));
  CHECK_FALSE(is_stale_marker(kNaN));
  CHECK_FALSE(is_stale_marker(std::nan("2")));
  CHECK_FALSE(is_stale_marker(-kStaleNaN));
  CHECK_FALSE(is_stale_marker(0.0));
  CHECK_FALSE(is_stale_marker(std::numeric_limits<double>::infinity()));
}

TEST_CASE("stale: an instant selector has no value after the marker until the series returns",
          "[stale]") {
  Data f;
  CHECK(f.value("s", at(25)) == 3);  // before the marker, within the lookback
  CHECK_FALSE(f.present("s", at(30)));
  CHECK_FALSE(f.present("s", at(45)));
  CHECK_FALSE(f.present("s", at(59.999)));
  CHECK(f.value("s", at(60)) == 5);  // it reappeared
  CHECK(f.value("s offset 40s", at(65)) == 3);
  CHECK_FALSE(f.present("s offset 40s", at(75)));
  CHECK(f.value("gone", at(19)) == 2);
  CHECK_FALSE(f.present("gone", at(20)));
  CHECK_FALSE(f.present("gone", at(200)));
  // Operators and aggregations see the series as absent, not as NaN.
  CHECK_FALSE(f.present("sum(gone)", at(30)));
  CHECK_FALSE(f.present("gone * 2", at(30)));
  CHECK(f.value("count({__name__=~\"s|gone|clean\"})", at(40)) == 1);

  // The same over a range query: steps walked over one read...
  const auto walked = points_of(f.range("s", at(0), at(80), 10'000));
  CHECK(walked == std::map<TimestampMs, double>{
                      {at(0), 1}, {at(10), 2}, {at(20), 3}, {at(60), 5}, {at(70), 6}, {at(80), 6}});
  // ...and each step read on its own (steps further apart than the lookback).
  f.engine.set_options({15'000, 11'000});
  const auto apart = points_of(f.range("s", at(0), at(60), 20'000));
  CHECK(apart == std::map<TimestampMs, double>{{at(0), 1}, {at(20), 3}, {at(60), 5}});
}

TEST_CASE("stale: range selectors and range functions skip the marker", "[stale]") {
  Data f;
  // Raw samples of a range selector: no marker among them.
  const auto m = f.instant("s[80s]", at(70));
  REQUIRE(m.type == ValueType::kMatrix);
  REQUIRE(m.series.size() == 1);
  CHECK(m.series[0].points ==
        std::vector<Point>{{at(0), 1}, {at(10), 2}, {at(20), 3}, {at(60), 5}, {at(70), 6}});
  // A range holding only a marker is no series at all.
  CHECK(f.instant("gone[5s]", at(20)).series.empty());

  CHECK(f.value("count_over_time(s[80s])", at(70)) == 5);
  CHECK(f.value("last_over_time(s[35s])", at(50)) == 3);  // the last real sample
  CHECK(f.value("last_over_time(gone[1m])", at(30)) == 2);
  CHECK_FALSE(f.present("count_over_time(gone[5s])", at(20)));
  // The counter's marker is the newest sample of (−5s, 35s]: rate reads 10, 20, 30 only.
  CHECK(f.value("increase(c[40s])", at(35)) == Approx(30));
  CHECK(f.value("rate(c[40s])", at(35)) == Approx(0.75));

  for (const char* fn :
       {"count_over_time", "last_over_time", "sum_over_time", "avg_over_time", "min_over_time",
        "max_over_time", "stddev_over_time", "stdvar_over_time", "rate", "increase"}) {
    for (const auto& [range, t] : {std::pair{"80s", at(70)}, std::pair{"35s", at(50)},
                                   std::pair{"1m", at(30)}, std::pair{"15s", at(35)}}) {
      const std::string arg = std::string("[") + range + "])";
      for (const auto& [with, without] : {std::pair{"s", "clean"}, std::pair{"c", "c_clean"}}) {
        const std::string a = std::string(fn) + "(" + with + arg;
        const std::string b = std::string(fn) + "(" + without + arg;
        INFO(a << " vs " << b << " at +" << (t - B()) / 1000 << "s");
        const auto ra = f.instant(a, t);
        const auto rb = f.instant(b, t);
        REQUIRE(ra.series.size() == rb.series.size());
        if (ra.series.empty()) continue;
        const double va = ra.series[0].points[0].value;
        CHECK_FALSE(std::isnan(va));
        CHECK(va == Approx(rb.series[0].points[0].value));
      }
    }
  }
  // Over a range query too, windows read together and one by one.
  for (DurationMs step : {5'000, 60'000}) {
    const auto a = points_of(f.range("count_over_time(s[40s])", at(0), at(80), step));
    const auto b = points_of(f.range("count_over_time(clean[40s])", at(0), at(80), step));
    CHECK(a == b);
  }
}

TEST_CASE("stale: an ordinary NaN sample is still a value", "[stale]") {
  Data f;
  CHECK(std::isnan(f.value("n", at(15))));
  CHECK(f.value("count_over_time(n[1m])", at(15)) == 2);
  CHECK(std::isnan(f.value("last_over_time(n[1m])", at(15))));
  const auto m = f.instant("n[1m]", at(15));
  REQUIRE(m.series.size() == 1);
  REQUIRE(m.series[0].points.size() == 2);
  CHECK(std::isnan(m.series[0].points[1].value));
}

TEST_CASE("stale: rollup-backed ranges and selectors skip the marker", "[stale]") {
  QueryFixture f;
  const TimestampMs b = base_time();
  // Two hours, 30 s apart; the series goes away at 42m10s (its marker: bucket (40m, 45m] ends
  // stale) and returns at 50m30s. `clean` is the same without the marker.
  std::vector<Point> with;
  std::vector<Point> clean;
  for (TimestampMs t = b + 30 * kSec; t <= b + 2 * kHour; t += 30 * kSec) {
    if (t > b + 42 * kMin && t < b + 50 * kMin + 30 * kSec) continue;
    const double v = static_cast<double>((t - b) / kSec % 89);
    with.push_back({t, v});
    clean.push_back({t, v});
  }
  with.insert(std::find_if(with.begin(), with.end(),
                           [&](const Point& p) { return p.timestamp > b + 42 * kMin; }),
              Point{b + 42 * kMin + 10 * kSec, kStaleNaN});
  f.add({{"__name__", "r"}}, with);
  f.add({{"__name__", "r_clean"}}, clean);

  for (int pass = 0; pass < 2; ++pass) {
    INFO((pass == 0 ? "rollups computed from raw" : "stored rollups"));
    for (const char* fn :
         {"count_over_time", "sum_over_time", "avg_over_time", "min_over_time", "max_over_time",
          "last_over_time", "rate", "increase", "stddev_over_time"}) {
      for (const char* range : {"5m", "1h"}) {
        const std::string a = std::string(fn) + "(r[" + range + "])";
        const std::string c = std::string(fn) + "(r_clean[" + range + "])";
        for (TimestampMs t : {b + 45 * kMin, b + kHour, b + 2 * kHour}) {
          INFO(a << " at +" << (t - b) / kMin << "m");
          QueryStats stats;
          const auto ra = f.instant(a, t, &stats);
          CHECK(stats.raw_reads == 0);
          const auto rc = f.instant(c, t);
          REQUIRE(ra.series.size() == rc.series.size());
          if (ra.series.empty()) continue;
          CHECK_FALSE(std::isnan(ra.series[0].points[0].value));
          CHECK(ra.series[0].points[0].value == Approx(rc.series[0].points[0].value));
        }
      }
    }
    const double q = f.value("quantile_over_time(0.5, r[1h])", b + kHour);
    CHECK_FALSE(std::isnan(q));
    CHECK(q == Approx(f.value("quantile_over_time(0.5, r_clean[1h])", b + kHour)));

    // A plain selector over 5m-aligned steps reads the 5m rollups' last values: no value at
    // 45m (the bucket ends in the marker) nor at 50m (empty), as raw evaluation says.
    QueryStats rolled_stats;
    const auto rolled =
        points_of(f.range("r", b + 5 * kMin, b + 2 * kHour, 5 * kMin, &rolled_stats));
    CHECK(rolled_stats.rollup_5m_reads > 0);
    CHECK(rolled.contains(b + 40 * kMin));
    CHECK_FALSE(rolled.contains(b + 45 * kMin));
    CHECK_FALSE(rolled.contains(b + 50 * kMin));
    CHECK(rolled.contains(b + 55 * kMin));
    QueryStats raw_stats;
    const auto raw = points_of(f.range("r", b + 5 * kMin, b + 2 * kHour, kMin, &raw_stats));
    CHECK(raw_stats.raw_reads > 0);
    for (TimestampMs t = b + 5 * kMin; t <= b + 2 * kHour; t += 5 * kMin) {
      INFO("at +" << (t - b) / kMin << "m");
      CHECK(rolled.contains(t) == raw.contains(t));
      if (rolled.contains(t) && raw.contains(t)) CHECK(rolled.at(t) == raw.at(t));
    }
    REQUIRE(f.store->maintain().is_ok());
  }
}
