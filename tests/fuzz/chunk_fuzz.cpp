// Fuzzes the store's decoders (chunks, value columns, rollup blocks, sketches), which read bytes
// from disk, and the encoders they pair with. The first byte picks a mode (its value mod 7):
//   0 decode_chunk(rest)
//   1 points derived from the rest: encode_chunk, then decode_chunk
//   2 read_value_column(rest after a 2-byte count and a byte picking the two-value form)
//   3 values derived from the rest: append_value_column, then read_value_column
//   4 decode_rollup_block(rest after a width byte and an 8-byte window end)
//   5 rollups built from derived points: encode_rollup_block, then decode_rollup_block
//   6 DDSketch::decode(rest)
// (chunk_seeds.cpp writes seeds of each mode.)
// Checked, besides "no crash, no leak, no undefined behaviour, no exception, never reads past
// the input":
// - decoding arbitrary bytes fails with invalid_argument "corrupt ..." or gives what, encoded
//   again, decodes to the same thing bit for bit (timestamps, value bits: NaN payloads, -0.0);
//   decoding appends after what the output vector already held;
// - encoding any points, values or rollups and decoding them reproduces them exactly.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "kpid/core/stale_marker.h"
#include "kpid/core/varint.h"
#include "kpid/store/chunk_codec.h"
#include "kpid/store/ddsketch.h"
#include "kpid/store/rollup.h"

