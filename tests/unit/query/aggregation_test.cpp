// Every aggregation, instant and range, against values checked with the real Prometheus 2.42
// (the same inputs as vector()/label_replace() queries), or hand-worked where Prometheus 2.42
// lacks the aggregation (limitk, limit_ratio: the documented behaviour, limit_ratio's hashes from
// libxxhash's XXH64).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kpid/query/promql.h"
#include "query_fixture.h"

using namespace kpid;
using namespace kpid::query;
using namespace kpid::testing;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// One minute past a 5m boundary, so that instant selectors read raw samples.
TimestampMs T() { return base_time() + kMin + 7; }

// "labels=value" of each result element, in the result's order; NaN as "NaN".
std::vector<std::string> listing(const QueryResult& r) {
  REQUIRE(r.type == ValueType::kVector);
  std::vector<std::string> out;
  for (const auto& s : r.series) {
    REQUIRE(s.points.size() == 1);
    std::string v;
    append_prom_float(v, s.points[0].value);
    out.push_back(label_text(*s.labels) + "=" + v);
  }
  return out;
}

struct Data : QueryFixture {
  // Series NAME{s="a"...} with one value each at T(), t alternating x (a, c, e...) and y; in
  // label order, as the vector()s of the queries run on Prometheus.
  void set(const char* name, std::vector<double> values) {
    for (size_t i = 0; i < values.size(); ++i) {
      const std::string s(1, static_cast<char>('a' + i));
      add({{"__name__", name}, {"s", s.c_str()}, {"t", i % 2 == 0 ? "x" : "y"}},
          {{T(), values[i]}});
    }
  }
  std::vector<std::string> list(const std::string& q) const { return listing(instant(q, T())); }
};

std::string parse_error(const std::string& q) {
  auto r = parse_promql(q);
  INFO("query " << q);
  REQUIRE_FALSE(r.is_ok());
  return r.status().message();
}

std::string canon(const std::string& q) {
  auto r = parse_promql(q);
  INFO("query " << q << ": " << (r ? std::string("ok") : r.status().message()));
  REQUIRE(r.is_ok());
  return format_expr(**r);
}

}  // namespace

TEST_CASE("aggregations: parameters parse, format and type-check as Prometheus'", "[aggr]") {
  CHECK(canon("topk(3, x)") == "topk(3, x)");
  CHECK(canon("topk(3, x) by (a)") == "topk by (a) (3, x)");
  CHECK(canon("bottomk without (a) (scalar(k), x)") == "bottomk without (a) (scalar(k), x)");
  CHECK(canon("quantile(0.9, x)") == "quantile(0.9, x)");
  CHECK(canon("count_values(\"v\", x)") == "count_values(\"v\", x)");
  CHECK(canon("limitk(2, x)") == "limitk(2, x)");
  CHECK(canon("limit_ratio(-0.5, x)") == "limit_ratio(-0.5, x)");
  CHECK(canon("group(x)") == "group(x)");
  CHECK(canon("stddev by (a) (x)") == "stddev by (a) (x)");
  CHECK(canon("STDVAR(x)") == "stdvar(x)");
  CHECK(canon("sum by (limitk, topk) (x)") == "sum by (limitk, topk) (x)");
  // Prometheus 2.42's messages and positions.
  CHECK(parse_error("topk(\"a\", x)") ==
        "1:6: parse error: expected type scalar in aggregation parameter, got string");
  CHECK(parse_error("count_values(1, x)") ==
        "1:14: parse error: expected type string in aggregation parameter, got scalar");
  CHECK(parse_error("quantile(x, x)") ==
        "1:10: parse error: expected type scalar in aggregation parameter, got instant vector");
  CHECK(parse_error("topk(x)") ==
        "1:1: parse error: wrong number of arguments for aggregate expression provided, "
        "expected 2, got 1");
  CHECK(parse_error("topk(1, 2, x)") ==
        "1:1: parse error: wrong number of arguments for aggregate expression provided, "
        "expected 2, got 3");
  CHECK(parse_error("stddev(1, x)") ==
        "1:1: parse error: wrong number of arguments for aggregate expression provided, "
        "expected 1, got 2");
  CHECK(parse_error("topk(1, 1)") ==
        "1:9: parse error: expected type instant vector in aggregation expression, got scalar");
  CHECK(parse_error("limit_ratio()") ==
        "1:1: parse error: no arguments for aggregate expression provided");
}

