#pragma once
// The demo's web shop: a deterministic model of its business metrics over time (daily and
// weekly seasonality, noise, slow drift, a payment-provider incident) and the line-protocol
// lines that report them. No I/O: kpid-demo (src/demo/main.cpp) sends the lines to kpid.
//
// Every value is a pure function of the seed and the time, so the same seed gives the same
// value at the same t whatever the order of calls (backfill and tests rely on it). Days follow
// UTC; the EU region's day peaks around 15:00 UTC, the US region's around 21:00 UTC.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "kpid/core/time.h"

namespace kpid::demo {

// A payment-provider slowdown from `start` for `duration`: it ramps up over `ramp`, holds, and
// ramps down over the last `ramp` (a shorter incident is a triangle).
struct Incident {
  TimestampMs start = 0;
  DurationMs duration = 0;
  DurationMs ramp = 15'000;
};

// How strongly `incident` acts at `t`: 0 outside it, 1 on its plateau, linear on the ramps.
double incident_level(const Incident& incident, TimestampMs t);

enum class Region { kEu, kUs };
enum class Route { kCheckout, kSearch };

// Load of a region's day at `t`: 0 at 04:00 local time, 1 at 16:00, a smooth cosine between.
double daily_load(Region region, TimestampMs t);
// Saturday or Sunday (UTC).
bool weekend(TimestampMs t);

// The shop's metrics. Expected values include the incident when one is set; samples add noise.
class Model {
 public:
  explicit Model(uint64_t seed, std::optional<Incident> incident = std::nullopt);

  void set_incident(std::optional<Incident> incident) { incident_ = incident; }
  const std::optional<Incident>& incident() const { return incident_; }
  uint64_t seed() const { return seed_; }

  // --- expected values (no noise) ---
  // p95 latency of one route in one region over a minute, in ms: ~180-230 with daytime peaks,
  // a little lower at weekends; checkout gains up to +1050 ms in the incident.
  double latency_p95_ms(Route route, Region region, TimestampMs t) const;
  // Checkout requests per minute (more by day and at weekends).
  double checkout_requests_per_min(TimestampMs t) const;
  // Share of checkout requests failing with a 5xx: 0.4-0.7%, up to +3 points in the incident.
  double checkout_error_fraction(TimestampMs t) const;
  // Signup page visits per minute.
  double visits_per_min(TimestampMs t) const;
  // Share of visits that sign up: ~3-3.9% by day on weekdays, lower at night and at weekends;
  // dips by up to 15% in the incident (people give up on a slow payment step).
  double signup_conversion(TimestampMs t) const;
  // Support's first response time in minutes: ~22-40 on weekdays, ~38-54 at weekends.
  double first_response_minutes(TimestampMs t) const;
  // Monthly customer churn in percent: 2.1-2.9, drifting slowly over weeks.
  double churn_percent(TimestampMs t) const;

  // --- noise ---
  // A standard normal deviate for (stream, t): the same for the same seed, stream and t.
  double noise(uint64_t stream, TimestampMs t) const;
  // A uniform deviate in (0, 1] for (stream, t).
  double uniform(uint64_t stream, TimestampMs t) const;
  // A Poisson-distributed event count with mean `expected` (>= 0) for (stream, t).
  int64_t count(uint64_t stream, TimestampMs t, double expected) const;

  // --- samples (expected value plus noise), as reported at t ---
  double latency_sample_ms(Route route, Region region, TimestampMs t) const;
  double first_response_sample(TimestampMs t) const;
  double churn_sample(TimestampMs t) const;
  // The share of requests of a route in a region at `t` faster than `ms`: latency is
  // log-normal around latency_p95_ms (so the histogram's p95 is near it).
  double latency_share_below(Route route, Region region, TimestampMs t, double ms) const;

 private:
  uint64_t seed_;
  std::optional<Incident> incident_;
};

// The shop's counters and the lines reporting every series. Series (names as kpid stores them):
//   http_request_duration_ms{route="/checkout"|"/search", region="eu"|"us"}   gauge, ms
//   http_requests_total{route="/checkout", code="200"|"500"}                    counter
//   signup_funnel_visits_total{source="web"}, signup_funnel_signups_total{...}  counters
//   support_first_response_minutes{team="tier1"}                                gauge
//   customers_churn_monthly_percent{plan="all"}                                 gauge
//   http_request_duration_seconds_bucket{route="/checkout", region, le}        histogram
//     buckets (counters): 12 bounds from 0.05 s to 2.5 s and +Inf, per region
class Generator {
 public:
  static constexpr size_t kLatencyBucketCount = 13;  // with +Inf
  static constexpr size_t kLinesPerStep = 9 + 2 * kLatencyBucketCount;

  explicit Generator(Model model) : model_(std::move(model)) {}

  Model& model() { return model_; }
  const Model& model() const { return model_; }

  // Appends kLinesPerStep lines for the interval (t - step, t], stamped t (milliseconds, for
  // POST /write?precision=ms), each ending in '\n'. Counters advance by the interval's events.
  // Returns the number of lines appended.
  size_t append_lines(TimestampMs t, DurationMs step, std::string& out);

  // Counter totals so far.
  int64_t requests_ok() const { return requests_ok_; }
  int64_t requests_failed() const { return requests_failed_; }
  int64_t visits() const { return visits_; }
  int64_t signups() const { return signups_; }

 private:
  // Appends the checkout latency histogram's bucket lines of both regions.
  void append_checkout_histogram(TimestampMs t, double minutes, std::string& out);

  Model model_;
  int64_t checkout_buckets_[2][kLatencyBucketCount - 1] = {};  // cumulative, per region
  int64_t checkout_count_[2] = {};                             // the +Inf bucket
  int64_t requests_ok_ = 0;
  int64_t requests_failed_ = 0;
  int64_t visits_ = 0;
  int64_t signups_ = 0;
};

}  // namespace kpid::demo
