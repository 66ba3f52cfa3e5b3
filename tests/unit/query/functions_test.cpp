// Every PromQL function for float samples against hand-worked values: the range functions
// beyond *_over_time (irate, delta, deriv, predict_linear, holt_winters, changes, resets,
// present/absent/mad_over_time), histogram_quantile, absent, label_replace/join, the sort
// functions, timestamp, the calendar and math functions, and their argument checks.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>

#include "query_fixture.h"

using namespace kpid;
using namespace kpid::query;
using namespace kpid::testing;
using store::Point;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// One minute past a 5m boundary, so that instant evaluations read raw samples.
TimestampMs B() { return base_time() + kMin + 7; }
TimestampMs at(double seconds) { return B() + static_cast<TimestampMs>(seconds * 1000); }

std::vector<std::string> order(const QueryResult& r) {
  std::vector<std::string> out;
  for (const auto& s : r.series) out.push_back(label_text(*s.labels));
  return out;
}

struct Data : QueryFixture {
  Data() {
    add({{"__name__", "g"}}, {{at(0), 100},
                              {at(10), 2},
                              {at(20), 4},
                              {at(30), 4},
                              {at(40), 5},
                              {at(50), 5},
                              {at(60), 7},
                              {at(70), 9}});
    // A counter with one reset (30 -> 5).
    add({{"__name__", "c"}, {"job", "a"}},
        {{at(10), 10}, {at(20), 20}, {at(30), 30}, {at(40), 5}, {at(50), 15}, {at(60), 25}});
    add({{"__name__", "single"}}, {{at(30), 3}});
    add({{"__name__", "n"}}, {{at(10), 1}, {at(20), kNaN}, {at(30), 3}});
  }
};

}  // namespace

TEST_CASE("functions: irate and idelta read the last two samples", "[eval][functions]") {
  Data f;
  CHECK(f.value("irate(c[1m])", at(60)) == Approx(1));    // (25 - 15) / 10s
  CHECK(f.value("irate(c[1m])", at(40)) == Approx(0.5));  // reset 30 -> 5: 5 / 10s
  CHECK(f.value("idelta(c[1m])", at(40)) == -25);
  CHECK(f.value("idelta(g[1m])", at(60)) == 2);
  CHECK(f.instant("irate(single[1m])", at(30)).series.empty());
  CHECK(label_text(*f.instant("irate(c[1m])", at(60)).series[0].labels) == "job=a");
}

TEST_CASE("functions: delta extrapolates without counter handling", "[eval][functions]") {
  Data f;
  // (0s, 60s]: 2 .. 7, delta 5 over 50s, first sample 10s (one gap) after the start: 5 * 60/50.
  CHECK(f.value("delta(g[1m])", at(60)) == Approx(6));
  // A drop is a drop, not a reset: 25 - 10 = 15 over 50s, extrapolated to 60s.
  CHECK(f.value("delta(c[1m])", at(60)) == Approx(18));
  CHECK(f.instant("delta(single[1m])", at(30)).series.empty());
}

TEST_CASE("functions: deriv and predict_linear by least squares", "[eval][functions]") {
  Data f;
  // x = 0, 10 .. 50 s, y = 2 4 4 5 5 7: cov 145, var 1750.
  CHECK(f.value("deriv(g[1m])", at(60)) == Approx(145.0 / 1750));
  // Intercept at the evaluation time: 4.5 + slope * 25; then 60 s ahead.
  CHECK(f.value("predict_linear(g[1m], 60)", at(60)) ==
        Approx(4.5 + 145.0 / 1750 * 25 + 145.0 / 1750 * 60));
  CHECK(f.value("predict_linear(g[1m], 0)", at(60)) == Approx(4.5 + 145.0 / 1750 * 25));
  // A constant series: slope 0.
  CHECK(f.value("deriv(g[15s])", at(50)) == 0);  // 5, 5
  CHECK(f.instant("deriv(single[1m])", at(30)).series.empty());
}

