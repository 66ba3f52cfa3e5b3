#pragma once
// Prometheus' stale marker: the sample a Prometheus server (or agent) writes when a series
// disappears (its target is gone, or a scrape no longer exposes it). It is a NaN with one
// particular bit pattern (Prometheus' value.StaleNaN), told apart from an ordinary NaN, which
// is a real value, by its bits only. kpid stores it as sent; readers treat it as Prometheus
// does: an instant selector whose newest sample is a marker has no value, range selectors,
// rollups and the KPI evaluator skip it.

#include <bit>
#include <cstdint>

namespace kpid {

inline constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002;
inline constexpr double kStaleNaN = std::bit_cast<double>(kStaleNaNBits);

// Whether `value` is the stale marker (any other NaN, and every number, is not).
constexpr bool is_stale_marker(double value) {
  return std::bit_cast<uint64_t>(value) == kStaleNaNBits;
}

}  // namespace kpid
