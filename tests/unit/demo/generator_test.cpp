#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kpid/config/config.h"
#include "kpid/demo/generator.h"

using namespace kpid;
using namespace kpid::demo;

namespace {

constexpr TimestampMs kMinute = 60'000;
constexpr TimestampMs kHour = 3'600'000;
constexpr TimestampMs kDay = 24 * kHour;
constexpr TimestampMs kMonday = 1'700'438'400'000;  // Mon 2023-11-20 00:00 UTC
constexpr TimestampMs kWednesday = kMonday + 2 * kDay;
constexpr TimestampMs kSaturday = kMonday + 5 * kDay;

// Mean of `f` over [from, to) at one-minute steps.
template <typename F>
double mean_over(TimestampMs from, TimestampMs to, F f) {
  double sum = 0;
  int n = 0;
  for (TimestampMs t = from; t < to; t += kMinute, ++n) sum += f(t);
  return sum / n;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The demo config's KPI `id`; REQUIREs it is there.
const kpi::KpiOptions& demo_kpi(const config::Config& c, const std::string& id) {
  auto it = std::find_if(c.kpis.begin(), c.kpis.end(),
                         [&](const kpi::KpiOptions& k) { return k.id == id; });
  INFO("KPI " << id << " in config/demo");
  REQUIRE(it != c.kpis.end());
  REQUIRE(it->band);
  return *it;
}

}  // namespace

TEST_CASE("demo: checkout latency peaks by day and eases at night") {
  const Model m(1);
  for (Region region : {Region::kEu, Region::kUs}) {
    // Local afternoon vs local small hours: EU is UTC+1, US UTC-5.
    const TimestampMs shift = region == Region::kEu ? 0 : 6 * kHour;
    auto sample = [&](TimestampMs t) { return m.latency_sample_ms(Route::kCheckout, region, t); };
    const double day =
        mean_over(kWednesday + 14 * kHour + shift, kWednesday + 16 * kHour + shift, sample);
    const double night =
        mean_over(kWednesday + 2 * kHour + shift, kWednesday + 4 * kHour + shift, sample);
    INFO("region " << static_cast<int>(region) << ": day " << day << " ms, night " << night);
    CHECK(day > night + 30);
    CHECK(night > 170);
    CHECK(day < 230);
  }
  // A little lower at weekends, when fewer people shop by day.
  CHECK(m.latency_p95_ms(Route::kCheckout, Region::kEu, kSaturday + 15 * kHour) <
        m.latency_p95_ms(Route::kCheckout, Region::kEu, kWednesday + 15 * kHour));
  // Every minute of a normal week stays near the ~180-250 ms of a healthy p95.
  double lo = 1e9, hi = 0;
  for (TimestampMs t = kMonday; t < kMonday + 7 * kDay; t += kMinute) {
    const double v = m.latency_sample_ms(Route::kCheckout, Region::kUs, t);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  CHECK(lo > 130);
  CHECK(hi < 270);
}

TEST_CASE("demo: signup conversion is lower at night and at weekends") {
  const Model m(1);
  auto conversion = [&](TimestampMs t) { return m.signup_conversion(t); };
  const double weekday_day =
      mean_over(kWednesday + 13 * kHour, kWednesday + 17 * kHour, conversion);
  const double weekday_night =
      mean_over(kWednesday + 1 * kHour, kWednesday + 5 * kHour, conversion);
  const double weekend_day = mean_over(kSaturday + 13 * kHour, kSaturday + 17 * kHour, conversion);
  CHECK(weekday_night < weekday_day - 0.004);
  CHECK(weekend_day < weekday_day - 0.002);
  CHECK(weekday_day < 0.04);
  CHECK(weekday_night > 0.028);

  // The counters the KPI divides agree with the model over a day, noise and all.
  auto realized = [](TimestampMs from) {
    Generator gen(Model(3));
    std::string out;
    for (TimestampMs t = from; t < from + kDay; t += kMinute) gen.append_lines(t, kMinute, out);
    return static_cast<double>(gen.signups()) / static_cast<double>(gen.visits());
  };
  const double wednesday = realized(kWednesday);
  const double saturday = realized(kSaturday);
  INFO("Wednesday " << wednesday << ", Saturday " << saturday);
  CHECK(wednesday > saturday);
  CHECK(wednesday == Approx(0.0345).margin(0.002));
}

TEST_CASE("demo: support first response spikes at weekends, churn drifts slowly") {
  const Model m(1);
  auto response = [&](TimestampMs t) { return m.first_response_sample(t); };
  const double weekday = mean_over(kWednesday, kWednesday + kDay, response);
  const double weekend = mean_over(kSaturday, kSaturday + kDay, response);
  CHECK(weekday > 20);
  CHECK(weekend > weekday + 12);
  CHECK(weekend < 60);

  // Within 2-3% over months, and never more than a few hundredths per hour.
  double lo = 100, hi = 0;
  for (TimestampMs t = kMonday; t < kMonday + 90 * kDay; t += kHour) {
    const double v = m.churn_percent(t);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    CHECK(std::abs(m.churn_percent(t + kHour) - v) < 0.01);
  }
  CHECK(lo > 2);
  CHECK(hi < 3);
}

TEST_CASE("demo: the same seed gives the same lines") {
  auto day_of_lines = [](uint64_t seed) {
    Generator gen{Model(seed)};
    std::string out;
    size_t lines = 0;
    for (TimestampMs t = kMonday; t < kMonday + kDay; t += kMinute) {
      lines += gen.append_lines(t, kMinute, out);
    }
    CHECK(lines == 1440 * Generator::kLinesPerStep);
    return out;
  };
  const std::string a = day_of_lines(7);
  CHECK(a == day_of_lines(7));
  CHECK(a != day_of_lines(8));

  // Noise is a function of (seed, stream, t), not of the order of calls.
  const Model m(7);
  const double later = m.noise(5, kMonday + kHour);
  const double earlier = m.noise(5, kMonday);
  CHECK(Model(7).noise(5, kMonday) == earlier);
  CHECK(Model(7).noise(5, kMonday + kHour) == later);
  // A standard normal, roughly.
  double sum = 0, sum2 = 0;
  constexpr int kN = 20'000;
  for (int i = 0; i < kN; ++i) {
    const double z = m.noise(9, kMonday + i);
    sum += z;
    sum2 += z * z;
  }
  CHECK(sum / kN == Approx(0).margin(0.03));
  CHECK(sum2 / kN == Approx(1).margin(0.05));
  // Event counts keep their mean, small or large.
  for (double expected : {0.1, 4.0, 250.0}) {
    double total = 0;
    for (int i = 0; i < kN; ++i) total += static_cast<double>(m.count(11, kMonday + i, expected));
    INFO("expected " << expected);
    CHECK(total / kN == Approx(expected).epsilon(0.1));
  }
}

TEST_CASE("demo: lines are line protocol for the series the demo KPIs select") {
  Generator gen{Model(1)};
  std::string out;
  gen.append_lines(kWednesday, kMinute, out);
  const auto first = split_lines(out);
  REQUIRE(first.size() == Generator::kLinesPerStep);
  CHECK(first[0].starts_with("http_request,route=/checkout,region=eu duration_ms="));
  CHECK(first[1].starts_with("http_request,route=/checkout,region=us duration_ms="));
  CHECK(first[4].starts_with("http_requests,route=/checkout,code=200 total="));
  CHECK(first[5].starts_with("http_requests,route=/checkout,code=500 total="));
  CHECK(first[6].starts_with("signup_funnel,source=web visits_total="));
  CHECK(first[7].starts_with("support,team=tier1 first_response_minutes="));
  CHECK(first[8].starts_with("customers,plan=all churn_monthly_percent="));
  for (const auto& line : first) {
    CHECK(line.ends_with(" " + std::to_string(kWednesday)));
  }
  // Counters only go up, by about a minute's worth of requests.
  const int64_t ok = gen.requests_ok();
  const int64_t visits = gen.visits();
  out.clear();
  gen.append_lines(kWednesday + kMinute, kMinute, out);
  CHECK(gen.requests_ok() > ok);
  CHECK(gen.visits() > visits);
  CHECK(gen.requests_ok() - ok ==
        Approx(Model(1).checkout_requests_per_min(kWednesday + kMinute)).epsilon(0.2));
  // A second's interval holds a sixtieth of that.
  const int64_t before = gen.requests_ok();
  gen.append_lines(kWednesday + kMinute + 1000, 1000, out);
  CHECK(gen.requests_ok() - before < (gen.requests_ok() - ok) / 20 + 10);
}

TEST_CASE("demo: the incident ramps up, holds and recovers") {
  const Incident inc{.start = kWednesday, .duration = 180'000, .ramp = 15'000};
  CHECK(incident_level(inc, kWednesday - 1) == 0);
  CHECK(incident_level(inc, kWednesday) == 0);
  CHECK(incident_level(inc, kWednesday + 7'500) == Approx(0.5));
  CHECK(incident_level(inc, kWednesday + 15'000) == 1);
  CHECK(incident_level(inc, kWednesday + 100'000) == 1);
  CHECK(incident_level(inc, kWednesday + 180'000 - 7'500) == Approx(0.5));
  CHECK(incident_level(inc, kWednesday + 180'000) == 0);
  // Shorter than two ramps: a triangle that never reaches the plateau.
  const Incident brief{.start = kWednesday, .duration = 10'000, .ramp = 15'000};
  CHECK(incident_level(brief, kWednesday + 5'000) == Approx(1.0 / 3));

  // Only checkout suffers; the model without the incident is untouched.
  Model m(1, inc);
  const Model calm(1);
  const TimestampMs plateau = kWednesday + 60'000;
  CHECK(m.latency_p95_ms(Route::kCheckout, Region::kEu, plateau) >
        calm.latency_p95_ms(Route::kCheckout, Region::kEu, plateau) + 1000);
  CHECK(m.latency_p95_ms(Route::kSearch, Region::kEu, plateau) ==
        calm.latency_p95_ms(Route::kSearch, Region::kEu, plateau));
  CHECK(m.checkout_error_fraction(plateau) > calm.checkout_error_fraction(plateau) + 0.025);
  CHECK(m.signup_conversion(plateau) < calm.signup_conversion(plateau));
  CHECK(m.first_response_minutes(plateau) == calm.first_response_minutes(plateau));
  m.set_incident(std::nullopt);
  CHECK(m.latency_p95_ms(Route::kCheckout, Region::kEu, plateau) ==
        calm.latency_p95_ms(Route::kCheckout, Region::kEu, plateau));
}

TEST_CASE("demo: the incident breaches config/demo's crit, normal weeks stay inside its bands") {
  const auto loaded =
      config::load_config(std::string(KPID_SOURCE_DIR) + "/config/demo/kpid.toml", {});
  INFO([&] {
    std::string errors;
    for (const auto& e : loaded.errors) errors += e.to_string() + "\n";
    return errors;
  }());
  REQUIRE(loaded.ok());
  const auto& c = loaded.config;
  const auto& latency = demo_kpi(c, "checkout_latency_p95");
  const auto& errors = demo_kpi(c, "checkout_error_rate");
  const auto& conversion = demo_kpi(c, "signup_conversion");
  const auto& support = demo_kpi(c, "support_first_response");
  const auto& churn = demo_kpi(c, "monthly_churn");
  CHECK(c.storage.retention.raw > 30 * kDay);  // the backfill is kept whole

  // Five weeks without an incident, any noise seed: nothing reaches warn. Latency samples are
  // bounded by their expectation plus 5 sigma (7 ms); the other KPIs average over minutes.
  const Model m(1);
  double latency_max = 0, errors_max = 0, conversion_min = 100, support_max = 0, churn_max = 0;
  for (TimestampMs t = kMonday; t < kMonday + 35 * kDay; t += kMinute) {
    for (Region r : {Region::kEu, Region::kUs}) {
      latency_max = std::max(latency_max, m.latency_p95_ms(Route::kCheckout, r, t) + 35);
    }
    errors_max = std::max(errors_max, m.checkout_error_fraction(t) * 100);
    conversion_min = std::min(conversion_min, m.signup_conversion(t) * 100);
    support_max = std::max(support_max, m.first_response_minutes(t) + 15);
    churn_max = std::max(churn_max, m.churn_percent(t) + 0.1);
  }
  CHECK(latency_max < latency.band->warn);
  CHECK(errors_max * 2 < errors.band->warn);  // room for a quiet night's few requests
  CHECK(conversion_min > conversion.band->warn);
  CHECK(support_max < support.band->warn);
  CHECK(churn_max < churn.band->warn);

  // The incident takes checkout latency well past crit, errors into warn but not crit, and
  // conversion down without breaching.
  const Incident inc{.start = kWednesday + 15 * kHour, .duration = 180'000};
  const Model hit(1, inc);
  const TimestampMs plateau = inc.start + 60'000;
  for (Region r : {Region::kEu, Region::kUs}) {
    CHECK(hit.latency_p95_ms(Route::kCheckout, r, plateau) > 2 * latency.band->crit);
  }
  // Before the ramp is half way up the latency is past crit, so the alert's `for` starts early.
  CHECK(hit.latency_p95_ms(Route::kCheckout, Region::kEu, inc.start + inc.ramp / 2) >
        latency.band->crit);
  CHECK(hit.checkout_error_fraction(plateau) * 100 > errors.band->warn * 1.5);
  CHECK(hit.checkout_error_fraction(plateau) * 100 < errors.band->crit);
  CHECK(hit.signup_conversion(plateau) * 100 > conversion.band->warn);
  CHECK(hit.signup_conversion(plateau) < m.signup_conversion(plateau));

  // The latency alert fires quickly, and opens an OKR guarded by the other two.
  REQUIRE_FALSE(latency.alerts.empty());
  CHECK(latency.alerts[0].condition == "crit");
  CHECK(latency.alerts[0].for_duration <= 15'000);
  REQUIRE(latency.okr);
  CHECK(latency.okr->after <= 10'000);
  CHECK(latency.okr->related ==
        std::vector<std::string>{"checkout_error_rate", "signup_conversion"});
}

TEST_CASE(
    "demo: the checkout latency histogram's buckets are cumulative and put the p95 at the "
    "model's") {
  const Model m(5);
  const TimestampMs t = kWednesday + 15 * kHour;
  const double p95 = m.latency_p95_ms(Route::kCheckout, Region::kEu, t);
  CHECK(m.latency_share_below(Route::kCheckout, Region::kEu, t, p95) == Approx(0.95).margin(1e-6));

  Generator gen{Model(5)};
  std::string out;
  gen.append_lines(t, kMinute, out);
  gen.append_lines(t + kMinute, kMinute, out);
  // The second step's bucket lines of the eu region: le ascending, counts not decreasing.
  std::vector<std::pair<std::string, int64_t>> buckets;
  const auto lines = split_lines(out);
  for (size_t i = Generator::kLinesPerStep; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (!line.starts_with("http_request_duration_seconds,route=/checkout,region=eu,le=")) continue;
    const size_t le = line.find("le=") + 3;
    const size_t space = line.find(' ', le);
    const size_t eq = line.find("bucket=") + 7;
    buckets.emplace_back(line.substr(le, space - le), std::stoll(line.substr(eq)));
  }
  REQUIRE(buckets.size() == Generator::kLatencyBucketCount);
  CHECK(buckets.back().first == "+Inf");
  for (size_t i = 1; i < buckets.size(); ++i) CHECK(buckets[i].second >= buckets[i - 1].second);
  CHECK(buckets.back().second > 0);
  // About 95% of requests are faster than the bucket bound just above the p95.
  CHECK(buckets.front().second < buckets.back().second / 2);
}
