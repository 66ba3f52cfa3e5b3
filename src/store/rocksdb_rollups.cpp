#include "rocksdb_impl.h"

#include <algorithm>
#include <iterator>

#include "kpid/core/stale_marker.h"

namespace kpid::store {

Status RocksDbStore::Impl::load_dirty() {
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

Status RocksDbStore::Impl::load_due_floor() {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), rollup_due_cf));
  it->SeekToFirst();
  if (it->Valid()) {
    if (it->key().size() != 16) return Status::internal("corrupt rollup_due key");
    due_floor = WindowSeriesKey::window(it->key());
  }
  return from_rocksdb(it->status(), "loading the windows whose 5-minute rollups are due");
}

// Recomputes the rollups of up to kRollupBatchWindows dirty windows from their chunks.
// Returns how many windows were done. Unless `all`, a window still open in its series' head
// and recent is left for later: it will take more samples, readers aggregate it from raw
// meanwhile, and recomputing it at every checkpoint would redo its rollups many times over.
Result<size_t> RocksDbStore::Impl::compute_rollups(bool all) {
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
      if (!all && heads.window(id) == window && window > recent) {
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
  // 5-minute rollups are stored only for windows near the end of raw retention; a newer window
  // is listed in rollup_due instead, and its chunk answers for them meanwhile.
  const TimestampMs due = rollup_5m_due();
  TimestampMs oldest_listed = INT64_MAX;
  for (const auto& t : todo) {
    // A batch is thousands of windows: a stop must not wait for the rest of it.
    if (stopping.load(std::memory_order_relaxed)) {
      return Status::unavailable("cancelled: the store is closing");
    }
    points.clear();
    if (auto s = read_chunk(t.id, t.window, points); !s) return s;
    put_rollups(batch, rollup1h_cf, kRollup1h, t.id, t.window, points, rollups);
    if (t.window <= due) {
      put_rollups(batch, rollup5m_cf, kRollup5m, t.id, t.window, points, rollups);
    } else {
      batch.Put(rollup_due_cf, WindowSeriesKey(t.window, t.id).slice(), rocksdb::Slice());
      oldest_listed = std::min(oldest_listed, t.window);
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
  due_floor = std::min(due_floor, oldest_listed);
  return todo.size();
}

void RocksDbStore::Impl::put_rollups(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* cf,
                                     DurationMs width, SeriesId id, TimestampMs window,
                                     std::span<const Point> points, std::vector<Rollup>& scratch) {
  scratch.clear();
  build_rollups(points, width, window - kChunkSpan, window, scratch);
  put_rollup_buckets(batch, cf, width, id, window, scratch);
}

void RocksDbStore::Impl::put_rollup_buckets(rocksdb::WriteBatch& batch,
                                            rocksdb::ColumnFamilyHandle* cf, DurationMs width,
                                            SeriesId id, TimestampMs window,
                                            std::span<const Rollup> buckets) {
  if (width == kRollup1h) {
    const TimestampMs day = bucket_end(window, kRollup1hBlockSpan);
    batch.Merge(cf, SeriesTimeKey(id, day).slice(),
                detail::encode_rollup_piece(
                    buckets, detail::rollup_window_bit(day, window, kChunkSpan), day, width));
    return;
  }
  SeriesTimeKey key(id, window);
  if (buckets.empty()) {
    batch.Delete(cf, key.slice());
  } else {
    batch.Put(cf, key.slice(), encode_rollup_block(buckets, window, width));
  }
}

Status RocksDbStore::Impl::upgrade_rollup_1h_to_days() {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), rollup1h_cf));
  rocksdb::WriteBatch batch;
  std::vector<Rollup> buckets;
  uint64_t rewritten = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const auto value = it->value().ToStringView();
    if (!value.empty() && static_cast<uint8_t>(value[0]) == detail::kRollupPieceTag) continue;
    if (it->key().size() != 16) return Status::internal("corrupt rollup_1h key");
    const SeriesId id = SeriesTimeKey::series(it->key());
    const TimestampMs window = SeriesTimeKey::time(it->key());
    buckets.clear();
    if (auto s =
            decode_rollup_block(value, window, kRollup1h, kMinTimestamp, kMaxTimestamp, buckets);
        !s) {
      return Status::internal("upgrading 1-hour rollups of series " + std::to_string(id) + ": " +
                              s.message());
    }
    // A window ending at midnight has its day's key already: the merge piece replaces it there
    // (the operator reads a plain block as that window's), and a delete would drop the pieces
    // of the day's other windows put before it in this batch.
    if (bucket_end(window, kRollup1hBlockSpan) != window) batch.Delete(rollup1h_cf, it->key());
    put_rollup_buckets(batch, rollup1h_cf, kRollup1h, id, window, buckets);
    if (++rewritten % kRollupBatchWindows == 0) {
      if (auto s = db->Write(write_options, &batch); !s.ok()) {
        return from_rocksdb(s, "upgrading 1-hour rollups");
      }
      batch.Clear();
    }
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "upgrading 1-hour rollups");
  if (auto s = db->Write(write_options, &batch); !s.ok()) {
    return from_rocksdb(s, "upgrading 1-hour rollups");
  }
  it.reset();
  if (rewritten == 0) return Status::ok();
  // Folds the pieces into one value per day now rather than as compactions come by.
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  if (auto s = db->CompactRange(compact, rollup1h_cf, nullptr, nullptr); !s.ok()) {
    return from_rocksdb(s, "compacting the upgraded 1-hour rollups");
  }
  spdlog::info("storage: 1-hour rollups of {} windows rewritten into day values", rewritten);
  return Status::ok();
}

