#include "kpid/store/rocksdb_store.h"

#include <sys/statvfs.h>

#include <rocksdb/db.h>
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
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <numeric>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "kpid/core/varint.h"
#include "kpid/store/chunk_codec.h"
#include "kpid/store/rollup.h"
#include "plugins.h"

namespace kpid::store {

using detail::get_be64;
using detail::put_be64;
using detail::SeriesTimeKey;

namespace {

constexpr const char* kSeriesCf = "series";
constexpr const char* kSeriesKeyCf = "series_key";
constexpr const char* kChunksCf = "chunks";
constexpr const char* kRollup5mCf = "rollup_5m";
constexpr const char* kRollup1hCf = "rollup_1h";
constexpr const char* kHeadLogCf = "head_log";
constexpr const char* kDirtyCf = "dirty";
constexpr const char* kStateCf = "state";
constexpr const char* kNextSeqKey = "head_log.next_seq";
constexpr size_t kRollupBatchWindows = 4096;
constexpr int64_t kSpaceCheckIntervalMs = 100;

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

  // RocksDB 7.8 aborts on an assertion when it recovers from a failed write-ahead-log write (it
  // syncs the failed log file again; fixed upstream in 9.x), so kpid never lets it resume: after
  // a failed write the store refuses writes until a restart. storage.min_free_bytes keeps
  // a full disk from getting that far.
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    bg_error.PermitUncheckedError();
    *auto_recovery = false;
  }

 private:
  std::atomic<int> stopped_{0};
};

Status from_rocksdb(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::ok();
  if (s.IsNoSpace()) return Status::resource_exhausted(what + ": " + s.ToString());
  return Status::io_error(what + ": " + s.ToString());
}

// Heterogeneous lookup so a string_view key needs no std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

TimestampMs window_of(TimestampMs t) { return bucket_end(t, kChunkSpan); }

struct SeqKey {
  char bytes[8];
  explicit SeqKey(uint64_t seq) { put_be64(bytes, seq); }
  rocksdb::Slice slice() const { return {bytes, sizeof bytes}; }
};

// Head log record: a version byte, then per sample varint (series id - previous id), varint
// zigzag(timestamp - previous timestamp) and the 8-byte value. Samples go in series order, so
// both deltas are small (about 11 bytes a sample instead of 16).
constexpr uint8_t kHeadRecordVersion = 2;

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

rocksdb::Slice as_slice(const std::string& s) { return {s.data(), s.size()}; }

}  // namespace

// The open window of one series: samples that are in the head log but not yet in a chunk.
struct Head {
  TimestampMs window = INT64_MIN;  // end of the open window; INT64_MIN before the first sample
  std::vector<Point> pending;      // sorted, unique timestamps, all inside `window`
};

struct RocksDbStore::Impl {
  StoreOptions options;
  SystemClock system_clock;
  const Clock* clock = nullptr;

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
  rocksdb::WriteOptions write_options;
  std::unique_ptr<detail::RetentionFilter> raw_filter;
  std::unique_ptr<detail::RetentionFilter> rollup5m_filter;
  std::unique_ptr<detail::RetentionFilter> rollup1h_filter;

  // In-memory series index, guarded by index_mutex. Labels live in a deque so pointers handed
  // out as SeriesRef stay valid as series are added.
  mutable std::shared_mutex index_mutex;
  std::deque<Labels> labels_by_index;  // position = id - 1
  std::unordered_map<std::string, SeriesId, StringHash, std::equal_to<>> id_by_key;
  // label name -> value -> series ids (sorted, as ids only grow)
  std::map<std::string, std::map<std::string, std::vector<SeriesId>, std::less<>>, std::less<>>
      postings;
  std::mutex create_mutex;  // serialises series creation

  // Heads, the head log sequence and the dirty windows, guarded by head_mutex. Writers hold it
  // across their RocksDB write so head state and the log always agree.
  mutable std::mutex head_mutex;
  std::vector<Head> heads;  // position = id - 1
  uint64_t head_samples = 0;
  uint64_t next_seq = 0;
  std::map<std::pair<SeriesId, TimestampMs>, uint64_t> dirty;  // window -> seq of last piece
  std::chrono::steady_clock::time_point last_checkpoint = std::chrono::steady_clock::now();
  // append() scratch, reused under head_mutex so a batch allocates little.
  std::vector<uint32_t> order;
  std::vector<TimestampMs> windows;
  std::string record;
  std::string piece;
  std::vector<Point> run;
  std::vector<Point> merged;
  std::atomic<uint64_t> head_samples_now{0};  // head_samples, for pushback() without the lock

  // Pushback state. Free space on the data dir's filesystem, looked at most every
  // kSpaceCheckInterval; writes stop below options.min_free_bytes.
  mutable std::atomic<int64_t> space_checked_ms{INT64_MIN / 2};  // far past, no overflow
  mutable std::atomic<uint64_t> free_bytes{UINT64_MAX};
  mutable std::atomic<bool> low_space{false};  // for logging the changes only
  // Stopped column families (RocksDB write stalls).
  std::shared_ptr<StallListener> stalls = std::make_shared<StallListener>();
  // A failed write to RocksDB: no write reaches it again until a restart (see StallListener).
  std::atomic<bool> write_failed{false};
  mutable std::mutex write_error_mutex;
  rocksdb::Status write_error;  // the failure, guarded by write_error_mutex

  std::mutex maintain_mutex;  // one checkpoint or rollup pass at a time
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
  prometheus::Counter* checkpoints = nullptr;
  prometheus::Family<prometheus::Counter>* refused = nullptr;

  void index_series(SeriesId id, Labels labels, std::string key) {
    for (const auto& l : labels.items()) postings[l.name][l.value].push_back(id);
    labels_by_index.push_back(std::move(labels));
    id_by_key.emplace(std::move(key), id);
  }

  const Labels& labels_of(SeriesId id) const { return labels_by_index[id - 1]; }

