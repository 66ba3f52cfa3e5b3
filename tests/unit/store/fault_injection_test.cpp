#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <limits>
#include <map>
#include <thread>

#include <rocksdb/db.h>

#include "kpid/store/fault_injection.h"
#include "kpid/store/rocksdb_store.h"
#include "kpid/store/rollup.h"
#include "support/fake_clock.h"
#include "support/temp_dir.h"

using namespace kpid;
using namespace kpid::store;
using namespace std::chrono_literals;

namespace {

void set_fault(const std::string& file, const char* word) {
  std::ofstream(file, std::ios::trunc) << word << "\n";
}

SeriesId series(SampleStore& store, const char* name) {
  LabelsBuilder b;
  b.add("__name__", name);
  REQUIRE(b.finish().empty());
  auto id = store.resolve(b.key());
  REQUIRE(id.is_ok());
  return *id;
}

size_t count_all(const SampleStore& store, SeriesId id) {
  std::vector<Point> out;
  REQUIRE(
      store.read(id, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), out)
          .is_ok());
  return out.size();
}

// Opens the data dir in `dir` with RocksDB itself, every column family with default options
// (no kpid plug-ins), as another kpid would have left it, and runs `f(db, handles by name)`.
template <class F>
void with_raw_db(const std::string& dir, F f) {
  rocksdb::Options o;
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(o, dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const auto& n : names) families.push_back({n, rocksdb::ColumnFamilyOptions()});
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::Open(o, dir, families, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name;
  for (size_t i = 0; i < names.size(); ++i) by_name[names[i]] = handles[i];
  f(*db, by_name);
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
}

// A key of rollup_1h as kpid writes it: series id, then a time with its sign bit flipped, both
// 8 bytes big-endian.
std::string series_time_key(SeriesId id, TimestampMs t) {
  std::string key(16, '\0');
  const uint64_t parts[2] = {id, static_cast<uint64_t>(t) ^ (1ull << 63)};
  for (int p = 0; p < 2; ++p) {
    for (int i = 0; i < 8; ++i) key[p * 8 + i] = static_cast<char>(parts[p] >> (56 - 8 * i));
  }
  return key;
}

template <class F>
bool eventually(F f, std::chrono::milliseconds timeout = 10s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

}  // namespace

TEST_CASE("fault injection: out of space, writes are refused, then taken again once it is gone") {
  testing::TempDir dir;
  const std::string control = dir.path() + "/fault";
  StoreOptions options;
  // Samples near 1970 stay raw (append rolls up windows past raw retention at once).
  options.retention.raw = 100 * 365 * 86'400'000LL;
  options.data_dir = dir.path() + "/data";
  options.fault_injection_file = control;
  options.min_free_bytes = 0;
  size_t acknowledged = 0;
  {
    auto opened = RocksDbStore::open(options, nullptr);
    REQUIRE(opened.is_ok());
    auto store = std::move(opened).value();
    const SeriesId id = series(*store, "m");
    TimestampMs t = 1'700'000'000'000;
    REQUIRE(store->append(std::vector<Sample>{{id, t++, 1}}).is_ok());
    ++acknowledged;

    set_fault(control, "nospace");
    auto failed = store->append(std::vector<Sample>{{id, t++, 2}});
    CHECK(failed.code() == StatusCode::kUnavailable);
    CHECK(store->pushback().reason == Pushback::Reason::kDiskFull);
    CHECK(store->write_state({{{"k", "v"}}}).code() == StatusCode::kUnavailable);
    CHECK(count_all(*store, id) == acknowledged);

    set_fault(control, "ok");
    CHECK(eventually([&] { return !store->pushback(); }));
    REQUIRE(store->append(std::vector<Sample>{{id, t++, 3}}).is_ok());
    ++acknowledged;
    REQUIRE(store->write_state({{{"k", "v"}}}).is_ok());
    CHECK(count_all(*store, id) == acknowledged);
    REQUIRE(store->close().is_ok());
  }
  auto reopened = RocksDbStore::open(options, nullptr);
  REQUIRE(reopened.is_ok());
  CHECK(count_all(**reopened, 1) == acknowledged);
  CHECK((*reopened)->get_state("k")->value_or("") == "v");
}

TEST_CASE("fault injection: after an I/O error writes are refused until the store is reopened") {
  testing::TempDir dir;
  const std::string control = dir.path() + "/fault";
  StoreOptions options;
  // Samples near 1970 stay raw (append rolls up windows past raw retention at once).
  options.retention.raw = 100 * 365 * 86'400'000LL;
  options.data_dir = dir.path() + "/data";
  options.fault_injection_file = control;
  options.min_free_bytes = 0;
  TimestampMs t = 1'700'000'000'000;
  {
    auto opened = RocksDbStore::open(options, nullptr);
    REQUIRE(opened.is_ok());
    auto store = std::move(opened).value();
    const SeriesId id = series(*store, "m");
    REQUIRE(store->append(std::vector<Sample>{{id, t++, 1}}).is_ok());
    set_fault(control, "ioerror");
    CHECK(store->append(std::vector<Sample>{{id, t++, 2}}).code() == StatusCode::kUnavailable);
    CHECK(store->pushback().reason == Pushback::Reason::kWriteError);
    set_fault(control, "ok");
    std::this_thread::sleep_for(1500ms);  // the maintenance thread had its chance to resume
    CHECK(store->pushback().reason == Pushback::Reason::kWriteError);
    CHECK(store->append(std::vector<Sample>{{id, t++, 3}}).code() == StatusCode::kUnavailable);
    CHECK(count_all(*store, id) == 1);
  }
  auto reopened = RocksDbStore::open(options, nullptr);
  REQUIRE(reopened.is_ok());
  CHECK(count_all(**reopened, 1) == 1);
  REQUIRE((*reopened)->append(std::vector<Sample>{{1, t++, 4}}).is_ok());
  CHECK(count_all(**reopened, 1) == 2);
}

TEST_CASE(
    "backup: taken while writing, restored elsewhere, holds every write acknowledged before") {
  testing::TempDir dir;
  StoreOptions options;
  // Samples near 1970 stay raw (append rolls up windows past raw retention at once).
  options.retention.raw = 100 * 365 * 86'400'000LL;
  options.data_dir = dir.path() + "/data";
  options.min_free_bytes = 0;
  const std::string backups = dir.path() + "/backups";
  auto opened = RocksDbStore::open(options, nullptr);
  REQUIRE(opened.is_ok());
  auto store = std::move(opened).value();
  const SeriesId id = series(*store, "m");
  TimestampMs t = 1'700'000'000'000;
  for (int i = 0; i < 100; ++i)
    REQUIRE(store->append(std::vector<Sample>{{id, t++, 1.0 * i}}).is_ok());
  REQUIRE(store->write_state({{{"alert/1", "firing"}}}).is_ok());
  auto first = store->backup(backups);
  REQUIRE(first.is_ok());
  CHECK(first->id == 1);
  CHECK(first->format_version == kFormatVersion);
  CHECK(first->files > 0);
  REQUIRE(store->maintain().is_ok());  // the heads into chunks: the second backup differs
  for (int i = 0; i < 50; ++i)
    REQUIRE(store->append(std::vector<Sample>{{id, t++, 1.0 * i}}).is_ok());
  auto second = store->backup(backups);
  REQUIRE(second.is_ok());
  CHECK(second->id == 2);
  for (int i = 0; i < 50; ++i)
    REQUIRE(store->append(std::vector<Sample>{{id, t++, 1.0 * i}}).is_ok());

  auto list = RocksDbStore::list_backups(backups);
  REQUIRE(list.is_ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].id == 1);
  CHECK((*list)[1].id == 2);

  // A non-empty data dir is refused.
  CHECK_FALSE(RocksDbStore::restore(backups, options.data_dir).is_ok());
  for (auto [backup_id, samples] : {std::pair{1u, 100u}, std::pair{2u, 150u}}) {
    StoreOptions restored;
    // Samples near 1970 stay raw (append rolls up windows past raw retention at once).
    restored.retention.raw = 100 * 365 * 86'400'000LL;
    restored.data_dir = dir.path() + "/restored-" + std::to_string(backup_id);
    restored.min_free_bytes = 0;
    auto info = RocksDbStore::restore(backups, restored.data_dir, backup_id);
    REQUIRE(info.is_ok());
    CHECK(info->id == backup_id);
    auto copy = RocksDbStore::open(restored, nullptr);
    REQUIRE(copy.is_ok());
    CHECK(count_all(**copy, 1) == samples);
    CHECK((*copy)->get_state("alert/1")->value_or("") == "firing");
  }
  CHECK(count_all(*store, id) == 200);
}

