#include "rocksdb_impl.h"

#include <cstdarg>
#include <cstdio>

namespace kpid::store {

// A failed write to RocksDB: notes it so pushback() refuses every later write at once (and
// nothing else writes); an I/O error (disk full among them) is the store's condition,
// reported as unavailable, not as the caller's fault.
Status RocksDbStore::Impl::failed_write(const rocksdb::Status& s, const std::string& what) {
  if (!s.IsIOError()) return from_rocksdb(s, what);
  const bool no_space = s.IsNoSpace();
  if (write_errors != nullptr) {
    write_errors->Add({{"cause", no_space ? "no_space" : "io_error"}}).Increment();
  }
  {
    std::lock_guard lock(write_error_mutex);
    if (!write_failed.load()) {
      spdlog::critical("storage: {} failed ({}): {}; writes are refused {}; queries go on", what,
                       no_space ? "no_space" : "io_error", s.ToString(),
                       no_space
                           ? "until space is freed, then kpid resumes by itself"
                           : "until kpid is restarted (RocksDB cannot resume after this error)");
      write_error = s;
    }
    write_failed.store(true);
  }
  return Status::unavailable(what + ": " + s.ToString());
}

// Not ok once a write has failed, until try_recover(): nothing may write to RocksDB meanwhile.
Status RocksDbStore::Impl::writable() const {
  if (!write_failed.load(std::memory_order_relaxed)) return Status::ok();
  std::lock_guard lock(write_error_mutex);
  return Status::unavailable(
      "storage stopped taking writes after a failed write (" + write_error.ToString() + "); " +
      (write_error.IsNoSpace() ? "they are taken again once space is freed" : "restart kpid"));
}

bool RocksDbStore::Impl::try_recover() {
  rocksdb::Status error;
  {
    std::lock_guard error_lock(write_error_mutex);
    error = write_error;
  }
  // Only running out of space is resumable in RocksDB 7.8: another I/O error in the write-ahead
  // log is fatal for the open database.
  if (!error.IsNoSpace()) return false;
  // Not before there is room again: each attempt writes (a new log file, a flush), and
  // RocksDB 7.8 may abort on an assertion of its own when that fails again for lack of space.
  // So at least kResumeMinFreeBytes free, even with storage.min_free_bytes = 0.
  struct statvfs fs {};
  if (statvfs(options.data_dir.c_str(), &fs) != 0) return false;
  const uint64_t free = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (free < std::max(options.min_free_bytes, kResumeMinFreeBytes)) return false;
  std::lock_guard lock(head_mutex);  // no write meanwhile
  if (!db) return false;
  if (auto s = db->Resume(); !s.ok()) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_resume_log >= std::chrono::seconds(10)) {
      spdlog::warn("storage: cannot resume writes yet: {}", s.ToString());
      last_resume_log = now;
    }
    return false;
  }
  spdlog::info("storage: space is back, RocksDB resumed after \"{}\"; writes are taken again",
               error.ToString());
  write_failed.store(false);
  return true;
}

void RocksDbStore::Impl::run_worker() {
  std::chrono::steady_clock::time_point last_error{};
  for (;;) {
    {
      std::unique_lock lock(worker_mutex);
      worker_cv.wait_for(lock, std::chrono::seconds(1),
                         [this] { return worker_stop || worker_wake; });
      if (worker_stop) return;
      worker_wake = false;
    }
    if (write_failed.load()) {
      try_recover();  // maintenance writes: nothing else until the store writes again
      continue;
    }
    if (auto s = maintain(false); !s) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_error > std::chrono::seconds(10)) {
        spdlog::warn("storage maintenance failed (will retry): {}", s.message());
        last_error = now;
      }
    }
  }
}

void RocksDbStore::Impl::wake_worker() {
  {
    std::lock_guard lock(worker_mutex);
    worker_wake = true;
  }
  worker_cv.notify_one();
}

void RocksDbStore::Impl::signal_worker_stop() {
  {
    std::lock_guard lock(worker_mutex);
    worker_stop = true;
  }
  worker_cv.notify_one();
}

void RocksDbStore::Impl::stop_worker() {
  signal_worker_stop();
  if (worker.joinable()) worker.join();
}