  Status load_index() {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), series_cf));
    SeriesId expected = 1;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 8) return Status::internal("corrupt series index key");
      SeriesId id = get_be64(it->key().data());
      if (id != expected) {
        return Status::internal("series index has a gap at id " + std::to_string(expected));
      }
      auto labels = Labels::decode(it->value().ToStringView());
      if (!labels) return labels.status();
      index_series(id, std::move(labels).value(), it->value().ToString());
      ++expected;
    }
    return from_rocksdb(it->status(), "loading series index");
  }

  Status load_dirty() {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), dirty_cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 16) return Status::internal("corrupt dirty-window key");
      uint64_t seq = 0;
      size_t pos = 0;
      if (!read_varint(it->value().ToStringView(), pos, seq)) {
        return Status::internal("corrupt dirty-window value");
      }
      dirty[{SeriesTimeKey::series(it->key()), SeriesTimeKey::time(it->key())}] = seq;
    }
    return from_rocksdb(it->status(), "loading dirty windows");
  }

  Head& head(SeriesId id) {
    if (heads.size() < id) heads.resize(id);
    return heads[id - 1];
  }

  // Rebuilds the heads from the head log. Records are in write order and each holds only
  // samples of its series' open window at the time, so a later window means the earlier one
  // was sealed into a chunk by the same write that logged the record.
  Status replay_head_log() {
    std::string next;
    if (auto s = db->Get(rocksdb::ReadOptions(), default_cf, kNextSeqKey, &next);
        s.ok() && next.size() == 8) {
      next_seq = get_be64(next.data());
    }
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), head_log_cf));
    uint64_t records = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 8) return Status::internal("corrupt head log key");
      next_seq = std::max(next_seq, get_be64(it->key().data()) + 1);
      std::string_view v = it->value().ToStringView();
      const auto corrupt = [&] {
        return Status::internal("corrupt head log record " +
                                std::to_string(get_be64(it->key().data())));
      };
      if (v.empty() || static_cast<uint8_t>(v[0]) != kHeadRecordVersion) return corrupt();
      size_t pos = 1;
      SeriesId id = 0;
      uint64_t ts = 0;
      while (pos < v.size()) {
        uint64_t id_delta = 0;
        uint64_t ts_delta = 0;
        double value = 0;
        if (!read_varint(v, pos, id_delta) || !read_varint(v, pos, ts_delta) ||
            !read_f64(v, pos, value)) {
          return corrupt();
        }
        id += id_delta;
        ts += static_cast<uint64_t>(unzigzag(ts_delta));
        if (id == 0 || id > labels_by_index.size()) return corrupt();
        const Point p{static_cast<TimestampMs>(ts), value};
        Head& h = head(id);
        const TimestampMs w = window_of(p.timestamp);
        if (w > h.window) {
          head_samples -= h.pending.size();
          h.pending.clear();
          h.window = w;
        }
        if (w == h.window) {
          const size_t before = h.pending.size();
          detail::insert_point(h.pending, p);
          head_samples += h.pending.size() - before;
        }
      }
      ++records;
    }
    head_samples_now.store(head_samples);
    if (records > 0) {
      spdlog::info("replayed {} head log records: {} samples in memory", records, head_samples);
    }
    return from_rocksdb(it->status(), "replaying head log");
  }

  // Marks (id, window) dirty in `batch`; the caller records it in `dirty` once written.
  void mark_dirty(rocksdb::WriteBatch& batch, SeriesId id, TimestampMs window, uint64_t seq) {
    std::string v;
    append_varint(v, seq);
    batch.Put(dirty_cf, SeriesTimeKey(id, window).slice(), v);
  }

  // Writes every head's pending samples as chunk pieces and drops the head log they came from.
  Status checkpoint() {
    std::lock_guard lock(head_mutex);
    if (!db) return Status::unavailable("store is closed");
    rocksdb::WriteBatch batch;
    const uint64_t seq = next_seq;
    std::vector<SeriesId> written;
    for (size_t i = 0; i < heads.size(); ++i) {
      Head& h = heads[i];
      if (h.pending.empty()) continue;
      const SeriesId id = i + 1;
      batch.Merge(chunks_cf, SeriesTimeKey(id, h.window).slice(), encode_chunk(h.pending));
      mark_dirty(batch, id, h.window, seq);
      written.push_back(id);
    }
    batch.DeleteRange(head_log_cf, SeqKey(0).slice(), SeqKey(seq + 1).slice());
    SeqKey next(seq + 1);
    batch.Put(default_cf, kNextSeqKey, next.slice());
    if (auto st = writable(); !st) return st;
    if (auto s = db->Write(write_options, &batch); !s.ok()) return failed_write(s, "checkpoint");
    next_seq = seq + 1;
    for (SeriesId id : written) {
      Head& h = heads[id - 1];
      dirty[{id, h.window}] = seq;
      h.pending.clear();
      // A burst must not pin its memory: the head holds what arrives between checkpoints.
      if (h.pending.capacity() > 1024) h.pending.shrink_to_fit();
    }
    head_samples = 0;
    head_samples_now.store(0);
    last_checkpoint = std::chrono::steady_clock::now();
    if (checkpoints != nullptr) checkpoints->Increment();
    return Status::ok();
  }

  // Reads the stored chunk of (id, window) into `out` (appending).
  Status read_chunk(SeriesId id, TimestampMs window, std::vector<Point>& out) const {
    std::string value;
    auto s = db->Get(rocksdb::ReadOptions(), chunks_cf, SeriesTimeKey(id, window).slice(), &value);
    if (s.IsNotFound()) return Status::ok();
    if (!s.ok()) return from_rocksdb(s, "reading chunk");
    return decode_chunk(value, out);
  }

  // Recomputes the rollups of up to kRollupBatchWindows dirty windows from their chunks.
  // Returns how many windows were done. Unless `all`, a window still open in its series' head
  // and recent is left for later: it will take more samples, readers aggregate it from raw
  // meanwhile, and recomputing it at every checkpoint would redo its rollups many times over.
  Result<size_t> compute_rollups(bool all) {
    struct Todo {
      SeriesId id;
      TimestampMs window;
      uint64_t seq;
    };
    std::vector<Todo> todo;
    {
      std::lock_guard lock(head_mutex);
      if (!db) return Status::unavailable("store is closed");
      const TimestampMs recent = clock->now_ms() - kChunkSpan;
      for (const auto& [key, seq] : dirty) {
        const auto& [id, window] = key;
        if (!all && id <= heads.size() && heads[id - 1].window == window && window > recent) {
          continue;
        }
        todo.push_back({id, window, seq});
        if (todo.size() == kRollupBatchWindows) break;
      }
    }
    if (todo.empty()) return size_t{0};
    rocksdb::WriteBatch batch;
    std::vector<Point> points;
    std::vector<Rollup> rollups;
    for (const auto& t : todo) {
      points.clear();
      if (auto s = read_chunk(t.id, t.window, points); !s) return s;
      SeriesTimeKey key(t.id, t.window);
      for (auto [width, cf] :
           {std::pair{kRollup5m, rollup5m_cf}, std::pair{kRollup1h, rollup1h_cf}}) {
        rollups.clear();
        build_rollups(points, width, t.window - kChunkSpan, t.window, rollups);
        if (rollups.empty()) {
          batch.Delete(cf, key.slice());
        } else {
          batch.Put(cf, key.slice(), encode_rollup_block(rollups, t.window, width));
        }
      }
    }
    std::lock_guard lock(head_mutex);
    if (!db) return Status::unavailable("store is closed");
    // A window written again meanwhile stays dirty (its marker has a newer seq), so the newer
    // piece gets its own pass. Writing under head_mutex orders this against that writer.
    std::vector<std::pair<SeriesId, TimestampMs>> cleaned;
    for (const auto& t : todo) {
      auto it = dirty.find({t.id, t.window});
      if (it == dirty.end() || it->second != t.seq) continue;
      batch.Delete(dirty_cf, SeriesTimeKey(t.id, t.window).slice());
      cleaned.push_back(it->first);
    }
    if (auto st = writable(); !st) return st;
    if (auto s = db->Write(write_options, &batch); !s.ok()) return failed_write(s, "rollups");
    for (const auto& k : cleaned) dirty.erase(k);
    return todo.size();
  }

  // One round of background work; `force` checkpoints now and rolls up every dirty window.
  Status maintain(bool force) {
    std::lock_guard serial(maintain_mutex);
    bool due = force;
    {
      std::lock_guard lock(head_mutex);
      due = due || head_samples >= options.head_max_samples ||
            std::chrono::steady_clock::now() - last_checkpoint >=
                std::chrono::milliseconds(options.checkpoint_interval);
    }
    if (due) {
      if (auto s = checkpoint(); !s) return s;
    }
    for (;;) {
      auto done = compute_rollups(force);
      if (!done) return done.status();
      if (*done < kRollupBatchWindows) break;
    }
    return Status::ok();
  }

  // A failed write to RocksDB: notes it so pushback() refuses every later write at once (and
  // nothing else writes); an I/O error (disk full among them) is the store's condition,
  // reported as unavailable, not as the caller's fault.
  Status failed_write(const rocksdb::Status& s, const std::string& what) {
    if (!s.IsIOError()) return from_rocksdb(s, what);
    {
      std::lock_guard lock(write_error_mutex);
      if (!write_failed.load()) {
        spdlog::critical(
            "storage: {} failed: {}; kpid takes no more writes until it is "
            "restarted (free space first if the disk is full); queries go on",
            what, s.ToString());
        write_error = s;
      }
      write_failed.store(true);
    }
    return Status::unavailable(what + ": " + s.ToString());
  }

  // Not ok once a write has failed: nothing may write to RocksDB any more.
  Status writable() const {
    if (!write_failed.load(std::memory_order_relaxed)) return Status::ok();
    std::lock_guard lock(write_error_mutex);
    return Status::unavailable("storage stopped taking writes after a failed write (" +
                               write_error.ToString() + "); restart kpid");
  }

  void run_worker() {
    std::chrono::steady_clock::time_point last_error{};
    for (;;) {
      {
        std::unique_lock lock(worker_mutex);
        worker_cv.wait_for(lock, std::chrono::seconds(1),
                           [this] { return worker_stop || worker_wake; });
        if (worker_stop) return;
        worker_wake = false;
      }
      if (write_failed.load()) continue;  // maintenance writes; nothing may now
      if (auto s = maintain(false); !s) {
        auto now = std::chrono::steady_clock::now();
        if (now - last_error > std::chrono::seconds(10)) {
          spdlog::warn("storage maintenance failed (will retry): {}", s.message());
          last_error = now;
        }
      }
    }
  }

  void wake_worker() {
    {
      std::lock_guard lock(worker_mutex);
      worker_wake = true;
    }
    worker_cv.notify_one();
  }

  void stop_worker() {
    {
      std::lock_guard lock(worker_mutex);
      worker_stop = true;
    }
    worker_cv.notify_one();
    if (worker.joinable()) worker.join();
  }

  Status refuse(const char* reason, std::string message) {
    if (refused != nullptr) refused->Add({{"reason", reason}}).Increment();
    return Status::resource_exhausted(std::move(message));
  }

  // Cardinality guard for a new series.
  Status check_limits(const Labels& labels) {
    const auto& l = options.limits;
    if (labels.items().size() > l.max_labels_per_series) {
      return refuse("max_labels_per_series",
                    "series has " + std::to_string(labels.items().size()) +
                        " labels, more than storage.max_labels_per_series (" +
                        std::to_string(l.max_labels_per_series) + "); new series refused");
    }
    for (const auto& label : labels.items()) {
      if (label.name.size() > l.max_label_name_bytes) {
        return refuse("max_label_name_bytes",
                      "label name \"" + label.name.substr(0, 64) + "...\" is " +
                          std::to_string(label.name.size()) +
                          " bytes, more than storage.max_label_name_bytes (" +
                          std::to_string(l.max_label_name_bytes) + "); new series refused");
      }
      if (label.value.size() > l.max_label_value_bytes) {
        return refuse("max_label_value_bytes",
                      "value of label \"" + label.name + "\" is " +
                          std::to_string(label.value.size()) +
                          " bytes, more than storage.max_label_value_bytes (" +
                          std::to_string(l.max_label_value_bytes) + "); new series refused");
      }
    }
    return Status::ok();
  }
};

