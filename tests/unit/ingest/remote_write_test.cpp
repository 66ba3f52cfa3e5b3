#include "kpid/ingest/remote_write.h"

#include "kpid/core/stale_marker.h"

#include <snappy.h>

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <string>

#include "prometheus/remote_write_v1.pb.h"
#include "prometheus/remote_write_v2.pb.h"

using namespace kpid;
using namespace kpid::ingest;
namespace pb = kpid::wire::prometheus::v1;

namespace {

void add_labels(pb::TimeSeries& ts, std::initializer_list<std::pair<const char*, const char*>> ls) {
  for (const auto& [name, value] : ls) {
    auto* l = ts.add_labels();
    l->set_name(name);
    l->set_value(value);
  }
}

void add_sample(pb::TimeSeries& ts, int64_t t, double v) {
  auto* s = ts.add_samples();
  s->set_timestamp(t);
  s->set_value(v);
}

std::string compressed(const pb::WriteRequest& request) {
  std::string raw = request.SerializeAsString();
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

template <class Message>
std::string compressed_message(const Message& request) {
  std::string raw = request.SerializeAsString();
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

// "name=value;..." of each series and its samples "t:v,..." one per line, for whole-request
// expectations.
std::string printed(const RemoteWriteRequest& r) {
  std::string out;
  for (const auto& s : r.series) {
    for (const auto& l : s.labels) out += std::string(l.name) + "=" + std::string(l.value) + ";";
    out += " ";
    for (const auto& v : s.samples) {
      out += std::to_string(v.timestamp_ms) + ":" + std::to_string(static_cast<int64_t>(v.value));
    }
    out += "\n";
  }
  return out;
}

std::string labels_of(const RemoteSeries& s) {
  std::string out;
  for (const auto& l : s.labels) out += std::string(l.name) + "=" + std::string(l.value) + ";";
  return out;
}

}  // namespace

TEST_CASE("remote write: series with their labels and samples, metadata, counts") {
  pb::WriteRequest request;
  auto* up = request.add_timeseries();
  add_labels(*up, {{"__name__", "up"}, {"instance", "a:9100"}, {"job", "node"}});
  add_sample(*up, 1000, 1);
  add_sample(*up, 16000, 0);
  auto* temp = request.add_timeseries();
  add_labels(*temp, {{"__name__", "temp_celsius"}, {"room", ""}, {"site", "x"}});
  add_sample(*temp, 2000, 21.5);
  temp->add_exemplars()->set_value(3);
  auto* hist_only = request.add_timeseries();
  add_labels(*hist_only, {{"__name__", "latency_seconds"}});
  hist_only->add_histograms()->set_count_int(4);
  auto* meta = request.add_metadata();
  meta->set_type(pb::MetricMetadata::GAUGE);
  meta->set_metric_family_name("temp_celsius");
  meta->set_help("Room temperature.");
  meta->set_unit("celsius");

  RemoteWriteDecoder decoder;
  RemoteWriteRequest out;
  REQUIRE(decoder.decode(compressed(request), RemoteWriteVersion::kV1, {}, out).is_ok());
  // The histogram without buckets is its +Inf bucket, sum and count.
  REQUIRE(out.series.size() == 5);
  CHECK(labels_of(out.series[0]) == "__name__=up;instance=a:9100;job=node;");
  REQUIRE(out.series[0].samples.size() == 2);
  CHECK(out.series[0].samples[1].timestamp_ms == 16000);
  CHECK(out.series[0].samples[1].value == 0);
  // An empty label value is an absent label, as in Prometheus.
  CHECK(labels_of(out.series[1]) == "__name__=temp_celsius;site=x;");
  CHECK(labels_of(out.series[2]) == "__name__=latency_seconds_bucket;le=+Inf;");
  CHECK(out.series[2].samples[0].value == 4);
  CHECK(out.series[2].part == RemoteSeries::Part::kHistogramBucket);
  CHECK(labels_of(out.series[4]) == "__name__=latency_seconds_count;");
  CHECK(out.samples == 3);
  CHECK(out.histograms == 1);
  CHECK(out.exemplars == 1);
  CHECK(out.rejected.empty());
  REQUIRE(out.metadata.size() == 1);
  CHECK(out.metadata[0].family == "temp_celsius");
  CHECK(out.metadata[0].type == "gauge");
  CHECK(out.metadata[0].help == "Room temperature.");
  CHECK(out.metadata[0].unit == "celsius");
}

TEST_CASE("remote write: the stale marker keeps its bits") {
  pb::WriteRequest request;
  auto* ts = request.add_timeseries();
  add_labels(*ts, {{"__name__", "up"}});
  add_sample(*ts, 1000, kpid::kStaleNaN);
  RemoteWriteDecoder decoder;
  RemoteWriteRequest out;
  REQUIRE(decoder.decode(compressed(request), RemoteWriteVersion::kV1, {}, out).is_ok());
  REQUIRE(out.series.size() == 1);
  CHECK(std::bit_cast<uint64_t>(out.series[0].samples[0].value) == kStaleNaNBits);
}

TEST_CASE("remote write: a series that breaks a rule is rejected alone, saying which and why") {
  pb::WriteRequest request;
  add_sample(*request.add_timeseries(), 1, 1);  // no labels at all
  auto* bad_label = request.add_timeseries();
  add_labels(*bad_label, {{"__name__", "ok"}, {"0bad", "v"}});
  add_sample(*bad_label, 1, 1);
  auto* bad_name = request.add_timeseries();
  add_labels(*bad_name, {{"__name__", "bad-name"}});
  add_sample(*bad_name, 1, 1);
  auto* twice = request.add_timeseries();
  add_labels(*twice, {{"__name__", "dup"}, {"a", "1"}, {"a", "2"}});
  add_sample(*twice, 1, 1);
  auto* good = request.add_timeseries();
  add_labels(*good, {{"__name__", "good"}});
  add_sample(*good, 1, 1);

  RemoteWriteDecoder decoder;
  RemoteWriteRequest out;
  REQUIRE(decoder.decode(compressed(request), RemoteWriteVersion::kV1, {}, out).is_ok());
  REQUIRE(out.series.size() == 1);
  CHECK(labels_of(out.series[0]) == "__name__=good;");
  REQUIRE(out.rejected.size() == 4);
  CHECK(out.rejected[0].index == 0);
  CHECK(out.rejected[0].series == "{}");
  CHECK(out.rejected[0].reason == "no metric name (label __name__)");
  CHECK(out.rejected[1].series == R"({__name__="ok",0bad="v"})");
  CHECK(out.rejected[1].reason == "invalid label name \"0bad\"");
  CHECK(out.rejected[2].reason == "invalid metric name \"bad-name\"");
  CHECK(out.rejected[3].index == 3);
  CHECK(out.rejected[3].reason == "label \"a\" appears twice");
}

TEST_CASE("remote write: undecodable bodies are errors that say what was wrong") {
  RemoteWriteDecoder decoder;
  RemoteWriteRequest out;
  auto s = decoder.decode("not snappy at all", RemoteWriteVersion::kV1, {}, out);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find("snappy") != std::string::npos);

  std::string garbage(64, '\xff');
  std::string packed;
  snappy::Compress(garbage.data(), garbage.size(), &packed);
  s = decoder.decode(packed, RemoteWriteVersion::kV1, {}, out);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == "the body is not a remote write 1.0 WriteRequest (protobuf)");

