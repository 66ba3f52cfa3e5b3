#pragma once
// Enforces one query's QueryLimits while it is evaluated. Private to the query module; used by
// one thread (the evaluating one).

#include <atomic>
#include <chrono>
#include <cstdint>

#include "kpid/core/status.h"
#include "kpid/query/engine.h"

namespace kpid::query::detail {

class QueryGuard {
 public:
  explicit QueryGuard(const QueryLimits& limits) : limits_(limits) {}

  // Cancellation and the deadline, checked now: call between series and before heavy work.
  Status check() {
    if (limits_.cancel != nullptr && limits_.cancel->load(std::memory_order_relaxed)) {
      return Status::cancelled(kQueryCancelledMessage);
    }
    if (limits_.deadline != std::chrono::steady_clock::time_point::max() &&
        std::chrono::steady_clock::now() >= limits_.deadline) {
      return Status::deadline_exceeded(kQueryTimeoutMessage);
    }
    return Status::ok();
  }

  // check(), on every kEvery-th call only: cheap enough for per-step loops.
  Status tick() {
    if (++ticks_ % kEvery != 0) return Status::ok();
    return check();
  }

  // Samples held by the query right now (see QueryLimits::max_samples).
  uint64_t held() const { return held_; }

  // Sets the samples held to `n`: past the budget, resource_exhausted.
  Status hold_exactly(uint64_t n) {
    held_ = n;
    if (limits_.max_samples != 0 && held_ > limits_.max_samples) {
      return Status::resource_exhausted(kTooManySamplesMessage);
    }
    return Status::ok();
  }
  Status hold(uint64_t n) { return hold_exactly(held_ + n); }
  void release(uint64_t n) { held_ = n > held_ ? 0 : held_ - n; }

 private:
  static constexpr uint64_t kEvery = 16;

  const QueryLimits& limits_;
  uint64_t held_ = 0;
  uint64_t ticks_ = 0;
};

}  // namespace kpid::query::detail
