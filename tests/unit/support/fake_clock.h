#pragma once
#include "kpid/core/time.h"

namespace kpid::testing {

// A clock that stands still until a test moves it.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_ns = 0) : now_ns_(now_ns) {}
  int64_t now_ns() const override { return now_ns_; }
  void set_ms(TimestampMs ms) { now_ns_ = ms * 1'000'000; }

 private:
  int64_t now_ns_;
};

}  // namespace kpid::testing
