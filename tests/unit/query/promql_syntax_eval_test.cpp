// Evaluation of subqueries, the @ modifier, the set operators and group_left/group_right, with
// values worked out by hand and checked against Prometheus 2.42 (where they agree: kpid's ranges
// are left-open, so a subquery step at exactly t - range is left out, as in Prometheus 3).
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "query_fixture.h"

using namespace kpid;
using namespace kpid::query;
using namespace kpid::testing;
using store::Point;

namespace {

// A day boundary: subquery steps align to absolute multiples of their step.
TimestampMs T0() { return base_time(); }
TimestampMs s(int64_t seconds) { return T0() + seconds * kSec; }
std::string secs(int64_t seconds) { return std::to_string(s(seconds) / 1000); }

struct SyntaxData : QueryFixture {
  SyntaxData() {
    // m = seconds / 10, a sample every 10 s for 10 minutes.
    std::vector<Point> m;
    for (int i = 0; i <= 60; ++i) m.push_back({s(10 * i), static_cast<double>(i)});
    add({{"__name__", "m"}}, m);
    auto constant = [&](LabelList labels, double v) {
      std::vector<Point> points;
      for (int i = 0; i <= 60; ++i) points.push_back({s(10 * i), v});
      add(labels, points);
    };
    constant({{"__name__", "a"}, {"i", "1"}, {"j", "x"}}, 1);
    constant({{"__name__", "a"}, {"i", "2"}, {"j", "y"}}, 2);
    constant({{"__name__", "a"}, {"i", "3"}}, 3);
    constant({{"__name__", "b"}, {"i", "1"}, {"j", "x"}}, 10);
    constant({{"__name__", "b"}, {"i", "3"}, {"j", "z"}}, 30);
    constant({{"__name__", "info"}, {"i", "1"}, {"version", "v1"}}, 1);
    constant({{"__name__", "info"}, {"i", "2"}, {"version", "v2"}}, 1);
    constant({{"__name__", "req"}, {"i", "1"}, {"path", "/a"}}, 5);
    constant({{"__name__", "req"}, {"i", "1"}, {"path", "/b"}}, 6);
    constant({{"__name__", "req"}, {"i", "2"}, {"path", "/a"}}, 7);
    // A series that stops at 100 s, and one that starts at 200 s (for `or` over a range).
    add({{"__name__", "early"}, {"k", "1"}}, {{s(50), 1}, {s(100), 1}});
    add({{"__name__", "late"}, {"k", "1"}}, {{s(200), 2}, {s(250), 2}});
  }
};

}  // namespace

TEST_CASE_METHOD(SyntaxData, "an instant subquery is a matrix of the operand at aligned steps",
                 "[promql][subquery]") {
  auto r = instant("m[1m:20s]", s(305));
  REQUIRE(r.type == ValueType::kMatrix);
  REQUIRE(r.series.size() == 1);
  CHECK(label_text(*r.series[0].labels) == "__name__=m");
  // Multiples of 20 s in (245 s, 305 s]: the steps align to the clock, not to the query time.
  REQUIRE(r.series[0].points.size() == 3);
  CHECK(r.series[0].points[0].timestamp == s(260));
  CHECK(r.series[0].points[0].value == 26);
  CHECK(r.series[0].points[2].timestamp == s(300));
  CHECK(r.series[0].points[2].value == 30);
  // Left-open: at 300 s the step at exactly 240 s is outside (Prometheus 2.x included it).
  CHECK(instant("m[1m:20s]", s(300)).series[0].points.size() == 3);
  // offset moves the window: (215 s, 275 s] -> 220, 240, 260.
  auto off = instant("m[1m:20s] offset 30s", s(305));
  REQUIRE(off.series[0].points.size() == 3);
  CHECK(off.series[0].points[0].value == 22);
  CHECK(off.series[0].points[0].timestamp == s(220));
}

