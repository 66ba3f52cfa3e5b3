#pragma once
// The alerter's state keys, shared by its source files (the evaluation side in alerter.cpp, the
// API side in alerter_api.cpp). Internal to the alert module.

#include <cstdint>
#include <string>
#include <string_view>

#include "kpid/core/text.h"
#include "kpid/core/time.h"

namespace kpid::alert::keys {

inline constexpr std::string_view kAlertPrefix = "alert/";
inline constexpr std::string_view kEventPrefix = "alertev/";
inline constexpr std::string_view kSilencePrefix = "silence/";
inline constexpr std::string_view kAlertSeqKey = "meta/alert_seq";
inline constexpr std::string_view kSilenceSeqKey = "meta/silence_seq";

// "alertev/<padded alert id>/" + big-endian time and sequence: a timeline in time order.
inline std::string event_key(const std::string& alert_id, TimestampMs time, uint32_t seq) {
  std::string key(kEventPrefix);
  key += padded_id(parse_id(alert_id).value_or(0));
  key.push_back('/');
  append_big_endian(key, static_cast<uint64_t>(time), 8);
  append_big_endian(key, seq, 4);
  return key;
}

}  // namespace kpid::alert::keys
