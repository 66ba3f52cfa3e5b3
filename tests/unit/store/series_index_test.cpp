#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "kpid/store/rocksdb_store.h"
#include "series_index.h"
#include "support/fake_clock.h"
#include "support/temp_dir.h"

using namespace kpid;
using namespace kpid::store;
using detail::SeriesIndex;

namespace {

std::string key_of(std::vector<Label> labels) {
  auto l = Labels::from(std::move(labels));
  REQUIRE(l.is_ok());
  return l->encode();
}

LabelMatcher matcher(MatchType t, std::string n, std::string v) {
  auto m = LabelMatcher::create(t, std::move(n), std::move(v));
  REQUIRE(m.is_ok());
  return std::move(m).value();
}

// Random label sets over a few names with values of varied length and overlap, so that
// postings, prefixes and absent labels all occur.
std::vector<std::string> random_keys(std::mt19937& rng, size_t n) {
  std::set<std::string> seen;
  std::vector<std::string> keys;
  std::uniform_int_distribution<int> pick(0, 99);
  while (keys.size() < n) {
    std::vector<Label> labels;
    labels.push_back({"__name__", "m" + std::to_string(pick(rng) % 5)});
    if (pick(rng) < 70) labels.push_back({"job", "job" + std::to_string(pick(rng) % 7)});
    if (pick(rng) < 90) labels.push_back({"host", "h" + std::to_string(pick(rng) * 37 % 1000)});
    if (pick(rng) < 30) labels.push_back({"code", std::to_string(200 + pick(rng) % 4 * 100)});
    std::string key = key_of(std::move(labels));
    if (seen.insert(key).second) keys.push_back(std::move(key));
  }
  return keys;
}

// What select() must return: every id whose decoded labels satisfy all matchers.
std::vector<uint64_t> naive_select(const std::vector<std::string>& keys,
                                   std::span<const LabelMatcher> matchers) {
  std::vector<uint64_t> out;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (matches_all(*Labels::decode(keys[i]), matchers)) out.push_back(i + 1);
  }
  return out;
}

std::vector<std::string> naive_values(const std::vector<std::string>& keys, std::string_view name) {
  std::set<std::string> values;
  for (const auto& k : keys) {
    const Labels labels = *Labels::decode(k);
    if (auto v = labels.get(name); !v.empty()) values.insert(std::string(v));
  }
  return {values.begin(), values.end()};
}

}  // namespace

