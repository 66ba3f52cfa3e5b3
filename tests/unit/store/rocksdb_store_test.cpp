#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "kpid/store/rocksdb_store.h"
#include "support/temp_dir.h"

using namespace kpid;
using namespace kpid::store;

namespace {

std::unique_ptr<RocksDbStore> open_store(const std::string& dir, metrics::Metrics* m = nullptr) {
  StoreOptions options;
  // Samples near 1970 stay raw (append rolls up windows past raw retention at once).
  options.retention.raw = 100 * 365 * 86'400'000LL;
  options.data_dir = dir;
  auto s = RocksDbStore::open(options, m);
  INFO(s.status().to_string());
  REQUIRE(s.is_ok());
  return std::move(s).value();
}

SeriesId series(SampleStore& store, std::initializer_list<std::pair<const char*, const char*>> ls) {
  LabelsBuilder b;
  for (auto& [n, v] : ls) b.add(n, v);
  REQUIRE(b.finish().empty());
  auto id = store.resolve(b.key());
  REQUIRE(id.is_ok());
  return *id;
}

std::vector<Point> read_all(const SampleStore& store, SeriesId id) {
  std::vector<Point> out;
  REQUIRE(
      store.read(id, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), out)
          .is_ok());
  return out;
}

LabelMatcher matcher(MatchType t, const char* n, const char* v) {
  return std::move(LabelMatcher::create(t, n, v)).value();
}

}  // namespace

TEST_CASE("resolve gives one stable id per label set") {
  testing::TempDir dir;
  auto store = open_store(dir.path());
  SeriesId a = series(*store, {{"__name__", "cpu"}, {"host", "a"}});
  SeriesId b = series(*store, {{"__name__", "cpu"}, {"host", "b"}});
  SeriesId a2 = series(*store, {{"host", "a"}, {"__name__", "cpu"}});
  CHECK(a != b);
  CHECK(a == a2);
  CHECK(store->series_count() == 2);
}

TEST_CASE("samples read back in time order within the requested range, inclusive") {
  testing::TempDir dir;
  auto store = open_store(dir.path());
  SeriesId id = series(*store, {{"__name__", "m"}});
  SeriesId other = series(*store, {{"__name__", "n"}});
  std::vector<Sample> samples = {
      {id, 3000, 3}, {id, 1000, 1}, {id, 2000, 2}, {other, 1500, 9}, {id, -5000, -5}};
  REQUIRE(store->append(samples).is_ok());
  CHECK(read_all(*store, id) == std::vector<Point>{{-5000, -5}, {1000, 1}, {2000, 2}, {3000, 3}});
  std::vector<Point> window;
  REQUIRE(store->read(id, 1000, 2000, window).is_ok());
  CHECK(window == std::vector<Point>{{1000, 1}, {2000, 2}});
  CHECK(read_all(*store, other) == std::vector<Point>{{1500, 9}});
  CHECK(*store->has_samples(id, 1001, 1999) == false);
  CHECK(*store->has_samples(id, 1001, 2000) == true);
  CHECK(*store->has_samples(other, 0, 1000) == false);
}

TEST_CASE("a second sample at the same timestamp replaces the first") {
  testing::TempDir dir;
  auto store = open_store(dir.path());
  SeriesId id = series(*store, {{"__name__", "m"}});
  std::vector<Sample> first = {{id, 1000, 1}};
  std::vector<Sample> second = {{id, 1000, 42}};
  REQUIRE(store->append(first).is_ok());
  REQUIRE(store->append(second).is_ok());
  CHECK(read_all(*store, id) == std::vector<Point>{{1000, 42}});
}

TEST_CASE("special float values are stored bit for bit") {
  testing::TempDir dir;
  auto store = open_store(dir.path());
  SeriesId id = series(*store, {{"__name__", "m"}});
  double inf = std::numeric_limits<double>::infinity();
  std::vector<Sample> s = {{id, 1, inf}, {id, 2, -0.0}, {id, 3, 5e-324}};
  REQUIRE(store->append(s).is_ok());
  auto points = read_all(*store, id);
  REQUIRE(points.size() == 3);
  CHECK(points[0].value == inf);
  CHECK(std::signbit(points[1].value));
  CHECK(points[2].value == 5e-324);
}

