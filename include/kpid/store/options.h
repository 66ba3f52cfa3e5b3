#pragma once
// The store's options: the [storage] and [retention] tables of the config, parsed straight into
// this struct, plus what only the daemon and tests set (clock, background, read_only). What a
// reload may change is decided here too.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kpid/core/time.h"

namespace kpid::store {

// How long each resolution is kept, measured back from the store clock's now ([retention]).
struct RetentionPolicy {
  DurationMs raw = 30 * 86'400'000LL;
  DurationMs rollup_5m = 400 * 86'400'000LL;
  DurationMs rollup_1h = 5 * 365 * 86'400'000LL;
};

// Caps that protect memory from a flood of new series. Existing series are never refused.
struct SeriesLimits {
  uint64_t max_series = 1'000'000;
  // Per metric name (a line-protocol measurement's field): one runaway measurement cannot use
  // up the global limit.
  uint64_t max_series_per_metric = 100'000;
  uint32_t max_labels_per_series = 30;  // including __name__
  uint32_t max_label_name_bytes = 256;
  uint32_t max_label_value_bytes = 4096;
};

struct StoreOptions {
  std::string data_dir = "./data";
  bool sync = false;  // fsync the WAL on every write: survives power loss, not only kill -9
  RetentionPolicy retention{};
  SeriesLimits limits{};
  // A checkpoint writes heads to chunks after this long, or once heads hold head_max_samples.
  DurationMs checkpoint_interval = 60'000;
  uint64_t head_max_samples = 4'000'000;
  // Writes are refused (Pushback::kDiskFull) while the data dir's filesystem has less free
  // space than this, so RocksDB never runs out of it mid-write; 0: no check.
  uint64_t min_free_bytes = 100ull << 20;
  // RocksDB's block cache, shared by chunks, rollups and the series index: uncompressed blocks
  // that queries read again stay in memory instead of being read and decompressed each time.
  uint64_t block_cache_bytes = 256ull << 20;
  // Where "now" comes from for retention; SystemClock when null. Must outlive the store.
  const Clock* clock = nullptr;
  // Run checkpoints and rollups in a background thread. Off in tests that drive maintain().
  bool background = true;
  // Once no sample has been appended for this long, the background thread settles the store:
  // heads to chunks, memtables flushed (the write-ahead log goes), level 0 compacted.
  DurationMs settle_after = 10'000;
  // Open for reading only (kpid --check-config beside a running kpid): no background work, no
  // checkpoint on close; writes fail with unavailable. The head log is replayed in memory.
  bool read_only = false;
  // Where backups go (POST /api/v1/admin/backup without a dir, and the backup taken before a
  // format upgrade); empty: kpid-backups beside the data dir (backup_dir_of).
  std::string backup_dir{};
  // Test-only seam (fault_injection.h): when set, RocksDB writes through a file system that
  // fails them as this control file says. kpid sets it from the KPID_FAULT_INJECTION
  // environment variable only.
  std::string fault_injection_file{};
  // Resident memory kpid aims to stay under; 0: no limit. Above 85% of it the store sheds
  // memory (block cache shrunk, heads written out, memtables flushed); above it writes and new
  // series are refused (Pushback::kMemoryLimit) until it falls.
  uint64_t memory_limit_bytes = 0;
  // Test-only seam: the resident memory in bytes, read instead of /proc/self/statm when set.
  std::function<uint64_t()> memory_probe{};
};

// storage.backup_dir, or kpid-backups beside the data dir when it is not set.
std::string backup_dir_of(const StoreOptions& options);

// The [storage] and [retention] keys that differ between the running options and a reloaded
// config: none of them changes a running store, so each takes effect after a restart.
std::vector<std::string> keys_needing_restart(const StoreOptions& running,
                                              const StoreOptions& next);

}  // namespace kpid::store
