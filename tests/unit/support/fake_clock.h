#pragma once
#include <atomic>

#include "kpid/core/time.h"

namespace kpid::testing {

// A clock that stands still until a test moves it. Atomic, since store threads read it too.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_ns = 0) : now_ns_(now_ns) {}
  int64_t now_ns() const override { return now_ns_.load(); }
  void set_ms(TimestampMs ms) { now_ns_.store(ms * 1'000'000); }

 private:
  std::atomic<int64_t> now_ns_;
};

}  // namespace kpid::testing