TEST_CASE("select applies every matcher, using postings for equality") {
  testing::TempDir dir;
  auto store = open_store(dir.path());
  SeriesId a = series(*store, {{"__name__", "cpu"}, {"host", "a"}, {"dc", "eu"}});
  SeriesId b = series(*store, {{"__name__", "cpu"}, {"host", "b"}});
  SeriesId c = series(*store, {{"__name__", "mem"}, {"host", "a"}});
  auto ids = [](const std::vector<SeriesRef>& refs) {
    std::vector<SeriesId> out;
    for (auto& r : refs) out.push_back(r.id);
    return out;
  };
  std::vector<LabelMatcher> m1 = {matcher(MatchType::kEqual, "__name__", "cpu")};
  CHECK(ids(store->select(m1)) == std::vector<SeriesId>{a, b});
  std::vector<LabelMatcher> m2 = {matcher(MatchType::kEqual, "host", "a"),
                                  matcher(MatchType::kNotEqual, "__name__", "cpu")};
  CHECK(ids(store->select(m2)) == std::vector<SeriesId>{c});
  std::vector<LabelMatcher> m3 = {matcher(MatchType::kRegexMatch, "host", "a|b"),
                                  matcher(MatchType::kEqual, "dc", "")};
  CHECK(ids(store->select(m3)) == std::vector<SeriesId>{b, c});
  std::vector<LabelMatcher> m4 = {matcher(MatchType::kEqual, "host", "zzz")};
  CHECK(store->select(m4).empty());
  auto refs = store->select(m1);
  CHECK(refs[0].labels->get("dc") == "eu");
}

TEST_CASE("select narrows regex matchers by the label's values, with the same answers as a scan") {
  testing::TempDir dir;
  auto store = open_store(dir.path());
  const std::vector<std::string> names = {"http_requests_total",
                                          "http_request_errors",
                                          "process_cpu",
                                          "Process_mem",
                                          "a.b",
                                          "ab",
                                          "abbbc",
                                          "ac"};
  const std::vector<std::string> hosts = {"h001", "h0012", "h01", "h1", "", "H001", "h001x"};
  std::vector<Labels> all;
  for (const auto& n : names) {
    for (const auto& h : hosts) {
      LabelsBuilder b;
      b.add("__name__", n);
      if (!h.empty()) b.add("host", h);
      REQUIRE(b.finish().empty());
      REQUIRE(store->resolve(b.key()).is_ok());
      auto labels = Labels::decode(b.key());
      REQUIRE(labels.is_ok());
      all.push_back(*labels);
    }
  }
  // Every answer is checked against every label set matched one by one.
  const std::vector<std::vector<LabelMatcher>> cases = {
      {matcher(MatchType::kRegexMatch, "__name__", "http_.*")},
      {matcher(MatchType::kRegexMatch, "__name__", "http_requests_total|process_cpu|nope")},
      {matcher(MatchType::kRegexMatch, "__name__", "ab*c")},  // the prefix is "a", not "ab"
      {matcher(MatchType::kRegexMatch, "__name__", "ab?")},
      {matcher(MatchType::kRegexMatch, "__name__", "a\\.b")},
      {matcher(MatchType::kRegexMatch, "__name__", "(?i)process_.*")},
      {matcher(MatchType::kRegexMatch, "__name__", "^http.*$")},
      {matcher(MatchType::kRegexMatch, "__name__", ".*_total")},
      {matcher(MatchType::kRegexMatch, "__name__", "http_.*"),
       matcher(MatchType::kRegexMatch, "host", "h00.*")},
      {matcher(MatchType::kRegexMatch, "__name__", "http_.*"),
       matcher(MatchType::kRegexNoMatch, "host", "h0.*")},
      {matcher(MatchType::kRegexMatch, "host", "h0{2}1.*")},
      {matcher(MatchType::kRegexMatch, "host", "|h1")},  // matches "": also series without host
      {matcher(MatchType::kRegexMatch, "host", "h1|")},
      {matcher(MatchType::kRegexMatch, "__name__", "zzz.*")},
      {matcher(MatchType::kRegexMatch, "nolabel", "x.*")},
  };
  for (const auto& ms : cases) {
    std::string what;
    for (const auto& m : ms) what += m.to_string() + " ";
    INFO(what);
    std::vector<SeriesId> want;
    for (size_t i = 0; i < all.size(); ++i) {
      if (matches_all(all[i], ms)) want.push_back(i + 1);
    }
    std::vector<SeriesId> got;
    for (const auto& r : store->select(ms)) got.push_back(r.id);
    CHECK(got == want);
  }
}

