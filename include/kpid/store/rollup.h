#pragma once
// Building rollup buckets from raw samples, and their compact on-disk form.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/store/sample_store.h"

namespace kpid::store {

// Timestamps the store accepts: +-2^62 ms (146 million years) keeps every bucket and window
// end inside int64.
inline constexpr TimestampMs kMaxTimestamp = TimestampMs{1} << 62;
inline constexpr TimestampMs kMinTimestamp = -kMaxTimestamp;

// The end of the bucket of width `width` that holds `timestamp`: the smallest multiple of
// `width` that is >= timestamp. `timestamp` within [kMinTimestamp, kMaxTimestamp].
TimestampMs bucket_end(TimestampMs timestamp, DurationMs width);

// Appends to `out` one Rollup per non-empty bucket of `width` over `points` (sorted by time,
// unique timestamps), keeping only buckets whose end E has start < E <= end. Stale markers
// count as no sample (a bucket of nothing else is empty); one newer than a bucket's samples
// sets its ends_stale. Without `with_sketches` the sketches stay empty (most of the work).
void build_rollups(std::span<const Point> points, DurationMs width, TimestampMs start,
                   TimestampMs end, std::vector<Rollup>& out, bool with_sketches = true);

// Adds one sample to `r` (which must be for the bucket holding it); samples must come in time
// order. The first sample of an empty rollup sets every field. A stale marker only sets
// ends_stale, and only on a rollup that already counts a sample. Without `with_sketch` the
// sketch is left alone.
void add_to_rollup(Rollup& r, TimestampMs timestamp, double value, bool with_sketch = true);

// Merges `from` into `into`: two rollups of the same bucket made from different samples (two
// appends of one window). Exact when one piece's samples all come before the other's: count,
// sum, min, max, sum of squares, first, last, increase (the step between the pieces included)
// and the sketch are then what build_rollups gives for the union. What cannot be exact:
// - pieces that interleave in time: increase is the sum of the two, without the steps between
//   the pieces' samples (they are not kept); first and last still go by timestamp;
// - a timestamp in both pieces counts twice (raw storage keeps the later value only);
// - ends_stale is the flag of the piece holding the later last sample (`from`'s on a tie): a
//   marker's own time is not kept, so one from the earlier piece that is newer than the later
//   piece's samples is lost.
// Fails (into unchanged) when the sketches cannot merge (different accuracies).
Status merge_rollup(Rollup& into, const Rollup& from);

// The rollups of one block (block end W, buckets of `width` inside (W - span, W]: a 2-hour
// chunk window of 5-minute buckets, a UTC day of 1-hour ones) as one value, column by column so
// that similar numbers sit together: version byte (4), varint n, then value columns (chunk_codec.h:
// scaled decimals or XOR) of (W - end) / width, count, end - first timestamp, end - last timestamp,
// sum, min, max, sum of squares, first, last and increase, then per bucket the sketch's buckets
// (DDSketch::encode_buckets), preceded by a flag byte (bit 0: followed by the sketch's own min, max
// and sum, when NaN or infinities made them differ from the bucket's; bit 1: ends_stale). Decoding
// checks every field, and reads versions 3 (two-value columns in the older form: read_value_column)
// and 2 (written before stale markers were known: bit 1 never set) too.
std::string encode_rollup_block(std::span<const Rollup> rollups, TimestampMs window_end,
                                DurationMs width);
// Appends the buckets with start < end <= `end` to `out`, in time order. Without
// `with_sketches` their sketches are skipped (left empty), which is most of the work.
Status decode_rollup_block(std::string_view bytes, TimestampMs window_end, DurationMs width,
                           TimestampMs start, TimestampMs end, std::vector<Rollup>& out,
                           bool with_sketches = true);

}  // namespace kpid::store