Status RocksDbStore::Impl::get_rollup_buckets(rocksdb::ColumnFamilyHandle* cf, DurationMs width,
                                              SeriesId id, TimestampMs window,
                                              std::vector<Rollup>& out) const {
  rocksdb::PinnableSlice value;
  const auto s = db->Get(rocksdb::ReadOptions(), cf, SeriesTimeKey(id, window).slice(), &value);
  if (s.IsNotFound()) return Status::ok();
  if (!s.ok()) return from_rocksdb(s, "reading rollups");
  return decode_rollup_block(value.ToStringView(), window, width, window - kChunkSpan, window, out);
}

Result<uint64_t> RocksDbStore::Impl::roll_up_expired(rocksdb::WriteBatch& batch, SeriesId id,
                                                     TimestampMs window,
                                                     std::span<const Point> points,
                                                     TimestampMs now) {
  struct Target {
    rocksdb::ColumnFamilyHandle* cf;
    DurationMs width;
    DurationMs keep;
  };
  const Target targets[] = {{rollup5m_cf, kRollup5m, options.retention.rollup_5m},
                            {rollup1h_cf, kRollup1h, options.retention.rollup_1h}};
  bool kept = false;
  for (const auto& t : targets) {
    // The retention filters drop a key whose window end is at or before now - keep.
    if (static_cast<__int128>(window) <= static_cast<__int128>(now) - t.keep) continue;
    kept = true;
    auto& stored = stored_buckets;
    auto& fresh = new_buckets;
    auto& merged = merged_buckets;
    stored.clear();
    fresh.clear();
    merged.clear();
    const bool by_day = t.width == kRollup1h;
    if (by_day) {
      if (auto st = load_expired_day(batch, id, bucket_end(window, kRollup1hBlockSpan)); !st) {
        return st;
      }
      // The window's buckets leave the day's list; the merged ones go back below.
      auto& day = expired_day.buckets;
      const auto lo = std::find_if(day.begin(), day.end(),
                                   [&](const Rollup& r) { return r.end > window - kChunkSpan; });
      const auto hi = std::find_if(lo, day.end(), [&](const Rollup& r) { return r.end > window; });
      std::move(lo, hi, std::back_inserter(stored));
      day.erase(lo, hi);
    } else if (auto st = get_rollup_buckets(t.cf, t.width, id, window, stored); !st) {
      return st;
    }
    build_rollups(points, t.width, window - kChunkSpan, window, fresh);
    // Both in time order: merge by bucket end.
    size_t i = 0;
    size_t j = 0;
    while (i < stored.size() || j < fresh.size()) {
      if (j == fresh.size() || (i < stored.size() && stored[i].end < fresh[j].end)) {
        merged.push_back(std::move(stored[i++]));
      } else if (i == stored.size() || fresh[j].end < stored[i].end) {
        merged.push_back(std::move(fresh[j++]));
      } else {
        if (auto st = merge_rollup(stored[i], fresh[j]); !st) return st;
        merged.push_back(std::move(stored[i]));
        ++i;
        ++j;
      }
    }
    // A stale marker of this write newer than every sample of its bucket ends the bucket,
    // even when no sample of this write fell in that bucket (build_rollups made none there).
    size_t b = 0;
    for (const auto& p : points) {
      if (!is_stale_marker(p.value)) continue;
      const TimestampMs e = bucket_end(p.timestamp, t.width);
      while (b < merged.size() && merged[b].end < e) ++b;
      if (b < merged.size() && merged[b].end == e && p.timestamp > merged[b].last_timestamp) {
        merged[b].ends_stale = true;
      }
    }
    if (by_day) {
      auto& day = expired_day.buckets;
      const auto at =
          std::find_if(day.begin(), day.end(), [&](const Rollup& r) { return r.end > window; });
      day.insert(at, std::make_move_iterator(merged.begin()),
                 std::make_move_iterator(merged.end()));
      expired_day.covered |= detail::rollup_window_bit(expired_day.day, window, kChunkSpan);
    } else if (!merged.empty()) {
      put_rollup_buckets(batch, t.cf, t.width, id, window, merged);
    }
  }
  return kept ? uint64_t{0} : static_cast<uint64_t>(points.size());
}