Status RocksDbStore::Impl::flush_all() {
  const auto wait = [this]() -> Status {
    while (flush_pending()) {
      if (stopping.load()) return Status::unavailable("cancelled: the store is closing");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Status::ok();
  };
  // Flushes already under way first: a manual flush fails while they hold writes stopped.
  if (auto st = wait(); !st) return st;
  rocksdb::FlushOptions flush;
  flush.wait = false;  // a stop must be able to cut the wait short
  flush.allow_write_stall = true;
  if (auto s = db->Flush(flush, handles); !s.ok()) return from_rocksdb(s, "flushing");
  return wait();
}

bool RocksDbStore::Impl::flush_pending() const {
  for (auto* cf : handles) {
    uint64_t pending = 0;
    uint64_t running = 0;
    db->GetIntProperty(cf, "rocksdb.mem-table-flush-pending", &pending);
    db->GetIntProperty(cf, "rocksdb.num-running-flushes", &running);
    if (pending > 0 || running > 0) return true;
  }
  return false;
}

Status RocksDbStore::Impl::settle() {
  const int64_t last = last_append_ms.load();
  const int64_t now = steady_now_ms();
  if (now - last < options.settle_after) return Status::ok();
  // Settled since the last append: again only for what was written since (rollups of windows
  // that closed, state records), at most once a minute, so it does not sit in the log.
  if (last == settled_after && (now - last_settle_ms < kResettleMs || wal_bytes() == 0)) {
    return Status::ok();
  }
  if (auto st = checkpoint(); !st) return st;
  // The windows the checkpoint wrote get their rollups now rather than after the flush, which
  // would leave those writes in the log.
  if (auto st = in_batches([&] { return compute_rollups(false); }); !st) return st;
  if (auto st = writable(); !st) return st;
  if (auto st = flush_all(); !st) return st;
  // Level-0 files into the level below (and the files there they overlap), where pieces of a
  // chunk fold into one value and the bottommost level's zstd applies. Only what level 0 holds
  // is rewritten, not the whole store.
  for (auto* cf : handles) {
    if (stopping.load()) return Status::unavailable("cancelled: the store is closing");
    rocksdb::ColumnFamilyMetaData meta;
    db->GetColumnFamilyMetaData(cf, &meta);
    if (meta.levels.empty() || meta.levels[0].files.empty()) continue;
    int output = static_cast<int>(meta.levels.size()) - 1;
    for (size_t level = 1; level < meta.levels.size(); ++level) {
      if (!meta.levels[level].files.empty()) {
        output = static_cast<int>(level);
        break;
      }
    }
    std::vector<std::string> inputs;
    for (const auto& f : meta.levels[0].files) {
      if (!f.being_compacted) inputs.push_back(f.name);
    }
    if (inputs.empty()) continue;
    rocksdb::CompactionOptions options;
    options.compression = rocksdb::kDisableCompressionOption;  // the family's own
    options.output_file_size_limit = 64ull << 20;
    if (auto s = db->CompactFiles(options, cf, inputs, output); !s.ok()) {
      // A compaction RocksDB started meanwhile holds some of the files: it does the same work.
      if (s.IsAborted() || s.IsInvalidArgument()) continue;
      return from_rocksdb(s, "compacting level 0");
    }
  }
  settled_after = last;
  last_settle_ms = steady_now_ms();
  return Status::ok();
}

namespace {

// RocksDB's log messages from warnings up, into kpid's log (spdlog, warnings at info); the rest
// (options dumps, flush and compaction chatter) is dropped.
class RocksDbLogger final : public rocksdb::Logger {
 public:
  RocksDbLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < rocksdb::InfoLogLevel::WARN_LEVEL || level == rocksdb::InfoLogLevel::HEADER_LEVEL) {
      return;
    }
    char message[1024];
    std::vsnprintf(message, sizeof message, format, ap);
    // RocksDB's warnings are mostly routine (write stalls, backups' file deletion counts);
    // kpid reports what matters of them itself.
    if (level == rocksdb::InfoLogLevel::WARN_LEVEL) {
      spdlog::info("rocksdb: {}", message);
    } else {
      spdlog::error("rocksdb: {}", message);
    }
  }
};

