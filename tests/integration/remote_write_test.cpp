// Prometheus remote write 1.0 and 2.0 at POST /api/v1/write: a real Prometheus scrapes two
// targets and remote-writes to kpid (1.0: Debian's Prometheus sends no 2.0), and kpid answers
// the same queries with the same values, also after one target goes away (Prometheus' stale
// markers); hand-built bodies check the answers senders act on (204, 400 with the reason, 415
// for a message kpid does not take, per-series rejections that store the rest), 2.0's symbols,
// created timestamps and written-counts headers, and native histograms stored as classic
// buckets.

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
#include "prometheus/remote_write_v2.pb.h"

using namespace kpid_it;
namespace json = boost::json;
namespace pb = kpid::wire::prometheus::v1;

namespace {

constexpr const char* kPrometheusBinary = PROMETHEUS_BINARY;

const Headers kRemoteWriteHeaders = {{"Content-Type", "application/x-protobuf"},
                                     {"Content-Encoding", "snappy"},
                                     {"X-Prometheus-Remote-Write-Version", "0.1.0"}};

template <class Message>
std::string snappy_body(const Message& request) {
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

TEST_CASE("remote write: 204 stores, 400 says what was wrong, 415 for an unknown message",
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

  // A sender falls back to another version on 415.
  r = k.post("/api/v1/write", snappy_body(good),
             {{"Content-Type", "application/x-protobuf;proto=io.prometheus.write.v3.Request"},
              {"Content-Encoding", "snappy"}});
  CHECK(r.status == 415);
  CHECK(contains(r.body, "proto=prometheus.WriteRequest (1.0)"));
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

  // A native histogram is stored as classic buckets, its sum and its count.
  pb::WriteRequest with_histogram;
  add_series(with_histogram, {{"__name__", "rw_float"}}, t, 7);
  auto* h = with_histogram.add_timeseries();
  auto* name = h->add_labels();
  name->set_name("__name__");
  name->set_value("rw_latency_seconds");
  auto* hist = h->add_histograms();
  hist->set_count_int(3);
  hist->set_sum(1.5);
  hist->set_schema(0);
  hist->set_timestamp(t);
  auto* span = hist->add_positive_spans();  // buckets 0 (0.5, 1] and 1 (1, 2]: 1 and 2
  span->set_offset(0);
  span->set_length(2);
  hist->add_positive_deltas(1);
  hist->add_positive_deltas(1);
  r = k.post("/api/v1/write", snappy_body(with_histogram), kRemoteWriteHeaders);
  INFO(r.body);
  CHECK(r.status == 204);
  CHECK(k.query_at_ms("rw_float", t).size() == 1);
  auto buckets = k.query_at_ms("rw_latency_seconds_bucket", t);
  REQUIRE(buckets.size() == 4);
  std::map<std::string, std::string> by_le;
  for (const auto& b : buckets) by_le[b.metric.at("le")] = b.value;
  CHECK(by_le ==
        std::map<std::string, std::string>{{"0.5", "0"}, {"1", "1"}, {"2", "3"}, {"+Inf", "3"}});
  CHECK(k.query_at_ms("rw_latency_seconds_count", t).at(0).value == "3");
  CHECK(k.query_at_ms("rw_latency_seconds_sum", t).at(0).value == "1.5");

  CHECK(k.get("/api/v1/write").status == 405);
}

namespace {

namespace pb2 = kpid::wire::prometheus::v2;

const Headers kRemoteWrite2Headers = {
    {"Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request"},
    {"Content-Encoding", "snappy"},
    {"X-Prometheus-Remote-Write-Version", "2.0.0"}};

uint32_t symbol(pb2::Request& request, const std::string& text) {
  for (int i = 0; i < request.symbols_size(); ++i) {
    if (request.symbols(i) == text) return static_cast<uint32_t>(i);
  }
  request.add_symbols(text);
  return static_cast<uint32_t>(request.symbols_size() - 1);
}

pb2::TimeSeries* add_series2(pb2::Request& request,
                             std::vector<std::pair<std::string, std::string>> labels) {
  if (request.symbols_size() == 0) request.add_symbols("");
  auto* ts = request.add_timeseries();
  for (auto& [name, value] : labels) {
    ts->add_labels_refs(symbol(request, name));
    ts->add_labels_refs(symbol(request, value));
  }
  return ts;
}

}  // namespace

TEST_CASE("remote write 2.0: symbols, created timestamps, metadata, written-counts headers",
          "[remote_write]") {
  Kpid k;
  k.start();
  const int64_t t = now_ms() - 1000;
  const int64_t created = t - 30'000;

  pb2::Request request;
  auto* counter = add_series2(request, {{"__name__", "rw2_requests_total"}, {"code", "200"}});
  auto* s = counter->add_samples();
  s->set_timestamp(t);
  s->set_value(120);
  counter->set_created_timestamp(created);
  counter->mutable_metadata()->set_type(pb2::Metadata::METRIC_TYPE_COUNTER);
  counter->mutable_metadata()->set_help_ref(symbol(request, "Requests served."));
  counter->add_exemplars()->set_value(0.2);
  auto* hist = add_series2(request, {{"__name__", "rw2_latency_seconds"}})->add_histograms();
  hist->set_count_int(2);
  hist->set_sum(0.3);
  hist->set_timestamp(t);
  auto* bad = add_series2(request, {{"__name__", "rw2_bad"}});
  bad->add_labels_refs(0);  // an odd count: refused, the others stored
  bad->add_samples()->set_value(1);

  HttpResponse r = k.post("/api/v1/write", snappy_body(request), kRemoteWrite2Headers);
  INFO(r.body);
  CHECK(r.status == 400);
  CHECK(contains(r.body, "series 3: "));
  CHECK(contains(r.body, "odd number of label references"));
  CHECK(r.header("x-prometheus-remote-write-samples-written") == "1");
  CHECK(r.header("x-prometheus-remote-write-histograms-written") == "1");
  CHECK(r.header("x-prometheus-remote-write-exemplars-written") == "0");

  auto got = k.query_at_ms("rw2_requests_total", t);
  REQUIRE(got.size() == 1);
  CHECK(got[0].value == "120");
  CHECK(got[0].metric.at("code") == "200");
  // The counter's start is stored as a 0, so increase() counts from there.
  got = k.query_at_ms("rw2_requests_total", created);
  REQUIRE(got.size() == 1);
  CHECK(got[0].value == "0");
  CHECK(k.query_at_ms("rw2_latency_seconds_count", t).at(0).value == "2");
  const HttpResponse meta = k.get("/api/v1/metadata?metric=rw2_requests_total");
  CHECK(contains(meta.body, R"("help":"Requests served.")"));

  // A clean request answers 204 with the counts (a sender repeats the created timestamp with
  // every sample; the 0 stays where it was).
  pb2::Request next;
  auto* again = add_series2(next, {{"__name__", "rw2_requests_total"}, {"code", "200"}});
  s = again->add_samples();
  s->set_timestamp(t + 500);
  s->set_value(130);
  again->set_created_timestamp(created);
  again->mutable_metadata()->set_type(pb2::Metadata::METRIC_TYPE_COUNTER);
  r = k.post("/api/v1/write", snappy_body(next), kRemoteWrite2Headers);
  CHECK(r.status == 204);
  CHECK(r.header("x-prometheus-remote-write-samples-written") == "1");
  CHECK(k.query_at_ms("rw2_requests_total", t + 500).at(0).value == "130");
  CHECK(k.query_at_ms("rw2_requests_total", t).at(0).value == "120");
  CHECK(k.query_at_ms("rw2_requests_total", created).at(0).value == "0");
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

namespace {

// A native histogram sample of checkout latency (schema 0): `fast` observations in bucket -1,
// (0.25, 0.5], and `slow` in bucket 2, (2, 4]; cumulative since the service started.
void add_checkout_histogram(pb::WriteRequest& request, int64_t t, uint64_t fast, uint64_t slow) {
  auto* ts = request.add_timeseries();
  auto* name = ts->add_labels();
  name->set_name("__name__");
  name->set_value("checkout_seconds");
  auto* h = ts->add_histograms();
  h->set_timestamp(t);
  h->set_schema(0);
  h->set_count_int(fast + slow);
  h->set_sum(0.4 * static_cast<double>(fast) + 3.0 * static_cast<double>(slow));
  auto* span = h->add_positive_spans();
  span->set_offset(-1);
  span->set_length(4);
  // Deltas between consecutive buckets -1, 0, 1, 2.
  for (int64_t d : {static_cast<int64_t>(fast), -static_cast<int64_t>(fast), int64_t{0},
                    static_cast<int64_t>(slow)}) {
    h->add_positive_deltas(d);
  }
}

}  // namespace

TEST_CASE("remote write: a KPI on a remote-written native histogram breaches, alerts, opens an OKR",
          "[remote_write][kpi][okr]") {
  // The share of checkouts answered within 0.5 s over the last minute, from the histogram's
  // buckets: increase(bucket{le="0.5"}) / increase(count) in percent.
  Kpid k({.config_toml = "[alerting]\nexternal_url = \"http://kpid.example:9470\"\n"
                         "[[kpi]]\nid = \"checkout_fast\"\nname = \"Checkouts within 0.5 s\"\n"
                         "owner = \"payments\"\nunit = \"%\"\ndirection = \"higher_is_better\"\n"
                         "[kpi.value]\nscale = 100\n"
                         "[kpi.value.numerator]\nselector = 'checkout_seconds_bucket{le=\"0.5\"}'\n"
                         "over_time = \"increase\"\nwindow = \"1m\"\n"
                         "[kpi.value.denominator]\nselector = 'checkout_seconds_count'\n"
                         "over_time = \"increase\"\nwindow = \"1m\"\n"
                         "[kpi.band]\ntarget = 99\nwarn = 95\ncrit = 90\n"
                         "[[kpi.alert]]\ncondition = \"crit\"\n"
                         "[kpi.okr]\nenabled = true\nafter = \"0s\"\nseverities = [\"critical\"]\n"
                         "related = [\"checkout_volume\"]\n"
                         // The guardrail: checkouts per second, from the same histogram.
                         "[[kpi]]\nid = \"checkout_volume\"\nname = \"Checkouts\"\n"
                         "owner = \"payments\"\nunit = \"/s\"\ndirection = \"higher_is_better\"\n"
                         "[kpi.value]\nselector = 'checkout_seconds_count'\nover_time = \"rate\"\n"
                         "window = \"1m\"\n[kpi.band]\nwarn = 0.1\ncrit = 0.01\n"});
  k.start();
  const int64_t now = now_ms();
  // Healthy: every checkout fast.
  pb::WriteRequest healthy;
  add_checkout_histogram(healthy, now - 50'000, 100, 0);
  add_checkout_histogram(healthy, now - 25'000, 200, 0);
  add_checkout_histogram(healthy, now - 1'000, 300, 0);
  HttpResponse r = k.post("/api/v1/write", snappy_body(healthy), kRemoteWriteHeaders);
  INFO(r.body);
  REQUIRE(r.status == 204);
  auto kpi_status = [&] {
    const HttpResponse got = k.get("/api/v1/kpis/checkout_fast");
    if (got.status != 200) return std::string("HTTP ") + std::to_string(got.status);
    return json_str(got.json().at("data"), "status");
  };
  CHECK(eventually([&] { return kpi_status() == "ok"; }, 10s, 100ms));

  // Then 400 slow checkouts: 10 of the last minute's 410 were fast.
  pb::WriteRequest incident;
  add_checkout_histogram(incident, now, 310, 400);
  r = k.post("/api/v1/write", snappy_body(incident), kRemoteWriteHeaders);
  REQUIRE(r.status == 204);
  const bool breached = eventually([&] { return kpi_status() == "crit"; }, 10s, 100ms);
  const HttpResponse detail = k.get("/api/v1/kpis/checkout_fast");
  INFO(detail.body);
  REQUIRE(breached);
  // About a third fast: 210 of 610 in the window, each increase() extrapolated to the window's
  // edges as Prometheus does (so not exactly 34.4%).
  const double value = detail.json().at("data").at("value").to_number<double>();
  CHECK(value > 30);
  CHECK(value < 40);

  // The alert fires and an OKR draft is opened for the owner, linked to it.
  const json::array alerts = wait_for_items(k, "/api/v1/alerts?kpi=checkout_fast&state=firing", 1);
  const json::array okrs = wait_for_items(k, "/api/v1/okrs?kpi=checkout_fast", 1);
  INFO("alerts: " << json::serialize(alerts) << "\nokrs: " << json::serialize(okrs));
  REQUIRE(alerts.size() == 1);
  REQUIRE(okrs.size() == 1);
  CHECK(json_str(okrs[0], "state") == "draft");
  CHECK(json_str(okrs[0], "owner") == "payments");
  REQUIRE(okrs[0].at("alerts").as_array().size() == 1);
  CHECK(okrs[0].at("alerts").as_array()[0] == alerts[0].at("id"));
}
