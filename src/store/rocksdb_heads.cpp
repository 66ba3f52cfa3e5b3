#include "rocksdb_impl.h"

#include <malloc.h>

#include <algorithm>

namespace kpid::store {

// Rebuilds the heads from the head log. Records are in write order and each holds only
// samples of its series' open window at the time, so a later window means the earlier one
// was sealed into a chunk by the same write that logged the record.
Status RocksDbStore::Impl::replay_head_log() {
  std::string next;
  if (auto s = db->Get(rocksdb::ReadOptions(), default_cf, kNextSeqKey, &next);
      s.ok() && next.size() == 8) {
    next_seq = get_be64(next.data());
  }
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), head_log_cf));
  uint64_t records = 0;
  heads.resize(index.size());
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
      if (id == 0 || id > index.size()) return corrupt();
      const Point p{static_cast<TimestampMs>(ts), value};
      Head& h = heads.get(id);
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

// Writes every head's pending samples as chunk pieces and drops the head log they came from.
Status RocksDbStore::Impl::checkpoint() {
  std::unique_lock lock(head_mutex);
  if (!db) return Status::unavailable("store is closed");
  rocksdb::WriteBatch batch;
  const uint64_t seq = next_seq;
  std::vector<SeriesId> written;
  for (const Head& h : heads.slots()) {
    if (h.pending.empty()) continue;
    batch.Merge(chunks_cf, SeriesTimeKey(h.id, h.window).slice(), encode_chunk(h.pending));
    mark_dirty(batch, h.id, h.window, seq);
    written.push_back(h.id);
  }
  batch.DeleteRange(head_log_cf, SeqKey(0).slice(), SeqKey(seq + 1).slice());
  SeqKey next(seq + 1);
  batch.Put(default_cf, kNextSeqKey, next.slice());
  if (auto st = writable(); !st) return st;
  if (auto s = db->Write(write_options, &batch); !s.ok()) return failed_write(s, "checkpoint");
  next_seq = seq + 1;
  for (SeriesId id : written) dirty[{id, heads.find(id)->window}] = seq;
  // Nothing is pending any more: every buffer goes (the next samples start a small one), and
  // the heads of series whose window is no longer recent (see compute_rollups) go altogether.
  const TimestampMs recent = clock->now_ms() - kChunkSpan;
  for (Head& h : heads.slots()) {
    if (h.id == 0) continue;
    std::vector<Point>().swap(h.pending);
    if (h.window <= recent) heads.release(h.id);
  }
  const bool freed_many = written.size() >= kTrimAfterHeads;
  head_samples = 0;
  head_samples_now.store(0);
  last_checkpoint = std::chrono::steady_clock::now();
  // The head log's records are all deleted now: flushed, its memtable leaves little more than
  // the range tombstone, and stops holding write-ahead log files that nothing else needs.
  // One flush at a time: a second immutable memtable would stop writes until the first is out.
  uint64_t immutable = 0;
  db->GetIntProperty(head_log_cf, "rocksdb.num-immutable-mem-table", &immutable);
  if (immutable == 0) {
    rocksdb::FlushOptions flush;
    flush.wait = false;
    flush.allow_write_stall = true;
    if (auto s = db->Flush(flush, head_log_cf); !s.ok()) {
      spdlog::debug("storage: flushing the head log after a checkpoint: {}", s.ToString());
    }
  }
  if (checkpoints != nullptr) checkpoints->Increment();
  lock.unlock();
  // glibc keeps what was freed for reuse, holes among live allocations included; the buffers of
  // many heads returned at once go back to the system, so the resident size follows the heads.
  if (freed_many) ::malloc_trim(0);
  return Status::ok();
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
  im.heads.resize(known);
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
  // Windows at or before this are past raw retention: a chunk written for them would only be
  // dropped by the next compaction, so their samples go straight into rollups.
  const TimestampMs now = im.clock->now_ms();
  const TimestampMs raw_horizon = static_cast<TimestampMs>(
      std::max<__int128>(static_cast<__int128>(now) - im.options.retention.raw, kMinTimestamp));
  auto& expired = im.expired;
  expired.assign(order.size(), 0);
  uint64_t dropped = 0;

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
  // Rolls up the expired samples of samples[order[b..e)] (one series), window by window.
  auto roll_up_expired_run = [&](size_t b, size_t e) -> Result<uint64_t> {
    auto& by_window = im.expired_order;
    by_window.clear();
    for (size_t k = b; k < e; ++k) {
      if (expired[k] != 0) by_window.push_back(static_cast<uint32_t>(k));
    }
    std::stable_sort(by_window.begin(), by_window.end(),
                     [&](uint32_t x, uint32_t y) { return windows[x] < windows[y]; });
    uint64_t lost = 0;
    for (size_t i = 0; i < by_window.size();) {
      const TimestampMs w = windows[by_window[i]];
      im.run.clear();
      for (; i < by_window.size() && windows[by_window[i]] == w; ++i) {
        const Sample& s = samples[order[by_window[i]]];
        detail::insert_point(im.run, {s.timestamp, s.value});
      }
      auto n = im.roll_up_expired(batch, samples[order[b]].series, w, im.run, now);
      if (!n) {
        im.expired_day.loaded = false;
        return n.status();
      }
      lost += *n;
    }
    im.put_expired_day(batch);
    return lost;
  };
  auto write_piece = [&](SeriesId id, TimestampMs w, const std::vector<Point>& points) {
    batch.Merge(im.chunks_cf, SeriesTimeKey(id, w).slice(), encode_chunk(points));
    im.mark_dirty(batch, id, w, seq);
    dirtied.emplace_back(id, w);
  };

  for (size_t b = 0; b < order.size();) {
    const SeriesId id = samples[order[b]].series;
    static const Head kNoHead;
    const Head* found = im.heads.find(id);
    const Head& h = found == nullptr ? kNoHead : *found;
    size_t e = b;
    TimestampMs newest = INT64_MIN;
    bool single_window = true;
    bool any_expired = false;
    TimestampMs last_checked = INT64_MIN;
    bool last_expired = false;
    while (e < order.size() && samples[order[e]].series == id) {
      const TimestampMs w = windows[e];
      if (w <= raw_horizon) {
        // Rolled up at once unless a pass will still roll the window up from its chunk (open
        // in the head, dirty, or waiting for its 5-minute rollups): that pass must see them.
        if (w != last_checked) {
          last_checked = w;
          last_expired = w != h.window && w < im.due_floor && !im.dirty.contains({id, w});
        }
        if (last_expired) {
          expired[e] = 1;
          any_expired = true;
          ++e;
          continue;
        }
      }
      if (newest != INT64_MIN && w != newest) single_window = false;
      newest = std::max(newest, w);
      ++e;
    }
    if (any_expired) {
      auto st = roll_up_expired_run(b, e);
      if (!st) return st.status();
      dropped += *st;
    }
    if (newest == INT64_MIN) {  // every sample of the series was rolled up
      b = e;
      continue;
    }
    const TimestampMs window = std::max(h.window, newest);
    const bool seal = window > h.window && !h.pending.empty();
    if (!(single_window && newest == window && !seal)) {
      // Slow path: seal the head and/or write pieces for older windows (backfill).
      std::vector<TimestampMs> older;
      for (size_t k = b; k < e; ++k) {
        const TimestampMs w = windows[k];
        if (expired[k] == 0 && w < window &&
            std::find(older.begin(), older.end(), w) == older.end()) {
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
    Head& h = im.heads.get(p.id);
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
  if (dropped > 0) {
    im.expired_dropped.fetch_add(dropped, std::memory_order_relaxed);
    if (im.expired_dropped_counter != nullptr) {
      im.expired_dropped_counter->Increment(static_cast<double>(dropped));
    }
  }
  im.head_samples_now.store(im.head_samples);
  im.last_append_ms.store(steady_now_ms(), std::memory_order_relaxed);
  const bool full = im.head_samples >= im.options.head_max_samples;
  lock.unlock();
  if (full || !dirtied.empty()) im.wake_worker();
  return Status::ok();
}

HeadStats RocksDbStore::head_stats() const {
  HeadStats stats;
  std::lock_guard lock(impl_->head_mutex);
  for (const Head& head : impl_->heads.slots()) {
    if (head.pending.empty()) continue;
    ++stats.series;
    stats.samples += head.pending.size();
    stats.min_time = std::min(stats.min_time, head.pending.front().timestamp);
    stats.max_time = std::max(stats.max_time, head.pending.back().timestamp);
  }
  return stats;
}

uint64_t RocksDbStore::expired_samples_dropped() const {
  return impl_->expired_dropped.load(std::memory_order_relaxed);
}

uint64_t RocksDbStore::head_samples() const {
  std::lock_guard lock(impl_->head_mutex);
  return impl_->head_samples;
}

}  // namespace kpid::store
