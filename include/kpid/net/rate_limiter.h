#pragma once
// Request rate per client: a token bucket per client address (nginx's limit_req, Envoy's local
// rate limit). Each client may make `burst` requests at once and `rate` per second after that.
// Idle clients are forgotten, so memory stays bounded whatever addresses connect.

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kpid/core/time.h"

namespace kpid::net {

class RateLimiter {
 public:
  // rate <= 0: no limit. burst < 1 is taken as max(1, rate).
  RateLimiter(double rate, double burst);

  // New limits (config reload); clients keep their buckets, capped at the new burst.
  void set_limits(double rate, double burst);
  bool enabled() const;

  // Takes one request of `client` at `now` (a steady clock, in ms). Returns 0 when allowed,
  // else how long until the next request would be (at least 1 ms); a refused request takes
  // nothing.
  DurationMs acquire(std::string_view client, TimestampMs now);

  // Clients tracked now (for tests).
  size_t clients() const;

  // At most this many clients are tracked; past it, full buckets (idle clients) are dropped,
  // and if every client is active the oldest-refilled are.
  static constexpr size_t kMaxClients = 65'536;

 private:
  struct Bucket {
    double tokens;
    TimestampMs refilled;  // when `tokens` was last brought up to date
  };
  void forget_idle(TimestampMs now);

  mutable std::mutex mutex_;
  double rate_ = 0;   // tokens per ms
  double burst_ = 1;  // bucket size
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace kpid::net