Result<std::unique_ptr<RocksDbStore>> RocksDbStore::open(const StoreOptions& options,
                                                         metrics::Metrics* metrics) {
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return Status::io_error("cannot create data directory " + options.data_dir + ": " +
                            ec.message());
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->clock = options.clock != nullptr ? options.clock : &impl->system_clock;
  impl->write_options.sync = options.sync;
  impl->raw_filter = std::make_unique<detail::RetentionFilter>(*impl->clock, options.retention.raw,
                                                               "kpid.RetentionRaw");
  impl->rollup5m_filter = std::make_unique<detail::RetentionFilter>(
      *impl->clock, options.retention.rollup_5m, "kpid.Retention5m");
  impl->rollup1h_filter = std::make_unique<detail::RetentionFilter>(
      *impl->clock, options.retention.rollup_1h, "kpid.Retention1h");

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_open_files = -1;                // periodic compaction (retention) needs file ages
  db_options.max_total_wal_size = 128ull << 20;  // bounds replay time after a crash
  db_options.listeners.push_back(impl->stalls);

  auto data_options = [](rocksdb::CompactionFilter* filter) {
    rocksdb::ColumnFamilyOptions o;
    o.compression = rocksdb::kLZ4Compression;
    o.bottommost_compression = rocksdb::kZSTD;
    // Chunks and rollup blocks are already dense; larger blocks and a stronger level let zstd
    // find what repeats across series (shared exponents, regular headers, sketch buckets).
    o.bottommost_compression_opts.level = 9;
    o.bottommost_compression_opts.enabled = true;
    rocksdb::BlockBasedTableOptions table;
    table.block_size = 64 << 10;
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    o.level_compaction_dynamic_level_bytes = true;
    o.compaction_filter = filter;
    // Old files get recompacted daily, so expired windows go even where nothing else writes.
    o.periodic_compaction_seconds = 86'400;
    return o;
  };
  rocksdb::ColumnFamilyOptions chunk_options = data_options(impl->raw_filter.get());
  chunk_options.merge_operator = std::make_shared<detail::ChunkMergeOperator>();
  rocksdb::ColumnFamilyOptions index_options;
  index_options.compression = rocksdb::kLZ4Compression;
  rocksdb::ColumnFamilyOptions log_options;
  log_options.compression = rocksdb::kNoCompression;

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kSeriesCf, index_options},
      {kSeriesKeyCf, index_options},
      {kChunksCf, chunk_options},
      {kRollup5mCf, data_options(impl->rollup5m_filter.get())},
      {kRollup1hCf, data_options(impl->rollup1h_filter.get())},
      {kHeadLogCf, log_options},
      {kDirtyCf, index_options},
      {kStateCf, index_options},
  };
  rocksdb::DB* raw = nullptr;
  auto s = options.read_only
               ? rocksdb::DB::OpenForReadOnly(db_options, options.data_dir, families,
                                              &impl->handles, &raw)
               : rocksdb::DB::Open(db_options, options.data_dir, families, &impl->handles, &raw);
  if (!s.ok()) return from_rocksdb(s, "opening RocksDB in " + options.data_dir);
  impl->db.reset(raw);
  auto& h = impl->handles;
  impl->default_cf = h[0];
  impl->series_cf = h[1];
  impl->series_key_cf = h[2];
  impl->chunks_cf = h[3];
  impl->rollup5m_cf = h[4];
  impl->rollup1h_cf = h[5];
  impl->head_log_cf = h[6];
  impl->dirty_cf = h[7];
  impl->state_cf = h[8];

  Status loaded = impl->load_index();
  if (loaded) loaded = impl->load_dirty();
  if (loaded) loaded = impl->replay_head_log();
  if (!loaded) {
    for (auto* handle : impl->handles) impl->db->DestroyColumnFamilyHandle(handle);
    impl->db.reset();
    return loaded;
  }

  std::unique_ptr<RocksDbStore> store(new RocksDbStore(std::move(impl)));
  Impl* im = store->impl_.get();
  if (metrics != nullptr) {
    auto& reg = metrics->registry();
    auto gauge = [&reg](const char* name, const char* help) {
      return &prometheus::BuildGauge().Name(name).Help(help).Register(reg).Add({});
    };
    im->series_gauge = gauge("kpid_store_series", "Number of series in the store.");
    im->size_gauge =
        gauge("kpid_store_size_bytes", "Bytes the store uses on disk (tables and WAL).");
    im->head_gauge = gauge("kpid_store_head_samples",
                           "Samples held in memory heads, not yet written to chunks.");
    im->dirty_gauge =
        gauge("kpid_store_dirty_windows", "Chunk windows whose rollups wait to be recomputed.");
    im->blocked_gauge = gauge("kpid_store_writes_blocked",
                              "1 while the store refuses writes (disk full, write error, write "
                              "stall or head backlog; kpid_ingest_pushback_total says which).");
    im->checkpoints = &prometheus::BuildCounter()
                           .Name("kpid_store_checkpoints_total")
                           .Help("Checkpoints that wrote the heads to chunks.")
                           .Register(reg)
                           .Add({});
    im->refused = &prometheus::BuildCounter()
                       .Name("kpid_store_series_refused_total")
                       .Help("New series refused by the cardinality guard, by limit.")
                       .Register(reg);
    RocksDbStore* self = store.get();
    metrics->on_scrape([im, self] {
      if (!im->db) return;
      im->series_gauge->Set(static_cast<double>(self->series_count()));
      im->size_gauge->Set(static_cast<double>(self->disk_usage_bytes()));
      im->head_gauge->Set(static_cast<double>(self->head_samples()));
      im->dirty_gauge->Set(static_cast<double>(self->dirty_windows()));
      im->blocked_gauge->Set(self->pushback() ? 1 : 0);
    });
  }
  if (options.background && !options.read_only)
    im->worker = std::thread([im] { im->run_worker(); });
  return store;
}

