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
// unique timestamps), keeping only buckets whose end E has start < E <= end.
void build_rollups(std::span<const Point> points, DurationMs width, TimestampMs start,
                   TimestampMs end, std::vector<Rollup>& out);

// Adds one sample to `r` (which must be for the bucket holding it); samples must come in time
// order. The first sample of an empty rollup sets every field.
void add_to_rollup(Rollup& r, TimestampMs timestamp, double value);

// Compact binary form (version byte, varints, raw doubles, then the sketch); decode checks
// every field and fails (invalid_argument) on anything malformed.
std::string encode_rollup(const Rollup& r);
Result<Rollup> decode_rollup(TimestampMs end, std::string_view bytes);

// The rollups of one chunk window (window end W, buckets of `width` inside (W - span, W]) as
// one value: varint count, then per bucket varint (W - end) / width, varint length, rollup.
std::string encode_rollup_block(std::span<const Rollup> rollups, TimestampMs window_end,
                                DurationMs width);
// Appends the buckets with start < end <= `end` to `out`, in time order.
Status decode_rollup_block(std::string_view bytes, TimestampMs window_end, DurationMs width,
                           TimestampMs start, TimestampMs end, std::vector<Rollup>& out);

}  // namespace kpid::store
