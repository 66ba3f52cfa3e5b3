#include "kpid/core/shard.h"

#include <charconv>

namespace kpid {

uint32_t Shard::shard_of(std::string_view id, uint32_t count) {
  uint64_t hash = 14695981039346656037ULL;
  for (unsigned char c : id) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return count <= 1 ? 0 : static_cast<uint32_t>(hash % count);
}

Result<Shard> parse_shard(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return Status::invalid_argument("shard \"" + std::string(text) + "\": " + std::string(why));
  };
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return fail("expected INDEX/COUNT, e.g. 0/3");
  auto number = [](std::string_view s, uint32_t& out) {
    if (s.empty()) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
  };
  Shard shard;
  if (!number(text.substr(0, slash), shard.index)) return fail("the index is not a number");
  if (!number(text.substr(slash + 1), shard.count)) return fail("the count is not a number");
  if (shard.count < 1 || shard.count > 4096) return fail("the count must be 1 to 4096");
  if (shard.index >= shard.count) {
    return fail("the index must be below the count (0 to " + std::to_string(shard.count - 1) + ")");
  }
  return shard;
}

}  // namespace kpid