TEST_CASE("label names and values are listed sorted") {
  testing::TempDir dir;
  auto store = open_store(dir.path());
  series(*store, {{"__name__", "cpu"}, {"host", "b"}});
  series(*store, {{"__name__", "cpu"}, {"host", "a"}, {"zone", "1"}});
  CHECK(store->label_names() == std::vector<std::string>{"__name__", "host", "zone"});
  CHECK(store->label_values("host") == std::vector<std::string>{"a", "b"});
  CHECK(store->label_values("nope").empty());
}

TEST_CASE("series and samples survive closing and reopening") {
  testing::TempDir dir;
  SeriesId id = 0;
  {
    auto store = open_store(dir.path());
    series(*store, {{"__name__", "first"}});
    id = series(*store, {{"__name__", "cpu"}, {"host", "a"}});
    std::vector<Sample> s = {{id, 1000, 1.5}, {id, 2000, 2.5}};
    REQUIRE(store->append(s).is_ok());
    REQUIRE(store->close().is_ok());
  }
  auto store = open_store(dir.path());
  CHECK(store->series_count() == 2);
  CHECK(series(*store, {{"__name__", "cpu"}, {"host", "a"}}) == id);
  CHECK(read_all(*store, id) == std::vector<Point>{{1000, 1.5}, {2000, 2.5}});
  // New series continue after the loaded ones.
  CHECK(series(*store, {{"__name__", "new"}}) == 3);
}

TEST_CASE("store gauges are updated at scrape time") {
  testing::TempDir dir;
  metrics::Metrics m;
  auto store = open_store(dir.path(), &m);
  series(*store, {{"__name__", "a"}});
  series(*store, {{"__name__", "b"}});
  std::string text = m.scrape();
  CHECK(text.find("kpid_store_series 2") != std::string::npos);
  CHECK(text.find("kpid_store_size_bytes") != std::string::npos);
}

TEST_CASE("opening a store where a file blocks the directory fails with a clear error") {
  testing::TempDir dir;
  std::string blocker = dir.path() + "/file";
  FILE* f = std::fopen(blocker.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fclose(f);
  StoreOptions options;
  // Samples near 1970 stay raw (append rolls up windows past raw retention at once).
  options.retention.raw = 100 * 365 * 86'400'000LL;
  options.data_dir = blocker + "/data";
  auto s = RocksDbStore::open(options, nullptr);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().message().find(blocker) != std::string::npos);
}

TEST_CASE(
    "the store pushes back while heads hold twice head_max_samples, and not after a "
    "checkpoint") {
  testing::TempDir dir;
  StoreOptions options;
  // Samples near 1970 stay raw (append rolls up windows past raw retention at once).
  options.retention.raw = 100 * 365 * 86'400'000LL;
  options.data_dir = dir.path();
  options.head_max_samples = 1000;
  options.background = false;  // no checkpoint until maintain()
  auto opened = RocksDbStore::open(options, nullptr);
  REQUIRE(opened.is_ok());
  auto& store = **opened;
  const SeriesId id = series(store, {{"__name__", "m"}});
  std::vector<Sample> batch;
  for (int i = 0; i < 1999; ++i) batch.push_back({id, 1'000'000 + i, double(i)});
  REQUIRE(store.append(batch).is_ok());
  CHECK_FALSE(store.pushback());
  REQUIRE(store.append(std::vector<Sample>{{id, 1'000'000 + 1999, 1999.0}}).is_ok());

  const Pushback p = store.pushback();
  CHECK(p.reason == Pushback::Reason::kHeadBacklog);
  CHECK(pushback_name(p.reason) == "head_backlog");
  CHECK(p.retry_after > 0);
  const Status refused = store.append(std::vector<Sample>{{id, 1'000'000 + 2000, 1.0}});
  CHECK(refused.code() == StatusCode::kUnavailable);
  CHECK(refused.message().find("head_max_samples") != std::string::npos);
  CHECK(read_all(store, id).size() == 2000);  // the refused sample is not there

  REQUIRE(store.maintain().is_ok());
  CHECK_FALSE(store.pushback());
  REQUIRE(store.append(std::vector<Sample>{{id, 1'000'000 + 2000, 1.0}}).is_ok());
  CHECK(read_all(store, id).size() == 2001);
}

TEST_CASE("a changed block cache size takes effect after a restart, as the other storage keys") {
  store::StoreOptions running;
  store::StoreOptions next = running;
  next.block_cache_bytes = 64ull << 20;
  CHECK(store::keys_needing_restart(running, next) ==
        std::vector<std::string>{"storage.block_cache"});
}