TEST_CASE("functions: holt_winters and double_exponential_smoothing", "[eval][functions]") {
  Data f;
  // 2 4 4 5 5 7 with sf = tf = 0.5, worked by hand: 6.796875.
  CHECK(f.value("holt_winters(g[1m], 0.5, 0.5)", at(60)) == Approx(6.796875));
  CHECK(f.value("double_exponential_smoothing(g[1m], 0.5, 0.5)", at(60)) == Approx(6.796875));
  CHECK(f.error("holt_winters(g[1m], 1, 0.5)", at(60)) ==
        "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000");
  CHECK(f.error("holt_winters(g[1m], 0.5, 0)", at(60)) ==
        "invalid trend factor. Expected: 0 < tf < 1, got: 0.000000");
  // The factors are checked only where a window has samples, as Prometheus.
  CHECK(f.instant("holt_winters(g[1m], 1, 0.5)", at(1000)).series.empty());
  CHECK(f.instant("holt_winters(single[1m], 0.5, 0.5)", at(30)).series.empty());
}

TEST_CASE("functions: changes and resets", "[eval][functions]") {
  Data f;
  CHECK(f.value("changes(c[1m])", at(60)) == 5);
  CHECK(f.value("resets(c[1m])", at(60)) == 1);
  CHECK(f.value("changes(g[1m])", at(60)) == 3);
  CHECK(f.value("resets(g[1m])", at(60)) == 0);
  // NaN to a number and back are changes; NaN never compares lower.
  CHECK(f.value("changes(n[1m])", at(30)) == 2);
  CHECK(f.value("resets(n[1m])", at(30)) == 0);
  CHECK(f.value("changes(single[1m])", at(30)) == 0);
}

TEST_CASE("functions: present_over_time, absent_over_time, mad_over_time", "[eval][functions]") {
  Data f;
  CHECK(f.value("present_over_time(g[1m])", at(60)) == 1);
  CHECK(label_text(*f.instant("present_over_time(c[1m])", at(60)).series[0].labels) == "job=a");
  CHECK(f.instant("absent_over_time(g[1m])", at(60)).series.empty());
  const auto absent = f.instant("absent_over_time(nothing{job=\"x\", a=~\"b\"}[1m])", at(60));
  REQUIRE(absent.series.size() == 1);
  CHECK(label_text(*absent.series[0].labels) == "job=x");
  CHECK(absent.series[0].points[0].value == 1);
  // Over a range: 1 at the steps whose window (t - 10s, t] has no sample.
  const auto r = f.range("absent_over_time(single[10s])", at(20), at(50), 10 * kSec);
  REQUIRE(r.series.size() == 1);
  std::vector<TimestampMs> times;
  for (const auto& p : r.series[0].points) times.push_back(p.timestamp);
  CHECK(times == std::vector<TimestampMs>{at(20), at(40), at(50)});
  // 2 4 4 5 5 7: median 4.5, deviations 2.5 .5 .5 .5 .5 2.5, their median .5.
  CHECK(f.value("mad_over_time(g[1m])", at(60)) == Approx(0.5));
  CHECK(f.value("mad_over_time(single[1m])", at(30)) == 0);
}

TEST_CASE("functions: sample-dependent range functions never read rollups", "[eval][functions]") {
  QueryFixture f;
  const TimestampMs t0 = base_time();
  std::vector<Point> points;
  for (int i = 0; i <= 120; ++i) points.push_back({t0 + i * kMin, static_cast<double>(i % 7)});
  f.add({{"__name__", "x"}}, points);
  for (const char* q : {"irate(x[1h])", "changes(x[1h])", "resets(x[1h])", "deriv(x[1h])",
                        "idelta(x[1h])", "mad_over_time(x[1h])", "present_over_time(x[1h])",
                        "delta(x[1h])", "holt_winters(x[1h], 0.5, 0.5)"}) {
    QueryStats stats;
    f.range(q, t0 + kHour, t0 + 2 * kHour, kHour, &stats);
    INFO(q);
    CHECK(stats.rollup_5m_reads == 0);
    CHECK(stats.rollup_1h_reads == 0);
    CHECK(stats.raw_reads > 0);
  }
  // 60 samples in (t0, t0 + 1h]: i = 1 .. 60, values i % 7; changes at every step but 0 -> 0.
  CHECK(f.value("resets(x[1h])", t0 + kHour) == 8);  // 6 -> 0 at i = 7, 14, ... 56
  CHECK(f.value("changes(x[1h])", t0 + kHour) == 59);
}

