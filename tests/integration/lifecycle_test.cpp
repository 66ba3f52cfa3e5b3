// Process lifecycle: health endpoints, metrics, graceful stop, restart, crash durability.

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;

TEST_CASE("lifecycle: /healthz and /readyz answer 200", "[lifecycle]") {
  Kpid k;
  k.start();
  CHECK(k.get("/healthz").status == 200);
  CHECK(k.get("/readyz").status == 200);
}

TEST_CASE("lifecycle: /metrics exposes ingest, store and HTTP metrics", "[lifecycle][metrics]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  const HttpResponse first = k.get("/metrics");
  REQUIRE(first.status == 200);
  CHECK(contains(first.header("content-type"), "text/plain"));
  const double before =
      metric_value(first.body, "kpid_ingest_samples_total", {{"protocol", "http"}}).value_or(0);

  k.write_ok("mx,host=a value=1 " + std::to_string(t) + "\nmx,host=b value=2 " + std::to_string(t) +
                 "\nmx,host=c u=3,value=4 " + std::to_string(t),
             "ms");

  const std::string m = k.metrics();
  INFO("metrics:\n" << tail(m, 8000));
  const auto after = metric_value(m, "kpid_ingest_samples_total", {{"protocol", "http"}});
  REQUIRE(after.has_value());
  CHECK(*after - before == 4);

  // Every series family the spec names is present.
  for (const char* name :
       {"kpid_ingest_samples_total", "kpid_store_series", "kpid_store_size_bytes",
        "kpid_http_requests_total", "kpid_http_request_duration_seconds_bucket",
        "kpid_http_request_duration_seconds_sum", "kpid_http_request_duration_seconds_count"}) {
    INFO("metric " << name);
    CHECK(metric_value(m, name).has_value());
  }
  CHECK(contains(m, "# TYPE kpid_ingest_string_fields_skipped_total counter"));
  CHECK(contains(m, "# TYPE kpid_http_request_duration_seconds histogram"));
  CHECK(eventually([&] { return metric_value(k.metrics(), "kpid_store_series") == 4.0; }, 5s));

  // requests_total is labelled by handler and code; our 204 write is counted.
  bool saw_write_204 = false;
  for (const auto& s : parse_metrics(m)) {
    if (s.name != "kpid_http_requests_total") continue;
    CHECK(s.labels.count("handler") == 1);
    CHECK(s.labels.count("code") == 1);
    if (s.labels.count("code") && s.labels.at("code") == "204" && s.value >= 1)
      saw_write_204 = true;
  }
  CHECK(saw_write_204);
  CHECK(
      metric_value(m, "kpid_http_request_duration_seconds_bucket", {{"le", "+Inf"}}).value_or(0) >=
      1);

  // Counters keep increasing.
  k.write_ok("mx,host=d value=5 " + std::to_string(t), "ms");
  CHECK(metric_value(k.metrics(), "kpid_ingest_samples_total", {{"protocol", "http"}}) ==
        *after + 1);
  const auto rejected_before =
      metric_value(k.metrics(), "kpid_ingest_lines_rejected_total", {{"protocol", "http"}})
          .value_or(0);
  CHECK(k.write("broken line\n", "ms").status == 400);
  CHECK(metric_value(k.metrics(), "kpid_ingest_lines_rejected_total", {{"protocol", "http"}}) ==
        rejected_before + 1);
}

TEST_CASE("lifecycle: SIGTERM exits 0 and a restart keeps the data", "[lifecycle]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  k.write_ok("persist,host=a value=11 " + std::to_string(t) + "\npersist,host=b value=12 " +
                 std::to_string(t + 1000),
             "ms");
  {
    TcpClient c(k.line_port());
    c.send("persist_tcp value=13 " + std::to_string(t * 1'000'000) + "\n");
  }
  REQUIRE(eventually([&] { return !k.query_at_ms("persist_tcp", t).empty(); }));
  REQUIRE(k.stop() == 0);

  k.start();
  require_value_at(k, R"(persist{host="a"})", t, 11);
  require_value_at(k, R"(persist{host="b"})", t + 1000, 12);
  require_value_at(k, "persist_tcp", t, 13);
  const auto labels = k.get("/api/v1/label/host/values").json();
  CHECK(labels.at("data") == boost::json::array{"a", "b"});

  // Writable after the restart, and a second restart keeps both.
  k.write_ok("persist,host=c value=14 " + std::to_string(t), "ms");
  REQUIRE(k.stop() == 0);
  k.start();
  CHECK(k.query_at_ms("persist", t + 1000).size() == 3);
  REQUIRE(k.stop() == 0);
}

