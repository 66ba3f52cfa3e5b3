// OTLP/HTTP metrics at POST /v1/metrics: the OpenTelemetry JS SDK (tests/integration/otlp/,
// installed with npm by scripts/install-deps.sh --test) exports counters, up-down counters,
// gauges, histograms and exponential histograms over protobuf and JSON, with cumulative and
// delta temporality, and kpid answers PromQL with what the SDK recorded; delta totals carry on
// across a kill -9. Hand-built requests check the answers senders act on.

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <string>

#include <google/protobuf/util/json_util.h>

#include "harness.h"
#include "otlp/metrics_service_v1.pb.h"

using namespace kpid_it;
namespace json = boost::json;
namespace pb = kpid::wire::otlp::v1;

namespace {

const std::string kSenderDir = std::string(KPID_SOURCE_DIR) + "/tests/integration/otlp";
const std::string kWriter = "otlp-writer-token";
const std::string kReader = "otlp-reader-token";

std::string token_toml(const std::string& name, const std::string& roles,
                       const std::string& token) {
  const CommandResult hashed = run_command({KPID_BINARY, "--hash-token"}, token + "\n");
  REQUIRE(hashed.exit_code == 0);
  std::string digest = hashed.out;
  while (!digest.empty() && (digest.back() == '\n' || digest.back() == ' ')) digest.pop_back();
  return "[[auth.token]]\nname = \"" + name + "\"\nroles = [" + roles + "]\nsha256 = \"" + digest +
         "\"\n";
}

Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// The instant query's samples now, as "label=value,..." of the labels in `keys` -> value.
std::map<std::string, double> query(const Kpid& kpid, const std::string& q,
                                    const std::vector<std::string>& keys = {"job"}) {
  const HttpResponse r = http_request(kpid.http_port(), "GET",
                                      "/api/v1/query?" + form({{"query", q}}), {}, bearer(kReader));
  INFO(q << ": " << r.body);
  REQUIRE(r.status == 200);
  std::map<std::string, double> out;
  const json::value answer = r.json();
  for (const auto& item : answer.at("data").at("result").as_array()) {
    std::string key;
    for (const auto& k : keys) {
      const auto* v = item.at("metric").as_object().if_contains(k);
      key += (key.empty() ? "" : ",") + k + "=" + (v ? std::string(v->as_string()) : "");
    }
    out[key] = std::stod(std::string(item.at("value").as_array()[1].as_string()));
  }
  return out;
}

double one(const Kpid& kpid, const std::string& q) {
  auto values = query(kpid, q);
  INFO(q);
  REQUIRE(values.size() == 1);
  return values.begin()->second;
}

// Runs the SDK sender; returns what it recorded.
json::object send(const Kpid& kpid, const std::string& protocol, const std::string& temporality,
                  const std::string& service) {
  const CommandResult r =
      run_command({"/usr/bin/node", kSenderDir + "/send.mjs",
                   "http://127.0.0.1:" + std::to_string(kpid.http_port()) + "/v1/metrics", protocol,
                   temporality, service, kWriter},
                  {}, 60s);
  INFO("sender " << protocol << " " << temporality << " stderr: " << r.err << "\nkpid log:\n"
                 << kpid.log_tail());
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out).as_object();
}

double num(const json::value& v) { return v.is_int64() ? double(v.as_int64()) : v.as_double(); }