TEST_CASE("format version: recorded, a newer one refused naming both, an older one upgraded") {
  testing::TempDir dir;
  StoreOptions options;
  // Samples near 1970 stay raw (append rolls up windows past raw retention at once).
  options.retention.raw = 100 * 365 * 86'400'000LL;
  options.data_dir = dir.path() + "/data";
  options.min_free_bytes = 0;
  options.backup_dir = dir.path() + "/backups";
  {
    auto store = RocksDbStore::open(options, nullptr);
    REQUIRE(store.is_ok());
    REQUIRE((*store)
                ->append(std::vector<Sample>{{series(**store, "m"), 1'700'000'000'000, 1}})
                .is_ok());
  }
  // Rewrites the recorded version with RocksDB itself, as another kpid would have left it.
  auto set_version = [&](std::optional<std::string> version) {
    with_raw_db(options.data_dir, [&](rocksdb::DB& db, auto&) {
      std::string value;
      if (version) {
        REQUIRE(db.Put({}, "kpid.format_version", *version).ok());
      } else {
        REQUIRE(db.Get({}, "kpid.format_version", &value).ok());
        CHECK(value == "4");
        REQUIRE(db.Delete({}, "kpid.format_version").ok());
      }
    });
  };

  set_version("5");
  auto newer = RocksDbStore::open(options, nullptr);
  REQUIRE_FALSE(newer.is_ok());
  INFO(newer.status().message());
  CHECK_THAT(newer.status().message(),
             Catch::Contains("format version 5") && Catch::Contains("reads format version 4"));

  set_version("4");
  set_version(std::nullopt);  // checks it was 4, makes it a version 0 data dir
  auto older = RocksDbStore::open(options, nullptr);
  REQUIRE(older.is_ok());
  CHECK(count_all(**older, 1) == 1);
  REQUIRE((*older)->close().is_ok());
  auto backups = RocksDbStore::list_backups(options.backup_dir);
  REQUIRE(backups.is_ok());
  CHECK(backups->size() == 1);
  set_version(std::nullopt);  // upgraded: it is 4 again

  // A version 1 data dir (rollup blocks without the stale-marker flag) is upgraded alike.
  set_version("1");
  auto v1 = RocksDbStore::open(options, nullptr);
  REQUIRE(v1.is_ok());
  CHECK(count_all(**v1, 1) == 1);
  REQUIRE((*v1)->close().is_ok());
  backups = RocksDbStore::list_backups(options.backup_dir);
  REQUIRE(backups.is_ok());
  CHECK(backups->size() == 2);
  set_version("2");  // a data dir of the previous kpid: its stored 5-minute rollups stay valid
  auto v2 = RocksDbStore::open(options, nullptr);
  REQUIRE(v2.is_ok());
  CHECK(count_all(**v2, 1) == 1);
  REQUIRE((*v2)->close().is_ok());
  set_version(std::nullopt);  // checks it is 4
}

