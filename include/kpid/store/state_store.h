#pragma once
// A small keyed store for kpid's own records (KPI status history, baseline snapshots, later
// alerts, outbox and OKRs), kept in the same RocksDB as the samples so every durable thing
// shares one write-ahead log. Keys are byte strings; callers namespace them with prefixes
// ("kpi/<id>/...") and encode times big-endian so prefix scans come back in time order.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kpid/core/status.h"

namespace kpid::store {

// Implementations are thread-safe.
class StateStore {
 public:
  virtual ~StateStore() = default;

  // Writes every (key, value) pair and erases every key in `erase`, atomically; durable when
  // this returns ok (as durable as sample appends).
  virtual Status write_state(std::span<const std::pair<std::string, std::string>> puts,
                             std::span<const std::string> erase = {}) = 0;

  // The value under `key`, or nullopt.
  virtual Result<std::optional<std::string>> get_state(std::string_view key) const = 0;

  // Calls `visit(key, value)` for every key starting with `prefix`, in key order, until it
  // returns false.
  virtual Status scan_state(
      std::string_view prefix,
      const std::function<bool(std::string_view key, std::string_view value)>& visit) const = 0;

  // Like scan_state, newest (greatest) key first.
  virtual Status scan_state_reverse(
      std::string_view prefix,
      const std::function<bool(std::string_view key, std::string_view value)>& visit) const = 0;
};

// Id sequences kept as decimal text under `key` ("meta/alert_seq", ...): raises `next` to the
// stored value, so ids are never reused across restarts.
inline Status read_sequence(const StateStore& state, std::string_view key, uint64_t& next) {
  auto stored = state.get_state(key);
  if (!stored) return stored.status();
  if (*stored) next = std::max<uint64_t>(next, std::strtoull((*stored)->c_str(), nullptr, 10));
  return Status::ok();
}

}  // namespace kpid::store