TEST_CASE("series index: every key found by its id and its id by the key after many inserts") {
  SeriesIndex index;
  std::vector<std::string> keys;
  // Enough to grow the hash table several times and fill more than one arena chunk.
  for (int i = 0; i < 60'000; ++i) {
    keys.push_back(key_of({{"__name__", "metric_" + std::to_string(i % 13)},
                           {"host", "host-" + std::to_string(i) + std::string(i % 50, 'x')}}));
    CHECK(index.add(keys.back()) == static_cast<uint64_t>(i + 1));
  }
  REQUIRE(index.size() == keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    REQUIRE(index.find(keys[i]) == i + 1);
    REQUIRE(index.key(i + 1) == keys[i]);
  }
  CHECK(index.find(key_of({{"__name__", "metric_0"}, {"host", "elsewhere"}})) == 0);
  CHECK(index.find("") == 0);
  CHECK(index.count("__name__", "metric_0") == (60'000 + 12) / 13);
  CHECK(index.count("host", "host-7xxxxxxx") == 1);
  CHECK(index.count("host", "nope") == 0);
  // Far less than the std::map and std::unordered_map nodes it replaces would take.
  CHECK(index.memory_bytes() < keys.size() * 150);
}

TEST_CASE("series index: keys with equal hash bits are told apart by the key") {
  // Every key shares its hash table neighbourhood with others once the table is dense; keys
  // differing in one byte only, and a key longer than an arena chunk, must still be exact.
  SeriesIndex index;
  std::vector<std::string> keys;
  for (int i = 0; i < 3000; ++i)
    keys.push_back(key_of({{"a", std::string(1, char('a' + i % 26)) + std::to_string(i)}}));
  keys.push_back(key_of({{"big", std::string(3 << 20, 'v')}}));
  keys.push_back(key_of({{"big", std::string(3 << 20, 'v') + "w"}}));
  for (const auto& k : keys) index.add(k);
  for (size_t i = 0; i < keys.size(); ++i) REQUIRE(index.find(keys[i]) == i + 1);
  CHECK(index.key(keys.size()).size() == keys.back().size());
}

TEST_CASE("series index: a key is canonical only when well formed with sorted unique names") {
  CHECK(SeriesIndex::is_canonical(""));
  CHECK(SeriesIndex::is_canonical(key_of({{"a", "1"}, {"b", ""}})));
  const std::string k = key_of({{"a", "1"}, {"b", "2"}});
  CHECK_FALSE(SeriesIndex::is_canonical(k.substr(0, k.size() - 1)));
  CHECK_FALSE(SeriesIndex::is_canonical(k.substr(4) + k.substr(0, 4)));     // b before a
  CHECK_FALSE(SeriesIndex::is_canonical(k.substr(0, 4) + k.substr(0, 4)));  // a twice
  CHECK(SeriesIndex::value_in(k, "b") == "2");
  CHECK(SeriesIndex::value_in(k, "c").empty());
}

TEST_CASE("series index: select and label values equal a naive scan on random label sets") {
  std::mt19937 rng(GENERATE(1u, 2u, 3u));
  SeriesIndex index;
  // More distinct hosts than the recent run holds, so that it is folded into the sorted one.
  const std::vector<std::string> keys = random_keys(rng, 5000);
  for (const auto& k : keys) index.add(k);

  std::vector<std::vector<LabelMatcher>> selectors = {
      {matcher(MatchType::kEqual, "__name__", "m1")},
      {matcher(MatchType::kEqual, "__name__", "m1"), matcher(MatchType::kEqual, "job", "job3")},
      {matcher(MatchType::kRegexMatch, "host", "h1.*")},
      {matcher(MatchType::kRegexMatch, "host", "h12.|h3")},
      {matcher(MatchType::kRegexMatch, "job", "job1|job2|job1")},
      {matcher(MatchType::kRegexMatch, "host", "h9.*"),
       matcher(MatchType::kNotEqual, "job", "job1")},
      {matcher(MatchType::kRegexMatch, "code", ".+")},
      {matcher(MatchType::kEqual, "code", "")},
      {matcher(MatchType::kRegexNoMatch, "job", "job[0-3]")},
      {matcher(MatchType::kRegexMatch, "host", "h(1|2)0+")},
      {matcher(MatchType::kRegexMatch, "host", "h1?2.*")},
      {matcher(MatchType::kEqual, "missing", "x")},
      {matcher(MatchType::kEqual, "__name__", "m4"), matcher(MatchType::kRegexMatch, "code", "")},
  };
  for (const auto& s : selectors) {
    std::string text;
    for (const auto& m : s) text += m.to_string() + " ";
    INFO(text);
    CHECK(index.select(s) == naive_select(keys, s));
  }
  for (const char* name : {"__name__", "job", "host", "code", "missing"}) {
    INFO(name);
    CHECK(index.label_values(name) == naive_values(keys, name));
  }
  CHECK(index.label_names() == std::vector<std::string>{"__name__", "code", "host", "job"});
}

TEST_CASE("series index: the store answers the same after reopening (load_index)") {
  std::mt19937 rng(7);
  const std::vector<std::string> keys = random_keys(rng, 3000);
  testing::TempDir dir;
  StoreOptions options;
  options.data_dir = dir.path();
  const std::vector<LabelMatcher> selector = {matcher(MatchType::kRegexMatch, "host", "h2.*"),
                                              matcher(MatchType::kNotEqual, "job", "job0")};
  std::vector<SeriesId> before;
  {
    auto store = RocksDbStore::open(options, nullptr);
    REQUIRE(store.is_ok());
    for (size_t i = 0; i < keys.size(); ++i) REQUIRE(*(*store)->resolve(keys[i]) == i + 1);
    for (const auto& ref : (*store)->select(selector)) before.push_back(ref.id);
  }
  auto store = RocksDbStore::open(options, nullptr);
  REQUIRE(store.is_ok());
  RocksDbStore& s = **store;
  CHECK(s.series_count() == keys.size());
  for (size_t i = 0; i < keys.size(); ++i) REQUIRE(*s.resolve(keys[i]) == i + 1);
  const auto refs = s.select(selector);
  std::vector<SeriesId> after;
  for (const auto& ref : refs) {
    after.push_back(ref.id);
    // The labels are the caller's: equal to the series' and alive without the store's help.
    REQUIRE(ref.labels != nullptr);
    CHECK(ref.labels->encode() == keys[ref.id - 1]);
  }
  CHECK(after == before);
  std::vector<uint64_t> expected = naive_select(keys, selector);
  CHECK(after == std::vector<SeriesId>(expected.begin(), expected.end()));
  CHECK(s.label_values("host") == naive_values(keys, "host"));
  CHECK(s.labels(1)->encode() == keys[0]);
  CHECK(s.labels(keys.size() + 1) == nullptr);
  CHECK(*s.resolve(key_of({{"__name__", "new"}})) == keys.size() + 1);
}

TEST_CASE("series index: a max_series the index cannot hold is refused at open") {
  testing::TempDir dir;
  StoreOptions options;
  options.data_dir = dir.path();
  options.limits.max_series = SeriesIndex::kMaxSeries + 1;
  auto store = RocksDbStore::open(options, nullptr);
  REQUIRE_FALSE(store.is_ok());
  CHECK_THAT(store.status().message(), Catch::Contains("storage.max_series"));
}

TEST_CASE("series index: heads of series no longer written are dropped at a checkpoint") {
  testing::TempDir dir;
  testing::FakeClock clock;
  clock.set_ms(1'000'000'000'000);
  StoreOptions options;
  options.data_dir = dir.path();
  options.clock = &clock;
  options.background = false;
  auto opened = RocksDbStore::open(options, nullptr);
  REQUIRE(opened.is_ok());
  RocksDbStore& store = **opened;
  const SeriesId a = *store.resolve(key_of({{"__name__", "a"}}));
  const SeriesId b = *store.resolve(key_of({{"__name__", "b"}}));
  const TimestampMs t = clock.now_ms();
  REQUIRE(store.append(std::vector<Sample>{{a, t, 1}, {b, t, 2}}).is_ok());
  CHECK(store.head_stats().series == 2);
  // Three hours on only `a` is written: `b`'s window is no longer recent.
  clock.set_ms(t + 3 * 3'600'000);
  REQUIRE(store.append(std::vector<Sample>{{a, clock.now_ms(), 3}}).is_ok());
  REQUIRE(store.maintain().is_ok());
  CHECK(store.head_stats().series == 0);
  // Both read back whole, and `b` takes samples again as before.
  std::vector<Point> points;
  REQUIRE(store.read(b, 0, INT64_MAX, points).is_ok());
  CHECK(points == std::vector<Point>{{t, 2}});
  REQUIRE(store.append(std::vector<Sample>{{b, clock.now_ms(), 4}, {b, t + 1, 5}}).is_ok());
  points.clear();
  REQUIRE(store.read(b, 0, INT64_MAX, points).is_ok());
  CHECK(points == std::vector<Point>{{t, 2}, {t + 1, 5}, {clock.now_ms(), 4}});
  points.clear();
  REQUIRE(store.read(a, 0, INT64_MAX, points).is_ok());
  CHECK(points.size() == 2);
}