TEST_CASE("functions: histogram_quantile on classic buckets", "[eval][functions]") {
  QueryFixture f;
  const TimestampMs t = B();
  auto bucket = [&](const char* name, const char* job, const char* le, double v) {
    f.add({{"__name__", name}, {"job", job}, {"le", le}}, {{t, v}});
  };
  bucket("h_bucket", "a", "0.1", 10);
  bucket("h_bucket", "a", "0.5", 30);
  bucket("h_bucket", "a", "1", 40);
  bucket("h_bucket", "a", "+Inf", 50);
  // Not monotonic: le=1 below le=0.5 is raised to 30.
  bucket("m_bucket", "a", "0.1", 10);
  bucket("m_bucket", "a", "0.5", 30);
  bucket("m_bucket", "a", "1", 25);
  bucket("m_bucket", "a", "2", 40);
  bucket("m_bucket", "a", "+Inf", 40);
  bucket("noinf_bucket", "a", "1", 10);
  bucket("noinf_bucket", "a", "2", 20);
  bucket("onlyinf_bucket", "a", "+Inf", 20);
  bucket("zero_bucket", "a", "1", 0);
  bucket("zero_bucket", "a", "+Inf", 0);
  bucket("neg_bucket", "a", "-1", 10);
  bucket("neg_bucket", "a", "0", 20);
  bucket("neg_bucket", "a", "+Inf", 20);
  // "1" and "1.0" are one bucket: 0.5:2, 1:8, +Inf:10.
  bucket("eq_bucket", "a", "0.5", 2);
  bucket("eq_bucket", "a", "1", 4);
  bucket("eq_bucket", "a", "1.0", 4);
  bucket("eq_bucket", "a", "+Inf", 10);
  bucket("bad_bucket", "a", "x", 10);  // not a bound: ignored
  bucket("bad_bucket", "a", "+Inf", 10);
  bucket("bad_bucket", "a", "1", 5);

  // Rank 25 in (0.1, 0.5]: 0.1 + 0.4 * 15/20.
  CHECK(f.value("histogram_quantile(0.5, h_bucket)", t) == Approx(0.4));
  // Rank 5 in the first bucket, interpolated from 0.
  CHECK(f.value("histogram_quantile(0.1, h_bucket)", t) == Approx(0.05));
  // Rank 45 in the +Inf bucket: the highest finite bound.
  CHECK(f.value("histogram_quantile(0.9, h_bucket)", t) == 1);
  CHECK(f.value("histogram_quantile(1, h_bucket)", t) == 1);
  CHECK(f.value("histogram_quantile(0, h_bucket)", t) == 0);
  CHECK(f.value("histogram_quantile(-0.5, h_bucket)", t) == -kInf);
  CHECK(f.value("histogram_quantile(1.5, h_bucket)", t) == kInf);
  CHECK(std::isnan(f.value("histogram_quantile(NaN, h_bucket)", t)));
  // Rank 35 in (1, 2] with the monotonic fix: 1 + 1 * (35 - 30) / 10.
  CHECK(f.value("histogram_quantile(0.875, m_bucket)", t) == Approx(1.5));
  CHECK(std::isnan(f.value("histogram_quantile(0.5, noinf_bucket)", t)));
  CHECK(std::isnan(f.value("histogram_quantile(0.5, onlyinf_bucket)", t)));
  CHECK(std::isnan(f.value("histogram_quantile(0.5, zero_bucket)", t)));
  CHECK(f.value("histogram_quantile(0.25, neg_bucket)", t) == -1);
  // Rank 5 in (0.5, 1] of 6: 0.5 + 0.5 * 3/6.
  CHECK(f.value("histogram_quantile(0.5, eq_bucket)", t) == Approx(0.75));
  // Only 1:5 and +Inf:10 count; rank 5 reaches the first bucket's end.
  CHECK(f.value("histogram_quantile(0.5, bad_bucket)", t) == 1);
  // Grouped by all labels but le; __name__ dropped.
  const auto r = f.instant("histogram_quantile(0.5, h_bucket)", t);
  CHECK(label_text(*r.series[0].labels) == "job=a");
  // Two metrics with equal labels once le and __name__ are gone.
  CHECK(f.error("histogram_quantile(0.5, {__name__=~\"h_bucket|m_bucket\"})", t) ==
        "vector cannot contain metrics with the same labelset");
  // With an aggregation, as dashboards write it.
  CHECK(f.value("histogram_quantile(0.5, sum by (le) (h_bucket))", t) == Approx(0.4));
  // φ per step from a scalar expression.
  CHECK(f.value("histogram_quantile(scalar(vector(0.5)), h_bucket)", t) == Approx(0.4));
  CHECK(f.instant("histogram_quantile(0.5, nothing)", t).series.empty());
}

