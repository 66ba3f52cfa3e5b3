// TCP line protocol listener: newline-delimited, ns precision, bad and over-long lines are
// counted and skipped without dropping the connection.

#include <algorithm>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;

namespace {

std::string ns(int64_t ms) { return std::to_string(ms * 1'000'000); }

// Polls until an instant query at `ms` returns exactly one series with value `v`.
bool wait_value(const Kpid& k, std::string_view sel, int64_t ms, double v) {
  return eventually(
      [&] {
        const auto r = k.query_at_ms(sel, ms);
        return r.size() == 1 && std::stod(r[0].value) == v;
      },
      10s, 20ms);
}

}  // namespace

TEST_CASE("tcp: lines are stored, bad and too-long lines are skipped, connection stays up",
          "[tcp]") {
  Kpid k({.config_toml = "[line]\nmax_line_bytes = \"1KiB\"\n"});
  k.start();
  REQUIRE(k.line_port() != 0);
  const int64_t t = base_ms();

  TcpClient c(k.line_port());
  c.send("tcp1,host=a value=1 " + ns(t) + "\n" +  //
         "this line is bad\n" +                   //
         "tcp1,host=a value=2 " + ns(t + 1000) + "\n");
  INFO("log:\n" << k.log_tail());
  REQUIRE(wait_value(k, "tcp1", t + 1000, 2));
  require_value_at(k, "tcp1", t, 1);
  CHECK(c.peer_open());

  // A line over max_line_bytes, then a good line, on the same connection.
  const std::string long_line =
      "tcp1,host=a,pad=" + std::string(2000, 'x') + " value=99 " + ns(t + 2000) + "\n";
  c.send(long_line);
  c.send("tcp1,host=a value=3 " + ns(t + 3000) + "\n");
  REQUIRE(wait_value(k, "tcp1", t + 3000, 3));
  require_value_at(k, "tcp1", t + 2000, 2);  // the long line was not stored
  require_empty_at(k, R"(tcp1{pad=~".+"})", t + 3000);
  CHECK(c.peer_open());

  // A line split across two sends is reassembled.
  c.send("tcp2,host=b val");
  std::this_thread::sleep_for(50ms);
  c.send("ue=5 " + ns(t) + "\n");
  REQUIRE(wait_value(k, "tcp2", t, 5));

  // A second connection works concurrently.
  TcpClient c2(k.line_port());
  c2.send("tcp3 value=7 " + ns(t) + "\n");
  REQUIRE(wait_value(k, "tcp3", t, 7));
  c.send("tcp1,host=a value=4 " + ns(t + 4000) + "\n");
  REQUIRE(wait_value(k, "tcp1", t + 4000, 4));

  const std::string m = k.metrics();
  INFO("metrics:\n" << m);
  CHECK(metric_value(m, "kpid_ingest_samples_total", {{"protocol", "tcp"}}) == 6.0);
  CHECK(metric_value(m, "kpid_ingest_lines_rejected_total", {{"protocol", "tcp"}}) == 2.0);
  CHECK(metric_value(m, "kpid_ingest_lines_rejected_total",
                     {{"protocol", "tcp"}, {"reason", "line_too_long"}}) == 1.0);
  // HTTP counters are separate.
  CHECK(metric_value(m, "kpid_ingest_samples_total", {{"protocol", "http"}}).value_or(0) == 0);
}

TEST_CASE("tcp: many lines in one burst, and string fields skipped", "[tcp]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  std::string burst;
  for (int i = 0; i < 2000; ++i)
    burst += "burst,host=h" + std::to_string(i % 10) + " value=" + std::to_string(i) + " " +
             ns(t + i) + "\n";
  burst += "burststr,host=a msg=\"text\" " + ns(t) + "\n";
  {
    TcpClient c(k.line_port());
    c.send(burst);
    c.send("burstend value=1 " + ns(t) + "\n");
    // Closing right after sending must not lose the data already sent.
  }
  REQUIRE(eventually([&] { return !k.query_at_ms("burstend", t).empty(); }, 10s));
  REQUIRE(eventually(
      [&] {
        return metric_value(k.metrics(), "kpid_ingest_samples_total", {{"protocol", "tcp"}}) ==
               2001.0;
      },
      10s));
  const auto r =
      k.query_range(R"(burst{host="h3"})", fmt_seconds(t), fmt_seconds(t + 1999), "0.001");
  REQUIRE(r.size() == 1);
  // Samples at t+3, t+13, ...; with 1 ms steps every step from t+3 on has a value.
  REQUIRE(r[0].values.size() == 1997);
  CHECK(num(r[0].values.back().second) == 1993);
  require_empty_at(k, R"({__name__=~"burststr.*"})", t);
  CHECK(metric_value(k.metrics(), "kpid_ingest_string_fields_skipped_total",
                     {{"protocol", "tcp"}}) == 1.0);
}

TEST_CASE("tcp: every bad line is counted but error logging is rate-limited", "[tcp]") {
  Kpid k({.config_toml = "[line]\nerror_log_interval = \"10s\"\n"});
  k.start();
  const int64_t t = base_ms();
  {
    TcpClient c(k.line_port());
    std::string bad;
    for (int i = 0; i < 500; ++i) bad += "bad line number" + std::to_string(i) + "\n";
    c.send(bad);
    c.send("afterbad value=1 " + ns(t) + "\n");
  }
  REQUIRE(eventually([&] { return !k.query_at_ms("afterbad", t).empty(); }));
  REQUIRE(eventually([&] {
    return metric_value(k.metrics(), "kpid_ingest_lines_rejected_total", {{"protocol", "tcp"}}) ==
           500.0;
  }));
  // 500 bad lines within one interval: a handful of log lines at most, not one per line.
  const std::string log = k.log();
  const size_t lines = static_cast<size_t>(std::count(log.begin(), log.end(), '\n'));
  INFO("log:\n" << k.log_tail());
  CHECK(lines <= 15);
}