// After a failed open: an error naming both versions when the data dir's recorded format is
// newer than this kpid's, else ok. Opens only the default column family, read-only.
Status newer_format(const rocksdb::Options& db_options, const std::string& dir) {
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::OpenForReadOnly(db_options, dir, families, &handles, &raw).ok()) {
    return Status::ok();
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  auto s = db->Get(rocksdb::ReadOptions(), handles[0], "kpid.format_version", &value);
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  const auto version = s.ok() ? std::strtoul(value.c_str(), nullptr, 10) : 0;
  if (version <= kFormatVersion) return Status::ok();
  return Status::invalid_argument("data directory " + dir + " holds data format version " +
                                  std::to_string(version) +
                                  ", written by a newer kpid; this kpid reads format version " +
                                  std::to_string(kFormatVersion) + " at most");
}

}  // namespace

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
  db_options.max_open_files = -1;  // periodic compaction (retention) needs file ages
  // Bounds the write-ahead log (and replay time after a crash): past it RocksDB flushes the
  // column families that hold the oldest log file.
  db_options.max_total_wal_size = 64ull << 20;
  db_options.listeners.push_back(impl->stalls);
  // RocksDB's warnings and errors go to kpid's log; no LOG file grows in the data dir.
  db_options.info_log = std::make_shared<RocksDbLogger>();
  if (!options.fault_injection_file.empty()) {
    spdlog::warn("storage: test-only fault injection on, controlled by {}",
                 options.fault_injection_file);
    impl->fault_fs = std::make_shared<FaultInjectionFileSystem>(rocksdb::FileSystem::Default(),
                                                                options.fault_injection_file);
    impl->fault_env = rocksdb::NewCompositeEnv(impl->fault_fs);
    db_options.env = impl->fault_env.get();
  }

  impl->block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  auto table_with_cache = [&](size_t block_size) {
    rocksdb::BlockBasedTableOptions table;
    table.block_size = block_size;
    table.block_cache = impl->block_cache;
    return std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(table));
  };
  auto data_options = [&](rocksdb::CompactionFilter* filter) {
    rocksdb::ColumnFamilyOptions o;
    o.compression = rocksdb::kLZ4Compression;
    o.bottommost_compression = rocksdb::kZSTD;
    // Chunks and rollup blocks are already dense; larger blocks and a stronger level let zstd
    // find what repeats across series (shared exponents, regular headers, sketch buckets).
    o.bottommost_compression_opts.level = 9;
    o.bottommost_compression_opts.enabled = true;
    o.table_factory = table_with_cache(64 << 10);
    o.level_compaction_dynamic_level_bytes = true;
    o.compaction_filter = filter;
    // Old files get recompacted daily, so expired windows go even where nothing else writes.
    o.periodic_compaction_seconds = 86'400;
    return o;
  };
  rocksdb::ColumnFamilyOptions chunk_options = data_options(impl->raw_filter.get());
  chunk_options.merge_operator = std::make_shared<detail::ChunkMergeOperator>();
  rocksdb::ColumnFamilyOptions rollup1h_options = data_options(impl->rollup1h_filter.get());
  rollup1h_options.merge_operator =
      std::make_shared<detail::RollupMergeOperator>(kRollup1h, kChunkSpan);
  // Labels, to-do lists and kpid's records: repetitive text that zstd in 16 KiB blocks packs to
  // about half of what LZ4 in 4 KiB blocks did (bench/README.md, density); they are read at
  // start or in scans, so the larger blocks cost no point lookups that matter.
  rocksdb::ColumnFamilyOptions index_options;
  index_options.compression = rocksdb::kLZ4Compression;
  index_options.bottommost_compression = rocksdb::kZSTD;
  index_options.bottommost_compression_opts.level = 9;
  index_options.bottommost_compression_opts.enabled = true;
  index_options.table_factory = table_with_cache(16 << 10);
  rocksdb::ColumnFamilyOptions log_options;
  log_options.compression = rocksdb::kNoCompression;

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kSeriesCf, index_options},
      {kSeriesKeyCf, index_options},
      {kChunksCf, chunk_options},
      {kRollup5mCf, data_options(impl->rollup5m_filter.get())},
      {kRollup1hCf, rollup1h_options},
      {kHeadLogCf, log_options},
      {kDirtyCf, index_options},
      {kStateCf, index_options},
      {kRollupDueCf, index_options},
  };
  const bool existed = std::filesystem::exists(options.data_dir + "/CURRENT");
  rocksdb::DB* raw = nullptr;
  auto s = options.read_only
               ? rocksdb::DB::OpenForReadOnly(db_options, options.data_dir, families,
                                              &impl->handles, &raw)
               : rocksdb::DB::Open(db_options, options.data_dir, families, &impl->handles, &raw);
  if (!s.ok()) {
    // A newer kpid may have added column families: say so rather than RocksDB's message.
    if (auto newer = newer_format(db_options, options.data_dir); !newer) return newer;
    return from_rocksdb(s, "opening RocksDB in " + options.data_dir);
  }
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
  impl->rollup_due_cf = h[9];

  Status loaded = impl->check_format(existed);
  if (loaded) loaded = impl->load_index();
  if (loaded) loaded = impl->load_dirty();
  if (loaded) loaded = impl->load_due_floor();
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
    im->blocked_gauge =
        gauge("kpid_store_writes_blocked",
              "1 while the store refuses writes (disk full, write error, write "
              "stall, head backlog or memory limit; kpid_ingest_pushback_total says which).");
    im->checkpoints = &prometheus::BuildCounter()
                           .Name("kpid_store_checkpoints_total")
                           .Help("Checkpoints that wrote the heads to chunks.")
                           .Register(reg)
                           .Add({});
    im->expired_dropped_counter =
        &prometheus::BuildCounter()
             .Name("kpid_store_expired_samples_dropped_total")
             .Help("Samples appended for windows past every retention period, not stored.")
             .Register(reg)
             .Add({});
    im->write_errors = &prometheus::BuildCounter()
                            .Name("kpid_store_write_errors_total")
                            .Help(
                                "Writes RocksDB failed, by cause (no_space: the disk is full; "
                                "io_error: another I/O error).")
                            .Register(reg);
    im->write_errors->Add({{"cause", "no_space"}});
    im->write_errors->Add({{"cause", "io_error"}});
    im->refused = &prometheus::BuildCounter()
                       .Name("kpid_store_series_refused_total")
                       .Help("New series refused by the cardinality guard, by limit.")
                       .Register(reg);
    auto& families = prometheus::BuildGauge()
                         .Name("kpid_store_family_bytes")
                         .Help(
                             "Bytes of table files on disk, by column family (chunks, rollup_5m, "
                             "rollup_1h, series, ...).")
                         .Register(reg);
    for (auto* cf : im->handles) {
      im->family_gauges.push_back(&families.Add({{"family", cf->GetName()}}));
    }
    im->wal_gauge =
        gauge("kpid_store_wal_bytes",
              "Bytes of write-ahead log files on disk (part of kpid_store_size_bytes).");
    RocksDbStore* self = store.get();
    metrics->on_scrape([im, self] {
      if (!im->db) return;
      im->series_gauge->Set(static_cast<double>(self->series_count()));
      im->size_gauge->Set(static_cast<double>(self->disk_usage_bytes()));
      im->head_gauge->Set(static_cast<double>(self->head_samples()));
      im->dirty_gauge->Set(static_cast<double>(self->dirty_windows()));
      for (size_t i = 0; i < im->handles.size() && i < im->family_gauges.size(); ++i) {
        uint64_t v = 0;
        im->db->GetIntProperty(im->handles[i], "rocksdb.total-sst-files-size", &v);
        im->family_gauges[i]->Set(static_cast<double>(v));
      }
      im->wal_gauge->Set(static_cast<double>(im->wal_bytes()));
      im->blocked_gauge->Set(self->pushback() ? 1 : 0);
    });
    im->register_memory_metrics(*metrics);
  }
  im->last_append_ms.store(steady_now_ms());
  if (options.background && !options.read_only)
    im->worker = std::thread([im] { im->run_worker(); });
  return store;
}