TEST_CASE("functions: histogram_quantile over a range of rates", "[eval][functions]") {
  QueryFixture f;
  const TimestampMs t0 = B();
  // Counters growing 1, 3, 4 per 10 s in le 0.1, 1, +Inf (cumulative).
  std::vector<Point> b1, b2, b3;
  for (int i = 0; i <= 12; ++i) {
    const TimestampMs t = t0 + i * 10 * kSec;
    b1.push_back({t, 1.0 * i});
    b2.push_back({t, 3.0 * i});
    b3.push_back({t, 4.0 * i});
  }
  f.add({{"__name__", "lat_bucket"}, {"le", "0.1"}}, b1);
  f.add({{"__name__", "lat_bucket"}, {"le", "1"}}, b2);
  f.add({{"__name__", "lat_bucket"}, {"le", "+Inf"}}, b3);
  const auto r =
      f.range("histogram_quantile(0.5, rate(lat_bucket[1m]))", t0 + kMin, t0 + 2 * kMin, 30 * kSec);
  REQUIRE(r.series.size() == 1);
  REQUIRE(r.series[0].points.size() == 3);
  // Rates 0.1, 0.3, 0.4 per second: rank 0.2 in (0.1, 1]: 0.1 + 0.9 * 0.1/0.2.
  for (const auto& p : r.series[0].points) CHECK(p.value == Approx(0.55));
}

TEST_CASE("functions: absent", "[eval][functions]") {
  Data f;
  CHECK(f.instant("absent(g)", at(60)).series.empty());
  // Checked against Prometheus 2.42: matchers apply in order, a second one on a name removes it.
  const auto a = f.instant("absent(nothing{job=\"x\", env!=\"p\", env=\"q\"})", at(60));
  REQUIRE(a.series.size() == 1);
  CHECK(label_text(*a.series[0].labels) == "env=q,job=x");
  CHECK(a.series[0].points[0].value == 1);
  CHECK(label_text(*f.instant("absent(nothing{env=\"q\", env!=\"p\"})", at(60)).series[0].labels) ==
        "");
  CHECK(label_text(*f.instant("absent(nothing{env=~\"q\", a=\"b\"})", at(60)).series[0].labels) ==
        "a=b");
  CHECK(label_text(*f.instant("absent(nothing{env=\"\"})", at(60)).series[0].labels) == "");
  CHECK(label_text(*f.instant("absent(nothing{job=\"x\", job=\"y\"})", at(60)).series[0].labels) ==
        "");
  CHECK(label_text(*f.instant("absent((nothing{job=\"x\"}))", at(60)).series[0].labels) == "job=x");
  CHECK(label_text(*f.instant("absent(sum(nothing{job=\"x\"}))", at(60)).series[0].labels) == "");
  // Over a range: the steps where g has no value (lookback 5m).
  const auto r = f.range("absent(g)", at(60), at(60) + 10 * kMin, 5 * kMin);
  REQUIRE(r.series.size() == 1);
  REQUIRE(r.series[0].points.size() == 1);
  CHECK(r.series[0].points[0].timestamp == at(60) + 10 * kMin);
}

TEST_CASE("functions: label_replace and label_join", "[eval][functions]") {
  Data f;
  const TimestampMs t = at(60);
  CHECK(by_labels(f.instant("label_replace(c, \"dst\", \"x-$1\", \"job\", \"(.*)\")", t)) ==
        std::map<std::string, double>{{"__name__=c,dst=x-a,job=a", 25}});
  // No match: unchanged.
  CHECK(by_labels(f.instant("label_replace(c, \"dst\", \"$1\", \"job\", \"b(.*)\")", t)) ==
        std::map<std::string, double>{{"__name__=c,job=a", 25}});
  // The regex is anchored; an empty result removes the label.
  CHECK(by_labels(f.instant("label_replace(c, \"job\", \"$2\", \"job\", \"(a)\")", t)) ==
        std::map<std::string, double>{{"__name__=c", 25}});
  // ${1}, $$, named groups, a reference to an unknown group.
  CHECK(by_labels(f.instant(
            "label_replace(c, \"d\", \"${1}x$$$name$zz\", \"__name__\", \"(?P<name>.)\")", t)) ==
        std::map<std::string, double>{{"__name__=c,d=cx$c,job=a", 25}});
  CHECK(f.error("label_replace(c, \"d\", \"\", \"job\", \"(\")", t) ==
        "invalid regular expression in label_replace(): (");
  CHECK(f.error("label_replace(c, \"1d\", \"\", \"job\", \".*\")", t) ==
        "invalid destination label name in label_replace(): 1d");
  // Raised even with no series.
  CHECK(f.error("label_replace(nothing, \"1d\", \"\", \"job\", \".*\")", t) ==
        "invalid destination label name in label_replace(): 1d");
  CHECK(by_labels(f.instant("label_join(c, \"j\", \"-\", \"job\", \"__name__\", \"none\")", t)) ==
        std::map<std::string, double>{{"__name__=c,j=a-c-,job=a", 25}});
  CHECK(by_labels(f.instant("label_join(c, \"job\", \",\", \"none\")", t)) ==
        std::map<std::string, double>{{"__name__=c", 25}});
  CHECK(f.error("label_join(c, \"j\", \"-\", \"a-b\")", t) ==
        "invalid source label name in label_join(): a-b");
  CHECK(f.error("label_join(c, \"\", \"-\", \"job\")", t) ==
        "invalid destination label name in label_join(): ");
  // Two series made equal: an error.
  CHECK(f.error("label_replace({__name__=~\"g|single\"}, \"__name__\", \"x\", \"\", \"\")",
                at(30)) == "vector cannot contain metrics with the same labelset");
}