TEST_CASE_METHOD(SyntaxData, "range functions over subqueries", "[promql][subquery]") {
  CHECK(value("sum_over_time(m[1m:20s])", s(305)) == 84);
  CHECK(value("sum_over_time((m)[1m:20s])", s(305)) == 84);
  CHECK(value("count_over_time(m[1m:20s])", s(305)) == 3);
  CHECK(value("last_over_time(m[1m:20s] offset 1m)", s(305)) == 24);
  // The default step is 1m: 60, 120, 180, 240, 300.
  CHECK(value("count_over_time(m[5m:])", s(305)) == 5);
  // Nested: sum_over_time at 270 s (220+240+260 -> 72) and 300 s (84).
  CHECK(value("min_over_time(sum_over_time(m[1m:20s])[1m:30s])", s(305)) == 72);
  CHECK(value("max_over_time(sum_over_time(m[1m:20s])[1m:30s])", s(305)) == 84);
  // A subquery of an aggregation and of arithmetic.
  CHECK(value("max_over_time(sum(a)[1m:10s])", s(305)) == 6);
  CHECK(value("max_over_time((m * 2)[1m:20s])", s(305)) == 60);
  // __name__: dropped by the function, kept by last_over_time.
  CHECK(label_text(*instant("last_over_time(m[1m:20s])", s(305)).series[0].labels) == "__name__=m");
  CHECK(label_text(*instant("max_over_time(m[1m:20s])", s(305)).series[0].labels).empty());
}

TEST_CASE_METHOD(SyntaxData, "a range query over a subquery evaluates each window",
                 "[promql][subquery]") {
  auto r = range("sum_over_time(m[1m:20s])", s(300), s(320), 10 * kSec);
  REQUIRE(r.series.size() == 1);
  const auto& p = r.series[0].points;
  REQUIRE(p.size() == 3);
  CHECK(p[0].value == 84);  // 260, 280, 300
  CHECK(p[1].value == 84);  // (250, 310]: the same steps
  CHECK(p[2].value == 90);  // 280, 300, 320
}

TEST_CASE("the default subquery step is an engine option", "[promql][subquery]") {
  SyntaxData d;
  QueryOptions o;
  o.default_subquery_step = 30 * kSec;
  d.engine.set_options(o);
  CHECK(d.engine.options().default_subquery_step == 30 * kSec);
  CHECK(d.value("count_over_time(m[5m:])", s(305)) == 10);
}

TEST_CASE_METHOD(SyntaxData, "the @ modifier fixes the evaluation time", "[promql][at]") {
  CHECK(value("m @ " + secs(100), s(305)) == 10);
  CHECK(value("m @ " + secs(100) + " offset 10s", s(305)) == 9);
  CHECK(value("m offset 10s @ " + secs(100), s(305)) == 9);
  CHECK(value("m @ " + secs(100) + ".5", s(305)) == 10);
  // The result is stamped with the query's time.
  CHECK(instant("m @ " + secs(100), s(305)).series[0].points[0].timestamp == s(305));
  CHECK(value("sum_over_time(m[30s] @ " + secs(300) + ")", s(50)) == 28 + 29 + 30);
  CHECK(value("sum_over_time(m[1m:20s] @ " + secs(300) + ")", s(50)) == 84);
  CHECK(value("sum_over_time(m[1m:20s] @ " + secs(330) + " offset 30s)", s(50)) == 84);
  // Instant queries: start() and end() are the query time.
  CHECK(value("m @ start()", s(200)) == 20);
  CHECK(value("m @ end()", s(200)) == 20);
  auto matrix = instant("m[30s] @ " + secs(300), s(50));
  REQUIRE(matrix.type == ValueType::kMatrix);
  REQUIRE(matrix.series[0].points.size() == 3);
  CHECK(matrix.series[0].points[0].timestamp == s(280));
}

TEST_CASE_METHOD(SyntaxData, "@ start() and end() in a range query", "[promql][at]") {
  auto r = range("m @ start() + m @ end()", s(100), s(200), 50 * kSec);
  REQUIRE(r.series.size() == 1);
  REQUIRE(r.series[0].points.size() == 3);
  for (const auto& p : r.series[0].points) CHECK(p.value == 30);
  CHECK(r.series[0].points[1].timestamp == s(150));
  // A range function with @ has one value for every step.
  auto rate = range("sum_over_time(m[30s] @ end())", s(100), s(200), 50 * kSec);
  REQUIRE(rate.series[0].points.size() == 3);
  for (const auto& p : rate.series[0].points) CHECK(p.value == 18 + 19 + 20);
  // Inside a subquery, start() and end() stay the query's.
  auto sub = range("max_over_time((m @ start())[1m:10s])", s(100), s(200), 50 * kSec);
  for (const auto& p : sub.series[0].points) CHECK(p.value == 10);
}

