#pragma once
// Private to the RocksDB store: the state shared by the files that implement it, one per concern
// (rocksdb_store.cpp: open, close, pushback and background work; rocksdb_index.cpp: the series
// index and postings; rocksdb_heads.cpp: heads and the head log; rocksdb_chunks.cpp: chunk
// reads; rocksdb_rollups.cpp: dirty windows and rollups; rocksdb_retention.cpp: retention and
// compaction; rocksdb_state.cpp: the state column family).

#include "kpid/store/rocksdb_store.h"

#include <sys/statvfs.h>

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "kpid/core/varint.h"
#include "kpid/store/chunk_codec.h"
#include "kpid/store/fault_injection.h"
#include "kpid/store/rollup.h"
#include "plugins.h"
#include "series_index.h"

namespace kpid::store {

using detail::get_be64;
using detail::put_be64;
using detail::SeriesTimeKey;
using detail::WindowSeriesKey;

inline constexpr const char* kSeriesCf = "series";
inline constexpr const char* kSeriesKeyCf = "series_key";
inline constexpr const char* kChunksCf = "chunks";
inline constexpr const char* kRollup5mCf = "rollup_5m";
inline constexpr const char* kRollup1hCf = "rollup_1h";
inline constexpr const char* kHeadLogCf = "head_log";
inline constexpr const char* kDirtyCf = "dirty";
inline constexpr const char* kStateCf = "state";
inline constexpr const char* kRollupDueCf = "rollup_due";
inline constexpr const char* kNextSeqKey = "head_log.next_seq";
inline constexpr size_t kRollupBatchWindows = 4096;
inline constexpr int64_t kSpaceCheckIntervalMs = 100;
inline constexpr double kMiB = 1 << 20;
// Free space try_recover() waits for before resuming RocksDB after a failed write.
inline constexpr uint64_t kResumeMinFreeBytes = 16ull << 20;
// A settled store settles again, for what was written without an append since, at most this
// often.
inline constexpr int64_t kResettleMs = 60'000;
// A window's 5-minute rollups are written this long before its raw chunk expires; until then
// the chunk itself answers for them (see due_floor).
inline constexpr DurationMs kRollup5mLead = 86'400'000;
// rollup_1h holds one value per series and UTC day (key time: the day's end), the 1-hour buckets
// of its twelve windows, written window by window as merge pieces (RollupMergeOperator);
// rollup_5m one per window. What one key of a width's family spans:
inline constexpr DurationMs kRollup1hBlockSpan = 86'400'000;
inline constexpr DurationMs rollup_block_span(DurationMs width) {
  return width == kRollup1h ? kRollup1hBlockSpan : kChunkSpan;
}
// storage.memory_limit: how often the resident memory is read again, the share of the limit
// above which the store sheds memory and the one below which the block cache is restored.
inline constexpr int64_t kMemoryCheckIntervalMs = 100;
inline constexpr double kMemorySoftShare = 0.85;
inline constexpr double kMemoryRestoreShare = 0.70;
// While above the soft threshold, memory is shed again this often (heads refill meanwhile).
inline constexpr int64_t kMemoryShedIntervalMs = 5'000;
// A checkpoint that frees the buffers of at least this many heads hands freed heap back to the
// system (malloc_trim).
inline constexpr size_t kTrimAfterHeads = 65'536;

// Counts the column families whose writes RocksDB has stopped (too many memtables or level-0
// files waiting for flushes and compactions), so ingest can push back instead of blocking.
class StallListener final : public rocksdb::EventListener {
 public:
  void OnStallConditionsChanged(const rocksdb::WriteStallInfo& info) override {
    using Condition = rocksdb::WriteStallCondition;
    const bool was = info.condition.prev == Condition::kStopped;
    const bool is = info.condition.cur == Condition::kStopped;
    if (is && !was) stopped_.fetch_add(1);
    if (was && !is) stopped_.fetch_sub(1);
  }
  bool stopped() const { return stopped_.load(std::memory_order_relaxed) > 0; }

