#pragma once
// Compression of one series' samples into a chunk. Timestamps are delta-of-delta coded (the
// Gorilla scheme: Pelkonen et al., VLDB 2015); values that are decimals with few digits (2.57,
// 1200, 0.001) are stored as scaled integers, delta or delta-of-delta coded; other values
// (noisy floats, NaN, infinities, -0.0) take the smaller of Gorilla's XOR coding and their bit
// patterns as ordered integers, frame-of-reference or delta packed. Everything round-trips
// bit-exactly.
//
// Chunk format, version 3. Varints are LEB128; "zz" is zigzag.
//   byte     format version (3)
//   varint   sample count n (at most kMaxChunkSamples)
//   if n > 0:
//     byte   timestamp unit U (0..3): every timestamp is s_i * 10^U ms; below, s_i
//     varint zz(s0)
//     if n > 1: byte timestamp mode, then
//       0  delta of delta: varint zz(s1 - s0); if n > 2, packed block of the n - 2 values
//          zz(delta-of-delta)
//       1  grid: varint zz(D); packed block of the n - 1 values zz(s_i - (s0 + i * D)), so a
//          regular interval with jittered scrapes costs one exception per jitter
//     byte   value mode:
//       0  decimal: byte E (0..15), varint zz(m0), where value i == m_i / 10^E exactly;
//          if n == 2 (version 3): varint zz(m1 - m0);
//          if n > 2 (version 2: n > 1): byte order (1, 2 or 3);
//            order 1: packed block of the n - 1 values zz(m_i - m_{i-1})
//            order 2: varint zz(m1 - m0), then packed block of the n - 2 values zz(delta of
//                     delta) (steady counters cost nothing)
//            order 3 (version 3): packed block of the n - 1 values m_i - m_{i-1}, all >= 0 (a
//                     counter without a reset: no sign bit)
//       1  XOR: a bit stream of Gorilla value fields (the first value's 64 bits, then per value
//          X = bits ^ previous bits: '0' if X == 0; '10' + the meaningful bits if X fits the
//          open window; '11' + 6 bits leading zeros + 6 bits (length - 1) + the bits),
//          most significant bit first, zero-padded to a whole byte.
//       2  ordered bits (version 3): each value's bits as an integer in value order (sign bit
//          set: all bits flipped; else the sign bit flipped); byte order, then
//            order 0: varint least key, packed block of the n values key_i - least
//            order 1: varint key_0, packed block of the n - 1 values zz(key_i - key_{i-1})
//          (noisy floats in a band cost about log2 of the band in ulps, less than XOR)
//   Arithmetic on timestamps and mantissas is modulo 2^64, so any int64 timestamps in any
//   order round-trip.
//
// Version 2 (still read) differs in the timestamps alone: no unit, no mode; varint zz(t0),
// if n > 1 varint zz(t1 - t0), if n > 2 the delta-of-delta block.
//
// Packed block of k unsigned values (patched frame of reference: most values in w bits, the
// few outliers listed apart so one long gap does not widen every slot):
//   byte   w (0..64)
//   varint number of exceptions x, then x pairs (varint index gap, varint value): the first
//          index is the gap itself, each later index is the previous + 1 + gap
//   k slots of w bits, most significant bit first, zero-padded to a whole byte; an
//   exception's slot is 0.
// or, when that is smaller (version 3), Rice coded:
//   byte   128 + r (r in 0..63)
//   per value v, q = v >> r: if q < 32, q one bits, a zero bit and the low r bits of v; else
//   32 one bits and the 64 bits of v. Most significant bit first, zero-padded to a whole byte.
// A regular scrape interval costs 0 bits per timestamp; a constant value 0 bits per value.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/store/sample_store.h"

namespace kpid::store {

inline constexpr uint8_t kChunkFormatVersion = 3;
inline constexpr uint8_t kOldChunkFormatVersion = 2;  // read, never written
// Refusing larger counts bounds what a corrupt chunk can make the decoder allocate.
inline constexpr uint64_t kMaxChunkSamples = uint64_t{1} << 24;

// Encodes `points` in the given order (the engine passes them sorted by time, unique).
// At most kMaxChunkSamples points.
std::string encode_chunk(std::span<const Point> points);

// Decodes encode_chunk's output, appending to `out`. Never reads past `bytes`; fails
// (invalid_argument, the message says what was wrong) on an unknown version, truncation, an
// impossible field, non-zero padding or trailing bytes; `out` then holds an unspecified prefix.
Status decode_chunk(std::string_view bytes, std::vector<Point>& out);
Result<std::vector<Point>> decode_chunk(std::string_view bytes);

// The value coding of a chunk on its own (value mode byte onwards), for columns of numbers such
// as a rollup block's sums: append_value_column writes nothing for an empty column (and the
// version 3 form), and read_value_column reads `count` values at bytes[pos...], advancing pos,
// appending to `out`; `pairs`: the version 3 form (else version 2's, where two decimals take an
// order byte and a block).
void append_value_column(std::string& out, std::span<const double> values);
Status read_value_column(std::string_view bytes, size_t& pos, size_t count,
                         std::vector<double>& out, bool pairs);

}  // namespace kpid::store