TEST_CASE("format version: a format 3 data dir's 1-hour rollups per window become day values") {
  constexpr TimestampMs kHour = 3'600'000;
  constexpr TimestampMs kDay = 24 * kHour;
  constexpr TimestampMs kMidnight = 1'700'006'400'000;
  testing::TempDir dir;
  testing::FakeClock clock;
  clock.set_ms(kMidnight + 10 * kDay);
  StoreOptions options;
  options.data_dir = dir.path() + "/data";
  options.backup_dir = dir.path() + "/backups";
  options.min_free_bytes = 0;
  options.clock = &clock;
  options.background = false;
  auto open = [&] {
    auto store = RocksDbStore::open(options, nullptr);
    INFO(store.status().to_string());
    REQUIRE(store.is_ok());
    return std::move(store).value();
  };
  auto hourly = [](const SampleStore& store, SeriesId id, TimestampMs start, TimestampMs end) {
    std::vector<Rollup> out;
    REQUIRE(store.read_rollups(id, kRollup1h, start, end, out).is_ok());
    return out;
  };
  // Six windows, kMidnight - 6 h to kMidnight + 6 h: one ends at the midnight, the day's key.
  SeriesId id = 0;
  std::vector<Point> points;
  {
    auto store = open();
    id = series(*store, "m");
    std::vector<Sample> batch;
    for (TimestampMs t = kMidnight - 6 * kHour + 60'000; t <= kMidnight + 6 * kHour; t += 60'000) {
      batch.push_back({id, t, static_cast<double>(t / 60'000 % 89)});
    }
    REQUIRE(store->append(batch).is_ok());
    REQUIRE(store->compact().is_ok());  // rollups stored, no window dirty, every value folded
    REQUIRE(store->read(id, INT64_MIN, INT64_MAX, points).is_ok());
    REQUIRE(points.size() == batch.size());
  }
  std::vector<Rollup> want;
  build_rollups(points, kRollup1h, INT64_MIN / 2, INT64_MAX / 2, want);
  REQUIRE(want.size() == 12);
  // As format 3 left it: rollup_1h one block per window, keyed by the window's end.
  with_raw_db(options.data_dir, [&](rocksdb::DB& db, auto& cf) {
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator({}, cf.at("rollup_1h")));
    std::vector<std::string> keys;
    for (it->SeekToFirst(); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
    REQUIRE(it->status().ok());
    CHECK(keys.size() == 2);  // today's layout: one per day
    for (const auto& k : keys) REQUIRE(db.Delete({}, cf.at("rollup_1h"), k).ok());
    for (TimestampMs w = kMidnight - 4 * kHour; w <= kMidnight + 6 * kHour; w += 2 * kHour) {
      std::vector<Rollup> window;
      build_rollups(points, kRollup1h, w - 2 * kHour, w, window);
      REQUIRE(window.size() == 2);
      REQUIRE(db.Put({}, cf.at("rollup_1h"), series_time_key(id, w),
                     encode_rollup_block(window, w, kRollup1h))
                  .ok());
    }
    REQUIRE(db.Put({}, "kpid.format_version", "3").ok());
  });

  {
    auto store = open();  // upgrades, after a backup
    const auto got = hourly(*store, id, INT64_MIN / 2, INT64_MAX / 2);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      INFO("bucket " << i);
      CHECK(got[i].end == want[i].end);
      CHECK(got[i].count == want[i].count);
      CHECK(got[i].sum == want[i].sum);
      CHECK(got[i].first_timestamp == want[i].first_timestamp);
      CHECK(got[i].last == want[i].last);
      CHECK(got[i].sketch.count() == want[i].sketch.count());
    }
    // Across the day boundary, from the middle of one day into the next.
    CHECK(hourly(*store, id, kMidnight - 3 * kHour, kMidnight + 2 * kHour).size() == 5);
    REQUIRE(store->close().is_ok());
  }
  auto backups = RocksDbStore::list_backups(options.backup_dir);
  REQUIRE(backups.is_ok());
  REQUIRE(backups->size() == 1);
  CHECK(backups->front().format_version == 4);
  // One value per series and day, keyed by the day's end.
  with_raw_db(options.data_dir, [&](rocksdb::DB& db, auto& cf) {
    std::string version;
    REQUIRE(db.Get({}, "kpid.format_version", &version).ok());
    CHECK(version == "4");
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator({}, cf.at("rollup_1h")));
    std::vector<std::string> keys;
    for (it->SeekToFirst(); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
    REQUIRE(it->status().ok());
    CHECK(keys == std::vector<std::string>{series_time_key(id, kMidnight),
                                           series_time_key(id, kMidnight + kDay)});
  });

  // Windows rewritten later combine with the upgraded day values.
  {
    auto store = open();
    std::vector<Sample> late;
    for (TimestampMs t = kMidnight + 60'000; t <= kMidnight + 2 * kHour; t += 60'000) {
      late.push_back({id, t, -1.0});
    }
    REQUIRE(store->append(late).is_ok());
    REQUIRE(store->maintain().is_ok());
    points.clear();
    REQUIRE(store->read(id, INT64_MIN, INT64_MAX, points).is_ok());
    want.clear();
    build_rollups(points, kRollup1h, INT64_MIN / 2, INT64_MAX / 2, want);
    const auto got = hourly(*store, id, INT64_MIN / 2, INT64_MAX / 2);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      CHECK(got[i].end == want[i].end);
      CHECK(got[i].sum == want[i].sum);
      CHECK(got[i].min == want[i].min);
    }
  }
}