  // RocksDB's own recovery runs at once, while the disk is still full; kpid resumes it instead
  // (try_recover(): once there is room again, from the maintenance thread, with no write in
  // flight). storage.min_free_bytes keeps a full disk from getting that far most of the time.
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    bg_error.PermitUncheckedError();
    *auto_recovery = false;
  }

 private:
  std::atomic<int> stopped_{0};
};

inline Status from_rocksdb(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::ok();
  if (s.IsNoSpace()) return Status::resource_exhausted(what + ": " + s.ToString());
  return Status::io_error(what + ": " + s.ToString());
}

inline TimestampMs window_of(TimestampMs t) { return bucket_end(t, kChunkSpan); }

struct SeqKey {
  char bytes[8];
  explicit SeqKey(uint64_t seq) { put_be64(bytes, seq); }
  rocksdb::Slice slice() const { return {bytes, sizeof bytes}; }
};

// Head log record: a version byte, then per sample varint (series id - previous id), varint
// zigzag(timestamp - previous timestamp) and the 8-byte value. Samples go in series order, so
// both deltas are small (about 11 bytes a sample instead of 16).
inline constexpr uint8_t kHeadRecordVersion = 2;

class HeadRecordWriter {
 public:
  explicit HeadRecordWriter(std::string& out) : out_(out) { out_.clear(); }
  void add(SeriesId id, Point p) {
    if (out_.empty()) out_.push_back(static_cast<char>(kHeadRecordVersion));
    append_varint(out_, id - prev_id_);
    append_varint(out_, zigzag(static_cast<int64_t>(static_cast<uint64_t>(p.timestamp) -
                                                    static_cast<uint64_t>(prev_ts_))));
    append_f64(out_, p.value);
    prev_id_ = id;
    prev_ts_ = p.timestamp;
  }

 private:
  std::string& out_;
  SeriesId prev_id_ = 0;
  TimestampMs prev_ts_ = 0;
};

inline int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline rocksdb::Slice as_slice(const std::string& s) { return {s.data(), s.size()}; }

// The open window of one series: samples that are in the head log but not yet in a chunk.
struct Head {
  SeriesId id = 0;                 // 0 for a free slot of HeadTable
  TimestampMs window = INT64_MIN;  // end of the open window; INT64_MIN before the first sample
  std::vector<Point> pending;      // sorted, unique timestamps, all inside `window`
};

// The heads of the series written lately: per series a 32-bit slot number (0: none), the heads
// in a dense array of slots reused through a free list. checkpoint() frees the pending buffers
// it writes out and the slots of series whose window is no longer recent, so a series that
// stopped being written costs 4 bytes here. A series without a slot reads as a head with no
// window and nothing pending.
class HeadTable {
 public:
  // Covers series ids 1..series (new ones without a head).
  void resize(size_t series) {
    if (slot_of_.size() < series) slot_of_.resize(series, 0);
  }
  // The head of `id`, or null when it has none.
  const Head* find(SeriesId id) const {
    if (id == 0 || id > slot_of_.size() || slot_of_[id - 1] == 0) return nullptr;
    return &slots_[slot_of_[id - 1] - 1];
  }
  Head* find(SeriesId id) { return const_cast<Head*>(std::as_const(*this).find(id)); }
  TimestampMs window(SeriesId id) const {
    const Head* h = find(id);
    return h == nullptr ? INT64_MIN : h->window;
  }
  // The head of `id` (1..covered), created empty when it has none.
  Head& get(SeriesId id) {
    uint32_t& slot = slot_of_[id - 1];
    if (slot == 0) {
      if (free_.empty()) {
        slots_.emplace_back();
        slot = static_cast<uint32_t>(slots_.size());
      } else {
        slot = free_.back();
        free_.pop_back();
      }
      slots_[slot - 1].id = id;
    }
    return slots_[slot - 1];
  }
  // Drops the head of `id` (its slot must hold nothing pending).
  void release(SeriesId id) {
    uint32_t& slot = slot_of_[id - 1];
    Head& h = slots_[slot - 1];
    h = Head{};
    free_.push_back(slot);
    slot = 0;
  }
  // Every slot, free ones (id 0) included.
  std::vector<Head>& slots() { return slots_; }
  const std::vector<Head>& slots() const { return slots_; }
  // Hands back the memory of free slots at the end of the array.
  void shrink_to_fit() {
    while (!slots_.empty() && slots_.back().id == 0) slots_.pop_back();
    std::erase_if(free_, [&](uint32_t slot) { return slot > slots_.size(); });
    slots_.shrink_to_fit();
    free_.shrink_to_fit();
  }

