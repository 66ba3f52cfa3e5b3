#include <catch2/catch.hpp>

#include <string>

#include "kpid/net/rate_limiter.h"

using kpid::net::RateLimiter;

TEST_CASE("rate limiter: a burst, then the rate, per client", "[rate]") {
  RateLimiter limiter(10, 3);  // 10/s, bursts of 3
  CHECK(limiter.acquire("a", 1000) == 0);
  CHECK(limiter.acquire("a", 1000) == 0);
  CHECK(limiter.acquire("a", 1000) == 0);
  // The fourth at once waits for one token: 100 ms at 10/s.
  CHECK(limiter.acquire("a", 1000) == 100);
  // Another client has its own bucket.
  CHECK(limiter.acquire("b", 1000) == 0);
  // A refused request took nothing: 40 ms later it is 60 ms to go.
  CHECK(limiter.acquire("a", 1040) == 60);
  CHECK(limiter.acquire("a", 1100) == 0);
  CHECK(limiter.acquire("a", 1100) == 100);
  // Idle long enough, the bucket is full again, never over the burst.
  CHECK(limiter.acquire("a", 60'000) == 0);
  CHECK(limiter.acquire("a", 60'000) == 0);
  CHECK(limiter.acquire("a", 60'000) == 0);
  CHECK(limiter.acquire("a", 60'000) > 0);
}

TEST_CASE("rate limiter: off at rate 0, and limits change on reload", "[rate]") {
  RateLimiter limiter(0, 0);
  CHECK_FALSE(limiter.enabled());
  for (int i = 0; i < 1000; ++i) REQUIRE(limiter.acquire("a", 0) == 0);
  CHECK(limiter.clients() == 0);

  limiter.set_limits(2, 0);  // burst defaults to the rate
  CHECK(limiter.enabled());
  CHECK(limiter.acquire("a", 0) == 0);
  CHECK(limiter.acquire("a", 0) == 0);
  CHECK(limiter.acquire("a", 0) == 500);
  limiter.set_limits(1, 1);
  CHECK(limiter.acquire("a", 0) == 1000);
}

TEST_CASE("rate limiter: memory stays bounded however many clients come", "[rate]") {
  RateLimiter limiter(1, 1);
  for (size_t i = 0; i < RateLimiter::kMaxClients + 10; ++i) {
    REQUIRE(limiter.acquire("10.0." + std::to_string(i), 0) == 0);
  }
  // All active (empty buckets): the older half went to make room.
  CHECK(limiter.clients() <= RateLimiter::kMaxClients / 2 + 11);
  // Idle clients are forgotten first, and a forgotten one is simply new again.
  for (size_t i = 0; i < RateLimiter::kMaxClients; ++i) {
    REQUIRE(limiter.acquire("10.1." + std::to_string(i), 10'000) == 0);
  }
  CHECK(limiter.clients() <= RateLimiter::kMaxClients);
  CHECK(limiter.acquire("10.0.1", 10'000) == 0);
}