  pb::WriteRequest request;
  auto* ts = request.add_timeseries();
  add_labels(*ts, {{"__name__", "big"}, {"pad", std::string(4000, 'x').c_str()}});
  add_sample(*ts, 1, 1);
  s = decoder.decode(compressed(request), RemoteWriteVersion::kV1, {1000}, out);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find("over the limit of 1000 (http.max_body_bytes)") != std::string::npos);
}

TEST_CASE("remote write: a decoder reused for the next body forgets the last one") {
  RemoteWriteDecoder decoder;
  RemoteWriteRequest out;
  pb::WriteRequest first;
  auto* a = first.add_timeseries();
  add_labels(*a, {{"__name__", "a"}});
  add_sample(*a, 1, 1);
  add_sample(*first.add_timeseries(), 1, 1);  // rejected
  REQUIRE(decoder.decode(compressed(first), RemoteWriteVersion::kV1, {}, out).is_ok());
  CHECK(out.series.size() == 1);
  CHECK(out.rejected.size() == 1);
  pb::WriteRequest second;
  auto* b = second.add_timeseries();
  add_labels(*b, {{"__name__", "b"}});
  add_sample(*b, 2, 2);
  REQUIRE(decoder.decode(compressed(second), RemoteWriteVersion::kV1, {}, out).is_ok());
  REQUIRE(out.series.size() == 1);
  CHECK(labels_of(out.series[0]) == "__name__=b;");
  CHECK(out.rejected.empty());
  CHECK(out.samples == 1);
}

