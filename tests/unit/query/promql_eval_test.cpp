// Evaluation against hand-computed values: range functions (raw samples), rate/increase
// extrapolation and counter resets, NaN, aggregations, arithmetic, comparisons, vector
// matching, offsets, value types.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <map>

#include "query_fixture.h"

using namespace kpid;
using namespace kpid::query;
using namespace kpid::testing;
using store::Point;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The test's time origin, one minute past a 5m boundary so that instant evaluations at B + n
// seconds read raw samples (rollup-backed evaluation has its own tests).
TimestampMs B() { return base_time() + kMin + 7; }
TimestampMs at(double seconds) { return B() + static_cast<TimestampMs>(seconds * 1000); }

struct Data : QueryFixture {
  Data() {
    // A gauge; the sample at exactly t-60s must stay outside [60s] ranges (left-open).
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
    // A counter starting late, close to zero: extrapolation stops at its zero point.
    add({{"__name__", "z"}}, {{at(30), 1}, {at(40), 2}, {at(50), 3}, {at(60), 4}});
    // Two samples far from both window edges: extrapolation by half a sample gap only.
    add({{"__name__", "sparse"}}, {{at(25), 10}, {at(35), 20}});
    add({{"__name__", "single"}}, {{at(30), 3}});
    add({{"__name__", "n"}}, {{at(10), 1}, {at(20), kNaN}, {at(30), 3}});
    add({{"__name__", "nanfirst"}}, {{at(10), kNaN}, {at(20), 5}, {at(30), 2}});
  }
};

}  // namespace

TEST_CASE("eval: *_over_time over raw samples, hand-computed", "[eval]") {
  Data f;
  const TimestampMs t = at(60);
  // Window (0s, 60s]: 2, 4, 4, 5, 5, 7 (the sample at 0s is outside, the one at 70s after).
  CHECK(f.value("count_over_time(g[60s])", t) == 6);
  CHECK(f.value("sum_over_time(g[60s])", t) == 27);
  CHECK(f.value("avg_over_time(g[60s])", t) == 4.5);
  CHECK(f.value("min_over_time(g[60s])", t) == 2);
  CHECK(f.value("max_over_time(g[60s])", t) == 7);
  CHECK(f.value("last_over_time(g[60s])", t) == 7);
  // Mean 4.5; squared deviations 6.25 + 4 * 0.25 + 6.25 = 13.5; / 6 = 2.25.
  CHECK(f.value("stdvar_over_time(g[60s])", t) == Approx(2.25));
  CHECK(f.value("stddev_over_time(g[60s])", t) == Approx(1.5));
  // Sorted 2 4 4 5 5 7; rank φ * 5, interpolated.
  CHECK(f.value("quantile_over_time(0.5, g[60s])", t) == 4.5);
  CHECK(f.value("quantile_over_time(0.9, g[60s])", t) == Approx(6));
  CHECK(f.value("quantile_over_time(0, g[60s])", t) == 2);
  CHECK(f.value("quantile_over_time(1, g[60s])", t) == 7);
  CHECK(f.value("quantile_over_time(-1, g[60s])", t) == -std::numeric_limits<double>::infinity());
  CHECK(f.value("quantile_over_time(2, g[60s])", t) == std::numeric_limits<double>::infinity());
  CHECK(std::isnan(f.value("quantile_over_time(NaN, g[60s])", t)));
  // Parentheses around the arguments change nothing.
  CHECK(f.value("sum_over_time((g[60s]))", t) == 27);
  CHECK(f.value("quantile_over_time((0.5), ((g[60s])))", t) == 4.5);
  // A window with one sample.
  CHECK(f.value("stddev_over_time(single[1m])", at(30)) == 0);
  CHECK(f.value("quantile_over_time(0.3, single[1m])", at(30)) == 3);
  // No sample in the window: no element.
  CHECK(f.instant("sum_over_time(g[5s])", at(65)).series.empty());
}

TEST_CASE("eval: range functions drop __name__ except last_over_time", "[eval]") {
  Data f;
  const auto sum = f.instant("sum_over_time(c[1m])", at(60));
  REQUIRE(sum.series.size() == 1);
  CHECK(label_text(*sum.series[0].labels) == "job=a");
  const auto last = f.instant("last_over_time(c[1m])", at(60));
  REQUIRE(last.series.size() == 1);
  CHECK(label_text(*last.series[0].labels) == "__name__=c,job=a");
  // Two series that differ only in their name collide once it is dropped.
  CHECK(f.error("sum_over_time({__name__=~\"g|single\"}[1m])", at(60)) ==
        "vector cannot contain metrics with the same labelset");
}

