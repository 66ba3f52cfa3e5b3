#include "kpid/alert/episode.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cmath>

#include "kpid/alert/notification.h"

namespace kpid::alert {

TimestampMs episode_start(TimestampMs data_time, DurationMs grid) {
  if (grid <= 0) return data_time;
  // Floor division, also for times before the epoch.
  TimestampMs q = data_time / grid;
  if (data_time % grid < 0) --q;
  return q * grid;
}

std::string episode_key(std::string_view rule_key, const std::map<std::string, std::string>& labels,
                        TimestampMs start, uint32_t nth) {
  // Fields separated by bytes that cannot occur in them unescaped: NUL between parts.
  std::string text(rule_key);
  text.push_back('\0');
  for (const auto& [name, value] : labels) {
    text.append(name).push_back('\x01');
    text.append(value).push_back('\0');
  }
  text += std::to_string(start);
  text.push_back('\0');
  text += std::to_string(nth);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

std::string notification_key(const Alert& alert, std::string_view event) {
  if (alert.episode.empty()) return "";
  std::string key = alert.episode + "-" + std::string(event);
  if (event == kRepeatEvent) key += "-" + std::to_string(alert.repeat);
  return key;
}

uint32_t repeat_number(const Alert& alert, DurationMs repeat_interval, TimestampMs now) {
  uint32_t n = alert.repeat + 1;
  if (repeat_interval > 0 && alert.firing_since > 0 && now > alert.firing_since) {
    const double elapsed = static_cast<double>(now - alert.firing_since);
    const auto rounded =
        static_cast<uint32_t>(std::llround(elapsed / static_cast<double>(repeat_interval)));
    n = std::max(n, rounded);
  }
  return n;
}

}  // namespace kpid::alert