 private:
  std::vector<uint32_t> slot_of_;  // by id - 1
  std::vector<Head> slots_;        // slot s at s - 1
  std::vector<uint32_t> free_;
};

struct RocksDbStore::Impl {
  StoreOptions options;
  SystemClock system_clock;
  const Clock* clock = nullptr;

  // The test-only fault-injecting file system and its Env, when asked for; they outlive db.
  std::shared_ptr<rocksdb::FileSystem> fault_fs;
  std::unique_ptr<rocksdb::Env> fault_env;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* default_cf = nullptr;
  rocksdb::ColumnFamilyHandle* series_cf = nullptr;
  rocksdb::ColumnFamilyHandle* series_key_cf = nullptr;
  rocksdb::ColumnFamilyHandle* chunks_cf = nullptr;
  rocksdb::ColumnFamilyHandle* rollup5m_cf = nullptr;
  rocksdb::ColumnFamilyHandle* rollup1h_cf = nullptr;
  rocksdb::ColumnFamilyHandle* head_log_cf = nullptr;
  rocksdb::ColumnFamilyHandle* dirty_cf = nullptr;
  rocksdb::ColumnFamilyHandle* state_cf = nullptr;
  rocksdb::ColumnFamilyHandle* rollup_due_cf = nullptr;
  rocksdb::WriteOptions write_options;
  std::shared_ptr<rocksdb::Cache> block_cache;  // storage.block_cache, shared by the families
  std::unique_ptr<detail::RetentionFilter> raw_filter;
  std::unique_ptr<detail::RetentionFilter> rollup5m_filter;
  std::unique_ptr<detail::RetentionFilter> rollup1h_filter;

  // In-memory series index (keys, key -> id, postings), guarded by index_mutex.
  mutable std::shared_mutex index_mutex;
  detail::SeriesIndex index;
  std::mutex create_mutex;  // serialises series creation
  // When each kind of refused series (and metric) was last logged (refuse()).
  std::mutex refusal_log_mutex;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> refusal_logged;

  // Heads, the head log sequence and the dirty windows, guarded by head_mutex. Writers hold it
  // across their RocksDB write so head state and the log always agree.
  mutable std::mutex head_mutex;
  HeadTable heads;
  uint64_t head_samples = 0;
  uint64_t next_seq = 0;
  std::map<std::pair<SeriesId, TimestampMs>, uint64_t> dirty;  // window -> seq of last piece
  // The oldest window whose 5-minute rollups are not stored yet (the first key of rollup_due);
  // INT64_MAX when none waits. Windows from here on are rolled up from raw when read.
  TimestampMs due_floor = INT64_MAX;
  std::chrono::steady_clock::time_point last_checkpoint = std::chrono::steady_clock::now();
  // append() scratch, reused under head_mutex so a batch allocates little.
  std::vector<uint32_t> order;
  std::vector<TimestampMs> windows;
  std::string record;
  std::string piece;
  std::vector<Point> run;
  std::vector<Point> merged;
  std::vector<uint8_t> expired;         // per position in `order`: rolled up at once
  std::vector<uint32_t> expired_order;  // positions in `order` of those, by window
  std::vector<Rollup> stored_buckets;   // roll_up_expired scratch
  std::vector<Rollup> new_buckets;
  std::vector<Rollup> merged_buckets;
  // One series' UTC day of 1-hour rollups while its expired windows are merged in (append,
  // under head_mutex): read once per append and series, put back whole, so a day backfilled
  // one sample per append costs one read and one put each time rather than a growing pile of
  // merge pieces that every read folds again.
  struct ExpiredDay {
    bool loaded = false;
    SeriesId id = 0;
    TimestampMs day = 0;
    uint32_t covered = 0;  // windows of the day the value speaks for (plugins.h)
    std::vector<Rollup> buckets;
  } expired_day;
  // Samples of windows past every retention, dropped by append (never stored).
  std::atomic<uint64_t> expired_dropped{0};
  prometheus::Counter* expired_dropped_counter = nullptr;
  std::atomic<uint64_t> head_samples_now{0};  // head_samples, for pushback() without the lock
  // Steady-clock ms of the last append (or of the open), and the value it had when the store
  // last settled (maintenance thread only).
  std::atomic<int64_t> last_append_ms{0};
  int64_t settled_after = -1;
  int64_t last_settle_ms = 0;  // steady-clock ms

