#pragma once
// Splitting the evaluation work across N kpid instances that share one config: each owns the
// KPIs, SLOs and rule groups whose id hashes to its index.

#include <cstdint>
#include <string>
#include <string_view>

#include "kpid/core/status.h"

namespace kpid {

struct Shard {
  uint32_t index = 0;  // 0 <= index < count
  uint32_t count = 1;  // 1: one instance owns everything

  // Whether this instance evaluates the thing with `id`: FNV-1a 64 of the id, modulo count.
  // Stable across versions and platforms, so instances of different builds agree.
  bool owns(std::string_view id) const { return count <= 1 || shard_of(id, count) == index; }
  static uint32_t shard_of(std::string_view id, uint32_t count);
  // "i/N".
  std::string text() const { return std::to_string(index) + "/" + std::to_string(count); }
};

// Parses "i/N" (0 <= i < N, 1 <= N <= 4096); the error says what is wrong, e.g.
// "shard \"3/3\": the index must be below the count (0 to 2)".
Result<Shard> parse_shard(std::string_view text);

}  // namespace kpid
