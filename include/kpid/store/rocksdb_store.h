#pragma once
// The storage engine: one RocksDB, column families
//   series     : series id (8 BE)                -> Labels::encode()
//   series_key : Labels::encode()                -> series id
//   chunks     : series id + window end (16 B)   -> chunk (chunk_codec.h) of the series' samples
//                in the 2-hour window (end - 2h, end]; written as merge operands (pieces) that
//                RocksDB folds into one chunk, so backfill and overwrites never read first
//   rollup_5m  : series id + window end          -> the window's 5-minute rollups, written once
//                the window is within a day of leaving raw retention (until then its chunk
//                answers for them: storing both would double what a sample costs)
//   rollup_1h  : series id + UTC day end         -> the day's 1-hour rollups, written per window
//                as merge pieces that RocksDB folds into one value per day
//   rollup_due : window end + series id          -> (empty) windows whose 5-minute rollups are
//                still to be written, oldest first
//   head_log   : sequence number (8 BE)          -> samples that are only in the in-memory head
//   dirty      : series id + window end          -> windows whose rollups must be recomputed
//
// The path of a write (append): samples for a series' open window go to its in-memory head and,
// in the same RocksDB write, to one head_log record for the whole batch (one key per batch, not
// per sample); samples for older windows become chunk pieces at once, marking the window dirty.
// Samples of a window already past raw retention (and neither dirty nor a head's) skip raw
// storage: they are merged into the window's stored rollups at once, in the same write.
// The write is acknowledged when RocksDB has it in its write-ahead log (fsync'd when `sync`).
// A sample for a later window seals the head's window into a chunk piece. A checkpoint (on a
// timer, or when heads hold too many samples) writes every head as chunk pieces and deletes the
// head_log records they covered; on open, head_log records are replayed into the heads. A
// maintenance thread runs checkpoints, recomputes the rollups of dirty windows, writes the
// 5-minute rollups that fall due, and settles the store once writes pause (memtables flushed so
// the write-ahead log goes, level-0 files compacted so chunk pieces fold). Retention drops old
// windows through compaction filters on the window end.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kpid/core/deadline.h"
#include "kpid/core/time.h"
#include "kpid/metrics/metrics.h"
#include "kpid/store/options.h"
#include "kpid/store/sample_store.h"
#include "kpid/store/state_store.h"

namespace kpid::store {

// The span of one chunk; a multiple of 1h so rollup buckets never straddle chunks.
inline constexpr DurationMs kChunkSpan = 2 * kRollup1h;

// The layout of the data a store writes; recorded in the data dir. 0: a data dir from before
// versions were recorded (the same layout as 1). 2: rollup blocks of version 3 (a bucket may
// end in a stale marker), which a version 1 kpid cannot read; version 2 reads 0 and 1 as they
// are. 3: 5-minute rollups are stored only for windows near the end of raw retention (listed
// in rollup_due until then), which a version 2 kpid would read as missing; version 3 reads
// older stores as they are. 4: rollup_1h holds one value per series and UTC day instead of one
// per 2-hour window; an older data dir is rewritten so at its first open (after a backup).
inline constexpr uint32_t kFormatVersion = 4;

// One backup in a backup directory.
struct BackupInfo {
  uint32_t id = 0;          // increasing within its directory
  int64_t timestamp_s = 0;  // when it was taken, Unix seconds
  uint64_t size_bytes = 0;  // its files' sizes (files shared with other backups included)
  uint32_t files = 0;
  uint32_t format_version = 0;  // of the data it holds
};

// The environment variable of the test-only fault-injection seam (StoreOptions::
// fault_injection_file, fault_injection.h).
inline constexpr const char* kFaultInjectionEnv = "KPID_FAULT_INJECTION";

class RocksDbStore final : public SampleStore, public StateStore {
 public:
  // Opens (creating if needed) the store under options.data_dir, loads the series index and
  // replays the head log. `metrics` may be null; otherwise metrics are registered on it and it
  // must outlive the store.
  static Result<std::unique_ptr<RocksDbStore>> open(const StoreOptions& options,
                                                    metrics::Metrics* metrics);
  ~RocksDbStore() override;

  // Stops the work that could hold a stop: a running or later compact() returns unavailable
  // ("cancelled") at once, the maintenance thread's rollups stop at their next batch. Writes and
  // reads go on. Thread-safe, idempotent, returns at once. Called by close().
  void cancel_background_work();

  // Cancels background work, writes the heads to chunks, flushes memtables while time allows
  // before `deadline` (what is left stays in the write-ahead log, replayed at the next open),
  // cancels RocksDB's own compactions and closes it; later calls do nothing. Called by the
  // destructor if needed. Every acknowledged write survives however early the deadline is.
  Status close(Deadline deadline = Deadline::never());

  Result<SeriesId> resolve(std::string_view key) override;
  Status append(std::span<const Sample> samples) override;
  std::vector<SeriesRef> select(std::span<const LabelMatcher> matchers) const override;
  Status read(SeriesId series, TimestampMs start, TimestampMs end,
              std::vector<Point>& out) const override;
  Result<bool> has_samples(SeriesId series, TimestampMs start, TimestampMs end) const override;
  Status read_rollups(SeriesId series, DurationMs width, TimestampMs start, TimestampMs end,
                      std::vector<Rollup>& out, bool with_sketches = true) const override;
  TimestampMs raw_horizon() const override;
  RetentionPolicy retention() const override;
  std::vector<std::string> label_names() const override;
  std::vector<std::string> label_values(std::string_view name) const override;
  Pushback pushback() const override;
  size_t series_count() const override;
  HeadStats head_stats() const override;
  uint64_t disk_usage_bytes() const override;
  std::shared_ptr<const Labels> labels(SeriesId series) const override;

  Status write_state(std::span<const std::pair<std::string, std::string>> puts,
                     std::span<const std::string> erase = {}) override;
  Result<std::optional<std::string>> get_state(std::string_view key) const override;
  Status scan_state(
      std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& visit) const override;
  Status scan_state_reverse(
      std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& visit) const override;

  // One round of background work, now: a checkpoint of every head, then the rollups of every
  // dirty window.
  Status maintain();
  // maintain(), then a full compaction of every column family (applies retention at once and
  // folds chunk pieces), so disk usage reflects the data. For operators and benchmarks.
  Status compact();

  // An online, consistent backup into `dir` (created if needed): every write acknowledged
  // before the call is in it, writes go on meanwhile. Backups in one directory are
  // incremental (they share table files). Thread-safe; backups run one at a time.
  Result<BackupInfo> backup(const std::string& dir);
  // The backups in `dir`, oldest first (empty when there are none). Needs no open store.
  static Result<std::vector<BackupInfo>> list_backups(const std::string& dir);
  // Restores backup `backup_id` (default: the latest) of `backup_dir` into `data_dir`, which
  // must be empty or missing, after verifying its checksums. Needs no open store; kpid must not
  // be running on `data_dir`.
  static Result<BackupInfo> restore(const std::string& backup_dir, const std::string& data_dir,
                                    std::optional<uint32_t> backup_id = std::nullopt);
  // kFormatVersion, the format this store reads and writes.
  static uint32_t format_version();

  // Samples held in heads (not yet in chunks), and windows awaiting rollups; for tests/metrics.
  uint64_t head_samples() const;
  // Samples append() dropped because their window is past every retention period.
  uint64_t expired_samples_dropped() const;
  size_t dirty_windows() const;

  struct Impl;

 private:
  explicit RocksDbStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpid::store
