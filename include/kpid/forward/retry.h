#pragma once
// How a remote write sender reads a receiver's answer: what to retry, how long to wait.

#include <optional>
#include <string_view>

#include "kpid/core/time.h"

namespace kpid::forward {

enum class Verdict {
  kSent,         // 2xx: the receiver has the samples; their records may go
  kRetry,        // no answer (connection error, timeout), 5xx or 429: send the same batch again
  kUnsupported,  // 415 to a 2.0 request: the receiver speaks 1.0 only
  kRefused,      // any other answer: the receiver will never take this batch; it is dropped
};

// `status` 0 means no answer at all. `v2` whether the request was 2.0 (a 415 to 1.0 is refused).
Verdict classify(int status, bool v2);

// A Retry-After value, delay-seconds or an HTTP date (RFC 9110), as a delay from `now_ms`
// (0 for a date in the past). nullopt when absent or malformed.
std::optional<DurationMs> parse_retry_after(std::string_view value, TimestampMs now_ms);

// Exponential backoff with full jitter: a delay drawn uniformly from [min, min(max, min *
// 2^attempt)] by `unit` in [0, 1). `attempt` 0 is the first retry.
DurationMs backoff_delay(int attempt, DurationMs min, DurationMs max, double unit);

}  // namespace kpid::forward
