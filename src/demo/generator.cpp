#include "kpid/demo/generator.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <string_view>

namespace kpid::demo {

namespace {

constexpr int64_t kDayMs = 86'400'000;
constexpr double kTwoPi = 2 * std::numbers::pi;

// Noise streams: one per reported quantity, so series never share deviates.
constexpr uint64_t kLatencyStream = 100;  // + route * 10 + region
constexpr uint64_t kRequestsOkStream = 200;
constexpr uint64_t kRequestsFailedStream = 201;
constexpr uint64_t kVisitsStream = 202;
constexpr uint64_t kSignupsStream = 203;
constexpr uint64_t kSupportStream = 300;
constexpr uint64_t kChurnStream = 400;
constexpr uint64_t kCheckoutCountStream = 500;  // + region

// Checkout latency histogram buckets (upper bounds, seconds), as a Prometheus client sets them.
constexpr double kLatencyBuckets[] = {0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2.5};
constexpr std::string_view kLatencyBucketNames[] = {"0.05", "0.1", "0.15", "0.2", "0.25", "0.3",
                                                    "0.4",  "0.5", "0.75", "1",   "1.5",  "2.5"};
// The spread of checkout latency (log-normal): its median is the p95 / exp(1.645 sigma).
constexpr double kLatencySigma = 0.3;

// splitmix64's finalizer: a well-mixed 64-bit hash, so noise is a function of its inputs
// rather than of a generator's call order.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t hash_of(uint64_t seed, uint64_t stream, TimestampMs t) {
  return mix(mix(mix(seed) ^ stream) ^ static_cast<uint64_t>(t));
}

// (0, 1]: never 0, so log() in Box-Muller stays finite.
double to_unit(uint64_t h) { return static_cast<double>((h >> 11) + 1) * 0x1.0p-53; }

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Hours since local midnight, fractional.
double local_hour(Region region, TimestampMs t) {
  const int offset = region == Region::kEu ? 1 : -5;
  const int64_t in_day = t - floor_div(t, kDayMs) * kDayMs;
  double h = static_cast<double>(in_day) / 3'600'000.0 + offset;
  if (h < 0) h += 24;
  if (h >= 24) h -= 24;
  return h;
}

// The shop's traffic: 60% of it from the EU.
double shop_load(TimestampMs t) {
  return 0.6 * daily_load(Region::kEu, t) + 0.4 * daily_load(Region::kUs, t);
}

void append_fixed(std::string& out, double v, int precision) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, precision);
  out.append(buf, ec == std::errc() ? end : buf);
}

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc() ? end : buf);
}

void end_line(std::string& out, TimestampMs t) {
  out += ' ';
  append_int(out, t);
  out += '\n';
}

}  // namespace

double incident_level(const Incident& incident, TimestampMs t) {
  const DurationMs since = t - incident.start;
  if (incident.duration <= 0 || since < 0 || since >= incident.duration) return 0;
  const DurationMs until = incident.duration - since;
  if (incident.ramp <= 0) return 1;
  const double up = static_cast<double>(since) / static_cast<double>(incident.ramp);
  const double down = static_cast<double>(until) / static_cast<double>(incident.ramp);
  return std::clamp(std::min(up, down), 0.0, 1.0);
}

double daily_load(Region region, TimestampMs t) {
  return 0.5 - 0.5 * std::cos(kTwoPi * (local_hour(region, t) - 4) / 24);
}

bool weekend(TimestampMs t) {
  // 1970-01-01 was a Thursday: day 0 of the week is Sunday.
  const int64_t dow = (floor_div(t, kDayMs) + 4) % 7;
  return dow == 0 || dow == 6;
}

Model::Model(uint64_t seed, std::optional<Incident> incident) : seed_(seed), incident_(incident) {}

double Model::latency_p95_ms(Route route, Region region, TimestampMs t) const {
  const double load = daily_load(region, t);
  if (route == Route::kSearch) return 92 + 26 * load - (weekend(t) ? 5 : 0);
  const double level = incident_ ? incident_level(*incident_, t) : 0;
  return 178 + 42 * load - (weekend(t) ? 8 : 0) + 1050 * level;
}

double Model::checkout_requests_per_min(TimestampMs t) const {
  return (300 + 1300 * shop_load(t)) * (weekend(t) ? 1.2 : 1.0);
}

double Model::checkout_error_fraction(TimestampMs t) const {
  const double level = incident_ ? incident_level(*incident_, t) : 0;
  return 0.004 + 0.003 * shop_load(t) + 0.03 * level;
}

double Model::visits_per_min(TimestampMs t) const {
  return (500 + 1700 * shop_load(t)) * (weekend(t) ? 1.1 : 1.0);
}

double Model::signup_conversion(TimestampMs t) const {
  const double level = incident_ ? incident_level(*incident_, t) : 0;
  return (0.030 + 0.009 * shop_load(t) - (weekend(t) ? 0.003 : 0)) * (1 - 0.15 * level);
}

double Model::first_response_minutes(TimestampMs t) const {
  // Support works from the EU, with a thinner crew at weekends.
  const double load = daily_load(Region::kEu, t);
  return weekend(t) ? 38 + 16 * load : 22 + 18 * load;
}

double Model::churn_percent(TimestampMs t) const {
  const double days = static_cast<double>(t) / kDayMs;
  return 2.5 + 0.3 * std::sin(kTwoPi * days / 19) + 0.1 * std::sin(kTwoPi * days / 47 + 1);
}

double Model::uniform(uint64_t stream, TimestampMs t) const {
  return to_unit(hash_of(seed_, stream, t));
}

