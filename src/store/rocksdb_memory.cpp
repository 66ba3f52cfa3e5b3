// storage.memory_limit: the resident memory, shedding above the soft threshold, and pushback
// above the limit.

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>

#include "rocksdb_impl.h"

namespace kpid::store {

namespace {

// The block cache is shrunk to this (or left smaller when configured smaller).
constexpr uint64_t kCacheFloorBytes = 8ull << 20;

std::string human_bytes(uint64_t bytes) {
  constexpr double kGiB = 1 << 30;
  const auto b = static_cast<double>(bytes);
  return b >= kGiB ? fmt::format("{:.1f} GiB", b / kGiB) : fmt::format("{:.1f} MiB", b / kMiB);
}

// Resident pages of this process from /proc/self/statm (its second field), in bytes; 0 when it
// cannot be read. One open, read and close: cheap enough every kMemoryCheckIntervalMs.
uint64_t read_statm() {
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  char* end = nullptr;
  std::strtoull(buf, &end, 10);  // total program size
  const uint64_t pages = std::strtoull(end, nullptr, 10);
  static const long page_size = ::sysconf(_SC_PAGESIZE);
  return pages * static_cast<uint64_t>(page_size > 0 ? page_size : 4096);
}

}  // namespace

uint64_t RocksDbStore::Impl::resident_bytes() const {
  if (options.memory_probe) {
    const uint64_t v = options.memory_probe();
    resident.store(v, std::memory_order_relaxed);
    return v;
  }
  const int64_t now = steady_now_ms();
  if (now - memory_checked_ms.load(std::memory_order_relaxed) >= kMemoryCheckIntervalMs) {
    memory_checked_ms.store(now, std::memory_order_relaxed);
    resident.store(read_statm(), std::memory_order_relaxed);
  }
  return resident.load(std::memory_order_relaxed);
}

Pushback RocksDbStore::Impl::memory_pushback() const {
  const uint64_t limit = options.memory_limit_bytes;
  if (limit == 0) return {};
  const uint64_t rss = resident_bytes();
  if (rss < limit) return {};
  return {Pushback::Reason::kMemoryLimit,
          fmt::format("storage: resident memory {} is above storage.memory_limit ({}); writes "
                      "are refused until it falls (caches shrunk, heads written out)",
                      human_bytes(rss), human_bytes(limit)),
          2'000};
}

Status RocksDbStore::Impl::memory_allows_new_series() {
  auto p = memory_pushback();
  if (!p) return Status::ok();
  if (refused != nullptr) refused->Add({{"reason", "memory_limit"}}).Increment();
  // Unavailable, not the caller's fault: the write is answered 503 and retried later.
  return Status::unavailable(p.message + "; new series refused");
}

void RocksDbStore::Impl::shed_memory() {
  const uint64_t limit = options.memory_limit_bytes;
  if (limit == 0 || options.read_only) return;
  const uint64_t rss = resident_bytes();
  if (rss == 0) return;
  const double share = static_cast<double>(rss) / static_cast<double>(limit);
  const bool over = rss >= limit;
  if (over != memory_refusing) {
    memory_refusing = over;
    if (over) {
      spdlog::error(
          "storage: resident memory {} is above storage.memory_limit ({}); writes and new "
          "series are refused until it falls",
          human_bytes(rss), human_bytes(limit));
    } else {
      spdlog::info(
          "storage: resident memory {} is under storage.memory_limit ({}); writes are "
          "taken again",
          human_bytes(rss), human_bytes(limit));
    }
  }
  if (share < kMemorySoftShare) {
    if (memory_shedding) {
      memory_shedding = false;
      spdlog::info(
          "storage: resident memory {} is {:.0f}% of storage.memory_limit; no longer "
          "shedding",
          human_bytes(rss), share * 100);
    }
    if (cache_shrunk && share < kMemoryRestoreShare && block_cache) {
      block_cache->SetCapacity(options.block_cache_bytes);
      cache_shrunk = false;
      spdlog::info("storage: block cache restored to {}", human_bytes(options.block_cache_bytes));
    }
    return;
  }
  const int64_t now = steady_now_ms();
  if (memory_shedding && now - memory_shed_ms < kMemoryShedIntervalMs) return;
  const bool first = !memory_shedding;
  memory_shedding = true;
  memory_shed_ms = now;

  // The block cache first: the biggest thing that can go at once, read again from disk later.
  const uint64_t cache_before = block_cache ? block_cache->GetCapacity() : 0;
  if (block_cache && !cache_shrunk) {
    block_cache->SetCapacity(std::min<uint64_t>(cache_before, kCacheFloorBytes));
    cache_shrunk = true;
  }
  // Heads hold samples until a checkpoint; written out now rather than at the interval.
  Status st = checkpoint();
  {
    std::lock_guard lock(head_mutex);
    heads.shrink_to_fit();
    order.shrink_to_fit();
    windows.shrink_to_fit();
    record.shrink_to_fit();
    piece.shrink_to_fit();
    run.shrink_to_fit();
    merged.shrink_to_fit();
  }
  // Memtables go to table files (the write-ahead log with them).
  if (st) st = writable();
  if (st) st = flush_all();
  // glibc keeps freed memory for reuse; hand it back so the resident size falls.
  ::malloc_trim(0);
  const uint64_t after = read_statm();
  if (first) {
    spdlog::warn(
        "storage: resident memory {} is {:.0f}% of storage.memory_limit ({}); shed memory: "
        "block cache {} -> {}, heads written out, memtables flushed; now {}{}",
        human_bytes(rss), share * 100, human_bytes(limit), human_bytes(cache_before),
        human_bytes(block_cache ? block_cache->GetCapacity() : 0), human_bytes(after),
        st ? "" : " (" + st.message() + ")");
  }
  if (!options.memory_probe) {
    resident.store(after, std::memory_order_relaxed);
    memory_checked_ms.store(steady_now_ms(), std::memory_order_relaxed);
  }
}

void RocksDbStore::Impl::register_memory_metrics(metrics::Metrics& metrics) {
  auto& reg = metrics.registry();
  resident_gauge = &prometheus::BuildGauge()
                        .Name("kpid_store_resident_bytes")
                        .Help("Resident memory of the kpid process (from /proc/self/statm).")
                        .Register(reg)
                        .Add({});
  memory_limit_gauge = &prometheus::BuildGauge()
                            .Name("kpid_store_memory_limit_bytes")
                            .Help(
                                "storage.memory_limit: above it writes are refused; above 85% of "
                                "it the store sheds memory (0: no limit).")
                            .Register(reg)
                            .Add({});
  cache_gauge = &prometheus::BuildGauge()
                     .Name("kpid_store_block_cache_bytes")
                     .Help(
                         "Capacity of the block cache now: storage.block_cache, or less while "
                         "the store sheds memory near storage.memory_limit.")
                     .Register(reg)
                     .Add({});
  memory_limit_gauge->Set(static_cast<double>(options.memory_limit_bytes));
  metrics.on_scrape([this] {
    resident_gauge->Set(static_cast<double>(resident_bytes()));
    cache_gauge->Set(block_cache ? static_cast<double>(block_cache->GetCapacity()) : 0.0);
  });
}

}  // namespace kpid::store