TEST_CASE("functions: sort, sort_desc, sort_by_label", "[eval][functions]") {
  QueryFixture f;
  const TimestampMs t = B();
  f.add({{"__name__", "s"}, {"i", "10"}}, {{t, 3}});
  f.add({{"__name__", "s"}, {"i", "9"}}, {{t, 1}});
  f.add({{"__name__", "s"}, {"i", "a"}}, {{t, kNaN}});
  f.add({{"__name__", "s"}, {"i", "b2"}}, {{t, 2}});
  f.add({{"__name__", "s"}, {"i", "b10"}}, {{t, 5}});
  using V = std::vector<std::string>;
  CHECK(order(f.instant("sort(s)", t)) == V{"__name__=s,i=9", "__name__=s,i=b2", "__name__=s,i=10",
                                            "__name__=s,i=b10", "__name__=s,i=a"});
  CHECK(order(f.instant("sort_desc(s)", t)) == V{"__name__=s,i=b10", "__name__=s,i=10",
                                                 "__name__=s,i=b2", "__name__=s,i=9",
                                                 "__name__=s,i=a"});
  CHECK(order(f.instant("sort_by_label(s, \"i\")", t)) == V{"__name__=s,i=9", "__name__=s,i=10",
                                                            "__name__=s,i=a", "__name__=s,i=b2",
                                                            "__name__=s,i=b10"});
  CHECK(order(f.instant("(sort_by_label_desc(s, \"i\"))", t)) ==
        V{"__name__=s,i=b10", "__name__=s,i=b2", "__name__=s,i=a", "__name__=s,i=10",
          "__name__=s,i=9"});
  // Not at the top: the usual order by labels.
  CHECK(order(f.instant("sort(s) * 1", t)).front() == "i=10");
}

TEST_CASE("functions: timestamp is the sample's own time for a selector", "[eval][functions]") {
  Data f;
  CHECK(f.value("timestamp(g)", at(65)) == static_cast<double>(at(60)) / 1000);
  CHECK(f.value("timestamp((g))", at(65)) == static_cast<double>(at(60)) / 1000);
  CHECK(f.value("timestamp(g offset 10s)", at(65)) == static_cast<double>(at(50)) / 1000);
  // Of any other expression: the evaluation time.
  CHECK(f.value("timestamp(g + 0)", at(65)) == static_cast<double>(at(65)) / 1000);
  CHECK(label_text(*f.instant("timestamp(c)", at(65)).series[0].labels) == "job=a");
  const auto r = f.range("timestamp(single)", at(30), at(50), 10 * kSec);
  REQUIRE(r.series.size() == 1);
  for (const auto& p : r.series[0].points) CHECK(p.value == static_cast<double>(at(30)) / 1000);
}