double Model::noise(uint64_t stream, TimestampMs t) const {
  const uint64_t h = hash_of(seed_, stream, t);
  const double u1 = to_unit(h);
  const double u2 = to_unit(mix(h));
  return std::sqrt(-2 * std::log(u1)) * std::cos(kTwoPi * u2);
}

int64_t Model::count(uint64_t stream, TimestampMs t, double expected) const {
  if (!(expected > 0)) return 0;
  if (expected > 30) {
    // The normal approximation is close enough here, and cheap for large counts.
    const double n = std::round(expected + std::sqrt(expected) * noise(stream, t));
    return n < 0 ? 0 : static_cast<int64_t>(n);
  }
  // Inversion: exact for the small counts (errors per second) where the shape matters.
  const double u = uniform(stream, t);
  double p = std::exp(-expected);
  double cumulative = p;
  int64_t k = 0;
  while (u > cumulative && k < 1000) {
    ++k;
    p *= expected / static_cast<double>(k);
    cumulative += p;
  }
  return k;
}

double Model::latency_sample_ms(Route route, Region region, TimestampMs t) const {
  const uint64_t stream =
      kLatencyStream + static_cast<uint64_t>(route) * 10 + static_cast<uint64_t>(region);
  const double sigma = route == Route::kSearch ? 5 : 7;
  return std::max(1.0, latency_p95_ms(route, region, t) + sigma * noise(stream, t));
}

double Model::first_response_sample(TimestampMs t) const {
  return std::max(1.0, first_response_minutes(t) + 3 * noise(kSupportStream, t));
}

double Model::churn_sample(TimestampMs t) const {
  return std::max(0.0, churn_percent(t) + 0.015 * noise(kChurnStream, t));
}

double Model::latency_share_below(Route route, Region region, TimestampMs t, double ms) const {
  const double median = latency_p95_ms(route, region, t) / std::exp(1.6448536 * kLatencySigma);
  return 0.5 * std::erfc(-(std::log(ms / median) / kLatencySigma) / std::sqrt(2.0));
}

void Generator::append_checkout_histogram(TimestampMs t, double minutes, std::string& out) {
  static constexpr std::string_view kRegionNames[] = {"eu", "us"};
  for (Region region : {Region::kEu, Region::kUs}) {
    const auto r = static_cast<size_t>(region);
    const int64_t requests = model_.count(kCheckoutCountStream + r, t,
                                          model_.checkout_requests_per_min(t) * minutes / 2);
    auto bucket_line = [&](std::string_view le, int64_t total) {
      out += "http_request_duration_seconds,route=/checkout,region=";
      out += kRegionNames[r];
      out += ",le=";
      out += le;
      out += " bucket=";
      append_int(out, total);
      out += 'i';
      end_line(out, t);
    };
    // Each request lands in the first bucket its latency fits; cumulative counts per bound.
    for (size_t b = 0; b < std::size(kLatencyBuckets); ++b) {
      const double share =
          model_.latency_share_below(Route::kCheckout, region, t, kLatencyBuckets[b] * 1000);
      checkout_buckets_[r][b] +=
          static_cast<int64_t>(std::llround(static_cast<double>(requests) * share));
      bucket_line(kLatencyBucketNames[b], checkout_buckets_[r][b]);
    }
    checkout_count_[r] += requests;
    bucket_line("+Inf", checkout_count_[r]);
  }
}

size_t Generator::append_lines(TimestampMs t, DurationMs step, std::string& out) {
  const double minutes = static_cast<double>(std::max<DurationMs>(step, 0)) / 60'000.0;
  static constexpr std::string_view kRouteNames[] = {"/checkout", "/search"};
  static constexpr std::string_view kRegionNames[] = {"eu", "us"};
  for (Route route : {Route::kCheckout, Route::kSearch}) {
    for (Region region : {Region::kEu, Region::kUs}) {
      out += "http_request,route=";
      out += kRouteNames[static_cast<int>(route)];
      out += ",region=";
      out += kRegionNames[static_cast<int>(region)];
      out += " duration_ms=";
      append_fixed(out, model_.latency_sample_ms(route, region, t), 1);
      end_line(out, t);
    }
  }

  const double requests = model_.checkout_requests_per_min(t) * minutes;
  const double failing = model_.checkout_error_fraction(t);
  requests_failed_ += model_.count(kRequestsFailedStream, t, requests * failing);
  requests_ok_ += model_.count(kRequestsOkStream, t, requests * (1 - failing));
  out += "http_requests,route=/checkout,code=200 total=";
  append_int(out, requests_ok_);
  out += 'i';
  end_line(out, t);
  out += "http_requests,route=/checkout,code=500 total=";
  append_int(out, requests_failed_);
  out += 'i';
  end_line(out, t);

  const int64_t visits = model_.count(kVisitsStream, t, model_.visits_per_min(t) * minutes);
  visits_ += visits;
  signups_ +=
      model_.count(kSignupsStream, t, static_cast<double>(visits) * model_.signup_conversion(t));
  out += "signup_funnel,source=web visits_total=";
  append_int(out, visits_);
  out += "i,signups_total=";
  append_int(out, signups_);
  out += 'i';
  end_line(out, t);

  out += "support,team=tier1 first_response_minutes=";
  append_fixed(out, model_.first_response_sample(t), 1);
  end_line(out, t);

  out += "customers,plan=all churn_monthly_percent=";
  append_fixed(out, model_.churn_sample(t), 3);
  end_line(out, t);

  append_checkout_histogram(t, minutes, out);
  return kLinesPerStep;
}

}  // namespace kpid::demo
