#pragma once
// A point in steady (monotonic) time by which something must be done: one shutdown deadline
// shared by every step of a stop, a query's deadline. Copyable and cheap; thread-safe to read.

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "kpid/core/time.h"

namespace kpid {

class Deadline {
 public:
  using SteadyClock = std::chrono::steady_clock;

  // `budget` from now (a negative budget is already expired).
  static Deadline after(DurationMs budget) {
    return Deadline(SteadyClock::now() + std::chrono::milliseconds(budget));
  }
  static Deadline at(SteadyClock::time_point when) { return Deadline(when); }
  // Never expires.
  static Deadline never() { return Deadline(SteadyClock::time_point::max()); }

  SteadyClock::time_point when() const { return when_; }
  bool expired() const { return SteadyClock::now() >= when_; }
  // What is left, 0 once expired.
  DurationMs remaining_ms() const {
    if (when_ == SteadyClock::time_point::max()) return INT64_MAX;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(when_ - SteadyClock::now());
    return std::max<DurationMs>(0, left.count());
  }
  // A deadline `reserve` earlier (but not before now): for a step that must leave time for the
  // steps after it.
  Deadline leaving(DurationMs reserve) const {
    if (when_ == SteadyClock::time_point::max()) return *this;
    return Deadline(std::max(SteadyClock::now(), when_ - std::chrono::milliseconds(reserve)));
  }
  // The earlier of the two.
  Deadline min(const Deadline& other) const { return when_ <= other.when_ ? *this : other; }

 private:
  explicit Deadline(SteadyClock::time_point when) : when_(when) {}
  SteadyClock::time_point when_;
};

}  // namespace kpid
