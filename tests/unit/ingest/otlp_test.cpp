#include <catch2/catch.hpp>

#include <google/protobuf/util/json_util.h>

#include <bit>
#include <cmath>
#include <map>
#include <string>

#include "kpid/ingest/otlp.h"

#include "kpid/core/stale_marker.h"
#include "otlp/metrics_service_v1.pb.h"

using namespace kpid;
using namespace kpid::ingest;
namespace pb = kpid::wire::otlp::v1;

namespace {

constexpr uint64_t kT = 1'700'000'000'123'456'789;  // ns
constexpr int64_t kTms = 1'700'000'000'123;

// A decoded request's series, printed: "name{a="1",b="2"}" -> (timestamp, value).
struct Decoded {
  Status status;
  OtlpRequest request;
  std::map<std::string, std::pair<int64_t, double>> series;
  std::vector<std::string> rejected;  // "where: reason"
};

Decoded decode(OtlpDecoder& decoder, const std::string& body,
               OtlpEncoding encoding = OtlpEncoding::kProtobuf) {
  Decoded d;
  d.status = decoder.decode(body, encoding, d.request);
  if (!d.status) return d;
  decoder.builder().finish(d.request.write, d.request.point_of_index);
  for (const auto& s : d.request.write.series) {
    std::string name;
    std::string labels;
    for (const auto& l : s.labels) {
      if (l.name == "__name__") {
        name = l.value;
        continue;
      }
      labels +=
          (labels.empty() ? "" : ",") + std::string(l.name) + "=\"" + std::string(l.value) + "\"";
    }
    REQUIRE(s.samples.size() == 1);
    d.series[name + "{" + labels + "}"] = {s.samples[0].timestamp_ms, s.samples[0].value};
  }
  for (const auto& r : d.request.write.rejected) d.rejected.push_back(r.series + ": " + r.reason);
  return d;
}

Decoded decode(OtlpDecoder& decoder, const pb::ExportMetricsServiceRequest& request) {
  return decode(decoder, request.SerializeAsString());
}

void attr(google::protobuf::RepeatedPtrField<pb::KeyValue>* attrs, const std::string& key,
          const std::string& value) {
  auto* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

// One resource (service "shop", instance "i-1"), one scope; returns the scope's metrics.
google::protobuf::RepeatedPtrField<pb::Metric>* one_scope(pb::ExportMetricsServiceRequest& r) {
  auto* rm = r.add_resource_metrics();
  attr(rm->mutable_resource()->mutable_attributes(), "service.name", "shop");
  attr(rm->mutable_resource()->mutable_attributes(), "service.namespace", "prod");
  attr(rm->mutable_resource()->mutable_attributes(), "service.instance.id", "i-1");
  attr(rm->mutable_resource()->mutable_attributes(), "host.name", "not-a-label");
  return rm->add_scope_metrics()->mutable_metrics();
}

pb::NumberDataPoint* number(google::protobuf::RepeatedPtrField<pb::NumberDataPoint>* points,
                            double value, uint64_t t = kT) {
  auto* p = points->Add();
  p->set_time_unix_nano(t);
  p->set_start_time_unix_nano(t - 10'000'000'000);
  p->set_as_double(value);
  return p;
}

const std::string kJob = "instance=\"i-1\",job=\"prod/shop\"";

}  // namespace

TEST_CASE("otlp naming: metric names as Prometheus' OTLP receiver makes them") {
  CHECK(otlp_metric_name("http.server.duration", "s", 'o') == "http_server_duration_seconds");
  CHECK(otlp_metric_name("requests.count", "1", 'c') == "requests_count_total");
  CHECK(otlp_metric_name("memory.usage", "By", 'g') == "memory_usage_bytes");
  CHECK(otlp_metric_name("cpu.utilization", "1", 'g') == "cpu_utilization_ratio");
  CHECK(otlp_metric_name("cpu.utilization", "1", 'o') == "cpu_utilization");
  CHECK(otlp_metric_name("net.io", "By/s", 'c') == "net_io_bytes_per_second_total");
  CHECK(otlp_metric_name("requests", "{request}", 'c') == "requests_total");
  CHECK(otlp_metric_name("rate", "{packet}/s", 'g') == "rate_per_second");
  CHECK(otlp_metric_name("foo_total", "", 'c') == "foo_total");
  CHECK(otlp_metric_name("total.requests", "", 'c') == "requests_total");
  CHECK(otlp_metric_name("latency_seconds", "s", 'o') == "latency_seconds");
  CHECK(otlp_metric_name("2xx.count", "", 'g') == "_2xx_count");
  CHECK(otlp_metric_name("a..b__c", "", 'g') == "a_b_c");
  CHECK(otlp_metric_name("disk:used", "MiBy", 'g') == "disk:used_mebibytes");
  CHECK(otlp_metric_name("temp", "Cel", 'g') == "temp_celsius");
  CHECK(otlp_metric_name("odd", "furlongs", 'g') == "odd_furlongs");
  CHECK(otlp_metric_name("...", "", 'g').empty());

  CHECK(otlp_label_name("http.method") == "http_method");
  CHECK(otlp_label_name("http..method") == "http_method");
  CHECK(otlp_label_name("123abc") == "key_123abc");
  CHECK(otlp_label_name("__reserved__") == "__reserved__");
  CHECK(otlp_label_name("_private") == "_private");
  CHECK(otlp_label_name("...").empty());
  CHECK(otlp_label_name("").empty());

  CHECK(otlp_unit("By/s") == "bytes_per_second");
  CHECK(otlp_unit("ms") == "milliseconds");
  CHECK(otlp_unit("1").empty());
  CHECK(otlp_unit("{request}").empty());
}

TEST_CASE("otlp: gauges, counters and up-down counters with job, instance and attributes") {
  pb::ExportMetricsServiceRequest r;
  auto* metrics = one_scope(r);
  auto* g = metrics->Add();
  g->set_name("queue.depth");
  g->set_description("Items waiting");
  auto* gp = number(g->mutable_gauge()->mutable_data_points(), 7);
  attr(gp->mutable_attributes(), "queue.name", "orders");
  auto* c = metrics->Add();
  c->set_name("http.requests");
  c->set_unit("{request}");
  c->mutable_sum()->set_is_monotonic(true);
  c->mutable_sum()->set_aggregation_temporality(pb::AGGREGATION_TEMPORALITY_CUMULATIVE);
  auto* cp = c->mutable_sum()->mutable_data_points()->Add();
  cp->set_time_unix_nano(kT);
  cp->set_as_int(42);
  auto* u = metrics->Add();
  u->set_name("active.sessions");
  u->mutable_sum()->set_is_monotonic(false);
  u->mutable_sum()->set_aggregation_temporality(pb::AGGREGATION_TEMPORALITY_CUMULATIVE);
  number(u->mutable_sum()->mutable_data_points(), -3);

  OtlpDecoder decoder;
  Decoded d = decode(decoder, r);
  REQUIRE(d.status.is_ok());
  CHECK(d.rejected.empty());
  CHECK(d.request.points.size() == 3);
  CHECK(d.request.deltas.empty());
  REQUIRE(d.series.size() == 3);
  CHECK(d.series.at("queue_depth{" + kJob + ",queue_name=\"orders\"}") ==
        std::pair<int64_t, double>{kTms, 7});
  CHECK(d.series.at("http_requests_total{" + kJob + "}").second == 42);
  CHECK(d.series.at("active_sessions{" + kJob + "}").second == -3);
  REQUIRE(d.request.write.metadata.size() == 3);
  CHECK(d.request.write.metadata[0].family == "queue_depth");
  CHECK(d.request.write.metadata[0].type == "gauge");
  CHECK(d.request.write.metadata[0].help == "Items waiting");
  CHECK(d.request.write.metadata[1].family == "http_requests_total");
  CHECK(d.request.write.metadata[1].type == "counter");
  CHECK(d.request.write.metadata[2].type == "gauge");
}

TEST_CASE("otlp: attributes that collide once sanitized are joined in key order") {
  pb::ExportMetricsServiceRequest r;
  auto* g = r.add_resource_metrics()->add_scope_metrics()->add_metrics();
  g->set_name("x");
  auto* p = number(g->mutable_gauge()->mutable_data_points(), 1);
  attr(p->mutable_attributes(), "a_b", "second");
  attr(p->mutable_attributes(), "a.b", "first");
  attr(p->mutable_attributes(), "empty", "");
  auto* kv = p->mutable_attributes()->Add();
  kv->set_key("flag");
  kv->mutable_value()->set_bool_value(true);
  kv = p->mutable_attributes()->Add();
  kv->set_key("n");
  kv->mutable_value()->set_int_value(-5);
  kv = p->mutable_attributes()->Add();
  kv->set_key("list");
  kv->mutable_value()->mutable_array_value()->add_values()->set_string_value("a");
  kv->mutable_value()->mutable_array_value()->add_values()->set_int_value(2);
  OtlpDecoder decoder;
  Decoded d = decode(decoder, r);
  REQUIRE(d.status.is_ok());
  REQUIRE(d.series.size() == 1);
  CHECK(d.series.begin()->first ==
        "x{a_b=\"first;second\",flag=\"true\",list=\"[\"a\",2]\",n=\"-5\"}");
}

TEST_CASE("otlp: explicit-bucket histograms give _bucket, _sum and _count") {
  pb::ExportMetricsServiceRequest r;
  auto* h = one_scope(r)->Add();
  h->set_name("http.server.duration");
  h->set_unit("s");
  h->mutable_histogram()->set_aggregation_temporality(pb::AGGREGATION_TEMPORALITY_CUMULATIVE);
  auto* p = h->mutable_histogram()->add_data_points();
  p->set_time_unix_nano(kT);
  p->set_count(10);
  p->set_sum(4.5);
  for (double b : {0.1, 0.5, 1.0}) p->add_explicit_bounds(b);
  for (uint64_t c : {2, 5, 2, 1}) p->add_bucket_counts(c);
  auto* e = p->add_exemplars();
  e->set_as_double(0.3);

  OtlpDecoder decoder;
  Decoded d = decode(decoder, r);
  REQUIRE(d.status.is_ok());
  const std::string base = "http_server_duration_seconds";
  CHECK(d.series.size() == 6);
  CHECK(d.series.at(base + "_bucket{" + kJob + ",le=\"0.1\"}").second == 2);
  CHECK(d.series.at(base + "_bucket{" + kJob + ",le=\"0.5\"}").second == 7);
  CHECK(d.series.at(base + "_bucket{" + kJob + ",le=\"1\"}").second == 9);
  CHECK(d.series.at(base + "_bucket{" + kJob + ",le=\"+Inf\"}").second == 10);
  CHECK(d.series.at(base + "_sum{" + kJob + "}").second == 4.5);
  CHECK(d.series.at(base + "_count{" + kJob + "}").second == 10);
  CHECK(d.request.write.exemplars == 1);
  REQUIRE(d.request.write.metadata.size() == 1);
  CHECK(d.request.write.metadata[0].family == base);
  CHECK(d.request.write.metadata[0].type == "histogram");
  CHECK(d.request.write.metadata[0].unit == "seconds");
}

TEST_CASE("otlp: exponential histograms become classic buckets, OTLP index k as k + 1") {
  pb::ExportMetricsServiceRequest r;
  auto* h = one_scope(r)->Add();
  h->set_name("size");
  h->set_unit("By");
  h->mutable_exponential_histogram()->set_aggregation_temporality(
      pb::AGGREGATION_TEMPORALITY_CUMULATIVE);
  auto* p = h->mutable_exponential_histogram()->add_data_points();
  p->set_time_unix_nano(kT);
  p->set_scale(0);
  p->set_count(3);
  p->set_sum(7);
  // OTLP bucket 0 is (1, 2], bucket 1 (2, 4].
  p->mutable_positive()->set_offset(0);
  p->mutable_positive()->add_bucket_counts(1);
  p->mutable_positive()->add_bucket_counts(2);

  OtlpDecoder decoder;
  Decoded d = decode(decoder, r);
  REQUIRE(d.status.is_ok());
  CHECK(d.series.at("size_bytes_bucket{" + kJob + ",le=\"1\"}").second == 0);
  CHECK(d.series.at("size_bytes_bucket{" + kJob + ",le=\"2\"}").second == 1);
  CHECK(d.series.at("size_bytes_bucket{" + kJob + ",le=\"4\"}").second == 3);
  CHECK(d.series.at("size_bytes_bucket{" + kJob + ",le=\"+Inf\"}").second == 3);
  CHECK(d.series.at("size_bytes_sum{" + kJob + "}").second == 7);
  CHECK(d.series.at("size_bytes_count{" + kJob + "}").second == 3);

  SECTION("a scale finer than Prometheus' 8 is merged down to 8") {
    p->set_scale(10);
    p->mutable_positive()->set_offset(1024);  // 2^(1024/1024) = 2: (2, 2^(1025/1024)]
    Decoded fine = decode(decoder, r);
    REQUIRE(fine.status.is_ok());
    CHECK(fine.series.at("size_bytes_bucket{" + kJob + ",le=\"+Inf\"}").second == 3);
    CHECK(fine.series.at("size_bytes_bucket{" + kJob + ",le=\"2\"}").second == 0);
  }
}

TEST_CASE("otlp: summaries give quantile series, _sum and _count") {
  pb::ExportMetricsServiceRequest r;
  auto* m = one_scope(r)->Add();
  m->set_name("rpc.latency");
  auto* p = m->mutable_summary()->add_data_points();
  p->set_time_unix_nano(kT);
  p->set_count(4);
  p->set_sum(2);
  auto* q = p->add_quantile_values();
  q->set_quantile(0.5);
  q->set_value(0.4);
  q = p->add_quantile_values();
  q->set_quantile(0.99);
  q->set_value(0.9);
  OtlpDecoder decoder;
  Decoded d = decode(decoder, r);
  REQUIRE(d.status.is_ok());
  CHECK(d.series.at("rpc_latency{" + kJob + ",quantile=\"0.5\"}").second == 0.4);
  CHECK(d.series.at("rpc_latency{" + kJob + ",quantile=\"0.99\"}").second == 0.9);
  CHECK(d.series.at("rpc_latency_sum{" + kJob + "}").second == 2);
  CHECK(d.series.at("rpc_latency_count{" + kJob + "}").second == 4);
  CHECK(d.request.write.metadata[0].type == "summary");
}

TEST_CASE("otlp: a point flagged no-recorded-value is the stale marker") {
  pb::ExportMetricsServiceRequest r;
  auto* g = one_scope(r)->Add();
  g->set_name("up");
  auto* p = g->mutable_gauge()->add_data_points();
  p->set_time_unix_nano(kT);
  p->set_flags(1);
  OtlpDecoder decoder;
  Decoded d = decode(decoder, r);
  REQUIRE(d.status.is_ok());
  REQUIRE(d.series.size() == 1);
  CHECK(kpid::is_stale_marker(d.series.begin()->second.second));
}

TEST_CASE("otlp: delta sums and histograms are handed out for accumulation") {
  pb::ExportMetricsServiceRequest r;
  auto* metrics = one_scope(r);
  auto* c = metrics->Add();
  c->set_name("jobs.done");
  c->mutable_sum()->set_is_monotonic(true);
  c->mutable_sum()->set_aggregation_temporality(pb::AGGREGATION_TEMPORALITY_DELTA);
  attr(number(c->mutable_sum()->mutable_data_points(), 3)->mutable_attributes(), "k", "v");
  auto* h = metrics->Add();
  h->set_name("lat");
  h->mutable_histogram()->set_aggregation_temporality(pb::AGGREGATION_TEMPORALITY_DELTA);
  auto* hp = h->mutable_histogram()->add_data_points();
  hp->set_time_unix_nano(kT);
  hp->set_count(3);
  hp->set_sum(1.5);
  hp->add_explicit_bounds(1);
  hp->add_bucket_counts(2);
  hp->add_bucket_counts(1);
  auto* e = metrics->Add();
  e->set_name("exp");
  e->mutable_exponential_histogram()->set_aggregation_temporality(
      pb::AGGREGATION_TEMPORALITY_DELTA);
  auto* ep = e->mutable_exponential_histogram()->add_data_points();
  ep->set_time_unix_nano(kT);
  ep->set_scale(9);
  ep->set_count(2);
  ep->mutable_positive()->set_offset(3);
  ep->mutable_positive()->add_bucket_counts(1);
  ep->mutable_positive()->add_bucket_counts(1);

  OtlpDecoder decoder;
  Decoded d = decode(decoder, r);
  REQUIRE(d.status.is_ok());
  CHECK(d.series.empty());
  REQUIRE(d.request.deltas.size() == 3);
  const OtlpDelta& sum = d.request.deltas[0];
  CHECK(sum.kind == OtlpDelta::Kind::kSum);
  CHECK(sum.name == "jobs_done_total");
  CHECK(sum.value == 3);
  CHECK(sum.end_ns == static_cast<int64_t>(kT));
  REQUIRE(sum.labels.size() == 3);
  CHECK(sum.labels[0].name == "instance");
  CHECK(sum.labels[2].name == "k");
  const OtlpDelta& hist = d.request.deltas[1];
  CHECK(hist.kind == OtlpDelta::Kind::kHistogram);
  CHECK(hist.name == "lat");
  CHECK(std::vector<double>(hist.bounds.begin(), hist.bounds.end()) == std::vector<double>{1});
  CHECK(std::vector<double>(hist.bucket_counts.begin(), hist.bucket_counts.end()) ==
        std::vector<double>{2, 1});
  const OtlpDelta& exp = d.request.deltas[2];
  CHECK(exp.scale == 8);  // 9 merged down: buckets 3 and 4 become 1 and 2
  CHECK(exp.positive_offset == 1);
  CHECK(std::vector<double>(exp.positive_counts.begin(), exp.positive_counts.end()) ==
        std::vector<double>{1, 1});
}

TEST_CASE("otlp: a data point that breaks a rule is rejected alone, naming where and why") {
  pb::ExportMetricsServiceRequest r;
  auto* metrics = one_scope(r);
  auto* h = metrics->Add();
  h->set_name("bad.hist");
  h->mutable_histogram()->set_aggregation_temporality(pb::AGGREGATION_TEMPORALITY_CUMULATIVE);
  auto* hp = h->mutable_histogram()->add_data_points();
  hp->set_time_unix_nano(kT);
  hp->add_explicit_bounds(1);
  hp->add_bucket_counts(1);  // needs 2
  auto* g = metrics->Add();
  g->set_name("fine");
  number(g->mutable_gauge()->mutable_data_points(), 1);
  number(g->mutable_gauge()->mutable_data_points(), 2)->set_time_unix_nano(0);
  attr(number(g->mutable_gauge()->mutable_data_points(), 3)->mutable_attributes(), "...", "x");
  auto* t = metrics->Add();
  t->set_name("no.temporality");
  t->mutable_sum()->set_is_monotonic(true);
  number(t->mutable_sum()->mutable_data_points(), 1);

  OtlpDecoder decoder;
  Decoded d = decode(decoder, r);
  REQUIRE(d.status.is_ok());
  CHECK(d.series.size() == 1);
  CHECK(d.series.count("fine{" + kJob + "}") == 1);
  REQUIRE(d.rejected.size() == 4);
  CHECK(d.rejected[0] ==
        "resource_metrics[0].scope_metrics[0].metrics[0] \"bad.hist\" data_points[0]: "
        "bucket_counts has 1 entries for 1 explicit_bounds (expected 2)");
  CHECK(d.rejected[1] ==
        "resource_metrics[0].scope_metrics[0].metrics[1] \"fine\" data_points[1]: "
        "time_unix_nano is 0 (not set)");
  CHECK(d.rejected[2] ==
        "resource_metrics[0].scope_metrics[0].metrics[1] \"fine\" data_points[2]: "
        "attribute \"...\" has no character valid in a label name");
  CHECK(d.rejected[3] ==
        "resource_metrics[0].scope_metrics[0].metrics[2] \"no.temporality\" data_points[0]: "
        "aggregation_temporality 0 is neither DELTA (1) nor CUMULATIVE (2)");
  // Every series and rejection maps back to its point.
  CHECK(d.request.point_of_index.size() == 5);
  CHECK(d.request.point_of_index[d.request.write.rejected[3].index] == 4);
}

TEST_CASE("otlp: OTLP/JSON decodes to the same series as protobuf") {
  pb::ExportMetricsServiceRequest r;
  auto* metrics = one_scope(r);
  auto* c = metrics->Add();
  c->set_name("http.requests");
  c->mutable_sum()->set_is_monotonic(true);
  c->mutable_sum()->set_aggregation_temporality(pb::AGGREGATION_TEMPORALITY_CUMULATIVE);
  number(c->mutable_sum()->mutable_data_points(), 5);
  std::string json;
  REQUIRE(google::protobuf::util::MessageToJsonString(r, &json).ok());
  OtlpDecoder decoder;
  Decoded from_json = decode(decoder, json, OtlpEncoding::kJson);
  REQUIRE(from_json.status.is_ok());
  Decoded from_proto = decode(decoder, r);
  CHECK(from_json.series == from_proto.series);

  // As an SDK writes it: lowerCamelCase, 64-bit integers as strings, enums as numbers.
  const std::string sdk = R"({"resourceMetrics":[{"resource":{"attributes":[
      {"key":"service.name","value":{"stringValue":"web"}}]},
    "scopeMetrics":[{"scope":{"name":"s"},"metrics":[{"name":"hits","unit":"1",
      "sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[
        {"attributes":[],"startTimeUnixNano":"1700000000000000000",
         "timeUnixNano":"1700000001000000000","asInt":"12","unknownField":1}]}}]}]}]})";
  Decoded d = decode(decoder, sdk, OtlpEncoding::kJson);
  REQUIRE(d.status.is_ok());
  CHECK(d.series.at("hits_total{job=\"web\"}") == std::pair<int64_t, double>{1700000001000, 12});
}

