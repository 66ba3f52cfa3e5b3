// storage.memory_limit: shedding above 85% of it, pushback and no new series above it.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "kpid/store/rocksdb_store.h"
#include "support/temp_dir.h"

using namespace kpid;
using namespace kpid::store;

namespace {

std::string key_of(const char* name) {
  LabelsBuilder b;
  b.add("__name__", name);
  REQUIRE(b.finish().empty());
  return std::string(b.key());
}

double gauge(metrics::Metrics& metrics, const std::string& name) {
  const std::string text = metrics.scrape();
  const auto at = text.find("\n" + name + " ");
  REQUIRE(at != std::string::npos);
  return std::stod(text.substr(at + name.size() + 2));
}

}  // namespace

TEST_CASE("memory limit: above it writes get kMemoryLimit pushback and new series are refused") {
  testing::TempDir dir;
  StoreOptions options;
  // Samples near 1970 stay raw (append rolls up windows past raw retention at once).
  options.retention.raw = 100 * 365 * 86'400'000LL;
  options.data_dir = dir.path();
  options.background = false;
  options.memory_limit_bytes = 1ull << 20;  // far below any process' resident memory
  metrics::Metrics metrics;
  auto opened = RocksDbStore::open(options, &metrics);
  REQUIRE(opened.is_ok());
  auto& store = **opened;

  const Pushback p = store.pushback();
  CHECK(p.reason == Pushback::Reason::kMemoryLimit);
  CHECK(pushback_name(p.reason) == "memory_limit");
  CHECK(p.retry_after > 0);
  CHECK(p.message.find("storage.memory_limit (1.0 MiB)") != std::string::npos);
  CHECK(p.message.find("resident memory ") != std::string::npos);

  auto created = store.resolve(key_of("new_series"));
  REQUIRE_FALSE(created.is_ok());
  CHECK(created.status().code() == StatusCode::kUnavailable);
  CHECK(created.status().message().find("new series refused") != std::string::npos);
  CHECK(store.series_count() == 0);
  CHECK(metrics.scrape().find("kpid_store_series_refused_total{reason=\"memory_limit\"} 1") !=
        std::string::npos);
  CHECK(gauge(metrics, "kpid_store_memory_limit_bytes") == 1 << 20);
  CHECK(gauge(metrics, "kpid_store_resident_bytes") > 1 << 20);
}

TEST_CASE("memory limit: 0 means no limit") {
  testing::TempDir dir;
  StoreOptions options;
  // Samples near 1970 stay raw (append rolls up windows past raw retention at once).
  options.retention.raw = 100 * 365 * 86'400'000LL;
  options.data_dir = dir.path();
  options.background = false;
  metrics::Metrics metrics;
  auto opened = RocksDbStore::open(options, &metrics);
  REQUIRE(opened.is_ok());
  auto& store = **opened;
  CHECK_FALSE(store.pushback());
  auto id = store.resolve(key_of("m"));
  REQUIRE(id.is_ok());
  REQUIRE(store.append(std::vector<Sample>{{*id, 1'000'000, 1.0}}).is_ok());
  REQUIRE(store.maintain().is_ok());
  CHECK(gauge(metrics, "kpid_store_memory_limit_bytes") == 0);
  CHECK(gauge(metrics, "kpid_store_resident_bytes") > 0);
  CHECK(gauge(metrics, "kpid_store_block_cache_bytes") == 256 << 20);
}

TEST_CASE("memory limit: shedding above 85%, refusing above it, the cache restored below 70%") {
  testing::TempDir dir;
  std::atomic<uint64_t> resident{50 << 20};
  StoreOptions options;
  // Samples near 1970 stay raw (append rolls up windows past raw retention at once).
  options.retention.raw = 100 * 365 * 86'400'000LL;
  options.data_dir = dir.path();
  options.memory_limit_bytes = 100 << 20;
  options.memory_probe = [&resident] { return resident.load(); };
  options.checkpoint_interval = 3'600'000;  // only shedding writes the heads out early
  options.settle_after = 3'600'000;
  metrics::Metrics metrics;
  auto opened = RocksDbStore::open(options, &metrics);
  REQUIRE(opened.is_ok());
  auto& store = **opened;

  auto id = store.resolve(key_of("m"));
  REQUIRE(id.is_ok());
  REQUIRE(store.append(std::vector<Sample>{{*id, 1'000'000, 1.0}, {*id, 1'010'000, 2.0}}).is_ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the round the write woke
  CHECK(store.head_samples() == 2);
  CHECK(gauge(metrics, "kpid_store_block_cache_bytes") == 256 << 20);

  // Above the soft threshold, the background thread sheds: heads out, cache at its floor.
  resident = 90 << 20;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (store.head_samples() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(store.head_samples() == 0);
  CHECK(gauge(metrics, "kpid_store_block_cache_bytes") == 8 << 20);
  CHECK_FALSE(store.pushback());  // still under the limit: writes are taken
  REQUIRE(store.append(std::vector<Sample>{{*id, 1'020'000, 3.0}}).is_ok());

  // Above the limit: writes refused, new series refused, existing series still resolve.
  resident = 110 << 20;
  CHECK(store.pushback().reason == Pushback::Reason::kMemoryLimit);
  CHECK(store.pushback().message.find("110.0 MiB is above storage.memory_limit (100.0 MiB)") !=
        std::string::npos);
  const Status refused = store.append(std::vector<Sample>{{*id, 1'030'000, 4.0}});
  CHECK(refused.code() == StatusCode::kUnavailable);
  CHECK(refused.message().find("storage.memory_limit") != std::string::npos);
  CHECK(store.resolve(key_of("other")).status().code() == StatusCode::kUnavailable);
  auto again = store.resolve(key_of("m"));
  REQUIRE(again.is_ok());
  CHECK(*again == *id);

  // Well under: writes taken again, the cache back to storage.block_cache.
  resident = 60 << 20;
  CHECK_FALSE(store.pushback());
  REQUIRE(store.maintain().is_ok());
  CHECK(gauge(metrics, "kpid_store_block_cache_bytes") == 256 << 20);
  REQUIRE(store.append(std::vector<Sample>{{*id, 1'030'000, 4.0}}).is_ok());
  REQUIRE(store.resolve(key_of("other")).is_ok());
  REQUIRE(store.close().is_ok());
}

TEST_CASE("memory limit: a changed storage.memory_limit takes effect after a restart") {
  StoreOptions running;
  StoreOptions next = running;
  next.memory_limit_bytes = 2ull << 30;
  CHECK(keys_needing_restart(running, next) == std::vector<std::string>{"storage.memory_limit"});
}
