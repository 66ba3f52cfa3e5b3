// QueryLimits: a query past its deadline, cancelled from another thread, or over its sample
// budget stops with Prometheus' messages; within them it answers as without limits.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "query_fixture.h"

using namespace kpid;
using namespace kpid::query;
using namespace kpid::testing;
using namespace std::chrono_literals;

namespace {

// 20 series "m" (label s=0..19) of one sample a minute over a day from base_time().
struct DayOfData : QueryFixture {
  DayOfData() {
    for (int s = 0; s < 20; ++s) {
      std::vector<store::Point> points;
      for (int m = 0; m < 1440; ++m) points.push_back({base_time() + m * kMin, double(m % 60)});
      add({{"__name__", "m"}, {"s", std::to_string(s).c_str()}}, points);
    }
  }
  TimestampMs end() const { return base_time() + 1439 * kMin; }
};

QueryLimits budget_of(uint64_t max_samples) {
  QueryLimits limits;
  limits.max_samples = max_samples;
  return limits;
}

}  // namespace

TEST_CASE("limits: a query past its deadline stops with Prometheus' timeout message") {
  DayOfData d;
  QueryLimits limits;
  limits.deadline = std::chrono::steady_clock::now() - 1ms;
  auto r = d.engine.range("sum(rate(m[5m]))", base_time(), d.end(), kMin, nullptr, limits);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kDeadlineExceeded);
  CHECK(r.status().message() == "query timed out in expression evaluation");
  auto i = d.engine.instant("m", d.end(), nullptr, limits);
  REQUIRE_FALSE(i.is_ok());
  CHECK(i.status().code() == StatusCode::kDeadlineExceeded);
  // Series scans too.
  std::vector<std::string> selectors{"m"};
  auto series = d.engine.series(selectors, base_time(), d.end(), limits);
  REQUIRE_FALSE(series.is_ok());
  CHECK(series.status().code() == StatusCode::kDeadlineExceeded);
}

TEST_CASE("limits: a deadline reached while evaluating stops the query part way") {
  DayOfData d;
  // Each of 8640 steps takes a quantile over up to a day of samples for each of 20 series: far
  // more than 50 ms of work, even in an optimised build.
  const std::string q = "quantile_over_time(0.9, m[1d])";
  QueryLimits limits;
  limits.deadline = std::chrono::steady_clock::now() + 50ms;
  const auto started = std::chrono::steady_clock::now();
  auto r = d.engine.range(q, base_time(), base_time() + 129'600'000, 15 * kSec, nullptr, limits);
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kDeadlineExceeded);
  // It stopped soon after the deadline, not at the end of the work.
  CHECK(took < 5s);
}

TEST_CASE("limits: a query cancelled from another thread stops") {
  DayOfData d;
  std::atomic<bool> cancel{false};
  QueryLimits limits;
  limits.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(50ms);
    cancel = true;
  });
  auto r = d.engine.range("quantile_over_time(0.9, m[1d])", base_time(), base_time() + 129'600'000,
                          15 * kSec, nullptr, limits);
  canceller.join();
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kCancelled);
  CHECK(r.status().message() == "query was canceled in expression evaluation");
}

TEST_CASE("limits: the sample budget counts samples held, as Prometheus' max-samples") {
  DayOfData d;
  const std::string too_many =
      "query processing would load too many samples into memory in query execution";
  SECTION("an instant range selector holds every sample it returns") {
    // 20 series x 60 samples in the last hour.
    auto over = d.engine.instant("m[1h]", d.end(), nullptr, budget_of(20 * 60 - 1));
    REQUIRE_FALSE(over.is_ok());
    CHECK(over.status().code() == StatusCode::kResourceExhausted);
    CHECK(over.status().message() == too_many);
    auto within = d.engine.instant("m[1h]", d.end(), nullptr, budget_of(20 * 60));
    REQUIRE(within.is_ok());
    CHECK(within->series.size() == 20);
  }
  SECTION("a range function holds one series' samples while it computes, plus its results") {
    // sum_over_time(m[1h]) at one instant: a series' 60 samples, then one point per series.
    auto within = d.engine.instant("sum_over_time(m[1h])", d.end(), nullptr, budget_of(60 + 19));
    REQUIRE(within.is_ok());
    CHECK(within->series.size() == 20);
    auto over = d.engine.instant("sum_over_time(m[1h])", d.end(), nullptr, budget_of(59));
    REQUIRE_FALSE(over.is_ok());
    CHECK(over.status().message() == too_many);
  }
  SECTION("a range query holds every point of its result") {
    // 20 series x 61 steps.
    auto over = d.engine.range("m", d.end() - kHour, d.end(), kMin, nullptr, budget_of(1000));
    REQUIRE_FALSE(over.is_ok());
    CHECK(over.status().code() == StatusCode::kResourceExhausted);
    auto within = d.engine.range("max(m)", d.end() - kHour, d.end(), kMin, nullptr,
                                 budget_of(20 * 61 + 61 + 1440));
    REQUIRE(within.is_ok());
    CHECK(within->series.size() == 1);
  }
}

TEST_CASE("limits: within its limits a query answers as without them") {
  DayOfData d;
  std::atomic<bool> cancel{false};
  QueryLimits limits;
  limits.deadline = std::chrono::steady_clock::now() + 60s;
  limits.max_samples = 50'000'000;
  limits.cancel = &cancel;
  auto limited =
      d.engine.range("sum(rate(m[5m]))", base_time() + kHour, d.end(), 5 * kMin, nullptr, limits);
  auto free = d.engine.range("sum(rate(m[5m]))", base_time() + kHour, d.end(), 5 * kMin);
  REQUIRE(limited.is_ok());
  REQUIRE(free.is_ok());
  REQUIRE(limited->series.size() == 1);
  REQUIRE(free->series.size() == 1);
  CHECK(limited->series[0].points.size() == free->series[0].points.size());
}
