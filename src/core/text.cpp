#include "kpid/core/text.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "kpid/core/time.h"

namespace kpid {

std::string format_number(double v) {
  if (!std::isfinite(v)) return "?";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.6g", v);
  if (std::string_view(buffer).find('e') != std::string_view::npos) {
    std::string out;
    append_prom_float(out, v);
    return out;
  }
  return buffer;
}

void append_big_endian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string padded_id(uint64_t id) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "%020" PRIu64, id);
  return buffer;
}

std::optional<uint64_t> parse_id(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

}  // namespace kpid