TEST_CASE("otlp: undecodable bodies are errors that say what was wrong") {
  OtlpDecoder decoder;
  OtlpRequest out;
  auto proto = decoder.decode("\xff\xff\xff", OtlpEncoding::kProtobuf, out);
  CHECK(proto.code() == StatusCode::kInvalidArgument);
  CHECK(proto.message().find("ExportMetricsServiceRequest (protobuf)") != std::string::npos);

  auto json = decoder.decode("{\"resourceMetrics\":[{", OtlpEncoding::kJson, out);
  CHECK(json.code() == StatusCode::kInvalidArgument);
  CHECK(json.message().find("OTLP/JSON") != std::string::npos);

  // A field of the wrong type: the message names it.
  auto field = decoder.decode(
      R"({"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"timeUnixNano":"soon"}]}}]}]}]})",
      OtlpEncoding::kJson, out);
  CHECK(field.code() == StatusCode::kInvalidArgument);
  INFO(field.message());
  CHECK(field.message().find("time_unix_nano") != std::string::npos);
}

TEST_CASE("otlp: answers in both encodings") {
  CHECK(export_response(OtlpEncoding::kJson, 0, "") == "{}");
  CHECK(export_response(OtlpEncoding::kProtobuf, 0, "").empty());
  CHECK(export_response(OtlpEncoding::kJson, 2, "two refused") ==
        R"({"partialSuccess":{"rejectedDataPoints":"2","errorMessage":"two refused"}})");
  pb::ExportMetricsServiceResponse response;
  REQUIRE(response.ParseFromString(export_response(OtlpEncoding::kProtobuf, 2, "why")));
  CHECK(response.partial_success().rejected_data_points() == 2);
  CHECK(response.partial_success().error_message() == "why");
  CHECK(rpc_status(OtlpEncoding::kJson, 3, "bad \"body\"") ==
        R"({"code":3,"message":"bad \"body\""})");
  pb::RpcStatus status;
  REQUIRE(status.ParseFromString(rpc_status(OtlpEncoding::kProtobuf, 14, "later")));
  CHECK(status.code() == 14);
  CHECK(status.message() == "later");
}

TEST_CASE("otlp: a decoder reused for the next body forgets the last one") {
  pb::ExportMetricsServiceRequest r;
  auto* g = one_scope(r)->Add();
  g->set_name("a");
  number(g->mutable_gauge()->mutable_data_points(), 1);
  OtlpDecoder decoder;
  REQUIRE(decode(decoder, r).series.size() == 1);
  pb::ExportMetricsServiceRequest empty;
  Decoded d = decode(decoder, empty);
  REQUIRE(d.status.is_ok());
  CHECK(d.series.empty());
  CHECK(d.request.points.empty());
  CHECK(d.request.write.metadata.empty());
}