RocksDbStore::RocksDbStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RocksDbStore::~RocksDbStore() {
  if (auto s = close(); !s) spdlog::error("closing store: {}", s.to_string());
}

Status RocksDbStore::close() {
  impl_->stop_worker();
  if (!impl_->db) return Status::ok();
  if (impl_->options.read_only) {
    for (auto* h : impl_->handles) impl_->db->DestroyColumnFamilyHandle(h);
    impl_->handles.clear();
    impl_->db.reset();
    return Status::ok();
  }
  Status result = impl_->checkpoint();
  // After a failed write nothing more is written (the WAL already holds every acknowledged
  // write; the next open replays it).
  if (result) {
    rocksdb::FlushOptions flush;
    flush.wait = true;
    if (auto s = impl_->db->Flush(flush, impl_->handles); !s.ok() && result) {
      result = from_rocksdb(s, "flushing");
    }
    if (auto s = impl_->db->SyncWAL(); !s.ok() && result) {
      result = from_rocksdb(s, "syncing WAL");
    }
  }
  std::lock_guard lock(impl_->head_mutex);
  for (auto* h : impl_->handles) impl_->db->DestroyColumnFamilyHandle(h);
  impl_->handles.clear();
  if (auto s = impl_->db->Close(); !s.ok() && result) result = from_rocksdb(s, "closing");
  impl_->db.reset();
  return result;
}

