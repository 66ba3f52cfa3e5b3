#pragma once
// RocksDB plug-ins of the storage engine (private to src/store):
// - ChunkMergeOperator: a chunk key's value is the union of every piece written to it (a sealed
//   head, a checkpoint, a backfill), a later piece winning on equal timestamps. Writers never
//   read-modify-write a chunk; RocksDB folds the pieces on reads and compactions.
// - RollupMergeOperator: the same for rollup_1h, whose key holds the 1-hour buckets of a UTC day
//   (its key time is the day's end): each piece replaces the buckets of the 2-hour windows it
//   names (rollup pieces, below), so the windows of a day are written one by one, in any order
//   and batch, without reading the day first.
// - RetentionFilter: drops keys whose time (the last 8 bytes of the key, a window end) has
//   fallen out of a retention period, during compaction, so expiry never scans the data.

#include <rocksdb/compaction_filter.h>
#include <rocksdb/merge_operator.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/time.h"
#include "kpid/store/sample_store.h"

namespace kpid::store::detail {

// Merges sorted runs of points; for equal timestamps the run with the higher index wins.
// The result is sorted with unique timestamps.
void merge_runs(std::span<const std::vector<Point>> runs, std::vector<Point>& out);

// Inserts `p` into sorted, unique `points`, replacing a point with the same timestamp.
void insert_point(std::vector<Point>& points, Point p);

class ChunkMergeOperator final : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override;
  bool PartialMergeMulti(const rocksdb::Slice& key, const std::deque<rocksdb::Slice>& operands,
                         std::string* new_value, rocksdb::Logger* logger) const override;
  const char* Name() const override { return "kpid.ChunkMerge"; }

 private:
  bool merge(const rocksdb::Slice* existing, std::span<const rocksdb::Slice> operands,
             std::string* result) const;
};

// A stored rollup value at a key whose time is K: either a rollup block (rollup.h) of the
// buckets of (K - window span, K], written that way by format 3 and older and by the 5-minute
// rollups still; or a piece: the byte kRollupPieceTag, a varint mask of the windows it covers
// (bit i: (K - (i + 1) * span, K - i * span]), then a rollup block with window end K of their
// buckets. A piece replaces every bucket of the windows it covers, so one covering a window and
// holding no bucket deletes that window's buckets.
inline constexpr uint8_t kRollupPieceTag = 0xd1;  // no rollup block version starts so

// The piece of `buckets` (sorted, each inside a window `windows` covers) at key time `key_time`.
std::string encode_rollup_piece(std::span<const Rollup> buckets, uint32_t windows,
                                TimestampMs key_time, DurationMs width);

// The bit of the window ending at `window` in a piece at key time `key_time` (windows of
// `span`); 0 for a window no mask can name (after key_time, or 32 spans or more before it).
uint32_t rollup_window_bit(TimestampMs key_time, TimestampMs window, DurationMs span);

// Decodes a stored rollup value at key time `key_time` (a piece or a block), appending its
// buckets with start < end <= `end` to `out` in time order (sketches only `with_sketches`);
// `windows`, when given, is set to the windows it covers (a block: bit 0 only).
Status decode_rollup_value(std::string_view value, TimestampMs key_time, DurationMs width,
                           TimestampMs start, TimestampMs end, std::vector<Rollup>& out,
                           bool with_sketches = true, uint32_t* windows = nullptr);

class RollupMergeOperator final : public rocksdb::MergeOperator {
 public:
  // `width`: the buckets' width; `span`: the windows' (a piece names windows of `span`).
  RollupMergeOperator(DurationMs width, DurationMs span) : width_(width), span_(span) {}
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override;
  bool PartialMergeMulti(const rocksdb::Slice& key, const std::deque<rocksdb::Slice>& operands,
                         std::string* new_value, rocksdb::Logger* logger) const override;
  const char* Name() const override { return "kpid.RollupMerge"; }

 private:
  bool merge(const rocksdb::Slice& key, const rocksdb::Slice* existing,
             std::span<const rocksdb::Slice> operands, std::string* result) const;
  DurationMs width_;
  DurationMs span_;
};

class RetentionFilter final : public rocksdb::CompactionFilter {
 public:
  RetentionFilter(const Clock& clock, DurationMs keep, const char* name)
      : clock_(clock), keep_(keep), name_(name) {}
  bool Filter(int level, const rocksdb::Slice& key, const rocksdb::Slice& value,
              std::string* new_value, bool* value_changed) const override;
  bool FilterMergeOperand(int level, const rocksdb::Slice& key,
                          const rocksdb::Slice& operand) const override;
  const char* Name() const override { return name_; }

 private:
  bool expired(const rocksdb::Slice& key) const;
  const Clock& clock_;
  DurationMs keep_;
  const char* name_;
};

// Key layout shared by the engine's column families: series id (8 bytes big-endian) then a
// time (8 bytes big-endian, sign bit flipped so negative times sort first).
struct SeriesTimeKey {
  char bytes[16];
  SeriesTimeKey(SeriesId id, TimestampMs t);
  rocksdb::Slice slice() const { return {bytes, sizeof bytes}; }
  static SeriesId series(const rocksdb::Slice& key);
  static TimestampMs time(const rocksdb::Slice& key);
};

// The key of rollup_due: window end first, so the windows that fall due are a prefix.
struct WindowSeriesKey {
  char bytes[16];
  WindowSeriesKey(TimestampMs window, SeriesId id);
  rocksdb::Slice slice() const { return {bytes, sizeof bytes}; }
  static TimestampMs window(const rocksdb::Slice& key);
  static SeriesId series(const rocksdb::Slice& key);
};

void put_be64(char* out, uint64_t v);
uint64_t get_be64(const char* in);

}  // namespace kpid::store::detail