Status RocksDbStore::Impl::load_expired_day(rocksdb::WriteBatch& batch, SeriesId id,
                                            TimestampMs day) {
  if (expired_day.loaded && expired_day.id == id && expired_day.day == day) return Status::ok();
  put_expired_day(batch);
  expired_day.buckets.clear();
  expired_day.covered = 0;
  rocksdb::PinnableSlice value;
  const auto s =
      db->Get(rocksdb::ReadOptions(), rollup1h_cf, SeriesTimeKey(id, day).slice(), &value);
  if (!s.ok() && !s.IsNotFound()) return from_rocksdb(s, "reading rollups");
  if (s.ok()) {
    if (auto st = detail::decode_rollup_value(value.ToStringView(), day, kRollup1h, kMinTimestamp,
                                              kMaxTimestamp, expired_day.buckets, true,
                                              &expired_day.covered);
        !st) {
      return st;
    }
  }
  expired_day.id = id;
  expired_day.day = day;
  expired_day.loaded = true;
  return Status::ok();
}

void RocksDbStore::Impl::put_expired_day(rocksdb::WriteBatch& batch) {
  if (!expired_day.loaded) return;
  expired_day.loaded = false;
  // The whole day in one value: later reads find it without folding a piece per append.
  batch.Put(rollup1h_cf, SeriesTimeKey(expired_day.id, expired_day.day).slice(),
            detail::encode_rollup_piece(expired_day.buckets, expired_day.covered, expired_day.day,
                                        kRollup1h));
}

Result<size_t> RocksDbStore::Impl::write_due_rollups() {
  const TimestampMs due = rollup_5m_due();
  TimestampMs floor = INT64_MAX;
  {
    std::lock_guard lock(head_mutex);
    if (!db) return Status::unavailable("store is closed");
    floor = due_floor;
  }
  if (floor > due) return size_t{0};
  // Markers are only ever added for windows newer than `due` was then, so nothing lands in the
  // range being worked through; it is dropped with one range tombstone.
  const WindowSeriesKey lower(floor, 0);
  const WindowSeriesKey upper(due + 1, 0);
  rocksdb::Slice lower_slice = lower.slice();
  rocksdb::Slice upper_slice = upper.slice();
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, rollup_due_cf));
  rocksdb::WriteBatch batch;
  std::vector<Point> points;
  std::vector<Rollup> rollups;
  size_t done = 0;
  for (it->Seek(lower_slice); it->Valid() && done < kRollupBatchWindows; it->Next()) {
    if (stopping.load(std::memory_order_relaxed)) {
      return Status::unavailable("cancelled: the store is closing");
    }
    if (it->key().size() != 16) return Status::internal("corrupt rollup_due key");
    const TimestampMs window = WindowSeriesKey::window(it->key());
    const SeriesId id = WindowSeriesKey::series(it->key());
    points.clear();
    if (auto s = read_chunk(id, window, points); !s) return s;
    put_rollups(batch, rollup5m_cf, kRollup5m, id, window, points, rollups);
    ++done;
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "reading due rollups");
  // The next marker after this batch (or none up to `due`): the new floor.
  TimestampMs next_floor = INT64_MAX;
  if (it->Valid()) {
    next_floor = WindowSeriesKey::window(it->key());
  } else {
    rocksdb::ReadOptions after;
    std::unique_ptr<rocksdb::Iterator> rest(db->NewIterator(after, rollup_due_cf));
    rest->Seek(upper_slice);
    if (rest->Valid() && rest->key().size() == 16)
      next_floor = WindowSeriesKey::window(rest->key());
    if (!rest->status().ok()) return from_rocksdb(rest->status(), "reading due rollups");
  }
  const std::string end_key = it->Valid() ? it->key().ToString() : upper_slice.ToString();
  batch.DeleteRange(rollup_due_cf, lower_slice, end_key);
  std::lock_guard lock(head_mutex);
  if (!db) return Status::unavailable("store is closed");
  if (auto st = writable(); !st) return st;
  if (auto s = db->Write(write_options, &batch); !s.ok()) return failed_write(s, "rollups");
  // compute_rollups runs on this thread too (maintain_mutex): no marker came in meanwhile.
  due_floor = next_floor;
  return done;
}

