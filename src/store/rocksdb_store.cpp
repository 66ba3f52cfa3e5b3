#include "rocksdb_impl.h"

namespace kpid::store {

// A failed write to RocksDB: notes it so pushback() refuses every later write at once (and
// nothing else writes); an I/O error (disk full among them) is the store's condition,
// reported as unavailable, not as the caller's fault.
Status RocksDbStore::Impl::failed_write(const rocksdb::Status& s, const std::string& what) {
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
Status RocksDbStore::Impl::writable() const {
  if (!write_failed.load(std::memory_order_relaxed)) return Status::ok();
  std::lock_guard lock(write_error_mutex);
  return Status::unavailable("storage stopped taking writes after a failed write (" +
                             write_error.ToString() + "); restart kpid");
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

void RocksDbStore::Impl::wake_worker() {
  {
    std::lock_guard lock(worker_mutex);
    worker_wake = true;
  }
  worker_cv.notify_one();
}

void RocksDbStore::Impl::stop_worker() {
  {
    std::lock_guard lock(worker_mutex);
    worker_stop = true;
  }
  worker_cv.notify_one();
  if (worker.joinable()) worker.join();
}

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

}  // namespace kpid::store
