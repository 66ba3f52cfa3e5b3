#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <limits>
#include <thread>

#include <rocksdb/db.h>

#include "kpid/store/fault_injection.h"
#include "kpid/store/rocksdb_store.h"
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
    rocksdb::Options o;
    std::vector<std::string> names;
    REQUIRE(rocksdb::DB::ListColumnFamilies(o, options.data_dir, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& n : names) families.push_back({n, rocksdb::ColumnFamilyOptions()});
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(o, options.data_dir, families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string value;
    if (version) {
      REQUIRE(db->Put({}, "kpid.format_version", *version).ok());
    } else {
      REQUIRE(db->Get({}, "kpid.format_version", &value).ok());
      CHECK(value == "3");
      REQUIRE(db->Delete({}, "kpid.format_version").ok());
    }
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  };

  set_version("4");
  auto newer = RocksDbStore::open(options, nullptr);
  REQUIRE_FALSE(newer.is_ok());
  INFO(newer.status().message());
  CHECK_THAT(newer.status().message(),
             Catch::Contains("format version 4") && Catch::Contains("reads format version 3"));

  set_version("3");
  set_version(std::nullopt);  // checks it was 3, makes it a version 0 data dir
  auto older = RocksDbStore::open(options, nullptr);
  REQUIRE(older.is_ok());
  CHECK(count_all(**older, 1) == 1);
  REQUIRE((*older)->close().is_ok());
  auto backups = RocksDbStore::list_backups(options.backup_dir);
  REQUIRE(backups.is_ok());
  CHECK(backups->size() == 1);
  set_version(std::nullopt);  // upgraded: it is 3 again

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
  set_version(std::nullopt);  // checks it is 3
}
