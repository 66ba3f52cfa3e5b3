#pragma once
// Building rollup buckets from raw samples, and their compact on-disk form.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/store/sample_store.h"

namespace kpid::store {

// The end of the bucket of width `width` that holds `timestamp`: the smallest multiple of
// `width` that is >= timestamp.
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

}  // namespace kpid::store