Result<SeriesId> RocksDbStore::resolve(std::string_view key) {
  if (impl_->options.read_only) return Status::unavailable("the store is open read-only");
  {
    std::shared_lock lock(impl_->index_mutex);
    if (auto it = impl_->id_by_key.find(key); it != impl_->id_by_key.end()) return it->second;
  }
  std::lock_guard create(impl_->create_mutex);
  SeriesId id = 0;
  {
    std::shared_lock lock(impl_->index_mutex);
    if (auto it = impl_->id_by_key.find(key); it != impl_->id_by_key.end()) return it->second;
    id = impl_->labels_by_index.size() + 1;
  }
  if (!impl_->db) return Status::unavailable("store is closed");
  // Decoding validates the label set (no empty or repeated names) before it is made durable,
  // since a bad one would fail every later open.
  auto decoded = Labels::decode(key);
  if (!decoded) return Status::invalid_argument("invalid series: " + decoded.status().message());
  if (id > impl_->options.limits.max_series) {
    return impl_->refuse("max_series", "series limit of " +
                                           std::to_string(impl_->options.limits.max_series) +
                                           " (storage.max_series) reached; new series refused");
  }
  if (auto st = impl_->check_limits(*decoded); !st) return st;
  {
    std::shared_lock lock(impl_->index_mutex);
    const std::string_view name = decoded->metric_name();
    auto by_name = impl_->postings.find(kMetricNameLabel);
    if (by_name != impl_->postings.end()) {
      auto it = by_name->second.find(name);
      const uint64_t limit = impl_->options.limits.max_series_per_metric;
      if (it != by_name->second.end() && it->second.size() >= limit) {
        return impl_->refuse("max_series_per_metric",
                             "metric \"" + std::string(name.substr(0, 200)) + "\" has " +
                                 std::to_string(limit) +
                                 " series, the limit of storage.max_series_per_metric; new "
                                 "series refused");
      }
    }
  }
  char id_bytes[8];
  put_be64(id_bytes, id);
  rocksdb::WriteBatch batch;
  batch.Put(impl_->series_cf, rocksdb::Slice(id_bytes, 8), rocksdb::Slice(key.data(), key.size()));
  batch.Put(impl_->series_key_cf, rocksdb::Slice(key.data(), key.size()),
            rocksdb::Slice(id_bytes, 8));
  if (auto st = impl_->writable(); !st) return st;
  if (auto s = impl_->db->Write(impl_->write_options, &batch); !s.ok()) {
    return impl_->failed_write(s, "creating series");
  }
  std::unique_lock lock(impl_->index_mutex);
  impl_->index_series(id, std::move(decoded).value(), std::string(key));
  return id;
}

