#pragma once
// Small text forms shared by kpid's records and messages.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kpid {

// A number for people (templates, summaries, history lines): up to 6 significant digits, no
// exponent for ordinary magnitudes ("870", "0.0125", "1234.57"); "?" when not finite.
std::string format_number(double v);

// Appends the low `bytes` bytes of `v`, most significant first, so keys sort by the number.
void append_big_endian(std::string& out, uint64_t v, int bytes);

// Record ids are decimal ("42"); keys pad them to 20 digits so key order is id order.
std::string padded_id(uint64_t id);
// The id in decimal text, or nullopt (empty, not digits, too long).
std::optional<uint64_t> parse_id(std::string_view text);

}  // namespace kpid
