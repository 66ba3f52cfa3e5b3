// Engine basics: plain selectors (lookback), range-query limits, series and label lookups.
#include <catch2/catch.hpp>

#include "kpid/metrics/metrics.h"
#include "query_fixture.h"

using namespace kpid;
using namespace kpid::query;
using namespace kpid::testing;
using store::Point;

TEST_CASE("instant query takes the latest sample within the lookback, stamped at eval time") {
  QueryFixture f;
  const TimestampMs b = base_time();
  f.add({{"__name__", "cpu"}, {"host", "a"}}, {{b, 1}, {b + kMin, 2}});
  f.add({{"__name__", "cpu"}, {"host", "b"}}, {{b, 5}});
  auto r = f.instant("cpu", b + 2 * kMin);
  REQUIRE(r.type == ValueType::kVector);
  REQUIRE(r.series.size() == 2);
  CHECK(r.series[0].labels->get("host") == "a");
  CHECK(r.series[0].labels->get("__name__") == "cpu");
  CHECK(r.series[0].points == std::vector<Point>{{b + 2 * kMin, 2}});
  CHECK(r.series[1].points == std::vector<Point>{{b + 2 * kMin, 5}});

  // host=b's only sample is exactly 5m old at t=5m: outside (t-5m, t].
  auto later = f.instant("cpu", b + 5 * kMin);
  REQUIRE(later.series.size() == 1);
  CHECK(later.series[0].labels->get("host") == "a");

  // A sample after the evaluation time is not seen.
  CHECK(f.value("cpu{host=\"a\"}", b + kMin - 1) == 1);
}

TEST_CASE("range query evaluates each step with the lookback") {
  QueryFixture f;
  const TimestampMs b = base_time();
  f.add({{"__name__", "m"}}, {{b, 0}, {b + 30'000, 30}, {b + 90'000, 90}});
  auto r = f.range("m", b, b + 120'000, 30'000);
  REQUIRE(r.series.size() == 1);
  CHECK(r.series[0].points ==
        std::vector<Point>{
            {b, 0}, {b + 30'000, 30}, {b + 60'000, 30}, {b + 90'000, 90}, {b + 120'000, 90}});
}

TEST_CASE("range query leaves out steps whose lookback window is empty") {
  QueryFixture f;
  const TimestampMs b = base_time() + 1;  // off the 5m grid: raw samples, not rollups
  f.add({{"__name__", "m"}}, {{b, 1}, {b + 20 * kMin, 2}});
  auto r = f.range("m", b, b + 20 * kMin, 5 * kMin);
  REQUIRE(r.series.size() == 1);
  CHECK(r.series[0].points == std::vector<Point>{{b, 1}, {b + 20 * kMin, 2}});
  CHECK(f.range("m", b + 30 * kMin, b + 40 * kMin, kMin).series.empty());
}

