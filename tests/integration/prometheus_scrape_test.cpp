// A real Prometheus scrapes kpid's /metrics: the KPI gauges arrive intact (status, value and
// thresholds) and can be queried from Prometheus' own API.

#include <filesystem>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

constexpr const char* kPrometheusBinary = PROMETHEUS_BINARY;

// The value of a one-series instant query against Prometheus, nullopt when it has no result
// (yet). `last` gets the response body for diagnostics.
std::optional<double> prom_value(uint16_t port, const std::string& query, std::string& last) {
  HttpResponse r;
  try {
    r = http_request(port, "GET", "/api/v1/query?" + form({{"query", query}}), {}, {}, 5s);
  } catch (const std::exception& e) {
    last = std::string("request failed: ") + e.what();
    return std::nullopt;
  }
  last = std::to_string(r.status) + " " + r.body;
  if (r.status != 200) return std::nullopt;
  try {
    const json::value v = r.json();
    if (v.at("status") != "success") return std::nullopt;
    const auto& result = v.at("data").at("result").as_array();
    if (result.size() != 1) return std::nullopt;
    return std::stod(std::string(result[0].at("value").as_array()[1].as_string()));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

TEST_CASE("prometheus: a real Prometheus scrapes kpid's KPI status, value and thresholds",
          "[prometheus]") {
  Kpid k({.config_toml = R"([[kpi]]
id = "checkout_latency"
owner = "payments"
unit = "ms"
direction = "lower_is_better"
[kpi.value]
selector = 'latency{route="/checkout"}'
over_time = "last"
window = "5m"
[kpi.band]
target = 100
warn = 200
crit = 500
)"});
  k.start();
  k.write_ok("latency,route=/checkout value=750 " + std::to_string(now_ms()), "ms");
  // kpid itself is crit before Prometheus gets involved.
  REQUIRE(eventually(
      [&] {
        return metric_value(k.metrics(), "kpid_kpi_status",
                            {{"kpi", "checkout_latency"}, {"status", "crit"}}) == 1.0;
      },
      3s));

  TempDir prom_dir;
  const uint16_t prom_port = free_port();
  const std::string config = prom_dir.file("prometheus.yml");
  write_file(config,
             "global:\n"
             "  scrape_interval: 1s\n"
             "  scrape_timeout: 1s\n"
             "  evaluation_interval: 1s\n"
             "scrape_configs:\n"
             "  - job_name: kpid\n"
             "    metrics_path: /metrics\n"
             "    static_configs:\n"
             "      - targets: ['127.0.0.1:" +
                 std::to_string(k.http_port()) + "']\n");
  std::filesystem::create_directories(prom_dir.file("data"));
  BackgroundProcess prometheus(
      "prometheus",
      {kPrometheusBinary, "--config.file=" + config, "--storage.tsdb.path=" + prom_dir.file("data"),
       "--web.listen-address=127.0.0.1:" + std::to_string(prom_port), "--log.level=info"},
      prom_dir.file("prometheus.log"));

  // Prometheus is up.
  std::string why;
  REQUIRE(eventually(
      [&] {
        if (!prometheus.running()) {
          why = "prometheus exited with status " +
                std::to_string(prometheus.exit_status().value_or(-1));
          return true;
        }
        try {
          const int st = http_request(prom_port, "GET", "/-/ready", {}, {}, 2s).status;
          why = "GET /-/ready returned " + std::to_string(st);
          return st == 200;
        } catch (const std::exception& e) {
          why = e.what();
          return false;
        }
      },
      20s, 100ms));
  INFO("prometheus start: " << why);
  REQUIRE(prometheus.running());

  struct Expectation {
    std::string query;
    double value;
  };
  const std::vector<Expectation> expected = {
      {R"(kpid_kpi_status{kpi="checkout_latency",status="crit"})", 1},
      {R"(kpid_kpi_status{kpi="checkout_latency",status="ok"})", 0},
      {R"(kpid_kpi_value{kpi="checkout_latency",owner="payments",job="kpid"})", 750},
      {R"(kpid_kpi_threshold{kpi="checkout_latency",level="warn"})", 200},
      {R"(kpid_kpi_threshold{kpi="checkout_latency",level="crit"})", 500},
      {R"(kpid_kpi_threshold{kpi="checkout_latency",level="target"})", 100},
      {R"(up{job="kpid"})", 1},
  };
  for (const auto& e : expected) {
    std::string last;
    std::optional<double> got;
    const bool ok = eventually(
        [&] {
          got = prom_value(prom_port, e.query, last);
          return got && *got == e.value;
        },
        30s, 250ms);
    INFO("Prometheus query " << e.query << " (expected " << e.value
                             << "); last response: " << last);
    CHECK(ok);
  }

  // The status change shows up in Prometheus too.
  k.write_ok("latency,route=/checkout value=150 " + std::to_string(now_ms()), "ms");
  std::string last;
  const bool ok = eventually(
      [&] {
        return prom_value(prom_port, R"(kpid_kpi_status{kpi="checkout_latency",status="ok"})",
                          last) == 1.0 &&
               prom_value(prom_port, R"(kpid_kpi_value{kpi="checkout_latency"})", last) == 150.0;
      },
      30s, 250ms);
  INFO("last response: " << last);
  CHECK(ok);
  CHECK(prometheus.running());
}
