#pragma once
// LEB128 varints and zigzag encoding, shared by every binary format kpid writes (label sets,
// chunks, sketches).

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kpid {

// Appends `value` as an unsigned LEB128 varint (1 to 10 bytes).
inline void append_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

// Bytes append_varint(value) writes.
inline size_t varint_size(uint64_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

// Reads a varint at in[pos], advancing pos. False (pos unspecified) when the input ends first
// or the encoding overflows 64 bits, so corrupt input is refused rather than misread.
inline bool read_varint(std::string_view in, size_t& pos, uint64_t& out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= in.size()) return false;
    const auto byte = static_cast<uint8_t>(in[pos++]);
    if (shift == 63 && byte > 1) return false;
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      out = v;
      return true;
    }
  }
  return false;
}

// Maps signed to unsigned so small magnitudes of either sign get short varints.
inline uint64_t zigzag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t unzigzag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

// A double as its 8 IEEE-754 bytes, little-endian, so NaN payloads and -0.0 round-trip.
inline void append_f64(std::string& out, double d) {
  const auto bits = std::bit_cast<uint64_t>(d);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

// Reads append_f64's form at in[pos], advancing pos; false when fewer than 8 bytes remain.
inline bool read_f64(std::string_view in, size_t& pos, double& out) {
  if (pos > in.size() || in.size() - pos < 8) return false;
  uint64_t bits = 0;
  for (size_t i = 0; i < 8; ++i)
    bits |= static_cast<uint64_t>(static_cast<uint8_t>(in[pos + i])) << (8 * i);
  pos += 8;
  out = std::bit_cast<double>(bits);
  return true;
}

}  // namespace kpid
