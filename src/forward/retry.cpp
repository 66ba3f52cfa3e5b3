#include "kpid/forward/retry.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <string>

namespace kpid::forward {

Verdict classify(int status, bool v2) {
  if (status >= 200 && status < 300) return Verdict::kSent;
  if (status == 0 || status == 429 || status >= 500) return Verdict::kRetry;
  if (status == 415 && v2) return Verdict::kUnsupported;
  return Verdict::kRefused;
}

std::optional<DurationMs> parse_retry_after(std::string_view value, TimestampMs now_ms) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return std::isdigit(c) != 0; })) {
    if (value.size() > 9) return std::nullopt;  // over 30 years: not a delay anyone means
    return static_cast<DurationMs>(std::stoll(std::string(value))) * 1000;
  }
  // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  const std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const TimestampMs at = static_cast<TimestampMs>(timegm(&tm)) * 1000;
  return std::max<DurationMs>(0, at - now_ms);
}

DurationMs backoff_delay(int attempt, DurationMs min, DurationMs max, double unit) {
  DurationMs cap = min;
  for (int i = 0; i < attempt && cap < max; ++i) cap *= 2;
  cap = std::min(cap, max);
  return min + static_cast<DurationMs>(static_cast<double>(cap - min) * unit);
}

}  // namespace kpid::forward