// kpid's answers for `job` equal what the sender recorded, `times` over.
void check_job(const Kpid& kpid, const std::string& job, const json::object& e, double times) {
  INFO("job " << job);
  const std::string sel = "{job=\"" + job + "\"}";
  const std::string bucket = "shop_request_duration_seconds_bucket{job=\"" + job + "\",le=\"";
  const auto orders = query(kpid, "shop_orders_total" + sel, {"job", "instance", "http_route"});
  CHECK(orders.at("job=" + job + ",instance=node-1,http_route=/cart") ==
        times * num(e.at("orders").at("/cart")));
  CHECK(orders.at("job=" + job + ",instance=node-1,http_route=/pay") ==
        times * num(e.at("orders").at("/pay")));
  // A counter rate() reads (the totals grew during the run).
  for (const auto& [labels, rate] :
       query(kpid, "rate(shop_orders_total" + sel + "[5m])", {"http_route"})) {
    INFO(labels);
    CHECK(rate > 0);
  }
  // An up-down counter is a gauge, cumulative under either preference: each run starts at 0.
  CHECK(one(kpid, "shop_carts_active" + sel) == num(e.at("carts")));
  CHECK(one(kpid, "shop_temperature_celsius" + sel) == num(e.at("temperature")));
  const auto& d = e.at("duration").as_object();
  for (const char* le : {"0.25", "1", "5", "+Inf"}) {
    INFO("le " << le);
    CHECK(one(kpid, bucket + le + "\"}") == times * num(d.at("le").at(le)));
  }
  CHECK(one(kpid, "shop_request_duration_seconds_count" + sel) == times * num(d.at("count")));
  CHECK(one(kpid, "shop_request_duration_seconds_sum" + sel) == Approx(times * num(d.at("sum"))));
  const auto& p = e.at("payload").as_object();
  CHECK(one(kpid, "shop_payload_size_bytes_count" + sel) == times * num(p.at("count")));
  CHECK(one(kpid, "shop_payload_size_bytes_sum" + sel) == Approx(times * num(p.at("sum"))));
  CHECK(one(kpid, "shop_payload_size_bytes_bucket{job=\"" + job + "\",le=\"+Inf\"}") ==
        times * num(p.at("count")));
  // The largest size recorded is 90000: the first bucket bound at or above it counts all.
  double lowest = 0;
  double counted = -1;
  for (const auto& [le, count] : query(kpid, "shop_payload_size_bytes_bucket" + sel, {"le"})) {
    if (le == "le=+Inf") continue;
    const double bound = std::stod(le.substr(3));
    if (bound >= 90000 && (counted < 0 || bound < lowest)) {
      lowest = bound;
      counted = count;
    }
  }
  CHECK(counted == times * num(p.at("count")));
}

pb::ExportMetricsServiceRequest gauge_request(const std::string& name, int64_t t_ms, double v) {
  pb::ExportMetricsServiceRequest r;
  auto* rm = r.add_resource_metrics();
  auto* kv = rm->mutable_resource()->add_attributes();
  kv->set_key("service.name");
  kv->mutable_value()->set_string_value("hand");
  auto* m = rm->add_scope_metrics()->add_metrics();
  m->set_name(name);
  auto* p = m->mutable_gauge()->add_data_points();
  p->set_time_unix_nano(static_cast<uint64_t>(t_ms) * 1'000'000);
  p->set_as_double(v);
  return r;
}

const Headers kProto = {{"Content-Type", "application/x-protobuf"}};

}  // namespace

TEST_CASE("otlp: the OpenTelemetry JS SDK's metrics, both encodings and temporalities") {
  if (!std::filesystem::exists(kSenderDir + "/node_modules/@opentelemetry/sdk-metrics")) {
    FAIL("the OpenTelemetry JS SDK is not installed in " + kSenderDir +
         "/node_modules: run scripts/install-deps.sh --test (it runs npm ci there, which needs "
         "the npm registry)");
  }
  KpidOptions options;
  options.config_toml =
      token_toml("sdk", "\"write\"", kWriter) + token_toml("grafana", "\"read\"", kReader);
  Kpid kpid(options);
  kpid.start();

  std::map<std::string, json::object> expected;
  for (const char* protocol : {"proto", "json"}) {
    for (const char* temporality : {"cumulative", "delta"}) {
      const std::string job = std::string("sdk-") + protocol + "-" + temporality;
      expected[job] = send(kpid, protocol, temporality, job);
    }
  }
  for (const auto& [job, e] : expected) check_job(kpid, job, e, 1);

  // Metadata, as GET /api/v1/metadata serves it to Grafana.
  const HttpResponse meta = kpid.get("/api/v1/metadata?metric=shop_orders_total", bearer(kReader));
  REQUIRE(meta.status == 200);
  const json::value answer = meta.json();
  const auto& entry = answer.at("data").at("shop_orders_total").as_array()[0];
  CHECK(entry.at("type").as_string() == "counter");
  CHECK(entry.at("help").as_string() == "Orders placed");
  const std::string scraped = kpid.metrics();
  CHECK(metric_value(scraped, "kpid_ingest_samples_total", {{"protocol", "otlp"}}).value_or(0) > 0);

  // A token without the write role may not send.
  const HttpResponse forbidden = http_request(
      kpid.http_port(), "POST", "/v1/metrics", "",
      {{"Authorization", "Bearer " + kReader}, {"Content-Type", "application/x-protobuf"}});
  CHECK(forbidden.status == 403);

  // Delta totals are durable: after a kill -9 the next process' deltas add to them.
  kpid.kill9();
  kpid.start();
  for (const char* protocol : {"proto", "json"}) {
    const std::string job = std::string("sdk-") + protocol + "-delta";
    send(kpid, protocol, "delta", job);
    check_job(kpid, job, expected[job], 2);
  }
}