TEST_CASE("functions: calendar functions", "[eval][functions]") {
  QueryFixture f;
  // 2021-03-04T05:06:07Z, a Thursday.
  const std::string v = "vector(1614834367)";
  CHECK(f.value("minute(" + v + ")", 0) == 6);
  CHECK(f.value("hour(" + v + ")", 0) == 5);
  CHECK(f.value("day_of_week(" + v + ")", 0) == 4);
  CHECK(f.value("day_of_month(" + v + ")", 0) == 4);
  CHECK(f.value("day_of_year(" + v + ")", 0) == 63);
  CHECK(f.value("days_in_month(" + v + ")", 0) == 31);
  CHECK(f.value("month(" + v + ")", 0) == 3);
  CHECK(f.value("year(" + v + ")", 0) == 2021);
  // 2020-02-29, a Saturday in a leap year.
  CHECK(f.value("days_in_month(vector(1582934400))", 0) == 29);
  CHECK(f.value("day_of_month(vector(1582934400))", 0) == 29);
  CHECK(f.value("day_of_year(vector(1582934400))", 0) == 60);
  CHECK(f.value("day_of_week(vector(1582934400))", 0) == 6);
  CHECK(f.value("days_in_month(vector(1550000000))", 0) == 28);  // February 2019
  // 1969-12-31T23:59:59Z.
  CHECK(f.value("year(vector(-1))", 0) == 1969);
  // NaN and ±Inf become Go's smallest int64 seconds; the answers Prometheus 2.42 gives.
  CHECK(f.value("year(vector(NaN))", 0) == 292277026596.0);
  CHECK(f.value("minute(vector(NaN))", 0) == 30);
  CHECK(f.value("days_in_month(vector(NaN))", 0) == 31);
  CHECK(f.value("day_of_year(vector(NaN))", 0) == 339);
  CHECK(f.value("month(vector(NaN))", 0) == 12);
  CHECK(f.value("hour(vector(-Inf))", 0) == 15);
  CHECK(f.value("day_of_week(vector(Inf))", 0) == 0);
  CHECK(f.value("day_of_month(vector(1e300))", 0) == 4);
  CHECK(f.value("day_of_week(vector(-1))", 0) == 3);
  // Without argument: the evaluation time.
  CHECK(f.value("year()", 1614834367000) == 2021);
  CHECK(f.value("minute()", 1614834367000) == 6);
  CHECK(f.value("day_of_week()", 1582934400000) == 6);
  // __name__ is dropped.
  Data d;
  CHECK(label_text(*d.instant("hour(c)", at(60)).series[0].labels) == "job=a");
}

TEST_CASE("functions: math, round and clamp", "[eval][functions]") {
  QueryFixture f;
  CHECK(f.value("round(vector(2.5))", 0) == 3);
  CHECK(f.value("round(vector(-2.5))", 0) == -2);  // ties round up
  CHECK(f.value("round(vector(1.234), 0.1)", 0) == Approx(1.2));
  CHECK(f.value("round(vector(5), 10)", 0) == 10);
  CHECK(f.value("round(vector(14), 10)", 0) == 10);
  CHECK(f.value("clamp(vector(5), 0, 3)", 0) == 3);
  CHECK(f.value("clamp(vector(-5), 0, 3)", 0) == 0);
  CHECK(f.instant("clamp(vector(5), 3, 0)", 0).series.empty());
  CHECK(std::isnan(f.value("clamp(vector(5), NaN, 3)", 0)));
  CHECK(f.value("clamp_min(vector(5), 7)", 0) == 7);
  CHECK(f.value("clamp_max(vector(5), 2)", 0) == 2);
  CHECK(std::isnan(f.value("clamp_min(vector(NaN), 0)", 0)));
  CHECK(f.value("clamp_max(vector(NaN), -Inf)", 0) == -kInf);  // Go's Min: -Inf wins over NaN
  CHECK(f.value("sgn(vector(-3))", 0) == -1);
  CHECK(f.value("sgn(vector(0))", 0) == 0);
  CHECK(f.value("sgn(vector(2))", 0) == 1);
  CHECK(f.value("abs(vector(-2))", 0) == 2);
  CHECK(f.value("ceil(vector(1.2))", 0) == 2);
  CHECK(f.value("floor(vector(-1.2))", 0) == -2);
  CHECK(f.value("exp(vector(1))", 0) == Approx(std::numbers::e));
  CHECK(f.value("ln(vector(1))", 0) == 0);
  CHECK(f.value("log2(vector(8))", 0) == 3);
  CHECK(f.value("log10(vector(1000))", 0) == 3);
  CHECK(f.value("sqrt(vector(9))", 0) == 3);
  CHECK(std::isnan(f.value("sqrt(vector(-1))", 0)));
  CHECK(f.value("ln(vector(0))", 0) == -kInf);
  CHECK(f.value("pi()", 0) == std::numbers::pi);
  CHECK(f.value("deg(vector(pi()))", 0) == Approx(180));
  CHECK(f.value("rad(vector(180))", 0) == Approx(std::numbers::pi));
  CHECK(f.value("cos(vector(0))", 0) == 1);
  CHECK(f.value("sin(vector(0))", 0) == 0);
  CHECK(f.value("tan(vector(0))", 0) == 0);
  CHECK(f.value("acos(vector(1))", 0) == 0);
  CHECK(f.value("asin(vector(1))", 0) == Approx(std::numbers::pi / 2));
  CHECK(f.value("atan(vector(1))", 0) == Approx(std::numbers::pi / 4));
  CHECK(f.value("cosh(vector(0))", 0) == 1);
  CHECK(f.value("sinh(vector(0))", 0) == 0);
  CHECK(f.value("tanh(vector(0))", 0) == 0);
  CHECK(f.value("acosh(vector(1))", 0) == 0);
  CHECK(f.value("asinh(vector(0))", 0) == 0);
  CHECK(f.value("atanh(vector(0))", 0) == 0);
  CHECK(f.value("atanh(vector(1))", 0) == kInf);
  // __name__ dropped; equal labels afterwards are an error only at a shared step.
  Data d;
  CHECK(label_text(*d.instant("ceil(c)", at(60)).series[0].labels) == "job=a");
  CHECK(d.error("ceil({__name__=~\"g|single\"})", at(30)) ==
        "vector cannot contain metrics with the same labelset");
}