TEST_CASE("aggregations: evaluation errors as Prometheus words them", "[aggr]") {
  Data f;
  f.set("m", {1, 2});
  // Checked at every step, with or without input.
  CHECK(f.error("topk(NaN, nonexistent)") == "Scalar value NaN overflows int64");
  CHECK(f.error("bottomk(9.3e18, m)") == "Scalar value 9.3e+18 overflows int64");
  CHECK(f.error("limitk(-9.3e18, m)") == "Scalar value -9.3e+18 overflows int64");
  CHECK(f.error("count_values(\"1x\", nonexistent)") == "invalid label name \"1x\"");
  CHECK(f.error("count_values(\"\", m)") == "invalid label name \"\"");
  CHECK(f.error("limit_ratio(NaN, m)") == "Ratio value NaN is NaN");
}

TEST_CASE("aggregations: topk and bottomk select as Prometheus 2.42", "[aggr]") {
  Data f;
  f.set("v", {1, 3, kNaN, 3, 2});
  // Ties keep the first seen; NaN is the lowest for both and listed last.
  CHECK(f.list("topk(2, v)") ==
        std::vector<std::string>{"__name__=v,s=b,t=y=3", "__name__=v,s=d,t=y=3"});
  CHECK(f.list("topk(1, v)") == std::vector<std::string>{"__name__=v,s=b,t=y=3"});
  CHECK(f.list("bottomk(2, v)") ==
        std::vector<std::string>{"__name__=v,s=a,t=x=1", "__name__=v,s=e,t=x=2"});
  // k is truncated; below 1 nothing; above the group size everything, best first.
  CHECK(f.list("topk(1.9, v)") == std::vector<std::string>{"__name__=v,s=b,t=y=3"});
  CHECK(f.list("topk(0.9, v)").empty());
  CHECK(f.list("topk(-1, v)").empty());
  CHECK(f.list("topk(100, v)") ==
        std::vector<std::string>{"__name__=v,s=d,t=y=3", "__name__=v,s=b,t=y=3",
                                 "__name__=v,s=e,t=x=2", "__name__=v,s=a,t=x=1",
                                 "__name__=v,s=c,t=x=NaN"});
  CHECK(f.list("bottomk(100, v)") ==
        std::vector<std::string>{"__name__=v,s=a,t=x=1", "__name__=v,s=e,t=x=2",
                                 "__name__=v,s=d,t=y=3", "__name__=v,s=b,t=y=3",
                                 "__name__=v,s=c,t=x=NaN"});
  CHECK(f.list("topk(1, nonexistent)").empty());

  f.set("nn", {kNaN, kNaN});
  // A NaN at the heap's root is replaced even by another NaN.
  CHECK(f.list("topk(1, nn)") == std::vector<std::string>{"__name__=nn,s=b,t=y=NaN"});
  CHECK(f.list("bottomk(1, nn)") == std::vector<std::string>{"__name__=nn,s=b,t=y=NaN"});
  f.set("n3", {kNaN, kNaN, kNaN, 1});
  CHECK(f.list("topk(2, n3)") ==
        std::vector<std::string>{"__name__=n3,s=d,t=y=1", "__name__=n3,s=a,t=x=NaN"});
  f.set("n1", {1, kNaN, 2});
  CHECK(f.list("topk(2, n1)") ==
        std::vector<std::string>{"__name__=n1,s=c,t=x=2", "__name__=n1,s=a,t=x=1"});
  CHECK(f.list("bottomk(2, n1)") ==
        std::vector<std::string>{"__name__=n1,s=a,t=x=1", "__name__=n1,s=c,t=x=2"});
  // Which of equal values stays follows Go's heap.
  f.set("t7", {2, 1, 1, 5, 5, 1, 7});
  CHECK(f.list("topk(3, t7)") == std::vector<std::string>{"__name__=t7,s=g,t=x=7",
                                                          "__name__=t7,s=e,t=x=5",
                                                          "__name__=t7,s=d,t=y=5"});
  f.set("t9", {2, 1, 1, 5, 5, 1, 7, 0, 0});
  CHECK(f.list("bottomk(3, t9)") == std::vector<std::string>{"__name__=t9,s=h,t=y=0",
                                                             "__name__=t9,s=i,t=x=0",
                                                             "__name__=t9,s=b,t=y=1"});
  f.set("e16", std::vector<double>(16, 5));
  const auto all = f.list("topk(20, e16)");
  REQUIRE(all.size() == 16);
  CHECK(all.front() == "__name__=e16,s=a,t=x=5");
  CHECK(all.back() == "__name__=e16,s=p,t=y=5");
  f.set("q", {1, 1, 1, 1});
  CHECK(f.list("topk(2, q)") ==
        std::vector<std::string>{"__name__=q,s=a,t=x=1", "__name__=q,s=b,t=y=1"});
  // Per group: groups in first-seen order, each best first.
  f.set("w", {1, 2, 4, 8, 3});
  CHECK(f.list("topk by (t) (1, w)") ==
        std::vector<std::string>{"__name__=w,s=c,t=x=4", "__name__=w,s=d,t=y=8"});
  CHECK(f.list("bottomk(2, w) by (t)") ==
        std::vector<std::string>{"__name__=w,s=a,t=x=1", "__name__=w,s=e,t=x=3",
                                 "__name__=w,s=b,t=y=2", "__name__=w,s=d,t=y=8"});
  // The selection feeds other operators in Prometheus' order.
  CHECK(f.list("limitk(1, topk(2, w))") == std::vector<std::string>{"__name__=w,s=d,t=y=8"});
  CHECK(f.value("sum(topk(2, w))", T()) == 12);
}

