// vmagent (VictoriaMetrics' agent, Debian's victoria-metrics package) scrapes kpid and itself
// and remote-writes what it scrapes to kpid: every series of a scrape arrives, under the
// labels vmagent gives it, with the values the target exposed.

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <thread>

#include "harness.h"

using namespace kpid_it;

namespace {

constexpr const char* kVmagentBinary = VMAGENT_BINARY;

// The single value of an instant query that must answer exactly one series, or nullopt.
std::optional<double> single(const Kpid& k, const std::string& query, int64_t t_ms) {
  const auto got = k.query_at_ms(query, t_ms);
  if (got.size() != 1) return std::nullopt;
  return std::stod(got[0].value);
}

// How many series matching `selector` have a sample at exactly `at_ms` (a raw range read).
size_t series_with_sample_at(const Kpid& k, const std::string& selector, int64_t at_ms) {
  const HttpResponse r =
      k.get("/api/v1/query?" + form({{"query", selector + "[1s]"}, {"time", fmt_seconds(at_ms)}}));
  INFO(r.body);
  REQUIRE(r.status == 200);
  const boost::json::value answer = r.json();
  size_t n = 0;
  for (const auto& series : answer.at("data").at("result").as_array()) {
    for (const auto& point : series.at("values").as_array()) {
      if (std::llround(point.as_array()[0].to_number<double>() * 1000) == at_ms) ++n;
    }
  }
  return n;
}

// The timestamp (ms) of the next-to-last sample of `selector` (one series) in the last 10 s:
// a scrape whose samples have all arrived.
int64_t complete_scrape(const Kpid& k, const std::string& selector) {
  const HttpResponse r = k.get(
      "/api/v1/query?" + form({{"query", selector + "[10s]"}, {"time", fmt_seconds(now_ms())}}));
  INFO(r.body);
  REQUIRE(r.status == 200);
  const boost::json::value answer = r.json();
  const auto& result = answer.at("data").at("result").as_array();
  REQUIRE(result.size() == 1);
  const auto& values = result[0].at("values").as_array();
  REQUIRE(values.size() >= 2);
  return static_cast<int64_t>(
      std::llround(values[values.size() - 2].as_array()[0].to_number<double>() * 1000));
}

}  // namespace

TEST_CASE("vmagent: scrapes and remote-writes to kpid and every series of a scrape arrives",
          "[remote_write][vmagent]") {
  Kpid k;
  k.start();
  TempDir dir;
  const uint16_t agent_port = free_port();
  const std::string config = dir.file("scrape.yml");
  write_file(config,
             "global:\n  scrape_interval: 1s\nscrape_configs:\n"
             "  - job_name: kpid\n    static_configs:\n      - targets: ['127.0.0.1:" +
                 std::to_string(k.http_port()) +
                 "']\n"
                 "  - job_name: vmagent\n    static_configs:\n      - targets: ['127.0.0.1:" +
                 std::to_string(agent_port) + "']\n");
  BackgroundProcess agent(
      "vmagent",
      {kVmagentBinary, "-promscrape.config=" + config,
       "-remoteWrite.url=http://127.0.0.1:" + std::to_string(k.http_port()) + "/api/v1/write",
       "-remoteWrite.tmpDataPath=" + dir.file("queue"), "-remoteWrite.flushInterval=200ms",
       "-httpListenAddr=127.0.0.1:" + std::to_string(agent_port), "-loggerLevel=INFO"},
      dir.file("vmagent.log"));

  // Both targets' scrapes arrive: up is 1 for each job.
  const bool arrived = eventually(
      [&] {
        if (!agent.running()) return true;
        try {
          return k.query_at_ms("up == 1", now_ms()).size() == 2;
        } catch (const std::exception&) {
          return false;
        }
      },
      60s, 250ms);
  INFO("vmagent log:\n" << tail(read_file(dir.file("vmagent.log")), 3000));
  REQUIRE(agent.running());
  REQUIRE(arrived);
  std::this_thread::sleep_for(3s);  // a few complete scrapes behind us

  // For one scrape, every sample it took is a series in kpid at that scrape's timestamp:
  // vmagent's own count of what it scraped equals what kpid holds (its up and scrape_*
  // series aside).
  for (const std::string job : {"kpid", "vmagent"}) {
    const int64_t at = complete_scrape(k, "scrape_samples_scraped{job=\"" + job + "\"}");
    const auto expected = single(k, "scrape_samples_scraped{job=\"" + job + "\"}", at);
    // Series with a sample at exactly that timestamp (vmagent stamps a scrape's samples alike).
    const size_t stored =
        series_with_sample_at(k, "{job=\"" + job + "\",__name__!~\"up|scrape_.*\"}", at);
    INFO(job << " scrape at " << at);
    REQUIRE(expected.has_value());
    CHECK(static_cast<double>(stored) == *expected);
    CHECK(*expected > 10);
  }
  // Values as the target exposed them: vmagent's flags are gauges of 1 with the flag's value.
  const auto flag = k.query_at_ms(R"(flag{job="vmagent",name="promscrape.config"})", now_ms());
  REQUIRE(flag.size() == 1);
  CHECK(flag[0].value == "1");
  CHECK(flag[0].metric.at("value") == config);
  CHECK(metric_value(k.metrics(), "kpid_ingest_samples_total", {{"protocol", "remote_write"}})
            .value_or(0) > 0);
  CHECK(agent.stop() == 0);
}
