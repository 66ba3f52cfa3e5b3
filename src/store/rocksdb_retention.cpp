#include "rocksdb_impl.h"

namespace kpid::store {

TimestampMs RocksDbStore::raw_horizon() const {
  return impl_->clock->now_ms() - impl_->options.retention.raw;
}

RetentionPolicy RocksDbStore::retention() const { return impl_->options.retention; }

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

}  // namespace kpid::store
