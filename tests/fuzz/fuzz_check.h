#pragma once
// Helpers shared by the fuzz targets: invariant checks that stop at the first broken one, and a
// reader that turns the fuzzer's bytes into numbers. Plain C++ (no libFuzzer header), so the
// targets also build into the corpus replay with g++.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace kpid::fuzz {

// A broken invariant: prints what and aborts, which libFuzzer reports as a crash (and saves the
// input) and which fails the replay test.
[[noreturn]] inline void fail(std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  if (!detail.empty()) {
    std::fprintf(stderr, "  %.*s\n", static_cast<int>(detail.size()), detail.data());
  }
  std::abort();
}

inline void check(bool ok, std::string_view what, std::string_view detail = {}) {
  if (!ok) fail(what, detail);
}

// The bit pattern of a double: "reproduce exactly" means these are equal (NaN payloads, -0.0).
inline uint64_t bits(double v) {
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

inline double from_bits(uint64_t b) {
  double v = 0;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

// Reads numbers from the front of the input; past its end everything reads as zero, so every
// input means something.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return empty() ? 0 : size_ - pos_; }

  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }

  // `n` bytes (at most 8), little-endian.
  uint64_t uint(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{byte()} << (8 * i);
    return v;
  }

  // Everything not read yet.
  std::string_view rest() {
    if (empty()) return {};
    std::string_view out(reinterpret_cast<const char*>(data_) + pos_, size_ - pos_);
    pos_ = size_;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace kpid::fuzz