TEST_CASE("functions: argument counts and types as Prometheus words them", "[promql][errors]") {
  // The messages and positions are Prometheus 2.42's (checked with promtool), as are those of
  // label_replace and label_join above.
  QueryFixture f;
  CHECK(f.error("round()") ==
        "1:1: parse error: expected at least 1 argument(s) in call to \"round\", got 0");
  CHECK(f.error("round(vector(1), 1, 2)") ==
        "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3");
  CHECK(f.error("year(vector(1), vector(2))") ==
        "1:1: parse error: expected at most 1 argument(s) in call to \"year\", got 2");
  CHECK(f.error("label_join(x, \"a\")") ==
        "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 2");
  CHECK(f.error("sort_by_label()") ==
        "1:1: parse error: expected at least 1 argument(s) in call to \"sort_by_label\", got 0");
  CHECK(f.error("holt_winters(x[5m], 0.5)") ==
        "1:1: parse error: expected 3 argument(s) in call to \"holt_winters\", got 2");
  CHECK(f.error("label_replace(x, 1, \"a\", \"b\", \"c\")") ==
        "1:18: parse error: expected type string in call to function \"label_replace\", got "
        "scalar");
  CHECK(f.error("label_join(x, \"a\", \"-\", \"b\", 1)") ==
        "1:30: parse error: expected type string in call to function \"label_join\", got scalar");
  CHECK(f.error("predict_linear(x, 1)") ==
        "1:16: parse error: expected type range vector in call to function \"predict_linear\", "
        "got instant vector");
  CHECK(f.error("histogram_quantile(x, y)") ==
        "1:20: parse error: expected type scalar in call to function \"histogram_quantile\", "
        "got instant vector");
  CHECK(f.error("year(1)") ==
        "1:6: parse error: expected type instant vector in call to function \"year\", got "
        "scalar");
  // Variadic and optional arguments that are fine.
  CHECK(f.instant("label_join(x, \"a\", \"-\", \"b\", \"c\", \"d\")", 0).series.empty());
  CHECK(f.instant("sort_by_label(x)", 0).series.empty());
  CHECK(f.instant("year()", 0).series.size() == 1);
}

