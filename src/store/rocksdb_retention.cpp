#include "rocksdb_impl.h"

namespace kpid::store {

TimestampMs RocksDbStore::raw_horizon() const {
  return impl_->clock->now_ms() - impl_->options.retention.raw;
}

RetentionPolicy RocksDbStore::retention() const { return impl_->options.retention; }

Status RocksDbStore::compact() {
  Impl& im = *impl_;
  const auto cancelled = [] {
    return Status::unavailable("compaction cancelled: kpid is stopping");
  };
  if (im.stopping.load()) return cancelled();
  if (auto s = maintain(); !s) return im.stopping.load() ? cancelled() : s;
  std::lock_guard serial(im.maintain_mutex);
  if (!im.db || im.stopping.load()) return cancelled();
  if (auto st = im.writable(); !st) return st;
  if (auto s = im.flush_all(); !s) return im.stopping.load() ? cancelled() : s;
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto* cf : im.handles) {
    if (im.stopping.load()) return cancelled();
    // cancel_background_work() makes a running CompactRange return Incomplete.
    if (auto s = im.db->CompactRange(options, cf, nullptr, nullptr); !s.ok()) {
      return im.stopping.load() || s.IsIncomplete() ? cancelled() : from_rocksdb(s, "compacting");
    }
  }
  return Status::ok();
}

}  // namespace kpid::store