  // Pushback state. Free space on the data dir's filesystem, looked at most every
  // kSpaceCheckInterval; writes stop below options.min_free_bytes.
  mutable std::atomic<int64_t> space_checked_ms{INT64_MIN / 2};  // far past, no overflow
  mutable std::atomic<uint64_t> free_bytes{UINT64_MAX};
  mutable std::atomic<bool> low_space{false};  // for logging the changes only
  // Stopped column families (RocksDB write stalls).
  std::shared_ptr<StallListener> stalls = std::make_shared<StallListener>();
  // A failed write to RocksDB: no write reaches it until try_recover() (see StallListener).
  std::atomic<bool> write_failed{false};
  mutable std::mutex write_error_mutex;
  rocksdb::Status write_error;  // the failure, guarded by write_error_mutex

  std::mutex backup_mutex;          // one backup at a time
  std::timed_mutex maintain_mutex;  // one checkpoint, rollup pass or compaction at a time
  // Set by cancel_background_work(): maintenance and compactions stop at their next step.
  std::atomic<bool> stopping{false};
  std::thread worker;
  std::mutex worker_mutex;
  std::condition_variable worker_cv;
  bool worker_stop = false;
  bool worker_wake = false;

  prometheus::Gauge* series_gauge = nullptr;
  prometheus::Gauge* size_gauge = nullptr;
  prometheus::Gauge* head_gauge = nullptr;
  prometheus::Gauge* dirty_gauge = nullptr;
  prometheus::Gauge* blocked_gauge = nullptr;
  prometheus::Gauge* wal_gauge = nullptr;
  std::vector<prometheus::Gauge*> family_gauges;  // by position in `handles`
  prometheus::Counter* checkpoints = nullptr;
  prometheus::Family<prometheus::Counter>* refused = nullptr;
  prometheus::Family<prometheus::Counter>* write_errors = nullptr;  // by cause
  std::chrono::steady_clock::time_point last_resume_log{};          // worker thread only

  // Fills `index` from the series column family (at open).
  Status load_index();

  Status load_dirty();
  Status load_due_floor();

  // Rebuilds the heads from the head log. Records are in write order and each holds only
  // samples of its series' open window at the time, so a later window means the earlier one
  // was sealed into a chunk by the same write that logged the record.
  Status replay_head_log();

  // Marks (id, window) dirty in `batch`; the caller records it in `dirty` once written.
  void mark_dirty(rocksdb::WriteBatch& batch, SeriesId id, TimestampMs window, uint64_t seq) {
    std::string v;
    append_varint(v, seq);
    batch.Put(dirty_cf, SeriesTimeKey(id, window).slice(), v);
  }

  // Writes every head's pending samples as chunk pieces and drops the head log they came from.
  Status checkpoint();

  // Reads the stored chunk of (id, window) into `out` (appending).
  Status read_chunk(SeriesId id, TimestampMs window, std::vector<Point>& out) const;

