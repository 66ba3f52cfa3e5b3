#pragma once
// Time in kpid: timestamps are int64 milliseconds since the Unix epoch (UTC), durations int64
// milliseconds. Parsing and formatting in the shapes the Prometheus HTTP API uses.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "kpid/core/status.h"

namespace kpid {

using TimestampMs = int64_t;
using DurationMs = int64_t;

// Parses a Prometheus duration: one or more number+unit pairs in decreasing unit order,
// units ms, s, m, h, d, w, y (y = 365d), e.g. "250ms", "15s", "5m", "1h30m", "2d", "1y".
// Fails (message names the text and why) on an empty string, a missing or unknown unit, units
// out of order or repeated, or a value that overflows int64 milliseconds.
Result<DurationMs> parse_duration(std::string_view text);

// Parses a query step: a positive number of seconds (decimals allowed, e.g. "15", "0.5") or a
// Prometheus duration ("15s", "5m"). Zero or negative is an error.
Result<DurationMs> parse_step(std::string_view text);

// Parses a query time: Unix seconds with optional decimals ("1700000000", "1700000000.123",
// negative allowed) or RFC 3339 ("2023-11-14T22:13:20Z", "2023-11-14T22:13:20.5+01:00").
// Sub-millisecond digits are truncated toward negative infinity.
Result<TimestampMs> parse_time(std::string_view text);

// Formats a duration in Prometheus' shortest form: 300000 -> "5m", 5400000 -> "1h30m",
// 1500 -> "1s500ms", 0 -> "0s".
std::string format_duration(DurationMs duration);

// The UTC calendar period of `months` months (1, 3, 6 or 12: month, quarter, half, year)
// holding `at`, as [first, second): e.g. a quarter from January 1st to April 1st.
std::pair<TimestampMs, TimestampMs> calendar_period(int months, TimestampMs at);

// Appends a timestamp as Prometheus API seconds, a JSON number with up to 3 decimals and no
// trailing zeros: 1435781430781 -> "1435781430.781", 1435781430000 -> "1435781430",
// -1500 -> "-1.5".
void append_unix_seconds(std::string& out, TimestampMs ms);

// Appends a sample value as Prometheus formats it (Go's FormatFloat 'f', -1): the shortest
// decimal that round-trips, never an exponent; "NaN", "+Inf", "-Inf".
void append_prom_float(std::string& out, double value);

// Appends an RFC 3339 UTC timestamp with millisecond precision ("2023-11-14T22:13:20.123Z").
void append_rfc3339(std::string& out, TimestampMs ms);

// Source of the current time, injected so tests can control it.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ns() const = 0;
  TimestampMs now_ms() const { return now_ns() / 1'000'000; }
};

// The system's real-time clock. Thread-safe.
class SystemClock final : public Clock {
 public:
  int64_t now_ns() const override;
};

}  // namespace kpid