// One round of background work; `force` checkpoints now and rolls up every dirty window.
Status RocksDbStore::Impl::maintain(bool force) {
  std::lock_guard serial(maintain_mutex);
  shed_memory();
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
  if (auto s = in_batches([&] { return compute_rollups(force); }); !s) return s;
  if (auto s = in_batches([&] { return write_due_rollups(); }); !s) return s;
  return force ? Status::ok() : settle();
}

Status RocksDbStore::Impl::in_batches(const std::function<Result<size_t>()>& batch) {
  for (;;) {
    if (stopping.load()) return Status::unavailable("cancelled: the store is closing");
    auto done = batch();
    if (!done) return done.status();
    if (*done < kRollupBatchWindows) return Status::ok();
  }
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
  // 5-minute rollups of windows from due_floor on are not stored yet: their chunks answer.
  TimestampMs raw_from = kMaxTimestamp + 1;
  {
    std::lock_guard lock(impl_->head_mutex);
    if (!impl_->db) return Status::unavailable("store is closed");
    if (width == kRollup5m) raw_from = std::min(raw_from, impl_->due_floor);
    for (auto it = impl_->dirty.lower_bound({series, first_window});
         it != impl_->dirty.end() && it->first.first == series && it->first.second <= last_window;
         ++it) {
      from_raw.push_back(it->first.second);
    }
    if (const Head* h = impl_->heads.find(series)) {
      if (!h->pending.empty() && h->window >= first_window && h->window <= last_window) {
        from_raw.push_back(h->window);
      }
    }
  }
  std::erase_if(from_raw, [&](TimestampMs w) { return w >= raw_from; });
  std::sort(from_raw.begin(), from_raw.end());
  from_raw.erase(std::unique(from_raw.begin(), from_raw.end()), from_raw.end());

  // At most one bucket per width in range (10,000 caps what a wide, sparse range reserves).
  out.reserve(out.size() +
              static_cast<size_t>(std::min<TimestampMs>((end - start) / width + 1, 10'000)));
  std::vector<Point> points;
  // Only the samples of the buckets asked for, (start, end] rounded to whole buckets: a query at
  // "now" needs the open window's last bucket or two, not its whole span.
  const TimestampMs first_needed = bucket_end(start + 1, width) - width + 1;
  const TimestampMs last_needed =
      bucket_end(end, width) == end ? end : bucket_end(end, width) - width;
  // Rolls up the raw samples of the windows from the one ending at `first` to `last`.
  auto roll_up_raw = [&](TimestampMs first, TimestampMs last) -> Status {
    const TimestampMs from = std::max(first - kChunkSpan + 1, first_needed);
    const TimestampMs to = std::min(last, last_needed);
    points.clear();
    if (from <= to) {
      if (auto s = read(series, from, to, points); !s) return s;
    }
    build_rollups(points, width, start, end, out, with_sketches);
    return Status::ok();
  };
  size_t next_raw = 0;
  auto emit_raw_until = [&](TimestampMs limit) -> Status {
    for (; next_raw < from_raw.size() && from_raw[next_raw] < limit; ++next_raw) {
      const TimestampMs w = from_raw[next_raw];
      if (auto s = roll_up_raw(w, w); !s) return s;
    }
    return Status::ok();
  };

  auto* cf = width == kRollup5m ? impl_->rollup5m_cf : impl_->rollup1h_cf;
  // A key holds the windows of its block span up to its time: the first that can hold
  // first_window is at or after it, the last is the one of last_window's block (a data dir of
  // format 3, read only, has 1-hour keys per window; those are in this range too).
  SeriesTimeKey first(series, first_window);
  SeriesTimeKey upper(series,
                      std::min(bucket_end(last_window, rollup_block_span(width)) + 1, raw_from));
  rocksdb::Slice upper_slice = upper.slice();
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, cf));
  std::vector<Rollup> stored;
  for (it->Seek(first.slice()); it->Valid(); it->Next()) {
    stored.clear();
    if (auto s =
            detail::decode_rollup_value(it->value().ToStringView(), SeriesTimeKey::time(it->key()),
                                        width, start, end, stored, with_sketches);
        !s) {
      return s;
    }
    for (auto& r : stored) {
      const TimestampMs w = window_of(r.end);
      if (auto s = emit_raw_until(w); !s) return s;
      if (next_raw < from_raw.size() && from_raw[next_raw] == w) continue;  // emitted from raw
      out.push_back(std::move(r));
    }
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "reading rollups");
  if (auto s = emit_raw_until(kMaxTimestamp + 1); !s) return s;
  if (raw_from > last_window) return Status::ok();
  // The windows from raw_from on, in one read of their samples.
  return roll_up_raw(raw_from, last_window);
}

size_t RocksDbStore::dirty_windows() const {
  std::lock_guard lock(impl_->head_mutex);
  return impl_->dirty.size();
}

}  // namespace kpid::store