TEST_CASE("otlp: answers to hand-built requests, as senders act on them") {
  Kpid kpid;
  kpid.start();
  const int64_t t = now_ms();

  SECTION("a stored request answers 200 with an empty ExportMetricsServiceResponse") {
    const HttpResponse r =
        kpid.post("/v1/metrics", gauge_request("hand.gauge", t, 4).SerializeAsString(), kProto);
    REQUIRE(r.status == 200);
    CHECK(r.header("content-type") == "application/x-protobuf");
    pb::ExportMetricsServiceResponse response;
    REQUIRE(response.ParseFromString(r.body));
    CHECK_FALSE(response.has_partial_success());
    CHECK(kpid.query_at_ms("hand_gauge{job=\"hand\"}", t).at(0).value == "4");
  }
  SECTION("gzip, in JSON") {
    std::string body;
    REQUIRE(google::protobuf::util::MessageToJsonString(gauge_request("zipped", t, 2), &body).ok());
    const HttpResponse r =
        kpid.post("/v1/metrics", gzip(body),
                  {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}});
    REQUIRE(r.status == 200);
    CHECK(r.body == "{}");
    CHECK(kpid.query_at_ms("zipped", t).at(0).value == "2");
  }
  SECTION("a refused point is counted in partial_success, the others are stored") {
    auto request = gauge_request("good", t, 1);
    auto* bad = request.mutable_resource_metrics(0)->mutable_scope_metrics(0)->add_metrics();
    bad->set_name("bad");
    auto* p = bad->mutable_gauge()->add_data_points();
    p->set_time_unix_nano(static_cast<uint64_t>(t) * 1'000'000);
    p->set_as_double(1);
    auto* kv = p->add_attributes();
    kv->set_key("!!!");
    kv->mutable_value()->set_string_value("x");
    const HttpResponse r = kpid.post("/v1/metrics", request.SerializeAsString(), kProto);
    REQUIRE(r.status == 200);
    pb::ExportMetricsServiceResponse response;
    REQUIRE(response.ParseFromString(r.body));
    CHECK(response.partial_success().rejected_data_points() == 1);
    CHECK_THAT(response.partial_success().error_message(),
               Catch::Contains("metrics[1] \"bad\" data_points[0]: attribute \"!!!\""));
    CHECK(kpid.query_at_ms("good", t).size() == 1);
  }
  SECTION("a duplicate delta is refused, the total unchanged") {
    auto request = gauge_request("x", t, 0);
    auto* m = request.mutable_resource_metrics(0)->mutable_scope_metrics(0)->mutable_metrics(0);
    m->set_name("hand.jobs");
    m->mutable_sum()->set_is_monotonic(true);
    m->mutable_sum()->set_aggregation_temporality(pb::AGGREGATION_TEMPORALITY_DELTA);
    auto* p = m->mutable_sum()->add_data_points();
    p->set_time_unix_nano(static_cast<uint64_t>(t) * 1'000'000);
    p->set_as_int(5);
    for (int i = 0; i < 2; ++i) {
      const HttpResponse r = kpid.post("/v1/metrics", request.SerializeAsString(), kProto);
      REQUIRE(r.status == 200);
      pb::ExportMetricsServiceResponse response;
      REQUIRE(response.ParseFromString(r.body));
      CHECK(response.partial_success().rejected_data_points() == i);
    }
    CHECK(kpid.query_at_ms("hand_jobs_total", t).at(0).value == "5");
  }
  SECTION("malformed bodies get 400 with a google.rpc.Status saying why") {
    const HttpResponse r = kpid.post("/v1/metrics", "\xff\xff\xff not protobuf", kProto);
    REQUIRE(r.status == 400);
    pb::RpcStatus status;
    REQUIRE(status.ParseFromString(r.body));
    CHECK(status.code() == 3);
    CHECK_THAT(status.message(), Catch::Contains("not an OTLP ExportMetricsServiceRequest"));

    const HttpResponse j = kpid.post(
        "/v1/metrics",
        R"({"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"asDouble":"many"}]}}]}]}]})",
        {{"Content-Type", "application/json"}});
    REQUIRE(j.status == 400);
    CHECK(j.json().at("code").as_int64() == 3);
    CHECK_THAT(std::string(j.json().at("message").as_string()), Catch::Contains("as_double"));
  }
  SECTION("another Content-Type or Content-Encoding gets 415") {
    CHECK(kpid.post("/v1/metrics", "x", {{"Content-Type", "text/plain"}}).status == 415);
    CHECK(kpid.post("/v1/metrics", "x",
                    {{"Content-Type", "application/x-protobuf"}, {"Content-Encoding", "br"}})
              .status == 415);
    CHECK(kpid.get("/v1/metrics").status == 405);
  }
}