TEST_CASE("range query limits: end before start, step, too many points") {
  QueryFixture f;
  CHECK_FALSE(f.engine.range("m", 10, 5, 1).is_ok());
  CHECK_FALSE(f.engine.range("m", 0, 5, 0).is_ok());
  auto many = f.engine.range("m", 0, 11'000, 1);
  REQUIRE_FALSE(many.is_ok());
  CHECK(many.status().message().find("11000 points") != std::string::npos);
  CHECK(f.engine.range("m", 0, 10'999, 1).is_ok());
  f.engine.set_options({300'000, 10});
  CHECK_FALSE(f.engine.range("m", 0, 10, 1).is_ok());
  CHECK(f.engine.options().max_points_per_series == 10);
}

TEST_CASE("set_options changes the lookback of later queries") {
  QueryFixture f;
  const TimestampMs b = base_time();
  f.add({{"__name__", "m"}}, {{b, 7}});
  CHECK(f.instant("m", b + 2 * kMin).series.size() == 1);
  f.engine.set_options({kMin, 11'000});
  CHECK(f.instant("m", b + 2 * kMin).series.empty());
  CHECK(f.instant("m", b + kMin - 1).series.size() == 1);
}

TEST_CASE("a bad query is an invalid-argument error with a position") {
  QueryFixture f;
  auto r = f.engine.instant("cpu{host=}", 0);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK(r.status().message().rfind("1:10: parse error: ", 0) == 0);
}

TEST_CASE("times far outside any real timestamp are refused") {
  QueryFixture f;
  CHECK_FALSE(f.engine.instant("1", TimestampMs{1} << 62).is_ok());
  CHECK_FALSE(f.engine.instant("1", -(TimestampMs{1} << 62)).is_ok());
  CHECK(f.engine.instant("1", TimestampMs{1} << 60).is_ok());
}

TEST_CASE("range queries refuse range vectors and strings") {
  QueryFixture f;
  auto r = f.engine.range("m[5m]", 0, 60'000, 15'000);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message() ==
        "invalid expression type \"range vector\" for range query, must be Scalar or instant "
        "Vector");
  auto s = f.engine.range("\"x\"", 0, 60'000, 15'000);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().message().find("\"string\"") != std::string::npos);
}

TEST_CASE("series, label names and label values honour selectors and time") {
  QueryFixture f;
  const TimestampMs b = base_time();
  f.add({{"__name__", "cpu"}, {"host", "a"}, {"dc", "eu"}}, {{b + 1000, 1}});
  f.add({{"__name__", "cpu"}, {"host", "b"}}, {{b + 5000, 1}});
  f.add({{"__name__", "mem"}, {"host", "c"}}, {{b + 1000, 1}});
  std::vector<std::string> cpu = {"cpu"};
  auto all = f.engine.series(cpu, b, b + 10'000);
  REQUIRE(all.is_ok());
  CHECK(all->size() == 2);
  auto early = f.engine.series(cpu, b, b + 2000);
  REQUIRE(early.is_ok());
  REQUIRE(early->size() == 1);
  CHECK((*early)[0].labels->get("host") == "a");
  std::vector<std::string> two = {"cpu{host=\"a\"}", "{host=~\"a|c\"}"};
  auto merged = f.engine.series(two, b, b + 10'000);
  REQUIRE(merged.is_ok());
  CHECK(merged->size() == 2);  // cpu{host=a} once, mem{host=c}
  // match[] takes selectors only.
  CHECK_FALSE(f.engine.series(std::vector<std::string>{"sum(cpu)"}, b, b + 10'000).is_ok());

  auto names = f.engine.label_names({}, 0, 0);
  REQUIRE(names.is_ok());
  CHECK(*names == std::vector<std::string>{"__name__", "dc", "host"});
  auto mem_names = f.engine.label_names(std::vector<std::string>{"mem"}, b, b + 10'000);
  REQUIRE(mem_names.is_ok());
  CHECK(*mem_names == std::vector<std::string>{"__name__", "host"});
  auto hosts = f.engine.label_values("host", {}, 0, 0);
  REQUIRE(hosts.is_ok());
  CHECK(*hosts == std::vector<std::string>{"a", "b", "c"});
  auto cpu_hosts = f.engine.label_values("host", cpu, b, b + 10'000);
  REQUIRE(cpu_hosts.is_ok());
  CHECK(*cpu_hosts == std::vector<std::string>{"a", "b"});
}

TEST_CASE("kpid_query_reads_total counts series reads by resolution") {
  TempDir dir;
  auto store = std::move(store::RocksDbStore::open({dir.path(), false}, nullptr)).value();
  metrics::Metrics metrics;
  Engine engine(*store, QueryOptions{}, &metrics);
  const TimestampMs b = base_time();
  LabelsBuilder lb;
  lb.add("__name__", "m");
  REQUIRE(lb.finish().empty());
  const auto id = store->resolve(lb.key());
  REQUIRE(id.is_ok());
  const store::Sample samples[] = {{*id, b + kMin, 1}, {*id, b + 2 * kMin, 2}};
  REQUIRE(store->append(samples).is_ok());

  QueryStats stats;
  REQUIRE(engine.instant("sum_over_time(m[1h])", b + kHour, &stats).is_ok());
  CHECK(stats.rollup_1h_reads == 1);
  CHECK(stats.raw_reads == 0);
  REQUIRE(engine.instant("m", b + 3 * kMin, &stats).is_ok());
  CHECK(stats.raw_reads == 1);
  const std::string text = metrics.scrape();
  CHECK(text.find("kpid_query_reads_total{resolution=\"1h\"} 1") != std::string::npos);
  CHECK(text.find("kpid_query_reads_total{resolution=\"raw\"} 1") != std::string::npos);
  CHECK(text.find("kpid_query_reads_total{resolution=\"5m\"} 0") != std::string::npos);
}