  // The newest window whose 5-minute rollups are stored rather than read from raw: one day before
  // the raw chunk expires (at once when raw retention is shorter than a day).
  TimestampMs rollup_5m_due() const {
    const __int128 due =
        static_cast<__int128>(clock->now_ms()) - options.retention.raw + kRollup5mLead;
    return static_cast<TimestampMs>(std::clamp<__int128>(due, kMinTimestamp, kMaxTimestamp));
  }

  // Writes the 5-minute rollups of up to kRollupBatchWindows windows of rollup_due that have
  // become due, oldest first, and drops their markers. Returns how many were done.
  Result<size_t> write_due_rollups();

  // Once writes have paused for options.settle_after: a checkpoint, the rollups of the windows it
  // wrote, memtables flushed (the write-ahead log goes with them) and level-0 files compacted
  // into the level below, folding chunk pieces, so neither the log nor unmerged pieces sit on
  // disk until the next burst of writes. Again at most every kResettleMs while the log holds
  // writes made since without an append.
  Status settle();

  // Recomputes the rollups of up to kRollupBatchWindows dirty windows from their chunks.
  // Returns how many windows were done. Unless `all`, a window still open in its series' head
  // and recent is left for later: it will take more samples, readers aggregate it from raw
  // meanwhile, and recomputing it at every checkpoint would redo its rollups many times over.
  Result<size_t> compute_rollups(bool all);

  // Appends the stored rollup buckets of one window of a family keyed by window (rollup_5m) to
  // `out`, sketches included. rollup_1h is keyed by day: load_expired_day reads it.
  Status get_rollup_buckets(rocksdb::ColumnFamilyHandle* cf, DurationMs width, SeriesId id,
                            TimestampMs window, std::vector<Rollup>& out) const;
  // Samples of a window already past raw retention (append): `points` (sorted, unique
  // timestamps, all inside `window`) are merged into the window's stored 5-minute and 1-hour
  // rollups in `batch`, each only while inside its retention; returns how many samples no
  // retention keeps (dropped). Under head_mutex, for a window neither dirty nor open in its
  // series' head nor waiting in rollup_due, so no pass recomputes it from a chunk.
  // The 1-hour buckets go into expired_day, which put_expired_day writes once the series' run
  // of windows is done (append calls it).
  Result<uint64_t> roll_up_expired(rocksdb::WriteBatch& batch, SeriesId id, TimestampMs window,
                                   std::span<const Point> points, TimestampMs now);
  // Makes expired_day hold series `id`'s day ending at `day` (read once), putting the day held
  // before into `batch`.
  Status load_expired_day(rocksdb::WriteBatch& batch, SeriesId id, TimestampMs day);
  // Puts the day expired_day holds into `batch` as one whole value, if it holds one. Every
  // writer of rollup_1h holds head_mutex, so nothing changes the day between read and put.
  void put_expired_day(rocksdb::WriteBatch& batch);

  // Puts the rollups of width `width` of one window's points into `batch` (or deletes them when
  // the window holds none): builds them into `scratch`, then put_rollup_buckets.
  void put_rollups(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* cf, DurationMs width,
                   SeriesId id, TimestampMs window, std::span<const Point> points,
                   std::vector<Rollup>& scratch);

  // Puts into `batch` the buckets of width `width` (kRollup5m into rollup5m_cf, kRollup1h into
  // rollup1h_cf) of the window ending at `window`, replacing whatever that window held; none
  // deletes them. `buckets`: in time order, each inside (window - kChunkSpan, window]. A 1-hour
  // window goes into its day's value as a merge piece, so windows of one day put in one batch,
  // or in several, or by several writers at once, all combine without reading anything first.
  void put_rollup_buckets(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* cf,
                          DurationMs width, SeriesId id, TimestampMs window,
                          std::span<const Rollup> buckets);

