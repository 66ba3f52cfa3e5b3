#pragma once
// UTF-8 validation, shared by the line-protocol parser, the selector parser and JSON output.

#include <cstddef>
#include <string_view>

namespace kpid {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid (overlong
// forms, surrogates, code points above U+10FFFF, stray continuation bytes, truncation).
inline size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 == 0xE0) {
    len = 3;
    lo = 0xA0;  // no overlong 3-byte forms
  } else if (b0 >= 0xE1 && b0 <= 0xEC) {
    len = 3;
  } else if (b0 == 0xED) {
    len = 3;
    hi = 0x9F;  // no UTF-16 surrogates
  } else if (b0 >= 0xEE && b0 <= 0xEF) {
    len = 3;
  } else if (b0 == 0xF0) {
    len = 4;
    lo = 0x90;  // no overlong 4-byte forms
  } else if (b0 >= 0xF1 && b0 <= 0xF3) {
    len = 4;
  } else if (b0 == 0xF4) {
    len = 4;
    hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;  // continuation byte, C0/C1 (always overlong), F5..FF
  }
  if (i + len > s.size()) return 0;
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < 0x80 || b > 0xBF) return 0;
  }
  return len;
}

// Offset of the first byte that is not part of valid UTF-8, or npos when `s` is valid.
inline size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t len = utf8_sequence_length(s, i);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace kpid