TEST_CASE("eval: NaN samples", "[eval]") {
  Data f;
  const TimestampMs t = at(30);
  CHECK(std::isnan(f.value("sum_over_time(n[1m])", t)));
  CHECK(std::isnan(f.value("avg_over_time(n[1m])", t)));
  CHECK(std::isnan(f.value("stddev_over_time(n[1m])", t)));
  CHECK(f.value("count_over_time(n[1m])", t) == 3);
  CHECK(f.value("last_over_time(n[1m])", t) == 3);
  // min/max skip NaN unless nothing else is there.
  CHECK(f.value("min_over_time(n[1m])", t) == 1);
  CHECK(f.value("max_over_time(n[1m])", t) == 3);
  CHECK(f.value("min_over_time(nanfirst[1m])", t) == 2);
  CHECK(f.value("max_over_time(nanfirst[1m])", t) == 5);
  CHECK(std::isnan(f.value("max_over_time(nanfirst[15s])", at(10))));
  // NaN sorts first in quantiles: NaN 1 3 -> φ=1 is 3.
  CHECK(f.value("quantile_over_time(1, n[1m])", t) == 3);
  CHECK(std::isnan(f.value("quantile_over_time(0, n[1m])", t)));
  // Aggregations: max and min ignore a NaN unless it is alone; sum and avg propagate it.
  CHECK(f.value("max(n)", at(20)) != f.value("max(n)", at(20)));  // the only element is NaN
  CHECK(std::isnan(f.value("sum({__name__=~\"n|g\"})", at(20))));
  CHECK(f.value("max({__name__=~\"n|g\"})", at(20)) == 4);
  CHECK(f.value("min({__name__=~\"n|g\"})", at(20)) == 4);
}

TEST_CASE("eval: rate and increase with counter resets and extrapolation", "[eval]") {
  Data f;
  const TimestampMs t = at(60);
  // c in (0s, 60s]: 10 20 30 5 15 25; delta = 25 - 10 + 30 (reset) = 45. First sample 10s after
  // the window start (< 1.1 * 10s gap: extrapolate to the edge), last at the end; the zero
  // point is 50s * 10/45 = 11.1s back, beyond the start. 45 * 60/50 = 54.
  CHECK(f.value("increase(c[1m])", t) == Approx(54));
  CHECK(f.value("rate(c[1m])", t) == Approx(0.9));
  // z in (0s, 60s]: 1 2 3 4 from 30s; delta 3; the zero point is 30s * 1/3 = 10s before the
  // first sample, nearer than the window start (30s): 3 * (30 + 10) / 30 = 4.
  CHECK(f.value("increase(z[1m])", t) == Approx(4));
  CHECK(f.value("rate(z[1m])", t) == Approx(4.0 / 60));
  // sparse: 10 at 25s, 20 at 35s; both edges 25s away (> 11s): half a gap each side, but the
  // zero point (10s before) is nearer than 25s and the 11s threshold: 10 * (10 + 10 + 5) / 10.
  CHECK(f.value("increase(sparse[1m])", t) == Approx(25));
  CHECK(f.value("rate(sparse[1m])", t) == Approx(25.0 / 60));
  // Fewer than two samples: no result.
  CHECK(f.instant("rate(single[1m])", t).series.empty());
  // A window ending before the reset sees no reset: (0s, 30s]: 10 20 30, extrapolated to
  // 0s (10s < 11s) and to 30s: 20 * 30/20 = 30.
  CHECK(f.value("increase(c[30s])", at(30)) == Approx(30));
  // Offset moves the window back: the same window evaluated 10 minutes later.
  CHECK(f.value("increase(c[1m] offset 10m)", at(660)) == Approx(54));
}