Status RocksDbStore::append(std::span<const Sample> samples) {
  if (impl_->options.read_only) return Status::unavailable("the store is open read-only");
  if (samples.empty()) return Status::ok();
  Impl& im = *impl_;
  const size_t known = series_count();
  for (const auto& s : samples) {
    if (s.series == 0 || s.series > known) {
      return Status::invalid_argument("unknown series id " + std::to_string(s.series));
    }
    if (s.timestamp > kMaxTimestamp || s.timestamp < kMinTimestamp) {
      return Status::invalid_argument("timestamp " + std::to_string(s.timestamp) +
                                      " out of the store's range");
    }
  }

  if (auto p = pushback()) return Status::unavailable(std::move(p.message));
  std::unique_lock lock(im.head_mutex);
  if (!im.db) return Status::unavailable("store is closed");
  if (im.heads.size() < known) im.heads.resize(known);
  const uint64_t seq = im.next_seq;

  // Group the batch by series, keeping each series' samples in arrival order (later wins).
  auto& order = im.order;
  order.resize(samples.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return samples[a].series < samples[b].series; });
  // The chunk window of samples[order[k]], computed once per sample.
  auto& windows = im.windows;
  windows.resize(order.size());
  for (size_t k = 0; k < order.size(); ++k) windows[k] = window_of(samples[order[k]].timestamp);

  struct Plan {
    SeriesId id;
    size_t begin;  // range in `order`
    size_t end;
    TimestampMs window;  // the head's window after this write
    bool seal;           // the head's pending samples went into a chunk piece
  };
  std::vector<Plan> plans;
  std::vector<std::pair<SeriesId, TimestampMs>> dirtied;
  rocksdb::WriteBatch batch;
  HeadRecordWriter record(im.record);

  // Points of samples[order[b..e)] in window w, sorted by time, later arrivals winning.
  auto collect = [&](size_t b, size_t e, TimestampMs w) {
    im.run.clear();
    for (size_t k = b; k < e; ++k) {
      const Sample& s = samples[order[k]];
      if (windows[k] == w) detail::insert_point(im.run, {s.timestamp, s.value});
    }
  };
  auto write_piece = [&](SeriesId id, TimestampMs w, const std::vector<Point>& points) {
    batch.Merge(im.chunks_cf, SeriesTimeKey(id, w).slice(), encode_chunk(points));
    im.mark_dirty(batch, id, w, seq);
    dirtied.emplace_back(id, w);
  };

  for (size_t b = 0; b < order.size();) {
    const SeriesId id = samples[order[b]].series;
    size_t e = b;
    TimestampMs newest = INT64_MIN;
    bool single_window = true;
    while (e < order.size() && samples[order[e]].series == id) {
      const TimestampMs w = windows[e];
      if (e > b && w != newest) single_window = false;
      newest = std::max(newest, w);
      ++e;
    }
    const Head& h = im.heads[id - 1];
    const TimestampMs window = std::max(h.window, newest);
    const bool seal = window > h.window && !h.pending.empty();
    if (!(single_window && newest == window && !seal)) {
      // Slow path: seal the head and/or write pieces for older windows (backfill).
      std::vector<TimestampMs> older;
      for (size_t k = b; k < e; ++k) {
        const TimestampMs w = windows[k];
        if (w < window && std::find(older.begin(), older.end(), w) == older.end()) {
          older.push_back(w);
        }
      }
      if (seal && std::find(older.begin(), older.end(), h.window) == older.end()) {
        older.push_back(h.window);
      }
      for (TimestampMs w : older) {
        collect(b, e, w);
        if (seal && w == h.window) {
          const std::vector<Point> runs[2] = {h.pending, im.run};
          detail::merge_runs(runs, im.merged);
          write_piece(id, w, im.merged);
        } else {
          write_piece(id, w, im.run);
        }
      }
    }
    for (size_t k = b; k < e; ++k) {
      const Sample& s = samples[order[k]];
      if (windows[k] == window) {
        record.add(id, {s.timestamp, s.value});
      }
    }
    plans.push_back({id, b, e, window, seal});
    b = e;
  }
  if (!im.record.empty()) batch.Put(im.head_log_cf, SeqKey(seq).slice(), as_slice(im.record));
  if (auto s = im.db->Write(im.write_options, &batch); !s.ok()) {
    return im.failed_write(s, "writing samples");
  }

  // Durable: now the heads may change.
  im.next_seq = seq + 1;
  for (const auto& p : plans) {
    Head& h = im.heads[p.id - 1];
    if (p.seal) {
      im.head_samples -= h.pending.size();
      h.pending.clear();
    }
    h.window = p.window;
    const size_t before = h.pending.size();
    for (size_t k = p.begin; k < p.end; ++k) {
      const Sample& s = samples[order[k]];
      if (windows[k] == h.window) detail::insert_point(h.pending, {s.timestamp, s.value});
    }
    im.head_samples += h.pending.size() - before;
  }
  for (const auto& d : dirtied) im.dirty[d] = seq;
  im.head_samples_now.store(im.head_samples);
  const bool full = im.head_samples >= im.options.head_max_samples;
  lock.unlock();
  if (full || !dirtied.empty()) im.wake_worker();
  return Status::ok();
}

std::vector<SeriesRef> RocksDbStore::select(std::span<const LabelMatcher> matchers) const {
  std::shared_lock lock(impl_->index_mutex);
  std::vector<SeriesRef> out;
  // Narrow the candidates with the most selective equality matcher's postings, if any.
  const std::vector<SeriesId>* candidates = nullptr;
  static const std::vector<SeriesId> kNone;
  for (const auto& m : matchers) {
    if (m.type() != MatchType::kEqual || m.value().empty()) continue;
    const std::vector<SeriesId>* list = &kNone;
    if (auto n = impl_->postings.find(m.name()); n != impl_->postings.end()) {
      if (auto v = n->second.find(m.value()); v != n->second.end()) list = &v->second;
    }
    if (candidates == nullptr || list->size() < candidates->size()) candidates = list;
  }
  auto consider = [&](SeriesId id) {
    const Labels& labels = impl_->labels_of(id);
    if (matches_all(labels, matchers)) out.push_back({id, &labels});
  };
  if (candidates != nullptr) {
    for (SeriesId id : *candidates) consider(id);
  } else {
    for (SeriesId id = 1; id <= impl_->labels_by_index.size(); ++id) consider(id);
  }
  return out;
}

