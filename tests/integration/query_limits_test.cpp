// Query limits and the query pool on the real binary: a query past query.timeout (or the API's
// `timeout` parameter) answers 503 "timeout", one over query.max_samples 422 "execution", a
// query over the pool's queue limit 503 "unavailable"; and heavy queries leave the network
// threads free for /healthz and writes.
#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

using namespace kpid_it;

namespace {

// Every step re-reads a day of every series: seconds of work even in a release build.
const std::string kHeavyQuery = "quantile_over_time(0.9, {__name__=~\".+\"}[1d])";

struct Day {
  int64_t start;
  int64_t end;
};

// `series` series "heavy" (label s) of a day at one sample a minute, ending at the last minute.
Day write_day(const Kpid& k, int series) {
  const int64_t end = (now_ms() / 60'000) * 60'000;
  const int64_t start = end - 86'400'000;
  for (int part = 0; part < 4; ++part) {
    std::string body;
    for (int s = 0; s < series; ++s) {
      for (int m = part * 360; m < (part + 1) * 360; ++m) {
        body += "heavy,s=" + std::to_string(s) + " value=" + std::to_string(m % 60) + " " +
                std::to_string(start + m * 60'000LL) + "\n";
      }
    }
    const auto r = http_request(k.http_port(), "POST", "/write?precision=ms", body, {}, 120s);
    INFO(r.body);
    REQUIRE(r.status == 204);
  }
  return {start, end};
}

std::string heavy_range_target(const Day& day, const std::string& extra = "") {
  return "/api/v1/query_range?query=" + url_encode(kHeavyQuery) +
         "&start=" + fmt_seconds(day.start) + "&end=" + fmt_seconds(day.end) + "&step=15" + extra;
}

double metric_or_zero(const Kpid& k, std::string_view name) {
  return metric_value(k.metrics(), name).value_or(-1);
}

}  // namespace

TEST_CASE("query limits: a query past query.timeout answers 503 timeout, as Prometheus",
          "[query][limits]") {
  Kpid k({.config_toml = "[query]\ntimeout = \"200ms\"\n"});
  k.start();
  const Day day = write_day(k, 40);
  const auto r = http_request(k.http_port(), "GET", heavy_range_target(day), "", {}, 60s);
  INFO(r.body);
  require_error(r, 503, "timeout");
  CHECK(json_str(r.json(), "error") == "query timed out in expression evaluation");
  // Light queries still answer.
  CHECK(k.get("/api/v1/query?query=" + url_encode("count(heavy)")).status == 200);
}

TEST_CASE("query limits: the API's timeout parameter shortens query.timeout", "[query][limits]") {
  Kpid k;
  k.start();
  const Day day = write_day(k, 40);
  SECTION("as a duration") {
    const auto r =
        http_request(k.http_port(), "GET", heavy_range_target(day, "&timeout=200ms"), "", {}, 60s);
    INFO(r.body);
    require_error(r, 503, "timeout");
  }
  SECTION("as float seconds, in a form POST") {
    const auto r = http_request(k.http_port(), "POST", "/api/v1/query_range",
                                form({{"query", kHeavyQuery},
                                      {"start", fmt_seconds(day.start)},
                                      {"end", fmt_seconds(day.end)},
                                      {"step", "15"},
                                      {"timeout", "0.2"}}),
                                {{"Content-Type", "application/x-www-form-urlencoded"}}, 60s);
    INFO(r.body);
    require_error(r, 503, "timeout");
    CHECK(json_str(r.json(), "error") == "query timed out in expression evaluation");
  }
  SECTION("a bad timeout is bad_data") {
    const auto r = k.get("/api/v1/query?query=heavy&timeout=soon");
    require_bad_data(r);
    CHECK(contains(json_str(r.json(), "error"), "invalid parameter \"timeout\""));
  }
}

TEST_CASE("query limits: a query over query.max_samples answers 422 with Prometheus' message",
          "[query][limits]") {
  Kpid k({.config_toml = "[query]\nmax_samples = 1000\n"});
  k.start();
  const Day day = write_day(k, 20);
  // 20 series x 60 samples in the last hour: 1200 samples held at once.
  const auto over =
      k.get("/api/v1/query?query=" + url_encode("heavy[1h]") + "&time=" + fmt_seconds(day.end));
  INFO(over.body);
  require_error(over, 422, "execution");
  CHECK(over.body ==
        R"({"status":"error","errorType":"execution","error":"query processing would load too )"
        R"(many samples into memory in query execution"})");
  // 20 x 45 = 900 samples: within the budget.
  const auto within =
      k.get("/api/v1/query?query=" + url_encode("heavy[45m]") + "&time=" + fmt_seconds(day.end));
  INFO(within.body);
  CHECK(within.status == 200);
}

TEST_CASE("query limits: over the query pool's queue limit, 503 unavailable at once",
          "[query][limits]") {
  Kpid k({.config_toml = "[query]\nmax_concurrency = 1\nmax_queued = 1\n"});
  k.start();
  const Day day = write_day(k, 40);
  // One query runs, one waits; each gives up after a few seconds (its timeout parameter).
  std::atomic<int> answered{0};
  std::vector<std::jthread> clients;  // joined before `answered` goes
  for (int i = 0; i < 2; ++i) {
    clients.emplace_back([&] {
      try {
        http_request(k.http_port(), "GET", heavy_range_target(day, "&timeout=8s"), "", {}, 60s);
      } catch (const std::exception&) {
      }
      ++answered;
    });
  }
  REQUIRE(eventually(
      [&] {
        return metric_or_zero(k, "kpid_query_pool_running") == 1 &&
               metric_or_zero(k, "kpid_query_pool_queued") == 1;
      },
      10s));
  const auto refused = http_request(k.http_port(), "GET", heavy_range_target(day), "", {}, 60s);
  INFO(refused.body);
  require_error(refused, 503, "unavailable");
  CHECK(json_str(refused.json(), "error") ==
        "too many queries: 1 running and 1 waiting (query.max_concurrency, query.max_queued); "
        "retry later");
  CHECK(refused.header("retry-after") == "1");
  CHECK(answered.load() == 0);  // refused while the others were still busy
  CHECK(metric_or_zero(k, "kpid_query_rejected_total") == 1);
}

TEST_CASE("query limits: /healthz and writes answer while heavy queries run", "[query][limits]") {
  Kpid k;
  k.start();
  const Day day = write_day(k, 40);
  std::vector<std::jthread> clients;
  for (int i = 0; i < 6; ++i) {
    clients.emplace_back([&] {
      try {
        http_request(k.http_port(), "GET", heavy_range_target(day, "&timeout=20s"), "", {}, 60s);
      } catch (const std::exception&) {
      }
    });
  }
  // Every worker busy, the rest queued.
  REQUIRE(eventually([&] { return metric_or_zero(k, "kpid_query_pool_running") >= 1; }, 10s));
  for (int i = 0; i < 20; ++i) {
    CHECK(k.get("/healthz").status == 200);
    CHECK(k.write("light value=1 " + std::to_string(now_ms()), "ms").status == 204);
  }
  CHECK(metric_or_zero(k, "kpid_query_pool_running") >= 1);  // still running all along
  // Stopping cancels them: no need to wait for their timeouts.
  CHECK(k.stop() == 0);
}