TEST_CASE("remote write 1.0: a native histogram becomes classic bucket, sum and count series") {
  pb::WriteRequest request;
  auto* ts = request.add_timeseries();
  add_labels(*ts, {{"__name__", "rpc_seconds"}, {"job", "api"}});
  auto* h = ts->add_histograms();
  h->set_timestamp(5000);
  h->set_count_int(9);
  h->set_sum(20);
  h->set_schema(0);
  h->set_zero_threshold(0.001);
  h->set_zero_count_int(1);
  // Buckets 1 and 2, then (after a gap of one) bucket 4: counts 2, 3, 3 as deltas 2, +1, 0.
  auto* first = h->add_positive_spans();
  first->set_offset(1);
  first->set_length(2);
  auto* second = h->add_positive_spans();
  second->set_offset(1);
  second->set_length(1);
  for (int64_t d : {2, 1, 0}) h->add_positive_deltas(d);

  RemoteWriteDecoder decoder;
  RemoteWriteRequest out;
  REQUIRE(decoder.decode(compressed(request), RemoteWriteVersion::kV1, {}, out).is_ok());
  CHECK(printed(out) ==
        "__name__=rpc_seconds_bucket;job=api;le=0.001; 5000:1\n"
        "__name__=rpc_seconds_bucket;job=api;le=1; 5000:1\n"
        "__name__=rpc_seconds_bucket;job=api;le=2; 5000:3\n"
        "__name__=rpc_seconds_bucket;job=api;le=4; 5000:6\n"
        "__name__=rpc_seconds_bucket;job=api;le=8; 5000:6\n"
        "__name__=rpc_seconds_bucket;job=api;le=16; 5000:9\n"
        "__name__=rpc_seconds_bucket;job=api;le=+Inf; 5000:9\n"
        "__name__=rpc_seconds_sum;job=api; 5000:20\n"
        "__name__=rpc_seconds_count;job=api; 5000:9\n");
  CHECK(out.histograms == 1);
  CHECK(out.samples == 0);

  // The configured limit merges buckets: at most 3 finite ones, so two steps down (base 16).
  REQUIRE(decoder.decode(compressed(request), RemoteWriteVersion::kV1, {1 << 20, 3}, out).is_ok());
  CHECK(
      printed(out).starts_with("__name__=rpc_seconds_bucket;job=api;le=0.001; 5000:1\n"
                               "__name__=rpc_seconds_bucket;job=api;le=1; 5000:1\n"
                               "__name__=rpc_seconds_bucket;job=api;le=16; 5000:9\n"
                               "__name__=rpc_seconds_bucket;job=api;le=+Inf; 5000:9\n"));
}

TEST_CASE("remote write: a native histogram that does not add up rejects its series alone") {
  pb::WriteRequest request;
  auto* bad_schema = request.add_timeseries();
  add_labels(*bad_schema, {{"__name__", "a"}});
  bad_schema->add_histograms()->set_schema(9);
  auto* short_deltas = request.add_timeseries();
  add_labels(*short_deltas, {{"__name__", "b"}});
  auto* h = short_deltas->add_histograms();
  auto* span = h->add_positive_spans();
  span->set_length(3);
  h->add_positive_deltas(1);
  auto* has_le = request.add_timeseries();
  add_labels(*has_le, {{"__name__", "c"}, {"le", "1"}});
  has_le->add_histograms();
  auto* good = request.add_timeseries();
  add_labels(*good, {{"__name__", "d"}});
  add_sample(*good, 1, 1);

  RemoteWriteDecoder decoder;
  RemoteWriteRequest out;
  REQUIRE(decoder.decode(compressed(request), RemoteWriteVersion::kV1, {}, out).is_ok());
  REQUIRE(out.series.size() == 1);
  REQUIRE(out.rejected.size() == 3);
  CHECK(out.rejected[0].reason ==
        "native histogram schema 9 is not one kpid knows (-4..8, or -53 for custom buckets)");
  CHECK(out.rejected[1].reason == "positive spans cover more buckets than the 1 counts given");
  CHECK(out.rejected[2].reason == "a native histogram series has a label \"le\"");
  CHECK(out.histograms_rejected == 3);
}

