#include "kpid/net/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kpid::net {

RateLimiter::RateLimiter(double rate, double burst) { set_limits(rate, burst); }

void RateLimiter::set_limits(double rate, double burst) {
  std::lock_guard lock(mutex_);
  rate_ = rate > 0 ? rate / 1000.0 : 0;
  burst_ = burst >= 1 ? burst : std::max(1.0, rate);
  for (auto& [client, bucket] : buckets_) bucket.tokens = std::min(bucket.tokens, burst_);
  if (rate_ == 0) buckets_.clear();
}

bool RateLimiter::enabled() const {
  std::lock_guard lock(mutex_);
  return rate_ > 0;
}

DurationMs RateLimiter::acquire(std::string_view client, TimestampMs now) {
  std::lock_guard lock(mutex_);
  if (rate_ == 0) return 0;
  auto it = buckets_.find(std::string(client));
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxClients) forget_idle(now);
    it = buckets_.emplace(std::string(client), Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  if (now > b.refilled) {
    b.tokens = std::min(burst_, b.tokens + static_cast<double>(now - b.refilled) * rate_);
    b.refilled = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return std::max<DurationMs>(1, static_cast<DurationMs>(std::ceil((1 - b.tokens) / rate_)));
}

size_t RateLimiter::clients() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

void RateLimiter::forget_idle(TimestampMs now) {
  // A client whose bucket has refilled is indistinguishable from a new one.
  std::erase_if(buckets_, [&](const auto& entry) {
    const Bucket& b = entry.second;
    return b.tokens + static_cast<double>(now - b.refilled) * rate_ >= burst_;
  });
  if (buckets_.size() < kMaxClients) return;
  // Every client is active: drop the half refilled longest ago.
  std::vector<TimestampMs> times;
  times.reserve(buckets_.size());
  for (const auto& [client, b] : buckets_) times.push_back(b.refilled);
  auto middle = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2);
  std::nth_element(times.begin(), middle, times.end());
  const TimestampMs cutoff = *middle;
  std::erase_if(buckets_, [&](const auto& entry) { return entry.second.refilled <= cutoff; });
}

}  // namespace kpid::net