TEST_CASE_METHOD(SyntaxData, "and, or, unless", "[promql][setops]") {
  CHECK(by_labels(instant("a and b", s(305))) ==
        std::map<std::string, double>{{"__name__=a,i=1,j=x", 1}});
  CHECK(by_labels(instant("a and on(i) b", s(305))) ==
        std::map<std::string, double>{{"__name__=a,i=1,j=x", 1}, {"__name__=a,i=3", 3}});
  CHECK(by_labels(instant("a unless on(i) b", s(305))) ==
        std::map<std::string, double>{{"__name__=a,i=2,j=y", 2}});
  CHECK(by_labels(instant("a unless b", s(305))).size() == 2);
  CHECK(by_labels(instant("a or b", s(305))) ==
        std::map<std::string, double>{{"__name__=a,i=1,j=x", 1},
                                      {"__name__=a,i=2,j=y", 2},
                                      {"__name__=a,i=3", 3},
                                      {"__name__=b,i=3,j=z", 30}});
  CHECK(by_labels(instant("a or on(i) b", s(305))).size() == 3);
  CHECK(by_labels(instant("a or ignoring(j) b", s(305))).size() == 3);
  // and/unless bind tighter than or: a or (b and c).
  CHECK(by_labels(instant("a and on(i) b or b", s(305))).size() == 3);
  CHECK(by_labels(instant("b or a unless on(i) b", s(305))).size() == 3);
  CHECK(by_labels(instant("(b or a) unless on(i) b", s(305))).size() == 1);
  // Empty sides.
  CHECK(instant("a and nothing", s(305)).series.empty());
  CHECK(by_labels(instant("nothing or b", s(305))).size() == 2);
  CHECK(by_labels(instant("a unless nothing", s(305))).size() == 3);
}

TEST_CASE_METHOD(SyntaxData, "or over a range fills in steps where the left side is absent",
                 "[promql][setops]") {
  auto r = range("early or ignoring(__name__) late", s(0), s(400), 100 * kSec);
  std::map<std::string, std::vector<TimestampMs>> steps;
  for (const auto& series : r.series) {
    for (const auto& p : series.points) steps[label_text(*series.labels)].push_back(p.timestamp);
  }
  // early has values at 100, 200, 300 s (lookback 5m after its last sample at 100 s); late at
  // 200-500 s, but only where early is absent.
  CHECK(steps["__name__=early,k=1"] == std::vector<TimestampMs>{s(100), s(200), s(300)});
  CHECK(steps["__name__=late,k=1"] == std::vector<TimestampMs>{s(400)});
}

TEST_CASE_METHOD(SyntaxData, "group_left and group_right copy labels from the one side",
                 "[promql][matching]") {
  const std::map<std::string, double> joined{
      {"i=1,path=/a,version=v1", 5}, {"i=1,path=/b,version=v1", 6}, {"i=2,path=/a,version=v2", 7}};
  CHECK(by_labels(instant("req * on(i) group_left(version) info", s(305))) == joined);
  CHECK(by_labels(instant("info * on(i) group_right(version) req", s(305))) == joined);
  // group_right computes lhs op rhs, with the labels of the right ("many") side.
  CHECK(
      by_labels(instant("info - on(i) group_right req", s(305))) ==
      std::map<std::string, double>{{"i=1,path=/a", -4}, {"i=1,path=/b", -5}, {"i=2,path=/a", -6}});
  // A filtering comparison keeps __name__; a label the one side lacks is not copied.
  CHECK(by_labels(instant("req > on(i) group_left(version, nope) info", s(305))) ==
        std::map<std::string, double>{{"__name__=req,i=1,path=/a,version=v1", 5},
                                      {"__name__=req,i=1,path=/b,version=v1", 6},
                                      {"__name__=req,i=2,path=/a,version=v2", 7}});
  CHECK(by_labels(instant("req == bool on(i) group_left info", s(305))).size() == 3);
  auto r = range("req * on(i) group_left(version) info", s(0), s(600), 60 * kSec);
  REQUIRE(r.series.size() == 3);
  CHECK(r.series[0].points.size() == 11);
}