  // Format 3 and older stored rollup_1h per window: rewrites each such value as a piece of its
  // day's value (check_format, before anything else writes), then compacts the family.
  Status upgrade_rollup_1h_to_days();

  // Runs `batch` (compute_rollups, write_due_rollups: each does up to kRollupBatchWindows) until
  // one does fewer; a stop ends it between batches.
  Status in_batches(const std::function<Result<size_t>()>& batch);

  // One round of background work; `force` checkpoints now and rolls up every dirty window.
  Status maintain(bool force);

  // A failed write to RocksDB: notes it so pushback() refuses every later write at once (and
  // nothing else writes); an I/O error (disk full among them) is the store's condition,
  // reported as unavailable, not as the caller's fault.
  Status failed_write(const rocksdb::Status& s, const std::string& what);

  // Not ok once a write has failed: nothing may write to RocksDB any more.
  Status writable() const;

  // The maintenance thread: checkpoints and rollups, woken by writes or every second.
  void run_worker();
  // True while the data dir's filesystem has less than options.min_free_bytes free (looked at
  // every kSpaceCheckIntervalMs); logs the changes.
  bool low_on_space() const;
  // After a failed write, once the fault has gone: gets RocksDB writing again and lets writes
  // in. True when writes are taken again.
  bool try_recover();
  void wake_worker();
  void signal_worker_stop();  // returns at once
  void stop_worker();         // and joins
  // Bytes of the write-ahead log files.
  uint64_t wal_bytes() const;
  // Flushes every memtable and waits for it (not past a stop).
  Status flush_all();
  // True while a memtable flush is pending or running in any column family.
  bool flush_pending() const;

  // Counts a refused new series by limit and logs it (the first of each reason, or of each
  // `metric` for the per-metric limit, then at most once a minute); the caller's error.
  Status refuse(const char* reason, std::string message, std::string_view metric = {});

  // A backup into `dir` (rocksdb_backup.cpp).
  Result<BackupInfo> create_backup(const std::string& dir);
  // Checks the data dir's format version: refuses a newer one, upgrades an older one (after a
  // backup into options.backup_dir), records it in a new one. `existed`: the data dir held a
  // database before this open.
  Status check_format(bool existed);

  // Cardinality guard for a new series.
  Status check_limits(const Labels& labels);

  // storage.memory_limit (rocksdb_memory.cpp). The resident memory, measured at most every
  // kMemoryCheckIntervalMs (any thread; options.memory_probe when set, at every call).
  mutable std::atomic<uint64_t> resident{0};
  mutable std::atomic<int64_t> memory_checked_ms{INT64_MIN / 2};
  // Shedding state, maintenance thread only: above the soft threshold, when memory was last
  // shed, whether the block cache is shrunk, and whether writes were last seen refused.
  bool memory_shedding = false;
  int64_t memory_shed_ms = INT64_MIN / 2;
  bool cache_shrunk = false;
  bool memory_refusing = false;
  prometheus::Gauge* resident_gauge = nullptr;
  prometheus::Gauge* memory_limit_gauge = nullptr;
  prometheus::Gauge* cache_gauge = nullptr;

  // The resident memory in bytes (0 when it cannot be read), measured again when the last
  // measurement is older than kMemoryCheckIntervalMs.
  uint64_t resident_bytes() const;
  // kMemoryLimit while a limit is set and resident memory is at or above it.
  Pushback memory_pushback() const;
  // Unavailable while memory_pushback() refuses: a new series is not created then.
  Status memory_allows_new_series();
  // Above the soft threshold: block cache shrunk, heads written out and their buffers freed,
  // memtables flushed, freed heap handed back to the system; the cache is restored once memory
  // is well below it. Logs each change once. Called by maintain(), under maintain_mutex.
  void shed_memory();
  // kpid_store_resident_bytes, kpid_store_memory_limit_bytes and kpid_store_block_cache_bytes,
  // updated at each scrape.
  void register_memory_metrics(metrics::Metrics& metrics);
};

}  // namespace kpid::store