Status RocksDbStore::read(SeriesId series, TimestampMs start, TimestampMs end,
                          std::vector<Point>& out) const {
  if (end < start) return Status::ok();
  start = std::max(start, kMinTimestamp);
  end = std::min(end, kMaxTimestamp);
  if (end < start) return Status::ok();
  // Head first, then chunks: a checkpoint in between moves samples to where the second look
  // finds them; seeing one twice is resolved by timestamp.
  std::vector<Point> head;
  {
    std::lock_guard lock(impl_->head_mutex);
    if (!impl_->db) return Status::unavailable("store is closed");
    if (series >= 1 && series <= impl_->heads.size()) {
      const auto& pending = impl_->heads[series - 1].pending;
      auto it = std::lower_bound(pending.begin(), pending.end(), start,
                                 [](const Point& p, TimestampMs t) { return p.timestamp < t; });
      for (; it != pending.end() && it->timestamp <= end; ++it) head.push_back(*it);
    }
  }
  SeriesTimeKey first(series, window_of(start));
  SeriesTimeKey upper(series, window_of(end) + 1);
  rocksdb::Slice upper_slice = upper.slice();
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->chunks_cf));
  std::vector<Point> disk;
  std::vector<Point> chunk;
  for (it->Seek(first.slice()); it->Valid(); it->Next()) {
    chunk.clear();
    if (auto s = decode_chunk(it->value().ToStringView(), chunk); !s) return s;
    for (const auto& p : chunk) {
      if (p.timestamp >= start && p.timestamp <= end) disk.push_back(p);
    }
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "reading chunks");
  if (head.empty()) {
    out.insert(out.end(), disk.begin(), disk.end());
    return Status::ok();
  }
  const std::vector<Point> runs[2] = {std::move(disk), std::move(head)};
  std::vector<Point> merged;
  detail::merge_runs(runs, merged);
  out.insert(out.end(), merged.begin(), merged.end());
  return Status::ok();
}

Result<bool> RocksDbStore::has_samples(SeriesId series, TimestampMs start, TimestampMs end) const {
  std::vector<Point> points;
  if (auto s = read(series, start, end, points); !s) return s;
  return !points.empty();
}

Status RocksDbStore::read_rollups(SeriesId series, DurationMs width, TimestampMs start,
                                  TimestampMs end, std::vector<Rollup>& out,
                                  bool with_sketches) const {
  if (width != kRollup5m && width != kRollup1h) {
    return Status::invalid_argument("rollup width must be 5m or 1h");
  }
  start = std::max(start, kMinTimestamp);
  end = std::min(end, kMaxTimestamp);
  if (end <= start) return Status::ok();
  const TimestampMs first_window = window_of(start + 1);
  const TimestampMs last_window = window_of(end);
  // Windows whose stored rollups may lag their raw data: dirty ones and the open head.
  std::vector<TimestampMs> from_raw;
  {
    std::lock_guard lock(impl_->head_mutex);
    if (!impl_->db) return Status::unavailable("store is closed");
    for (auto it = impl_->dirty.lower_bound({series, first_window});
         it != impl_->dirty.end() && it->first.first == series && it->first.second <= last_window;
         ++it) {
      from_raw.push_back(it->first.second);
    }
    if (series >= 1 && series <= impl_->heads.size()) {
      const Head& h = impl_->heads[series - 1];
      if (!h.pending.empty() && h.window >= first_window && h.window <= last_window) {
        from_raw.push_back(h.window);
      }
    }
  }
  std::sort(from_raw.begin(), from_raw.end());
  from_raw.erase(std::unique(from_raw.begin(), from_raw.end()), from_raw.end());

  // At most one bucket per width in range (10,000 caps what a wide, sparse range reserves).
  out.reserve(out.size() +
              static_cast<size_t>(std::min<TimestampMs>((end - start) / width + 1, 10'000)));
  std::vector<Point> points;
  size_t next_raw = 0;
  auto emit_raw_until = [&](TimestampMs limit) -> Status {
    for (; next_raw < from_raw.size() && from_raw[next_raw] < limit; ++next_raw) {
      const TimestampMs w = from_raw[next_raw];
      points.clear();
      if (auto s = read(series, w - kChunkSpan + 1, w, points); !s) return s;
      build_rollups(points, width, start, end, out);
    }
    return Status::ok();
  };

  auto* cf = width == kRollup5m ? impl_->rollup5m_cf : impl_->rollup1h_cf;
  SeriesTimeKey first(series, first_window);
  SeriesTimeKey upper(series, last_window + 1);
  rocksdb::Slice upper_slice = upper.slice();
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, cf));
  for (it->Seek(first.slice()); it->Valid(); it->Next()) {
    const TimestampMs w = SeriesTimeKey::time(it->key());
    if (auto s = emit_raw_until(w); !s) return s;
    if (next_raw < from_raw.size() && from_raw[next_raw] == w) continue;  // emitted from raw
    if (auto s = decode_rollup_block(it->value().ToStringView(), w, width, start, end, out,
                                     with_sketches);
        !s) {
      return s;
    }
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "reading rollups");
  return emit_raw_until(kMaxTimestamp + 1);
}

TimestampMs RocksDbStore::raw_horizon() const {
  return impl_->clock->now_ms() - impl_->options.retention.raw;
}

RetentionPolicy RocksDbStore::retention() const { return impl_->options.retention; }

std::vector<std::string> RocksDbStore::label_names() const {
  std::shared_lock lock(impl_->index_mutex);
  std::vector<std::string> out;
  for (const auto& [name, values] : impl_->postings) out.push_back(name);
  return out;
}

std::vector<std::string> RocksDbStore::label_values(std::string_view name) const {
  std::shared_lock lock(impl_->index_mutex);
  std::vector<std::string> out;
  if (auto it = impl_->postings.find(name); it != impl_->postings.end()) {
    for (const auto& [value, ids] : it->second) out.push_back(value);
  }
  return out;
}

size_t RocksDbStore::series_count() const {
  std::shared_lock lock(impl_->index_mutex);
  return impl_->labels_by_index.size();
}

uint64_t RocksDbStore::disk_usage_bytes() const {
  if (!impl_->db) return 0;
  uint64_t total = 0;
  for (auto* cf : impl_->handles) {
    uint64_t v = 0;
    if (impl_->db->GetIntProperty(cf, "rocksdb.total-sst-files-size", &v)) total += v;
  }
  rocksdb::VectorLogPtr wal_files;
  if (impl_->db->GetSortedWalFiles(wal_files).ok()) {
    for (const auto& f : wal_files) total += f->SizeFileBytes();
  }
  return total;
}

Status RocksDbStore::maintain() {
  if (impl_->options.read_only) return Status::unavailable("the store is open read-only");
  return impl_->maintain(true);
}

const Labels* RocksDbStore::labels(SeriesId series) const {
  std::shared_lock lock(impl_->index_mutex);
  if (series == 0 || series > impl_->labels_by_index.size()) return nullptr;
  return &impl_->labels_of(series);
}

Status RocksDbStore::write_state(std::span<const std::pair<std::string, std::string>> puts,
                                 std::span<const std::string> erase) {
  if (impl_->options.read_only) return Status::unavailable("the store is open read-only");
  rocksdb::WriteBatch batch;
  for (const auto& key : erase) batch.Delete(impl_->state_cf, key);
  for (const auto& [key, value] : puts) batch.Put(impl_->state_cf, key, value);
  if (auto st = impl_->writable(); !st) return st;
  if (auto s = impl_->db->Write(impl_->write_options, &batch); !s.ok()) {
    return impl_->failed_write(s, "writing state");
  }
  return Status::ok();
}

Result<std::optional<std::string>> RocksDbStore::get_state(std::string_view key) const {
  std::string value;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->state_cf, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return from_rocksdb(s, "reading state");
  return std::optional<std::string>(std::move(value));
}

Status RocksDbStore::scan_state(
    std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->state_cf));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size()));
       it->Valid() && it->key().starts_with(rocksdb::Slice(prefix.data(), prefix.size()));
       it->Next()) {
    if (!visit(it->key().ToStringView(), it->value().ToStringView())) break;
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "reading state");
  return Status::ok();
}