TEST_CASE("eval: rate over a range query", "[eval]") {
  Data f;
  const auto r = f.range("rate(c[30s])", at(30), at(60), 10'000);
  REQUIRE(r.series.size() == 1);
  CHECK(label_text(*r.series[0].labels) == "job=a");
  const auto& p = r.series[0].points;
  REQUIRE(p.size() == 4);
  CHECK(p[0].timestamp == at(30));
  // At 30s: 10 20 30 -> increase 30 (see above), / 30s.
  CHECK(p[0].value == Approx(1.0));
  // At 40s, (10s, 40s]: 20 30 5: delta 5 - 20 + 30 = 15, extrapolated 10s to the start:
  // 15 * 30/20 = 22.5, / 30s.
  CHECK(p[1].value == Approx(0.75));
  // At 50s, (20s, 50s]: 30 5 15: delta 15 - 30 + 30 = 15; the zero point (20s * 30/15 = 40s)
  // is beyond the start: 15 * 30/20 / 30.
  CHECK(p[2].value == Approx(0.75));
  // At 60s, (30s, 60s]: 5 15 25: 20 * 30/20 = 30 but the zero point is 20s * 5/20 = 5s back:
  // 20 * 25/20 = 25, / 30.
  CHECK(p[3].value == Approx(25.0 / 30));
}

namespace {

struct Hosts : QueryFixture {
  TimestampMs t = base_time() + 90'001;
  Hosts() {
    add({{"__name__", "cpu"}, {"host", "a"}, {"dc", "x"}}, {{t, 1}});
    add({{"__name__", "cpu"}, {"host", "b"}, {"dc", "x"}}, {{t, 2}});
    add({{"__name__", "cpu"}, {"host", "c"}, {"dc", "y"}}, {{t, 3}});
    add({{"__name__", "mem"}, {"host", "a"}, {"dc", "x"}}, {{t, 10}});
    add({{"__name__", "mem"}, {"host", "b"}, {"dc", "x"}}, {{t, 20}});
    add({{"__name__", "mem"}, {"host", "d"}}, {{t, 40}});
  }
};

}  // namespace

TEST_CASE("eval: aggregations with by and without", "[eval]") {
  Hosts f;
  CHECK(f.value("sum(cpu)", f.t) == 6);
  CHECK(f.value("avg(cpu)", f.t) == 2);
  CHECK(f.value("min(cpu)", f.t) == 1);
  CHECK(f.value("max(cpu)", f.t) == 3);
  CHECK(f.value("count(cpu)", f.t) == 3);
  const auto all = f.instant("sum(cpu)", f.t);
  CHECK(all.series[0].labels->empty());
  using M = std::map<std::string, double>;
  CHECK(by_labels(f.instant("sum by (dc) (cpu)", f.t)) == M{{"dc=x", 3}, {"dc=y", 3}});
  CHECK(by_labels(f.instant("sum(cpu) by (dc)", f.t)) == M{{"dc=x", 3}, {"dc=y", 3}});
  CHECK(by_labels(f.instant("avg by (dc) (cpu)", f.t)) == M{{"dc=x", 1.5}, {"dc=y", 3}});
  CHECK(by_labels(f.instant("max without (host) (cpu)", f.t)) == M{{"dc=x", 2}, {"dc=y", 3}});
  CHECK(by_labels(f.instant("count without (dc) (cpu)", f.t)) ==
        M{{"host=a", 1}, {"host=b", 1}, {"host=c", 1}});
  // A grouping label a series lacks groups it with the others that lack it.
  CHECK(by_labels(f.instant("sum by (dc) ({__name__=~\"cpu|mem\"})", f.t)) ==
        M{{"", 40}, {"dc=x", 33}, {"dc=y", 3}});
  CHECK(by_labels(f.instant("count by (__name__) ({dc=\"x\"})", f.t)) ==
        M{{"__name__=cpu", 2}, {"__name__=mem", 2}});
  CHECK(by_labels(f.instant("min by (nosuch) (cpu)", f.t)) == M{{"", 1}});
  CHECK(f.instant("sum(nosuch)", f.t).series.empty());
  CHECK(f.value("sum(sum by (dc) (cpu))", f.t) == 6);
}

TEST_CASE("eval: arithmetic and comparisons between scalars", "[eval]") {
  Hosts f;
  CHECK(f.value("1 + 2 * 3", f.t) == 7);
  CHECK(f.value("(1 + 2) * 3", f.t) == 9);
  CHECK(f.value("2 ^ 3 ^ 2", f.t) == 512);
  CHECK(f.value("-2 ^ 2", f.t) == -4);
  CHECK(f.value("7 % 3", f.t) == 1);
  CHECK(f.value("-7 % 3", f.t) == -1);
  CHECK(f.value("10 / 4", f.t) == 2.5);
  CHECK(f.value("1 / 0", f.t) == std::numeric_limits<double>::infinity());
  CHECK(std::isnan(f.value("0 / 0", f.t)));
  CHECK(f.value("1 == bool 1", f.t) == 1);
  CHECK(f.value("1 > bool 2", f.t) == 0);
  CHECK(f.value("2 >= bool 2", f.t) == 1);
  CHECK(f.value("NaN != bool NaN", f.t) == 1);
  CHECK(f.value("time()", f.t) == Approx(static_cast<double>(f.t) / 1000));
  CHECK(f.value("scalar(cpu{host=\"b\"}) * 10", f.t) == 20);
  CHECK(std::isnan(f.value("scalar(cpu)", f.t)));  // more than one element
  CHECK(std::isnan(f.value("scalar(nosuch)", f.t)));
}

TEST_CASE("eval: vector and scalar operands", "[eval]") {
  Hosts f;
  using M = std::map<std::string, double>;
  // Arithmetic drops the name.
  CHECK(by_labels(f.instant("cpu * 2", f.t)) ==
        M{{"dc=x,host=a", 2}, {"dc=x,host=b", 4}, {"dc=y,host=c", 6}});
  CHECK(by_labels(f.instant("10 - cpu", f.t)) ==
        M{{"dc=x,host=a", 9}, {"dc=x,host=b", 8}, {"dc=y,host=c", 7}});
  CHECK(by_labels(f.instant("-cpu", f.t)) ==
        M{{"dc=x,host=a", -1}, {"dc=x,host=b", -2}, {"dc=y,host=c", -3}});
  CHECK(by_labels(f.instant("abs(-cpu)", f.t)) ==
        M{{"dc=x,host=a", 1}, {"dc=x,host=b", 2}, {"dc=y,host=c", 3}});
  // A filtering comparison keeps the name and the vector's value, on either side.
  CHECK(by_labels(f.instant("cpu > 1", f.t)) ==
        M{{"__name__=cpu,dc=x,host=b", 2}, {"__name__=cpu,dc=y,host=c", 3}});
  CHECK(by_labels(f.instant("2 > cpu", f.t)) == M{{"__name__=cpu,dc=x,host=a", 1}});
  // bool keeps every element as 0 or 1 and drops the name.
  CHECK(by_labels(f.instant("cpu > bool 1", f.t)) ==
        M{{"dc=x,host=a", 0}, {"dc=x,host=b", 1}, {"dc=y,host=c", 1}});
  CHECK(by_labels(f.instant("vector(1) + 1", f.t)) == M{{"", 2}});
  // Name-dropping can make two series equal: an error, as in Prometheus.
  CHECK(f.error("{host=\"a\"} * 1", f.t) == "vector cannot contain metrics with the same labelset");
}

TEST_CASE("eval: one-to-one vector matching", "[eval]") {
  Hosts f;
  using M = std::map<std::string, double>;
  // All labels but the name must match: host c and d have no partner.
  CHECK(by_labels(f.instant("cpu + mem", f.t)) == M{{"dc=x,host=a", 11}, {"dc=x,host=b", 22}});
  CHECK(by_labels(f.instant("mem / on(host) cpu", f.t)) == M{{"host=a", 10}, {"host=b", 10}});
  CHECK(by_labels(f.instant("mem - ignoring(dc) cpu", f.t)) == M{{"host=a", 9}, {"host=b", 18}});
  // Comparisons keep the left side's labels (and name) and value.
  CHECK(by_labels(f.instant("cpu < mem", f.t)) ==
        M{{"__name__=cpu,dc=x,host=a", 1}, {"__name__=cpu,dc=x,host=b", 2}});
  CHECK(by_labels(f.instant("mem > bool on(host) (cpu * 15)", f.t)) ==
        M{{"host=a", 0}, {"host=b", 0}});
  CHECK(by_labels(f.instant("cpu * on(host) nosuch", f.t)).empty());
  CHECK(by_labels(f.instant("sum(cpu) + on() vector(100)", f.t)) == M{{"", 106}});
  // Duplicates on the right are many-to-many.
  CHECK(f.error("cpu + on(dc) mem", f.t) ==
        "found duplicate series for the match group {dc=\"x\"} on the right hand-side of the "
        "operation: [{__name__=\"mem\", dc=\"x\", host=\"b\"}, {__name__=\"mem\", "
        "dc=\"x\", host=\"a\"}];many-to-many matching not allowed: matching labels must be "
        "unique on one side");
  // Two left elements for one right element need group_left.
  CHECK(f.error("cpu + on(dc) sum by (dc) (mem)", f.t) ==
        "multiple matches for labels: many-to-one matching must be explicit "
        "(group_left/group_right)");
}

TEST_CASE("eval: offset, lookback and a bare range selector", "[eval]") {
  Data f;
  CHECK(f.value("g offset 30s", at(80)) == 5);
  CHECK(f.value("g offset -20s", at(40)) == 7);
  // An instant query of a range selector returns its raw samples, timestamps as stored.
  const auto m = f.instant("g[30s]", at(60));
  REQUIRE(m.type == ValueType::kMatrix);
  REQUIRE(m.series.size() == 1);
  CHECK(m.series[0].points == std::vector<Point>{{at(40), 5}, {at(50), 5}, {at(60), 7}});
  const auto off = f.instant("g[20s] offset 20s", at(60));
  REQUIRE(off.series.size() == 1);
  CHECK(off.series[0].points == std::vector<Point>{{at(30), 4}, {at(40), 5}});
}

TEST_CASE("eval: value types of instant and range queries", "[eval]") {
  Data f;
  const auto s = f.instant("1 + 1", at(0));
  CHECK(s.type == ValueType::kScalar);
  CHECK(s.scalar == 2);
  CHECK(s.time == at(0));
  const auto str = f.instant("\"hello\"", at(0));
  CHECK(str.type == ValueType::kString);
  CHECK(str.string == "hello");
  // A scalar over a range is one series without labels, a point per step.
  const auto r = f.range("time() * 2", at(0), at(20), 10'000);
  REQUIRE(r.series.size() == 1);
  CHECK(r.series[0].labels->empty());
  REQUIRE(r.series[0].points.size() == 3);
  CHECK(r.series[0].points[2].value == Approx(static_cast<double>(at(20)) / 500));
  // Aggregations over a range: one point per step with data.
  const auto sum = f.range("sum(g)", at(10), at(30), 10'000);
  REQUIRE(sum.series.size() == 1);
  CHECK(sum.series[0].points == std::vector<Point>{{at(10), 2}, {at(20), 4}, {at(30), 4}});
}

TEST_CASE("eval: steps further apart than the range or lookback", "[eval]") {
  Data f;
  // Each window read on its own: (5s, 20s], (25s, 40s], (45s, 60s].
  const auto sums = f.range("sum_over_time(g[15s])", at(20), at(60), 20'000);
  REQUIRE(sums.series.size() == 1);
  CHECK(sums.series[0].points == std::vector<Point>{{at(20), 6}, {at(40), 9}, {at(60), 12}});
  const auto rates = f.range("increase(c[25s])", at(30), at(60), 30'000);
  REQUIRE(rates.series.size() == 1);
  // (5s, 30s]: 10 20 30, 5s to the start (< 11s) and none to the end: 20 * 25/20.
  CHECK(rates.series[0].points[0].value == Approx(25));
  f.engine.set_options({15'000, 11'000});
  const auto g = f.range("g", at(5), at(65), 20'000);
  REQUIRE(g.series.size() == 1);
  CHECK(g.series[0].points ==
        std::vector<Point>{{at(5), 100}, {at(25), 4}, {at(45), 5}, {at(65), 7}});
}

TEST_CASE("eval: the deepest expressions the parser allows evaluate", "[eval]") {
  Hosts f;
  std::string chain = "sum(cpu)";
  for (int i = 0; i < 250; ++i) chain += " + 1";
  CHECK(f.value(chain, f.t) == 256);
  std::string nested = "cpu{host=\"a\"}";
  for (int i = 0; i < 120; ++i) nested = "-(" + nested + ")";
  CHECK(f.value(nested, f.t) == 1);
}