RocksDbStore::RocksDbStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RocksDbStore::~RocksDbStore() {
  if (auto s = close(); !s) spdlog::error("closing store: {}", s.to_string());
}

void RocksDbStore::cancel_background_work() {
  Impl& im = *impl_;
  if (im.stopping.exchange(true)) return;
  im.signal_worker_stop();
  // A manual compaction (compact()) returns at once with Incomplete.
  if (im.db && !im.options.read_only) im.db->DisableManualCompaction();
}

Status RocksDbStore::close(Deadline deadline) {
  Impl& im = *impl_;
  cancel_background_work();
  im.stop_worker();  // it looks at `stopping` between rollup batches
  if (!im.db) return Status::ok();
  // A compaction being cancelled still holds the DB for a moment; not past the deadline.
  std::unique_lock serial(im.maintain_mutex, std::defer_lock);
  if (deadline.when() == Deadline::never().when()) {
    serial.lock();
  } else if (!serial.try_lock_until(deadline.when())) {
    return Status::unavailable(
        "closing storage: a compaction did not let go of RocksDB by the deadline (nothing is "
        "lost: the write-ahead log holds every acknowledged write)");
  }
  if (im.options.read_only) {
    for (auto* h : im.handles) im.db->DestroyColumnFamilyHandle(h);
    im.handles.clear();
    im.db.reset();
    return Status::ok();
  }
  // After a failed write nothing more is written: the WAL already holds every acknowledged
  // write and the next open replays it, so this is a clean close all the same.
  const bool failed = im.write_failed.load();
  if (failed) {
    spdlog::warn(
        "storage: closing without a checkpoint after the failed write; the next start replays "
        "the write-ahead log, which holds every acknowledged write");
  }
  Status result = failed ? Status::ok() : im.checkpoint();
  if (result && !failed) {
    // Memtables go to table files while time allows (a shorter replay at the next start); what
    // is left at the deadline stays in the WAL, which the next open replays.
    rocksdb::FlushOptions flush;
    flush.wait = false;
    if (auto s = im.db->Flush(flush, im.handles); s.ok()) {
      const Deadline flush_by = deadline.leaving(500);
      while (!flush_by.expired() && im.flush_pending()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  // Running compactions stop at their next key; Close() waits only for them to notice.
  rocksdb::CancelAllBackgroundWork(im.db.get(), false);
  if (result && !failed) {
    if (auto s = im.db->SyncWAL(); !s.ok()) result = from_rocksdb(s, "syncing WAL");
  }
  std::lock_guard lock(im.head_mutex);
  for (auto* h : im.handles) im.db->DestroyColumnFamilyHandle(h);
  im.handles.clear();
  if (auto s = im.db->Close(); !s.ok() && result && !failed) result = from_rocksdb(s, "closing");
  im.db.reset();
  return result;
}

uint64_t RocksDbStore::disk_usage_bytes() const {
  if (!impl_->db) return 0;
  uint64_t total = 0;
  for (auto* cf : impl_->handles) {
    uint64_t v = 0;
    if (impl_->db->GetIntProperty(cf, "rocksdb.total-sst-files-size", &v)) total += v;
  }
  return total + impl_->wal_bytes();
}

uint64_t RocksDbStore::Impl::wal_bytes() const {
  uint64_t total = 0;
  rocksdb::VectorLogPtr wal_files;
  if (db->GetSortedWalFiles(wal_files).ok()) {
    for (const auto& f : wal_files) total += f->SizeFileBytes();
  }
  return total;
}

Status RocksDbStore::maintain() {
  if (impl_->options.read_only) return Status::unavailable("the store is open read-only");
  return impl_->maintain(true);
}

bool RocksDbStore::Impl::low_on_space() const {
  // statvfs is cheap, but not on every request.
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  if (now - space_checked_ms.load(std::memory_order_relaxed) >= kSpaceCheckIntervalMs) {
    space_checked_ms.store(now, std::memory_order_relaxed);
    struct statvfs fs {};
    if (statvfs(options.data_dir.c_str(), &fs) == 0) {
      free_bytes.store(static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize);
    }
  }
  const uint64_t free = free_bytes.load(std::memory_order_relaxed);
  const bool low = free < options.min_free_bytes;
  if (low_space.exchange(low) != low) {
    if (low) {
      spdlog::error(
          "storage: {:.1f} MiB free in {}, less than storage.min_free_bytes; "
          "writes are refused until space is freed",
          static_cast<double>(free) / kMiB, options.data_dir);
    } else {
      spdlog::info("storage: {:.1f} MiB free in {}; writes are taken again",
                   static_cast<double>(free) / kMiB, options.data_dir);
    }
  }
  return low;
}

Pushback RocksDbStore::pushback() const {
  const Impl& im = *impl_;
  if (im.write_failed.load(std::memory_order_relaxed)) {
    std::lock_guard lock(im.write_error_mutex);
    if (im.write_error.IsNoSpace()) {
      return {Pushback::Reason::kDiskFull,
              "the disk is full: a write failed (" + im.write_error.ToString() +
                  "); writes are taken again once space is freed",
              10'000};
    }
    return {Pushback::Reason::kWriteError,
            "storage stopped taking writes after a write error (" + im.write_error.ToString() +
                "); they are taken again after kpid is restarted",
            60'000};
  }
  if (im.options.min_free_bytes > 0 && im.low_on_space()) {
    const uint64_t free = im.free_bytes.load(std::memory_order_relaxed);
    return {Pushback::Reason::kDiskFull,
            fmt::format("the disk is full: {:.1f} MiB free in {}, less than "
                        "storage.min_free_bytes ({:.1f} MiB); writes are taken again once "
                        "space is freed",
                        static_cast<double>(free) / kMiB, im.options.data_dir,
                        static_cast<double>(im.options.min_free_bytes) / kMiB),
            10'000};
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
  if (auto p = im.memory_pushback()) return p;
  return {};
}

}  // namespace kpid::store
