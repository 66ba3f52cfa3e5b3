#include "plugins.h"

#include <algorithm>

#include "kpid/core/varint.h"
#include "kpid/store/chunk_codec.h"
#include "kpid/store/rollup.h"

namespace kpid::store::detail {

void put_be64(char* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

uint64_t get_be64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

SeriesTimeKey::SeriesTimeKey(SeriesId id, TimestampMs t) {
  put_be64(bytes, id);
  put_be64(bytes + 8, static_cast<uint64_t>(t) ^ (1ull << 63));
}

SeriesId SeriesTimeKey::series(const rocksdb::Slice& key) { return get_be64(key.data()); }

TimestampMs SeriesTimeKey::time(const rocksdb::Slice& key) {
  return static_cast<TimestampMs>(get_be64(key.data() + 8) ^ (1ull << 63));
}

WindowSeriesKey::WindowSeriesKey(TimestampMs window, SeriesId id) {
  put_be64(bytes, static_cast<uint64_t>(window) ^ (1ull << 63));
  put_be64(bytes + 8, id);
}

TimestampMs WindowSeriesKey::window(const rocksdb::Slice& key) {
  return static_cast<TimestampMs>(get_be64(key.data()) ^ (1ull << 63));
}

SeriesId WindowSeriesKey::series(const rocksdb::Slice& key) { return get_be64(key.data() + 8); }

void insert_point(std::vector<Point>& points, Point p) {
  if (points.empty() || points.back().timestamp < p.timestamp) {
    points.push_back(p);
    return;
  }
  auto it = std::lower_bound(points.begin(), points.end(), p.timestamp,
                             [](const Point& a, TimestampMs t) { return a.timestamp < t; });
  if (it != points.end() && it->timestamp == p.timestamp) {
    it->value = p.value;
  } else {
    points.insert(it, p);
  }
}

void merge_runs(std::span<const std::vector<Point>> runs, std::vector<Point>& out) {
  out.clear();
  if (runs.size() == 1) {
    out = runs[0];
    return;
  }
  // Runs are usually disjoint and in order (checkpoints of one window): then this is a copy.
  size_t total = 0;
  for (const auto& r : runs) total += r.size();
  out.reserve(total);
  bool ordered = true;
  for (const auto& r : runs) {
    if (r.empty()) continue;
    if (!out.empty() && r.front().timestamp <= out.back().timestamp) {
      ordered = false;
      break;
    }
    out.insert(out.end(), r.begin(), r.end());
  }
  if (ordered) return;
  // General case: stable sort by time with the run index breaking ties, keep the last of each.
  struct Tagged {
    Point p;
    size_t run;
  };
  std::vector<Tagged> all;
  all.reserve(total);
  for (size_t i = 0; i < runs.size(); ++i) {
    for (const auto& p : runs[i]) all.push_back({p, i});
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const Tagged& a, const Tagged& b) { return a.p.timestamp < b.p.timestamp; });
  out.clear();
  for (const auto& t : all) {
    if (!out.empty() && out.back().timestamp == t.p.timestamp) {
      out.back().value = t.p.value;  // later run (stable order) wins
    } else {
      out.push_back(t.p);
    }
  }
}

bool ChunkMergeOperator::merge(const rocksdb::Slice* existing,
                               std::span<const rocksdb::Slice> operands,
                               std::string* result) const {
  std::vector<std::vector<Point>> runs;
  runs.reserve(operands.size() + 1);
  auto add = [&runs](const rocksdb::Slice& s) {
    runs.emplace_back();
    return decode_chunk(std::string_view(s.data(), s.size()), runs.back()).is_ok();
  };
  if (existing != nullptr && !add(*existing)) return false;
  for (const auto& op : operands) {
    if (!add(op)) return false;
  }
  std::vector<Point> merged;
  merge_runs(runs, merged);
  *result = encode_chunk(merged);
  return true;
}

bool ChunkMergeOperator::FullMergeV2(const MergeOperationInput& in,
                                     MergeOperationOutput* out) const {
  return merge(in.existing_value, in.operand_list, &out->new_value);
}

bool ChunkMergeOperator::PartialMergeMulti(const rocksdb::Slice&,
                                           const std::deque<rocksdb::Slice>& operands,
                                           std::string* new_value, rocksdb::Logger*) const {
  std::vector<rocksdb::Slice> list(operands.begin(), operands.end());
  return merge(nullptr, list, new_value);
}

std::string encode_rollup_piece(std::span<const Rollup> buckets, uint32_t windows,
                                TimestampMs key_time, DurationMs width) {
  std::string out(1, static_cast<char>(kRollupPieceTag));
  append_varint(out, windows);
  out += encode_rollup_block(buckets, key_time, width);
  return out;
}

uint32_t rollup_window_bit(TimestampMs key_time, TimestampMs window, DurationMs span) {
  const TimestampMs index = (key_time - window) / span;
  return index >= 0 && index < 32 ? uint32_t{1} << index : 0;
}

Status decode_rollup_value(std::string_view value, TimestampMs key_time, DurationMs width,
                           TimestampMs start, TimestampMs end, std::vector<Rollup>& out,
                           bool with_sketches, uint32_t* windows) {
  uint32_t covered = 1;
  if (!value.empty() && static_cast<uint8_t>(value[0]) == kRollupPieceTag) {
    size_t pos = 1;
    uint64_t mask = 0;
    if (!read_varint(value, pos, mask) || mask > UINT32_MAX) {
      return Status::invalid_argument("corrupt rollup: bad window mask");
    }
    covered = static_cast<uint32_t>(mask);
    value.remove_prefix(pos);
  }
  if (windows != nullptr) *windows = covered;
  return decode_rollup_block(value, key_time, width, start, end, out, with_sketches);
}

bool RollupMergeOperator::merge(const rocksdb::Slice& key, const rocksdb::Slice* existing,
                                std::span<const rocksdb::Slice> operands,
                                std::string* result) const {
  if (key.size() != 16) return false;
  const TimestampMs key_time = SeriesTimeKey::time(key);
  std::vector<Rollup> buckets;
  uint32_t covered = 0;
  if (existing != nullptr &&
      !decode_rollup_value(existing->ToStringView(), key_time, width_, kMinTimestamp, kMaxTimestamp,
                           buckets, true, &covered)
           .is_ok()) {
    return false;
  }
  std::vector<Rollup> piece;
  std::vector<Rollup> merged;
  for (const auto& op : operands) {
    piece.clear();
    uint32_t windows = 0;
    if (!decode_rollup_value(op.ToStringView(), key_time, width_, kMinTimestamp, kMaxTimestamp,
                             piece, true, &windows)
             .is_ok()) {
      return false;
    }
    // What the piece covers is replaced by what it holds; both lists are in time order.
    merged.clear();
    merged.reserve(buckets.size() + piece.size());
    auto next = piece.begin();
    for (auto& r : buckets) {
      for (; next != piece.end() && next->end < r.end; ++next) merged.push_back(std::move(*next));
      const bool replaced =
          (rollup_window_bit(key_time, bucket_end(r.end, span_), span_) & windows) != 0;
      if (replaced || (next != piece.end() && next->end == r.end)) continue;
      merged.push_back(std::move(r));
    }
    for (; next != piece.end(); ++next) merged.push_back(std::move(*next));
    buckets.swap(merged);
    covered |= windows;
  }
  *result = encode_rollup_piece(buckets, covered, key_time, width_);
  return true;
}

bool RollupMergeOperator::FullMergeV2(const MergeOperationInput& in,
                                      MergeOperationOutput* out) const {
  return merge(in.key, in.existing_value, in.operand_list, &out->new_value);
}

bool RollupMergeOperator::PartialMergeMulti(const rocksdb::Slice& key,
                                            const std::deque<rocksdb::Slice>& operands,
                                            std::string* new_value, rocksdb::Logger*) const {
  std::vector<rocksdb::Slice> list(operands.begin(), operands.end());
  return merge(key, nullptr, list, new_value);
}

bool RetentionFilter::expired(const rocksdb::Slice& key) const {
  if (key.size() != 16) return false;
  return SeriesTimeKey::time(key) <= clock_.now_ms() - keep_;
}

bool RetentionFilter::Filter(int, const rocksdb::Slice& key, const rocksdb::Slice&, std::string*,
                             bool*) const {
  return expired(key);
}

bool RetentionFilter::FilterMergeOperand(int, const rocksdb::Slice& key,
                                         const rocksdb::Slice&) const {
  return expired(key);
}

}  // namespace kpid::store::detail