TEST_CASE("aggregations: value aggregations as Prometheus 2.42", "[aggr]") {
  Data f;
  f.set("v", {1, 3, kNaN, 3, 2});
  f.set("s", {1, 2, 4});
  f.set("infs", {1, 2, 4, 8, kInf});
  f.set("mn", {kNaN, 2, 1});
  f.set("mx", {kNaN, 2, kNaN});
  f.set("c", {1, 1, 2, 2, 1});
  f.set("p", {1, 2, 4, 8, 16});
  f.set("one", {kInf});

  CHECK(f.value("stdvar(s)", T()) == 1.5555555555555554);
  CHECK(f.value("stddev(s)", T()) == std::sqrt(1.5555555555555554));
  CHECK(std::isnan(f.value("stdvar(v)", T())));
  CHECK(f.value("stddev(one)", T()) == 0);  // Welford: one Inf has no spread
  CHECK(f.list("stddev by (t) (infs)") == std::vector<std::string>{"t=x=NaN", "t=y=3"});
  CHECK(f.value("min(mn)", T()) == 1);
  CHECK(f.value("max(mx)", T()) == 2);
  CHECK(f.list("group by (t) (s)") == std::vector<std::string>{"t=x=1", "t=y=1"});
  CHECK(f.value("group(v)", T()) == 1);
  // Sorted NaN 1 2 3 3: the middle rank.
  CHECK(f.value("quantile(0.5, v)", T()) == 2);
  CHECK(f.value("quantile(0.3, p)", T()) == Approx(2.4).epsilon(1e-12));
  CHECK(f.value("quantile(-1, p)", T()) == -kInf);
  CHECK(f.value("quantile(2, p)", T()) == kInf);
  CHECK(std::isnan(f.value("quantile(NaN, p)", T())));
  CHECK(f.value("quantile(0, p)", T()) == 1);
  CHECK(f.value("quantile(1, p)", T()) == 16);
  CHECK(f.list("count_values(\"v\", v)") ==
        std::vector<std::string>{"v=1=1", "v=2=1", "v=3=2", "v=NaN=1"});
  CHECK(f.list("count_values by (t) (\"v\", c)") ==
        std::vector<std::string>{"t=x,v=1=2", "t=x,v=2=1", "t=y,v=1=1", "t=y,v=2=1"});
  CHECK(f.list("count_values without (s) (\"v\", c)") ==
        std::vector<std::string>{"t=x,v=1=2", "t=x,v=2=1", "t=y,v=1=1", "t=y,v=2=1"});
  // Without the value's own label, every series is its own group.
  CHECK(f.list("count_values without (v) (\"v\", c)") ==
        std::vector<std::string>{"s=a,t=x=1", "s=b,t=y=1", "s=c,t=x=1", "s=d,t=y=1", "s=e,t=x=1"});
  // The value label replaces an existing one.
  CHECK(f.list("count_values(\"t\", c)") == std::vector<std::string>{"t=1=3", "t=2=2"});
  f.set("fmt", {-0.0, 1e-7, 1e21, 0.1 + 0.2, -kInf});
  CHECK(f.list("count_values(\"v\", fmt)") ==
        std::vector<std::string>{"v=-0=1", "v=-Inf=1", "v=0.0000001=1", "v=0.30000000000000004=1",
                                 "v=1000000000000000000000=1"});
  CHECK(f.list("count(c) without (__name__, s)") == std::vector<std::string>{"t=x=3", "t=y=2"});
  CHECK(f.list("count(v) by (__name__)") == std::vector<std::string>{"__name__=v=5"});
}

