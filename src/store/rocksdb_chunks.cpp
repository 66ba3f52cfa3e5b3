#include "rocksdb_impl.h"

namespace kpid::store {

// Reads the stored chunk of (id, window) into `out` (appending).
Status RocksDbStore::Impl::read_chunk(SeriesId id, TimestampMs window,
                                      std::vector<Point>& out) const {
  std::string value;
  auto s = db->Get(rocksdb::ReadOptions(), chunks_cf, SeriesTimeKey(id, window).slice(), &value);
  if (s.IsNotFound()) return Status::ok();
  if (!s.ok()) return from_rocksdb(s, "reading chunk");
  return decode_chunk(value, out);
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
    if (const Head* h = impl_->heads.find(series)) {
      const auto& pending = h->pending;
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

}  // namespace kpid::store