TEST_CASE("lifecycle: SIGINT exits 0", "[lifecycle]") {
  Kpid k;
  k.start();
  CHECK(k.signal_and_wait(SIGINT) == 0);
}

TEST_CASE("lifecycle: SIGTERM with idle keep-alive and TCP connections exits promptly",
          "[lifecycle]") {
  Kpid k({.config_toml = "[http]\nshutdown_timeout = \"2s\"\n"});
  k.start();
  HttpClient http(k.http_port());
  REQUIRE(http.request("GET", "/healthz").status == 200);  // keep-alive connection stays open
  TcpClient tcp(k.line_port());
  tcp.send("idle value=1\n");
  const auto t0 = Clock::now();
  CHECK(k.stop(8s) == 0);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  INFO("exit took " << ms << " ms");
  CHECK(ms < 5000);
}

namespace {

// A writer thread posts one sample per request (series `dur`, value i at base+i ms) on a
// keep-alive connection and records every 204. Mid-stream kpid gets `sig`; after a restart every
// acknowledged sample must be there with its value.
void acknowledged_writes_survive(int sig, bool sync = false) {
  KpidOptions options;
  if (sync) options.config_toml = "[storage]\nsync = true\n";
  Kpid k(options);
  k.start();
  const int64_t base = (now_ms() / 1000) * 1000 - 1'800'000;
  constexpr int kMax = 30'000;

  std::vector<int> acked;  // written only by the writer until join
  std::atomic<int> acked_count{0};
  std::atomic<bool> signalled{false};
  std::string writer_end;
  const uint16_t port = k.http_port();

  std::jthread writer([&] {
    HttpClient c(port, 5s);
    Clock::time_point signalled_at{};
    for (int i = 0; i < kMax; ++i) {
      if (signalled.load()) {
        if (signalled_at == Clock::time_point{}) signalled_at = Clock::now();
        if (Clock::now() - signalled_at > 500ms) {
          writer_end = "stopped 500 ms after the signal";
          break;
        }
      }
      HttpResponse r;
      try {
        r = c.request("POST", "/write?precision=ms",
                      "dur value=" + std::to_string(i) + " " + std::to_string(base + i));
      } catch (const std::exception& e) {
        writer_end = std::string("request error: ") + e.what();
        break;
      }
      if (r.status != 204) {
        writer_end = "status " + std::to_string(r.status) + ": " + r.body;
        break;
      }
      acked.push_back(i);
      acked_count.store(static_cast<int>(acked.size()));
    }
    if (writer_end.empty()) writer_end = "reached kMax";
  });
  // If an assertion below throws, stop the writer before the jthread joins it.
  struct StopWriter {
    std::atomic<bool>& flag;
    ~StopWriter() { flag = true; }
  } stop_writer{signalled};

  const auto started = Clock::now();
  const bool enough = eventually(
      [&] {
        return (acked_count.load() >= 300 && Clock::now() - started >= 1500ms) ||
               acked_count.load() >= kMax / 2;
      },
      20s, 5ms);
  if (sig == SIGKILL) {
    k.kill9();
  } else {
    k.send_signal(sig);
  }
  signalled = true;
  writer.join();
  int exit_status = -1;
  if (sig != SIGKILL) exit_status = k.signal_and_wait(0 /* already sent: just wait */);

  INFO("writer: "
       << acked.size() << " acknowledged in "
       << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()
       << " ms; ended with: " << writer_end);
  REQUIRE(enough);
  REQUIRE(acked.size() >= 300);
  if (sig != SIGKILL) CHECK(exit_status == 0);

  k.start();
  const int max_i = acked.back();
  std::map<int64_t, std::string> got;
  for (int c = 0; c <= max_i; c += 5000) {
    // Whole-second bounds, 1 ms steps: 5001 points per query, below the 11000 limit.
    const auto r =
        k.query_range("dur", fmt_seconds(base + c), fmt_seconds(base + c + 5000), "0.001");
    REQUIRE(r.size() == 1);
    for (const auto& [ts, v] : r[0].values) got[ts] = v;
  }
  std::vector<std::string> problems;
  for (int i : acked) {
    auto it = got.find(base + i);
    if (it == got.end()) {
      problems.push_back("sample " + std::to_string(i) + ": no value at its step");
    } else if (std::strtod(it->second.c_str(), nullptr) != static_cast<double>(i)) {
      problems.push_back("sample " + std::to_string(i) + ": value at its step is " + it->second +
                         " (the sample itself is missing)");
    }
  }
  std::string first;
  for (size_t j = 0; j < problems.size() && j < 20; ++j) first += problems[j] + "\n";
  INFO(problems.size() << " of " << acked.size() << " acknowledged samples lost; first:\n"
                       << first);
  CHECK(problems.empty());
}

}  // namespace