TEST_CASE("aggregations: limitk and limit_ratio as documented", "[aggr]") {
  Data f;
  f.set("w", {1, 2, 4, 8, 3});
  // The first k of each group in input (label) order, whatever their values.
  CHECK(listing(f.instant("limitk(2, w)", T())).size() == 2);
  auto r = f.instant("limitk(2, w)", T());
  std::vector<std::string> names;
  for (const auto& s : r.series) names.emplace_back(s.labels->get("s"));
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"a", "b"});
  CHECK(f.instant("limitk by (t) (1, w)", T()).series.size() == 2);
  CHECK(f.instant("limitk(0, w)", T()).series.empty());
  CHECK(f.instant("limitk(10, w)", T()).series.size() == 5);

  // r{s="0".."9"}: XXH64 offsets 0.075, 0.961, 0.884, 0.027, 0.435, 0.602, 0.247, 0.817, 0.807,
  // 0.013 (libxxhash over "__name__\xffr\xffs\xffN\xff").
  for (int i = 0; i < 10; ++i) {
    const std::string s = std::to_string(i);
    f.add({{"__name__", "r"}, {"s", s.c_str()}}, {{T(), static_cast<double>(i)}});
  }
  auto picked = [&](const std::string& q) {
    std::string out;
    for (const auto& s : f.instant(q, T()).series) out += s.labels->get("s");
    std::sort(out.begin(), out.end());
    return out;
  };
  CHECK(picked("limit_ratio(0.5, r)") == "03469");
  CHECK(picked("limit_ratio(-0.5, r)") == "12578");
  CHECK(picked("limit_ratio(0.3, r)") == "0369");
  CHECK(picked("limit_ratio(-0.3, r)") == "1278");
  CHECK(picked("limit_ratio(0, r)").empty());
  CHECK(picked("limit_ratio(1, r)") == "0123456789");
  CHECK(picked("limit_ratio(5, r)") == "0123456789");  // clamped to 1
  CHECK(picked("limit_ratio(-1, r)") == "0123456789");
}

