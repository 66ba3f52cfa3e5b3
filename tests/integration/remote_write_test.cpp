// Prometheus remote write 1.0 at POST /api/v1/write: a real Prometheus scrapes two targets and
// remote-writes to kpid, and kpid answers the same queries with the same values, also after one
// target goes away (Prometheus' stale markers); hand-built bodies check the answers senders act
// on (204, 400 with the reason, 415 so a 2.0 sender falls back, per-series rejections that
// store the rest).

#include <snappy.h>

#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "harness.h"
#include "prometheus/remote_write_v1.pb.h"

using namespace kpid_it;
namespace json = boost::json;
namespace pb = kpid::wire::prometheus::v1;

namespace {

constexpr const char* kPrometheusBinary = PROMETHEUS_BINARY;

const Headers kRemoteWriteHeaders = {{"Content-Type", "application/x-protobuf"},
                                     {"Content-Encoding", "snappy"},
                                     {"X-Prometheus-Remote-Write-Version", "0.1.0"}};

std::string snappy_body(const pb::WriteRequest& request) {
  const std::string raw = request.SerializeAsString();
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

pb::TimeSeries* add_series(pb::WriteRequest& request,
                           std::vector<std::pair<std::string, std::string>> labels, int64_t t,
                           double v) {
  auto* ts = request.add_timeseries();
  for (auto& [name, value] : labels) {
    auto* l = ts->add_labels();
    l->set_name(name);
    l->set_value(value);
  }
  auto* s = ts->add_samples();
  s->set_timestamp(t);
  s->set_value(v);
  return ts;
}

// An instant query's result as "labels -> value", from kpid's or Prometheus' API.
std::map<std::string, std::string> instant(uint16_t port, const std::string& query, int64_t t_ms) {
  const HttpResponse r = http_request(
      port, "GET", "/api/v1/query?" + form({{"query", query}, {"time", fmt_seconds(t_ms)}}), {}, {},
      10s);
  INFO(r.body);
  REQUIRE(r.status == 200);
  std::map<std::string, std::string> out;
  const json::value answer = r.json();
  for (const auto& item : answer.at("data").at("result").as_array()) {
    std::string key;
    for (const auto& [name, value] : item.at("metric").as_object()) {
      key += std::string(name) + "=" + std::string(value.as_string()) + ",";
    }
    out[key] = std::string(item.at("value").as_array()[1].as_string());
  }
  return out;
}

std::string printed(const std::map<std::string, std::string>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += "{" + k + "} " + v + "\n";
  return out;
}

}  // namespace

TEST_CASE("remote write: a real Prometheus remote-writes, kpid answers as Prometheus does",
          "[remote_write][prometheus]") {
  Kpid k;
  k.start();
  TempDir prom_dir;
  const uint16_t prom_port = free_port();
  const std::string config = prom_dir.file("prometheus.yml");
  const std::string targets = "['127.0.0.1:" + std::to_string(k.http_port()) +
                              "', '127.0.0.1:" + std::to_string(prom_port) + "']";
  write_file(config,
             "global:\n"
             "  scrape_interval: 1s\n"
             "  scrape_timeout: 1s\n"
             "scrape_configs:\n"
             "  - job_name: both\n"
             "    static_configs:\n"
             "      - targets: " +
                 targets +
                 "\n"
                 "remote_write:\n"
                 "  - url: http://127.0.0.1:" +
                 std::to_string(k.http_port()) +
                 "/api/v1/write\n"
                 "    queue_config:\n"
                 "      batch_send_deadline: 1s\n"
                 "      max_samples_per_send: 2000\n"
                 "    metadata_config:\n"
                 "      send_interval: 1s\n");
  std::filesystem::create_directories(prom_dir.file("data"));
  BackgroundProcess prometheus(
      "prometheus",
      {kPrometheusBinary, "--config.file=" + config, "--storage.tsdb.path=" + prom_dir.file("data"),
       "--web.listen-address=127.0.0.1:" + std::to_string(prom_port), "--log.level=info"},
      prom_dir.file("prometheus.log"));

  // Both targets' scrapes reach kpid through remote write.
  const bool arrived = eventually(
      [&] {
        if (!prometheus.running()) return true;
        try {
          return instant(k.http_port(), "up", now_ms()).size() == 2;
        } catch (const std::exception&) {
          return false;
        }
      },
      60s, 250ms);
  INFO("prometheus log:\n" << tail(read_file(prom_dir.file("prometheus.log")), 3000));
  REQUIRE(prometheus.running());
  REQUIRE(arrived);

  // Some seconds ago, both hold every sample: the same answers, label for label, value for value.
  std::this_thread::sleep_for(4s);
  const int64_t t = now_ms() - 3000;
  for (const std::string query :
       {"up", "scrape_samples_scraped", "scrape_series_added", R"(prometheus_build_info)",
        R"(kpid_ingest_samples_total{protocol="remote_write"})",
        // The same data through the parser and evaluator: operators, aggregations, functions.
        "sum by (job) (scrape_samples_scraped)", "count without (instance) (up)",
        "max_over_time(scrape_samples_scraped[10s])", "scrape_samples_scraped * 2 - 1", "-up",
        "up == bool 1", "scrape_samples_scraped > 0", "abs(scrape_samples_scraped - 100)"}) {
    const auto from_prometheus = instant(prom_port, query, t);
    const auto from_kpid = instant(k.http_port(), query, t);
    INFO(query << "\nPrometheus:\n" << printed(from_prometheus) << "kpid:\n" << printed(from_kpid));
    CHECK_FALSE(from_prometheus.empty());
    CHECK(from_kpid == from_prometheus);
  }
  // The metadata Prometheus sends, as Prometheus serves it.
  for (const std::string metric : {"prometheus_build_info", "prometheus_http_requests_total"}) {
    std::string from_prometheus;
    std::string from_kpid;
    const bool same = eventually(
        [&] {
          const std::string target = "/api/v1/metadata?" + form({{"metric", metric}});
          const HttpResponse p = http_request(prom_port, "GET", target);
          const HttpResponse q = http_request(k.http_port(), "GET", target);
          if (p.status != 200 || q.status != 200) return false;
          from_prometheus = json::serialize(p.json().at("data"));
          from_kpid = json::serialize(q.json().at("data"));
          return from_prometheus != "{}" && from_kpid == from_prometheus;
        },
        20s, 250ms);
    INFO(metric << "\nPrometheus: " << from_prometheus << "\nkpid: " << from_kpid);
    CHECK(same);
  }
  // Samples arrived under their own protocol in kpid's metrics, with no rejection.
  const std::string metrics = k.metrics();
  CHECK(metric_value(metrics, "kpid_ingest_samples_total", {{"protocol", "remote_write"}})
            .value_or(0) > 0);
  CHECK_FALSE(contains(metrics, "kpid_ingest_lines_rejected_total{protocol=\"remote_write\""));

  // kpid's target goes away (a config reload drops it): Prometheus writes stale markers for
  // its series, and from then on both answer without them: `up` is Prometheus' own alone,
  // while range functions still see kpid's samples before the marker (never the marker).
  write_file(config, std::regex_replace(read_file(config), std::regex(R"(targets: \[[^,]*, )"),
                                        "targets: ["));
  REQUIRE(kill(prometheus.pid(), SIGHUP) == 0);
  int64_t after = 0;
  const bool gone = eventually(
      [&] {
        after = now_ms();
        return instant(prom_port, "up", after).size() == 1;
      },
      20s, 250ms);
  INFO("prometheus log:\n" << tail(read_file(prom_dir.file("prometheus.log")), 3000));
  REQUIRE(gone);
  for (const std::string query :
       {"up", "scrape_samples_scraped", "count(up)", "count_over_time(up[30s])",
        "last_over_time(scrape_samples_scraped[30s])"}) {
    std::map<std::string, std::string> from_prometheus;
    std::map<std::string, std::string> from_kpid;
    // Remote write delivers the markers within its batch deadline.
    const bool same = eventually(
        [&] {
          from_prometheus = instant(prom_port, query, after);
          from_kpid = instant(k.http_port(), query, after);
          return from_kpid == from_prometheus;
        },
        15s, 250ms);
    INFO(query << "\nPrometheus:\n" << printed(from_prometheus) << "kpid:\n" << printed(from_kpid));
    CHECK_FALSE(from_prometheus.empty());
    CHECK(same);
  }
}

TEST_CASE("remote write: 204 stores, 400 says what was wrong, 415 for remote write 2.0",
          "[remote_write]") {
  Kpid k;
  k.start();
  const int64_t t = now_ms() - 1000;

  pb::WriteRequest good;
  add_series(good, {{"__name__", "rw_temp"}, {"room", "a"}}, t, 21.5);
  HttpResponse r = k.post("/api/v1/write", snappy_body(good), kRemoteWriteHeaders);
  INFO(r.body);
  CHECK(r.status == 204);
  auto got = k.query_at_ms(R"(rw_temp{room="a"})", t);
  REQUIRE(got.size() == 1);
  CHECK(got[0].value == "21.5");

  // Not snappy: the sender is told why, and does not retry a 400.
  r = k.post("/api/v1/write", "plain text", kRemoteWriteHeaders);
  INFO(r.body);
  CHECK(r.status == 400);
  CHECK(contains(r.body, "remote write body not decoded, nothing was stored: the body"));
  CHECK(contains(r.body, "snappy"));
  CHECK(contains(r.header("content-type"), "text/plain"));

  // A 2.0 sender falls back to 1.0 on 415.
  Headers v2 = {{"Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request"},
                {"Content-Encoding", "snappy"},
                {"X-Prometheus-Remote-Write-Version", "2.0.0"}};
  r = k.post("/api/v1/write", snappy_body(good), v2);
  CHECK(r.status == 415);
  CHECK(contains(r.body, "proto=prometheus.WriteRequest"));
  r = k.post("/api/v1/write", snappy_body(good),
             {{"Content-Type", "application/x-protobuf"}, {"Content-Encoding", "gzip"}});
  CHECK(r.status == 415);

  // One bad series among good ones: the others are stored, the bad one is named.
  pb::WriteRequest mixed;
  add_series(mixed, {{"__name__", "rw_mixed"}, {"n", "1"}}, t, 1);
  add_series(mixed, {{"job", "no-name"}}, t, 2);
  add_series(mixed, {{"__name__", "rw_mixed"}, {"n", "3"}}, t, 3);
  r = k.post("/api/v1/write", snappy_body(mixed), kRemoteWriteHeaders);
  INFO(r.body);
  CHECK(r.status == 400);
  CHECK(contains(r.body, "1 of 3 series not stored"));
  CHECK(contains(r.body, R"(series 2: {job="no-name"}: no metric name (label __name__))"));
  CHECK(k.query_at_ms("rw_mixed", t).size() == 2);

  // Native histograms are not taken yet: said so, not acknowledged; the floats are stored.
  pb::WriteRequest with_histogram;
  add_series(with_histogram, {{"__name__", "rw_float"}}, t, 7);
  auto* h = with_histogram.add_timeseries();
  auto* name = h->add_labels();
  name->set_name("__name__");
  name->set_value("rw_latency_seconds");
  auto* hist = h->add_histograms();
  hist->set_count_int(3);
  hist->set_timestamp(t);
  r = k.post("/api/v1/write", snappy_body(with_histogram), kRemoteWriteHeaders);
  CHECK(r.status == 400);
  CHECK(contains(r.body, "1 native histogram samples not stored"));
  CHECK(k.query_at_ms("rw_float", t).size() == 1);

  CHECK(k.get("/api/v1/write").status == 405);
}

TEST_CASE("remote write: metadata is kept across restarts and served as Prometheus serves it",
          "[remote_write]") {
  Kpid k;
  k.start();
  pb::WriteRequest request;  // metadata only, as Prometheus sends it apart from samples
  auto add = [&](const char* family, pb::MetricMetadata::MetricType type, const char* help,
                 const char* unit) {
    auto* m = request.add_metadata();
    m->set_metric_family_name(family);
    m->set_type(type);
    m->set_help(help);
    m->set_unit(unit);
  };
  add("http_requests_total", pb::MetricMetadata::COUNTER, "Requests served.", "");
  add("room_temperature_celsius", pb::MetricMetadata::GAUGE, "Room temperature.", "celsius");
  add("checkout_seconds", pb::MetricMetadata::HISTOGRAM, "Checkout latency.", "seconds");
  REQUIRE(k.post("/api/v1/write", snappy_body(request), kRemoteWriteHeaders).status == 204);

  auto data = [&](const std::string& params) {
    const HttpResponse r = k.get("/api/v1/metadata" + params);
    INFO(r.body);
    REQUIRE(r.status == 200);
    return json::serialize(r.json().at("data"));
  };
  CHECK(
      data("?metric=room_temperature_celsius") ==
      R"({"room_temperature_celsius":[{"type":"gauge","help":"Room temperature.","unit":"celsius"}]})");
  CHECK(
      data("?limit=1") ==
      R"({"checkout_seconds":[{"type":"histogram","help":"Checkout latency.","unit":"seconds"}]})");
  CHECK(data("?metric=unknown_metric") == "{}");

  // A family's newer metadata replaces the older; everything survives a restart.
  pb::WriteRequest update;
  auto* m = update.add_metadata();
  m->set_metric_family_name("http_requests_total");
  m->set_type(pb::MetricMetadata::COUNTER);
  m->set_help("HTTP requests served.");
  REQUIRE(k.post("/api/v1/write", snappy_body(update), kRemoteWriteHeaders).status == 204);
  k.kill9();  // acknowledged, so durable
  k.start();
  CHECK(data("?metric=http_requests_total") ==
        R"({"http_requests_total":[{"type":"counter","help":"HTTP requests served.","unit":""}]})");
  CHECK(
      data("?metric=checkout_seconds") ==
      R"({"checkout_seconds":[{"type":"histogram","help":"Checkout latency.","unit":"seconds"}]})");
  CHECK(k.get("/api/v1/metadata?limit=x").status == 400);
}