Status RocksDbStore::scan_state_reverse(
    std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->state_cf));
  // The first key after every key with this prefix: the prefix with its last byte below 0xff
  // incremented (and the 0xff bytes after it dropped).
  std::string upper(prefix);
  while (!upper.empty() && static_cast<unsigned char>(upper.back()) == 0xff) upper.pop_back();
  if (upper.empty()) {
    it->SeekToLast();
  } else {
    upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);
    it->SeekForPrev(upper);
    if (it->Valid() && it->key() == rocksdb::Slice(upper)) it->Prev();
  }
  const rocksdb::Slice p(prefix.data(), prefix.size());
  for (; it->Valid() && it->key().starts_with(p); it->Prev()) {
    if (!visit(it->key().ToStringView(), it->value().ToStringView())) break;
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "reading state");
  return Status::ok();
}

Status RocksDbStore::compact() {
  if (auto s = maintain(); !s) return s;
  std::lock_guard serial(impl_->maintain_mutex);
  if (!impl_->db) return Status::unavailable("store is closed");
  if (auto st = impl_->writable(); !st) return st;
  rocksdb::FlushOptions flush;
  flush.wait = true;
  if (auto s = impl_->db->Flush(flush, impl_->handles); !s.ok()) return from_rocksdb(s, "flushing");
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto* cf : impl_->handles) {
    if (auto s = impl_->db->CompactRange(options, cf, nullptr, nullptr); !s.ok()) {
      return from_rocksdb(s, "compacting");
    }
  }
  return Status::ok();
}

Pushback RocksDbStore::pushback() const {
  const Impl& im = *impl_;
  if (im.write_failed.load(std::memory_order_relaxed)) {
    std::lock_guard lock(im.write_error_mutex);
    return {
        im.write_error.IsNoSpace() ? Pushback::Reason::kDiskFull : Pushback::Reason::kWriteError,
        "storage stopped taking writes after a failed write (" + im.write_error.ToString() +
            "); they are taken again after kpid is restarted",
        60'000};
  }
  if (im.options.min_free_bytes > 0) {
    // statvfs is cheap, but not on every request.
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    if (now - im.space_checked_ms.load(std::memory_order_relaxed) >= kSpaceCheckIntervalMs) {
      im.space_checked_ms.store(now, std::memory_order_relaxed);
      struct statvfs fs {};
      if (statvfs(im.options.data_dir.c_str(), &fs) == 0) {
        im.free_bytes.store(static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize);
      }
    }
    const uint64_t free = im.free_bytes.load(std::memory_order_relaxed);
    const bool low = free < im.options.min_free_bytes;
    constexpr double kMiB = 1 << 20;
    if (im.low_space.exchange(low) != low) {
      if (low) {
        spdlog::error(
            "storage: {:.1f} MiB free in {}, less than storage.min_free_bytes; "
            "writes are refused until space is freed",
            static_cast<double>(free) / kMiB, im.options.data_dir);
      } else {
        spdlog::info("storage: {:.1f} MiB free in {}; writes are taken again",
                     static_cast<double>(free) / kMiB, im.options.data_dir);
      }
    }
    if (low) {
      return {Pushback::Reason::kDiskFull,
              fmt::format("the disk is full: {:.1f} MiB free in {}, less than "
                          "storage.min_free_bytes ({:.1f} MiB); writes are taken again once "
                          "space is freed",
                          static_cast<double>(free) / kMiB, im.options.data_dir,
                          static_cast<double>(im.options.min_free_bytes) / kMiB),
              10'000};
    }
  }
  if (im.stalls->stopped()) {
    return {Pushback::Reason::kWriteStall,
            "storage is behind: RocksDB stopped writes until flushes and compactions catch up",
            1'000};
  }
  // Twice the checkpoint trigger: a checkpoint that cannot keep up must not let memory grow.
  const uint64_t heads = im.head_samples_now.load(std::memory_order_relaxed);
  if (heads >= 2 * im.options.head_max_samples) {
    return {Pushback::Reason::kHeadBacklog,
            "storage is behind: " + std::to_string(heads) +
                " samples wait in memory for a checkpoint (twice storage.head_max_samples)",
            1'000};
  }
  return {};
}

uint64_t RocksDbStore::head_samples() const {
  std::lock_guard lock(impl_->head_mutex);
  return impl_->head_samples;
}

size_t RocksDbStore::dirty_windows() const {
  std::lock_guard lock(impl_->head_mutex);
  return impl_->dirty.size();
}

}  // namespace kpid::store