TEST_CASE("aggregations: range queries select at each step", "[aggr]") {
  Data f;
  const TimestampMs t0 = T();
  const TimestampMs t1 = T() + 10 * kSec;
  const TimestampMs t2 = T() + 20 * kSec;
  f.add({{"__name__", "m"}, {"s", "a"}}, {{t0, 1}, {t1, 5}, {t2, 1}});
  f.add({{"__name__", "m"}, {"s", "b"}}, {{t0, 3}, {t1, 2}});
  f.add({{"__name__", "m"}, {"s", "c"}}, {{t0, 2}, {t1, 1}, {t2, 9}});
  f.add({{"__name__", "k"}}, {{t0, 1}, {t1, 2}, {t2, 0}});

  auto points = [](const QueryResult& r) {
    std::vector<std::string> out;
    for (const auto& s : r.series) {
      std::string line = label_text(*s.labels) + ":";
      for (const auto& p : s.points) {
        line += " " + std::to_string((p.timestamp - T()) / kSec) + "=";
        append_prom_float(line, p.value);
      }
      out.push_back(line);
    }
    return out;
  };
  // b's sample at t1 is still the newest at t2 (within the lookback).
  CHECK(points(f.range("topk(1, m)", t0, t2, 10 * kSec)) ==
        std::vector<std::string>{"__name__=m,s=a: 10=5", "__name__=m,s=b: 0=3",
                                 "__name__=m,s=c: 20=9"});
  // k per step from a scalar expression: 1, 2, 0.
  CHECK(points(f.range("bottomk(scalar(k), m)", t0, t2, 10 * kSec)) ==
        std::vector<std::string>{"__name__=m,s=a: 0=1", "__name__=m,s=b: 10=2",
                                 "__name__=m,s=c: 10=1"});
  CHECK(points(f.range("quantile(scalar(k) / 2, m)", t0, t2, 10 * kSec)) ==
        std::vector<std::string>{": 0=2 10=5 20=1"});
  CHECK(points(f.range("stdvar(m)", t0, t2, 10 * kSec)) ==
        std::vector<std::string>{
            ": 0=0.6666666666666666 10=2.888888888888889 20=12.666666666666666"});
  CHECK(points(f.range("count_values(\"v\", m)", t0, t1, 10 * kSec)) ==
        std::vector<std::string>{"v=1: 0=1 10=1", "v=2: 0=1 10=1", "v=3: 0=1", "v=5: 10=1"});
  CHECK(points(f.range("group(m)", t0, t2, 10 * kSec)) ==
        std::vector<std::string>{": 0=1 10=1 20=1"});
  CHECK(points(f.range("limitk(1, m)", t0, t2, 10 * kSec)) ==
        std::vector<std::string>{"__name__=m,s=a: 0=1 10=5 20=1"});
}

TEST_CASE("aggregations: sum, avg and stddev at the edges of float64, as Prometheus 2.42",
          "[aggr]") {
  Data f;
  f.set("a", {1, kInf});
  f.set("b", {kInf, -kInf});
  f.set("c", {kInf, kInf, 1});
  f.set("d", {kNaN, 1});
  f.set("e", {1e308, 1e308});
  f.set("f", {-1e308, 1e308, 1e308});
  f.set("g", {1e308, 1e308, -1e308});
  f.set("h", {0.1, 0.2, 0.3});
  auto value = [&](const std::string& q) { return f.value(q, T()); };
  CHECK(value("avg(a)") == kInf);
  CHECK(value("sum(a)") == kInf);
  CHECK(std::isnan(value("stddev(a)")));
  CHECK(std::isnan(value("avg(b)")));
  CHECK(std::isnan(value("sum(b)")));
  CHECK(value("avg(c)") == kInf);
  CHECK(value("sum(c)") == kInf);
  CHECK(std::isnan(value("stddev(c)")));
  CHECK(std::isnan(value("avg(d)")));
  CHECK(std::isnan(value("sum(d)")));
  CHECK(value("avg(e)") == 1e308);  // no overflow on the way
  CHECK(value("sum(e)") == kInf);
  CHECK(value("stddev(e)") == 0);
  CHECK(value("avg(f)") == Approx(3.333333333333333e+307).epsilon(1e-12));
  CHECK(value("sum(f)") == 1e308);
  CHECK(std::isnan(value("stddev(f)")));
  CHECK(value("avg(g)") == Approx(3.3333333333333337e+307).epsilon(1e-12));
  CHECK(value("sum(g)") == kInf);
  CHECK(value("avg(h)") == Approx(0.2).epsilon(1e-15));
  CHECK(value("sum(h)") == Approx(0.6000000000000001).epsilon(1e-15));
  CHECK(value("stddev(h)") == Approx(0.08164965809277258).epsilon(1e-12));
}