namespace kpid::fuzz {
namespace {

using store::Point;
using store::Rollup;

constexpr size_t kMaxDerived = 1024;           // points or values made from one input
constexpr DurationMs kWindow = 2 * 3'600'000;  // the store's chunk window

void check_error(const Status& st) {
  check(st.code() == StatusCode::kInvalidArgument, "decode failure is not invalid_argument",
        st.message());
  check(st.message().starts_with("corrupt "), "decode failure does not say corrupt", st.message());
}

void check_same_points(const std::vector<Point>& a, const std::vector<Point>& b,
                       std::string_view what) {
  check(a.size() == b.size(), what, "another number of points");
  for (size_t i = 0; i < a.size(); ++i) {
    check(a[i].timestamp == b[i].timestamp && bits(a[i].value) == bits(b[i].value), what,
          "point " + std::to_string(i) + " differs");
  }
}

void check_same_values(const std::vector<double>& a, const std::vector<double>& b,
                       std::string_view what) {
  check(a.size() == b.size(), what, "another number of values");
  for (size_t i = 0; i < a.size(); ++i) {
    check(bits(a[i]) == bits(b[i]), what, "value " + std::to_string(i) + " differs");
  }
}

// Decodes `bytes` after a sentinel point, which must stay in front.
Status decode_after_sentinel(std::string_view bytes, std::vector<Point>& points) {
  const Point sentinel{-42, from_bits(0x7ff8'dead'beef'0001)};
  std::vector<Point> out = {sentinel};
  Status st = store::decode_chunk(bytes, out);
  check(!out.empty() && out[0].timestamp == sentinel.timestamp &&
            bits(out[0].value) == bits(sentinel.value),
        "decode_chunk changed what the vector held before");
  points.assign(out.begin() + 1, out.end());
  return st;
}

// Values that reach every coding: decimals of every exponent, counters, raw bit patterns (NaN
// payloads, infinities, -0.0, subnormals).
double derived_value(ByteReader& in, double& counter) {
  static constexpr double kPowers[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e15, 1e16};
  const uint8_t kind = in.byte();
  switch (kind % 4) {
    case 0:
      return static_cast<double>(static_cast<int16_t>(in.uint(2))) /
             kPowers[(kind >> 2) % std::size(kPowers)];
    case 1: counter += static_cast<double>(in.byte() % 4); return counter;
    case 2: return from_bits(in.uint(8));
    default: return static_cast<double>(static_cast<int64_t>(in.uint(8)) >> (kind >> 2));
  }
}

// Timestamps: a regular interval with jitter and gaps, or (`any_order`) any int64 in any order.
std::vector<Point> derived_points(ByteReader& in, bool any_order) {
  const size_t n = in.uint(2) % kMaxDerived;
  const bool arbitrary = any_order && (in.byte() & 1);
  TimestampMs t = static_cast<TimestampMs>(in.uint(8)) >> 2;  // within +-2^61
  const TimestampMs step = static_cast<TimestampMs>(in.uint(2)) + 1;
  double counter = 0;
  std::vector<Point> points;
  for (size_t i = 0; i < n && !in.empty(); ++i) {
    const uint8_t jitter = in.byte();
    if (arbitrary) {
      t = static_cast<TimestampMs>(in.uint(8));
    } else {
      t += step + (jitter & 0x80 ? static_cast<TimestampMs>(jitter & 0x7f) * step : 0);
    }
    points.push_back({t, derived_value(in, counter)});
  }
  return points;
}

// Chunks claiming more samples than this are skipped (above kMaxChunkSamples they are still
// decoded, to see them refused): a few bytes can legitimately hold millions of evenly spaced
// constant samples, and decoding those costs ~1 s of page faults while reaching no code a
// smaller count does not.
constexpr uint64_t kMaxDecodedSamples = uint64_t{1} << 16;

void chunk_decode(std::string_view bytes) {
  size_t pos = 1;
  uint64_t claimed = 0;
  if (read_varint(bytes, pos, claimed) && claimed > kMaxDecodedSamples &&
      claimed <= store::kMaxChunkSamples) {
    return;
  }
  std::vector<Point> points;
  if (Status st = decode_after_sentinel(bytes, points); !st) {
    check_error(st);
    return;
  }
  check(points.size() <= store::kMaxChunkSamples, "decoded more samples than a chunk holds");
  const std::string again = store::encode_chunk(points);
  std::vector<Point> decoded;
  check(decode_after_sentinel(again, decoded).is_ok(), "a decoded chunk re-encodes unreadably");
  check_same_points(points, decoded, "a decoded chunk re-encodes to other points");
}

void chunk_round_trip(ByteReader& in) {
  const std::vector<Point> points = derived_points(in, true);
  const std::string bytes = store::encode_chunk(points);
  std::vector<Point> decoded;
  Status st = decode_after_sentinel(bytes, decoded);
  check(st.is_ok(), "an encoded chunk does not decode", st.message());
  check_same_points(points, decoded, "encode then decode changed the points");
}

void column_decode(ByteReader& in) {
  const size_t count = in.uint(2);
  const bool pairs = (in.byte() & 1) != 0;  // either form of two-value columns
  const std::string_view bytes = in.rest();
  size_t pos = 0;
  std::vector<double> values = {1.5};  // appended to, never changed
  if (Status st = store::read_value_column(bytes, pos, count, values, pairs); !st) {
    check_error(st);
    return;
  }
  check(bits(values[0]) == bits(1.5), "read_value_column changed what the vector held");
  check(values.size() == count + 1 && pos <= bytes.size(), "read_value_column read wrongly");
  values.erase(values.begin());
  std::string again;
  store::append_value_column(again, values);
  std::vector<double> decoded;
  size_t again_pos = 0;
  check(store::read_value_column(again, again_pos, count, decoded, true).is_ok() &&
            again_pos == again.size(),
        "a decoded value column re-encodes unreadably");
  check_same_values(values, decoded, "a decoded value column re-encodes to other values");
}

void column_round_trip(ByteReader& in) {
  std::vector<double> values;
  double counter = 0;
  const size_t n = in.byte() % kMaxDerived;
  for (size_t i = 0; i < n && !in.empty(); ++i) values.push_back(derived_value(in, counter));
  std::string bytes = "prefix";  // columns follow other data in a rollup block
  store::append_value_column(bytes, values);
  size_t pos = 6;
  std::vector<double> decoded;
  Status st = store::read_value_column(bytes, pos, values.size(), decoded, true);
  check(st.is_ok(), "an appended value column does not read", st.message());
  check(pos == bytes.size(), "a value column read ends elsewhere than it was written");
  check_same_values(values, decoded, "append then read changed the values");
}

bool same_rollup(const Rollup& a, const Rollup& b) {
  return a.end == b.end && a.count == b.count && a.first_timestamp == b.first_timestamp &&
         a.last_timestamp == b.last_timestamp && bits(a.sum) == bits(b.sum) &&
         bits(a.min) == bits(b.min) && bits(a.max) == bits(b.max) &&
         bits(a.sum_squares) == bits(b.sum_squares) && bits(a.first) == bits(b.first) &&
         bits(a.last) == bits(b.last) && bits(a.increase) == bits(b.increase) &&
         a.ends_stale == b.ends_stale && a.sketch.encode() == b.sketch.encode();
}

// A chunk window's end, as the store keys rollup blocks: a multiple of 2h inside its range.
TimestampMs window_end(ByteReader& in) {
  const auto windows = static_cast<int64_t>(in.uint(8) >> 20) - (int64_t{1} << 43);
  return std::clamp<TimestampMs>(windows, store::kMinTimestamp / kWindow,
                                 store::kMaxTimestamp / kWindow) *
         kWindow;
}

void rollup_decode(ByteReader& in) {
  const DurationMs width = (in.byte() & 1) ? store::kRollup1h : store::kRollup5m;
  const TimestampMs end = window_end(in);
  const std::string_view bytes = in.rest();
  std::vector<Rollup> rollups;
  if (Status st = store::decode_rollup_block(bytes, end, width, store::kMinTimestamp, end, rollups);
      !st) {
    check_error(st);
    return;
  }
  for (size_t i = 0; i < rollups.size(); ++i) {
    const Rollup& r = rollups[i];
    check(r.count >= 1 && r.end <= end && r.first_timestamp <= r.last_timestamp &&
              r.last_timestamp <= r.end && r.end - r.first_timestamp < width,
          "a decoded rollup bucket is inconsistent");
    check(i == 0 || rollups[i - 1].end < r.end, "decoded rollup buckets out of order");
  }
  // Decoded blocks may hold values the encoder would not write (fractional offsets), so the
  // fixed point is one encoding later.
  const std::string once = store::encode_rollup_block(rollups, end, width);
  std::vector<Rollup> decoded;
  Status st = store::decode_rollup_block(once, end, width, store::kMinTimestamp, end, decoded);
  check(st.is_ok(), "a decoded rollup block re-encodes unreadably", st.message());
  check(store::encode_rollup_block(decoded, end, width) == once,
        "a re-encoded rollup block does not decode to itself");
}

void rollup_round_trip(ByteReader& in) {
  const DurationMs width = (in.byte() & 1) ? store::kRollup1h : store::kRollup5m;
  const TimestampMs end = window_end(in);
  // Points inside the window (end - 2h, end], sorted and unique, as a chunk holds them.
  std::vector<Point> points = derived_points(in, false);
  for (auto& p : points)
    p.timestamp = end - static_cast<TimestampMs>(static_cast<uint64_t>(p.timestamp) % kWindow);
  std::sort(points.begin(), points.end(),
            [](const Point& a, const Point& b) { return a.timestamp < b.timestamp; });
  points.erase(
      std::unique(points.begin(), points.end(),
                  [](const Point& a, const Point& b) { return a.timestamp == b.timestamp; }),
      points.end());
  std::vector<Rollup> rollups;
  store::build_rollups(points, width, end - kWindow, end, rollups);
  size_t total = 0;
  for (const auto& r : rollups) total += r.count;
  // Stale markers are no samples of a rollup.
  const auto counted =
      static_cast<size_t>(std::count_if(points.begin(), points.end(), [](const Point& p) {
        return !kpid::is_stale_marker(p.value);
      }));
  check(total == counted, "build_rollups lost or invented samples");

  const std::string bytes = store::encode_rollup_block(rollups, end, width);
  std::vector<Rollup> decoded;
  Status st = store::decode_rollup_block(bytes, end, width, end - kWindow, end, decoded);
  check(st.is_ok(), "an encoded rollup block does not decode", st.message());
  check(decoded.size() == rollups.size(), "a rollup block decodes to another number of buckets");
  for (size_t i = 0; i < rollups.size(); ++i) {
    check(same_rollup(rollups[i], decoded[i]), "encode then decode changed a rollup bucket",
          std::to_string(i));
  }
  std::vector<Rollup> light;
  check(store::decode_rollup_block(bytes, end, width, end - kWindow, end, light, false).is_ok() &&
            light.size() == rollups.size(),
        "a rollup block decodes without sketches to other buckets");
}

void sketch_decode(std::string_view bytes) {
  auto sketch = store::DDSketch::decode(bytes);
  if (!sketch) {
    check(sketch.status().code() == StatusCode::kInvalidArgument,
          "sketch decode failure is not invalid_argument", sketch.status().message());
    return;
  }
  const std::string once = sketch->encode();
  auto again = store::DDSketch::decode(once);
  check(again.is_ok() && again->encode() == once, "a decoded sketch does not re-encode to itself");
  if (sketch->count() > 0) {
    check(sketch->quantile(0) == sketch->min() && sketch->quantile(1) == sketch->max(),
          "sketch quantiles 0 and 1 are not its min and max");
    for (double q : {0.01, 0.5, 0.99}) {
      const double v = sketch->quantile(q);
      check(v >= sketch->min() && v <= sketch->max(), "a sketch quantile outside [min, max]");
    }
  }
}

}  // namespace
}  // namespace kpid::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kpid::fuzz;
  ByteReader in(data, size);
  switch (in.byte() % 7) {
    case 0: chunk_decode(in.rest()); break;
    case 1: chunk_round_trip(in); break;
    case 2: column_decode(in); break;
    case 3: column_round_trip(in); break;
    case 4: rollup_decode(in); break;
    case 5: rollup_round_trip(in); break;
    case 6: sketch_decode(in.rest()); break;
  }
  return 0;
}