TEST_CASE_METHOD(SyntaxData, "matching errors read like Prometheus'", "[promql][matching]") {
  CHECK(error("req * on(i) info", s(305)) ==
        "multiple matches for labels: many-to-one matching must be explicit "
        "(group_left/group_right)");
  CHECK(error("req * on(path) group_left info", s(305)) ==
        "found duplicate series for the match group {} on the right hand-side of the operation: "
        "[{__name__=\"info\", i=\"2\", version=\"v2\"}, {__name__=\"info\", i=\"1\", "
        "version=\"v1\"}];many-to-many matching not allowed: matching labels must be unique on "
        "one side");
  CHECK(error("info * on(i) group_left req", s(305)) ==
        "found duplicate series for the match group {i=\"1\"} on the right hand-side of the "
        "operation: [{__name__=\"req\", i=\"1\", path=\"/b\"}, {__name__=\"req\", i=\"1\", "
        "path=\"/a\"}];many-to-many matching not allowed: matching labels must be unique on one "
        "side");
  CHECK(error("req * on(i) group_right info", s(305)).find("on the left hand-side") !=
        std::string::npos);
  CHECK(error("req * on(i) group_left(path) info", s(305)) ==
        "multiple matches for labels: grouping labels must ensure unique matches");
  auto r = engine.instant("req * on(i) info", s(305));
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE_METHOD(SyntaxData, "subquery steps are multiples of the step since the epoch",
                 "[promql][subquery]") {
  // sum_over_time(m[R:S] offset O) at t, by brute force: every multiple of S (in ms since the
  // epoch) in (t - O - R, t - O], each with m's latest value (m = seconds / 10 within 0-600 s).
  // 7 s and 13 s do not divide a day, so steps aligned to the query or the day would differ.
  auto expected = [&](TimestampMs t, DurationMs range, DurationMs step, DurationMs offset) {
    double sum = 0;
    for (TimestampMs u = t - offset - range + 1; u <= t - offset; ++u) {
      if (u % step != 0 || u < s(0)) continue;
      sum += static_cast<double>(std::min<TimestampMs>((u - s(0)) / (10 * kSec), 60));
    }
    return sum;
  };
  CHECK(value("sum_over_time(m[50s:7s])", s(305)) == expected(s(305), 50 * kSec, 7 * kSec, 0));
  CHECK(value("sum_over_time(m[50s:7s] offset 33s)", s(305)) ==
        expected(s(305), 50 * kSec, 7 * kSec, 33 * kSec));
  CHECK(value("sum_over_time(m[2m:13s])", s(400) + 123) ==
        expected(s(400) + 123, 2 * kMin, 13 * kSec, 0));
  auto r = range("sum_over_time(m[50s:7s])", s(200), s(300), 11 * kSec);
  REQUIRE(r.series.size() == 1);
  REQUIRE(r.series[0].points.size() == 10);
  for (const auto& p : r.series[0].points) {
    INFO("at " << p.timestamp - s(0));
    CHECK(p.value == expected(p.timestamp, 50 * kSec, 7 * kSec, 0));
  }
}

TEST_CASE_METHOD(SyntaxData, "atan2 binds like * and takes y atan2 x element by element",
                 "[promql][atan2]") {
  auto got = by_labels(instant("a atan2 on(i) (b + 1)", s(600)));
  REQUIRE(got.size() == 2);
  CHECK(got["i=1"] == Approx(std::atan2(1.0, 11.0)));
  CHECK(got["i=3"] == Approx(std::atan2(3.0, 31.0)));
  // Precedence: 2 * 1 atan2 -1 is (2 * 1) atan2 -1, and + binds looser.
  auto scalar = instant("2 * 1 atan2 -1 + 1", s(600));
  REQUIRE(scalar.type == ValueType::kScalar);
  CHECK(scalar.scalar == Approx(std::atan2(2.0, -1.0) + 1));
}