TEST_CASE("functions: answers checked against Prometheus 2.42", "[eval][functions]") {
  // The same series as a promtool rule test (samples every 10 s from 0); the values below are
  // what Prometheus 2.42 answered. Evaluation times avoid samples on window starts, where
  // Prometheus 2's closed windows differ from kpid's left-open ones.
  QueryFixture f;
  auto series = [&](LabelList labels, std::initializer_list<double> values, int first = 0) {
    std::vector<Point> points;
    int i = first;
    for (double v : values) points.push_back({at(10.0 * i++), v});
    f.add(labels, points);
  };
  series({{"__name__", "g"}}, {100, 2, 4, 4, 5, 5, 7, 9});
  series({{"__name__", "c"}, {"job", "a"}}, {10, 20, 30, 5, 15, 25}, 1);
  series({{"__name__", "n"}}, {1, kNaN, 3}, 1);
  series({{"__name__", "m"}}, {1, kNaN, 3, kInf, 4, -kInf}, 1);
  series({{"__name__", "k"}}, {kInf, kInf, kInf, kInf, kInf, kInf, kInf});
  series({{"__name__", "h_bucket"}, {"le", "0.1"}}, {0, 10, 20, 30, 40, 50, 60});
  series({{"__name__", "h_bucket"}, {"le", "0.5"}}, {0, 15, 29, 45, 60, 73, 90});
  series({{"__name__", "h_bucket"}, {"le", "1"}}, {0, 14, 30, 50, 61, 80, 100});
  series({{"__name__", "h_bucket"}, {"le", "+Inf"}}, {0, 30, 61, 80, 99, 120, 140});
  const struct {
    const char* query;
    double seconds;
    double want;
  } cases[] = {
      {"rate(c[1m])", 65, 0.9},
      {"increase(c[1m])", 65, 54},
      {"delta(g[1m])", 65, 6},
      {"delta(c[1m])", 65, 18},
      {"delta(g[25s])", 67, 5},
      {"irate(c[1m])", 45, 0.5},
      {"idelta(c[1m])", 65, 10},
      {"deriv(g[1m])", 65, 8.285714285714285E-02},
      {"deriv(g[2m])", 65, -9.714285714285714E-01},
      {"predict_linear(g[1m], 30)", 65, 9.471428571428572},
      {"predict_linear(g[1m] offset 10s, 30)", 65, -73.2},
      {"holt_winters(g[1m], 0.3, 0.6)", 65, 7.474051199999998},
      {"holt_winters(g[2m], 0.3, 0.6)", 65, -60.85352},
      {"changes(n[1m])", 35, 2},
      {"resets(c[1m])", 65, 1},
      {"changes(g[2m])", 65, 4},
      {"histogram_quantile(0.3, rate(h_bucket[1m]))", 65, 0.066},
      {"histogram_quantile(0.8, rate(h_bucket[1m]))", 65, 1},
      {"histogram_quantile(0.5, h_bucket)", 35, 3.666666666666667E-01},
      {"histogram_quantile(0.95, h_bucket)", 35, 1},
      {"round(vector(-2.5))", 65, -2},
      {"round(vector(0.15), 0.1)", 65, 0.2},
      {"round(vector(-7.25), 0.5)", 65, -7},
      {"clamp_min(vector(NaN), Inf)", 65, kInf},
      {"quantile_over_time(0.3, g[1m])", 65, 4},
      // NaN and infinities.
      {"irate(m[1m])", 35, kNaN},
      {"irate(m[1m])", 45, kInf},
      {"changes(m[1m])", 65, 5},
      {"resets(m[1m])", 65, 2},
      {"deriv(m[1m])", 65, kNaN},
      {"deriv(k[1m])", 65, kNaN},
      {"predict_linear(k[1m], 10)", 65, kNaN},
      {"delta(m[1m])", 65, -kInf},
      {"idelta(m[1m])", 55, -kInf},
      {"quantile_over_time(0.5, m[1m])", 65, 2},
      {"holt_winters(m[1m], 0.5, 0.5)", 65, kNaN},
      {"holt_winters(g[1m], NaN, 0.5)", 65, kNaN},
      {"round(m)", 45, kInf},
      {"day_of_week(m)", 45, 0},
  };
  for (const auto& c : cases) {
    INFO(c.query);
    const double got = f.value(c.query, at(c.seconds));
    if (std::isnan(c.want)) {
      CHECK(std::isnan(got));
    } else if (std::isinf(c.want)) {
      CHECK(got == c.want);
    } else {
      CHECK(got == Approx(c.want).epsilon(1e-9));
    }
  }
  CHECK(f.error("holt_winters(g[1m], Inf, 0.5)", at(65)) ==
        "invalid smoothing factor. Expected: 0 < sf < 1, got: +Inf");
  CHECK(f.value("timestamp(vector(1))", at(65)) == static_cast<double>(at(65)) / 1000);
  CHECK(f.value("timestamp(g offset 10s)", at(65)) == static_cast<double>(at(50)) / 1000);
  CHECK(std::isnan(f.value("sgn(vector(NaN))", at(65))));
  CHECK(std::isnan(f.value("clamp(vector(NaN), 0, 1)", at(65))));
}