namespace {

namespace pb2 = kpid::wire::prometheus::v2;

// A 2.0 request's symbol table, filled as labels are added.
struct Symbols {
  pb2::Request& request;
  uint32_t ref(const std::string& text) {
    for (int i = 0; i < request.symbols_size(); ++i) {
      if (request.symbols(i) == text) return static_cast<uint32_t>(i);
    }
    request.add_symbols(text);
    return static_cast<uint32_t>(request.symbols_size() - 1);
  }
  void labels(pb2::TimeSeries& ts, std::initializer_list<std::pair<std::string, std::string>> ls) {
    for (const auto& [name, value] : ls) {
      ts.add_labels_refs(ref(name));
      ts.add_labels_refs(ref(value));
    }
  }
};

}  // namespace

TEST_CASE("remote write 2.0: labels from the symbols table, metadata, created timestamps") {
  pb2::Request request;
  Symbols symbols{request};
  symbols.ref("");
  auto* counter = request.add_timeseries();
  symbols.labels(*counter, {{"__name__", "http_requests_total"}, {"code", "200"}});
  auto* s = counter->add_samples();
  s->set_timestamp(60000);
  s->set_value(42);
  counter->set_created_timestamp(30000);
  counter->mutable_metadata()->set_type(pb2::Metadata::METRIC_TYPE_COUNTER);
  counter->mutable_metadata()->set_help_ref(symbols.ref("Requests served."));
  auto* gauge = request.add_timeseries();
  symbols.labels(*gauge, {{"__name__", "temperature"}});
  s = gauge->add_samples();
  s->set_timestamp(60000);
  s->set_value(21);
  gauge->set_created_timestamp(30000);  // not a counter: no meaning, dropped
  gauge->mutable_metadata()->set_type(pb2::Metadata::METRIC_TYPE_GAUGE);
  gauge->mutable_metadata()->set_unit_ref(symbols.ref("celsius"));
  gauge->add_exemplars()->set_value(1);
  auto* bad_ref = request.add_timeseries();
  bad_ref->add_labels_refs(0);
  bad_ref->add_labels_refs(999);
  bad_ref->add_samples()->set_value(1);
  auto* odd = request.add_timeseries();
  odd->add_labels_refs(1);
  odd->add_samples()->set_value(1);

  RemoteWriteDecoder decoder;
  RemoteWriteRequest out;
  REQUIRE(decoder.decode(compressed_message(request), RemoteWriteVersion::kV2, {}, out).is_ok());
  CHECK(printed(out) ==
        "__name__=http_requests_total;code=200; 60000:42\n"
        "__name__=temperature; 60000:21\n");
  CHECK(out.series[0].created_timestamp == 30000);
  CHECK(out.series[1].created_timestamp == 0);
  CHECK(out.samples == 2);
  CHECK(out.exemplars == 1);
  REQUIRE(out.metadata.size() == 2);
  CHECK(out.metadata[0].family == "http_requests_total");
  CHECK(out.metadata[0].type == "counter");
  CHECK(out.metadata[0].help == "Requests served.");
  CHECK(out.metadata[1].unit == "celsius");
  REQUIRE(out.rejected.size() == 2);
  CHECK(out.rejected[0].index == 2);
  CHECK(out.rejected[0].reason == "label reference 999 is outside the symbols table (" +
                                      std::to_string(request.symbols_size()) + " symbols)");
  CHECK(out.rejected[1].reason ==
        "an odd number of label references (1): they come in name, "
        "value pairs");

  // A 1.0 body read as 2.0 is an empty request (the field numbers do not overlap).
  pb::WriteRequest v1;
  auto* ts = v1.add_timeseries();
  add_labels(*ts, {{"__name__", "up"}});
  add_sample(*ts, 1, 1);
  REQUIRE(decoder.decode(compressed(v1), RemoteWriteVersion::kV2, {}, out).is_ok());
  CHECK(out.series.empty());
}

TEST_CASE("remote write 2.0: a stale native histogram marks its sum, count and +Inf bucket") {
  pb2::Request request;
  Symbols symbols{request};
  symbols.ref("");
  auto* ts = request.add_timeseries();
  symbols.labels(*ts, {{"__name__", "rpc_seconds"}});
  auto* h = ts->add_histograms();
  h->set_timestamp(7000);
  h->set_sum(kpid::kStaleNaN);
  RemoteWriteDecoder decoder;
  RemoteWriteRequest out;
  REQUIRE(decoder.decode(compressed_message(request), RemoteWriteVersion::kV2, {}, out).is_ok());
  REQUIRE(out.series.size() == 3);
  for (const auto& series : out.series) {
    CHECK(std::bit_cast<uint64_t>(series.samples[0].value) == kStaleNaNBits);
  }
  CHECK(labels_of(out.series[0]) == "__name__=rpc_seconds_bucket;le=+Inf;");
}