TEST_CASE("lifecycle: kill -9 mid-stream loses no acknowledged write", "[lifecycle][durability]") {
  acknowledged_writes_survive(SIGKILL);
}

TEST_CASE("lifecycle: kill -9 mid-stream with storage.sync = true loses no acknowledged write",
          "[lifecycle][durability]") {
  acknowledged_writes_survive(SIGKILL, /*sync=*/true);
}

TEST_CASE("lifecycle: SIGTERM mid-stream finishes in-flight writes and exits 0",
          "[lifecycle][durability]") {
  acknowledged_writes_survive(SIGTERM);
}

TEST_CASE("lifecycle: request_timeout and idle_timeout close slow and idle connections",
          "[lifecycle][http]") {
  Kpid k({.config_toml = "[http]\nrequest_timeout = \"1s\"\nidle_timeout = \"1s\"\n"});
  k.start();
  auto timed = [&](std::string_view request, std::string& response) {
    const auto t0 = Clock::now();
    response = raw_http(k.http_port(), request, 8s);
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  };
  std::string resp;
  SECTION("headers never finished") {
    const auto ms = timed("POST /write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le", resp);
    INFO("closed after " << ms << " ms; response: " << resp);
    CHECK(ms >= 500);
    CHECK(ms < 4000);
  }
  SECTION("body never finished") {
    const auto ms = timed(
        "POST /write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\nslow value=1", resp);
    INFO("closed after " << ms << " ms; response: " << resp);
    CHECK(ms >= 500);
    CHECK(ms < 4000);
    require_empty_at(k, "slow", now_ms());
  }
  SECTION("idle keep-alive connection") {
    const auto ms = timed("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", resp);
    INFO("closed after " << ms << " ms; response: " << resp);
    CHECK(raw_status(resp) == 200);
    CHECK(ms >= 500);
    CHECK(ms < 4000);
  }
  // Still serving.
  CHECK(k.get("/healthz").status == 200);
}

TEST_CASE("lifecycle: a huge Content-Length is refused with 413 before the body is sent",
          "[lifecycle][http][limits]") {
  Kpid k;
  k.start();
  for (const char* extra : {"", "Expect: 100-continue\r\n"}) {
    const auto t0 = Clock::now();
    const std::string resp = raw_http(k.http_port(),
                                      std::string("POST /write HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                  "Content-Length: 100000000\r\n") +
                                          extra + "\r\n",
                                      5s);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    INFO("extra header '" << extra << "': " << ms << " ms; response: " << resp);
    CHECK(raw_status(resp) == 413);
    CHECK(ms < 3000);
  }
}

TEST_CASE("lifecycle: POST /api/v1/admin/compact seals heads and rollups, the data stays",
          "[lifecycle][store]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  std::string body;
  for (int i = 0; i < 120; ++i) {
    body += "compacted value=" + std::to_string(i) + " " + std::to_string(t + i * 30'000) + "\n";
  }
  k.write_ok(body, "ms");
  CHECK(k.get("/api/v1/admin/compact").status == 405);
  const auto r = k.post("/api/v1/admin/compact", "");
  INFO(r.body);
  REQUIRE(r.status == 204);
  const auto metrics = k.get("/metrics").body;
  CHECK(contains(metrics, "kpid_store_head_samples 0"));
  CHECK(contains(metrics, "kpid_store_dirty_windows 0"));
  // An hour of samples every 30 s: 120 of them, read back raw and through the 1h rollups.
  const std::string q = "count_over_time(compacted[1h])";
  const auto count =
      k.get("/api/v1/query?query=" + url_encode(q) + "&time=" + fmt_seconds(t + 119 * 30'000))
          .json();
  CHECK(count.at("data").at("result").as_array().at(0).at("value").as_array().at(1) == "120");
  require_value_at(k, "compacted", t + 60 * 30'000, 60);
}
