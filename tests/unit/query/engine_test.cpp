#include <catch2/catch.hpp>

#include "kpid/query/engine.h"
#include "kpid/store/rocksdb_store.h"
#include "support/temp_dir.h"

using namespace kpid;
using namespace kpid::query;
using store::Point;

namespace {

struct Fixture {
  testing::TempDir dir;
  std::unique_ptr<store::RocksDbStore> store =
      std::move(store::RocksDbStore::open(store::StoreOptions{.data_dir = dir.path()}, nullptr)).value();
  Engine engine{*store, QueryOptions{}};

  void add(std::initializer_list<std::pair<const char*, const char*>> labels,
           std::vector<Point> points) {
    LabelsBuilder b;
    for (auto& [n, v] : labels) b.add(n, v);
    REQUIRE(b.finish().empty());
    auto id = store->resolve(b.key());
    REQUIRE(id.is_ok());
    std::vector<store::Sample> samples;
    for (auto& p : points) samples.push_back({*id, p.timestamp, p.value});
    REQUIRE(store->append(samples).is_ok());
  }
};

constexpr int64_t kMin = 60'000;

}  // namespace

TEST_CASE("instant query takes the latest sample within the lookback, stamped at eval time") {
  Fixture f;
  f.add({{"__name__", "cpu"}, {"host", "a"}}, {{0, 1}, {kMin, 2}});
  f.add({{"__name__", "cpu"}, {"host", "b"}}, {{0, 5}});
  auto r = f.engine.instant("cpu", 2 * kMin);
  REQUIRE(r.is_ok());
  REQUIRE(r->size() == 2);
  CHECK((*r)[0].labels->get("host") == "a");
  CHECK((*r)[0].point == Point{2 * kMin, 2});
  CHECK((*r)[1].point == Point{2 * kMin, 5});

  // host=b's only sample is exactly 5m old at t=5m: outside (t-5m, t].
  auto later = f.engine.instant("cpu", 5 * kMin);
  REQUIRE(later.is_ok());
  REQUIRE(later->size() == 1);
  CHECK((*later)[0].labels->get("host") == "a");

  // A sample after the evaluation time is not seen.
  auto before = f.engine.instant("cpu{host=\"a\"}", kMin - 1);
  REQUIRE(before.is_ok());
  REQUIRE(before->size() == 1);
  CHECK((*before)[0].point.value == 1);
}

TEST_CASE("range query evaluates each step with the lookback") {
  Fixture f;
  f.add({{"__name__", "m"}}, {{0, 0}, {30'000, 30}, {90'000, 90}});
  auto r = f.engine.range("m", 0, 120'000, 30'000);
  REQUIRE(r.is_ok());
  REQUIRE(r->size() == 1);
  CHECK((*r)[0].points ==
        std::vector<Point>{{0, 0}, {30'000, 30}, {60'000, 30}, {90'000, 90}, {120'000, 90}});
}

TEST_CASE("range query leaves out steps whose lookback window is empty") {
  Fixture f;
  f.add({{"__name__", "m"}}, {{0, 1}, {20 * kMin, 2}});
  auto r = f.engine.range("m", 0, 20 * kMin, 5 * kMin);
  REQUIRE(r.is_ok());
  REQUIRE(r->size() == 1);
  CHECK((*r)[0].points == std::vector<Point>{{0, 1}, {20 * kMin, 2}});
  auto none = f.engine.range("m", 30 * kMin, 40 * kMin, kMin);
  REQUIRE(none.is_ok());
  CHECK(none->empty());
}

TEST_CASE("range query limits: end before start, step, too many points") {
  Fixture f;
  CHECK_FALSE(f.engine.range("m", 10, 5, 1).is_ok());
  CHECK_FALSE(f.engine.range("m", 0, 5, 0).is_ok());
  auto many = f.engine.range("m", 0, 11'000, 1);
  REQUIRE_FALSE(many.is_ok());
  CHECK(many.status().message().find("11000 points") != std::string::npos);
  CHECK(f.engine.range("m", 0, 10'999, 1).is_ok());
  f.engine.set_options({300'000, 10});
  CHECK_FALSE(f.engine.range("m", 0, 10, 1).is_ok());
}

TEST_CASE("a bad selector is an invalid-argument error") {
  Fixture f;
  auto r = f.engine.instant("cpu{host=}", 0);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("series, label names and label values honour selectors and time") {
  Fixture f;
  f.add({{"__name__", "cpu"}, {"host", "a"}, {"dc", "eu"}}, {{1000, 1}});
  f.add({{"__name__", "cpu"}, {"host", "b"}}, {{5000, 1}});
  f.add({{"__name__", "mem"}, {"host", "c"}}, {{1000, 1}});
  std::vector<std::string> cpu = {"cpu"};
  auto all = f.engine.series(cpu, 0, 10'000);
  REQUIRE(all.is_ok());
  CHECK(all->size() == 2);
  auto early = f.engine.series(cpu, 0, 2000);
  REQUIRE(early.is_ok());
  REQUIRE(early->size() == 1);
  CHECK((*early)[0].labels->get("host") == "a");
  std::vector<std::string> two = {"cpu{host=\"a\"}", "{host=~\"a|c\"}"};
  auto merged = f.engine.series(two, 0, 10'000);
  REQUIRE(merged.is_ok());
  CHECK(merged->size() == 2);  // cpu{host=a} once, mem{host=c}

  auto names = f.engine.label_names({}, 0, 0);
  REQUIRE(names.is_ok());
  CHECK(*names == std::vector<std::string>{"__name__", "dc", "host"});
  auto mem_names = f.engine.label_names(std::vector<std::string>{"mem"}, 0, 10'000);
  REQUIRE(mem_names.is_ok());
  CHECK(*mem_names == std::vector<std::string>{"__name__", "host"});
  auto hosts = f.engine.label_values("host", {}, 0, 0);
  REQUIRE(hosts.is_ok());
  CHECK(*hosts == std::vector<std::string>{"a", "b", "c"});
  auto cpu_hosts = f.engine.label_values("host", cpu, 0, 10'000);
  REQUIRE(cpu_hosts.is_ok());
  CHECK(*cpu_hosts == std::vector<std::string>{"a", "b"});
}
