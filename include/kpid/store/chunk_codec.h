#pragma once
// Gorilla-style compression of one series' samples (Pelkonen et al., "Gorilla: A Fast, Scalable,
// In-Memory Time Series Database", VLDB 2015), widened for millisecond timestamps and arbitrary
// gaps. Regular scrapes cost about 1 bit per timestamp and unchanged values 1 bit per value.
//
// Chunk format, version 1 (all multi-byte header fields are LEB128 varints):
//   byte     format version (1)
//   varint   sample count n
//   if n > 0:
//     varint zigzag(first timestamp)
//     bit stream, most significant bit of each byte first, zero-padded to a whole byte:
//       64 bits  IEEE-754 bit pattern of the first value
//       then for samples 2..n, a timestamp field followed by a value field.
//
// Timestamp field: D = delta - previous delta (the previous delta is 0 before the second
// sample), computed modulo 2^64 and read as a two's complement int64 so that no timestamp pair
// can overflow. It is written in the first bucket that holds it:
//   '0'                    D == 0
//   '10'     + 7 bits      D in [-2^6,  2^6)
//   '110'    + 9 bits      D in [-2^8,  2^8)
//   '1110'   + 12 bits     D in [-2^11, 2^11)
//   '11110'  + 20 bits     D in [-2^19, 2^19)        (up to ~8.7 minutes of jitter)
//   '111110' + 32 bits     D in [-2^31, 2^31)        (up to ~24 days)
//   '111111' + 64 bits     any D                     (years, int64-limit jumps)
// Payloads are two's complement, sign-extended on read.
//
// Value field: X = bits(value) XOR bits(previous value).
//   '0'                                X == 0
//   '10' + meaningful bits             X fits the previous window (its leading and trailing
//                                      zero counts are at least the window's)
//   '11' + 6 bits leading zeros + 6 bits (length - 1) + length meaningful bits
//                                      opens a new window; length 1..64
// Values are compared by bit pattern, so NaN payloads, infinities and -0.0 round-trip exactly.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/store/sample_store.h"

namespace kpid::store {

inline constexpr uint8_t kChunkFormatVersion = 1;

// Builds one chunk incrementally. Any int64 timestamps in any order round-trip exactly (the
// arithmetic is modulo 2^64); the storage engine feeds non-decreasing timestamps, with equal
// timestamps kept as separate samples, which is what the buckets are sized for. Not thread-safe.
class ChunkEncoder {
 public:
  void append(TimestampMs timestamp, double value);

  // Samples appended so far.
  size_t count() const { return count_; }

  // Encoded size bytes() would return now, so the engine can cut chunks by size cheaply.
  size_t size_bytes() const;

  // The chunk holding every sample appended so far. The encoder stays usable: appending more and
  // calling bytes() again yields the longer chunk.
  std::string bytes() const;

  // Forgets all samples, keeping the buffer's capacity.
  void clear();

 private:
  void put_bits(uint64_t bits, int width);  // low `width` bits of `bits`, width in 1..64

  std::string stream_;      // bit stream, last byte partially filled
  int free_bits_ = 0;       // unused low bits in stream_'s last byte
  size_t count_ = 0;
  uint64_t first_timestamp_ = 0;
  uint64_t prev_timestamp_ = 0;
  uint64_t prev_delta_ = 0;
  uint64_t prev_value_ = 0;
  int window_leading_ = -1;  // -1: no window opened yet
  int window_trailing_ = 0;
};

// Decodes a chunk produced by ChunkEncoder. Never reads past `bytes`; fails (invalid_argument,
// message says what was wrong) on an unknown version, truncation, an impossible field (e.g. a
// window reuse before any window, a window wider than 64 bits), non-zero padding, or trailing
// bytes.
Result<std::vector<Point>> decode_chunk(std::string_view bytes);

}  // namespace kpid::store
