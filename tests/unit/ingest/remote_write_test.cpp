#include "kpid/ingest/remote_write.h"

#include <snappy.h>

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <string>

#include "prometheus/remote_write_v1.pb.h"

using namespace kpid;
using namespace kpid::ingest;
namespace pb = kpid::wire::prometheus::v1;

namespace {

// Prometheus' stale marker: a NaN with these exact bits.
constexpr uint64_t kStaleNaN = 0x7ff0000000000002;

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
  REQUIRE(decoder.decode(compressed(request), 1 << 20, out).is_ok());
  REQUIRE(out.series.size() == 2);
  CHECK(labels_of(out.series[0]) == "__name__=up;instance=a:9100;job=node;");
  REQUIRE(out.series[0].samples.size() == 2);
  CHECK(out.series[0].samples[1].timestamp_ms == 16000);
  CHECK(out.series[0].samples[1].value == 0);
  // An empty label value is an absent label, as in Prometheus.
  CHECK(labels_of(out.series[1]) == "__name__=temp_celsius;site=x;");
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
  add_sample(*ts, 1000, std::bit_cast<double>(kStaleNaN));
  RemoteWriteDecoder decoder;
  RemoteWriteRequest out;
  REQUIRE(decoder.decode(compressed(request), 1 << 20, out).is_ok());
  REQUIRE(out.series.size() == 1);
  CHECK(std::bit_cast<uint64_t>(out.series[0].samples[0].value) == kStaleNaN);
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
  REQUIRE(decoder.decode(compressed(request), 1 << 20, out).is_ok());
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
  auto s = decoder.decode("not snappy at all", 1 << 20, out);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find("snappy") != std::string::npos);

  std::string garbage(64, '\xff');
  std::string packed;
  snappy::Compress(garbage.data(), garbage.size(), &packed);
  s = decoder.decode(packed, 1 << 20, out);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == "the body is not a remote write 1.0 WriteRequest (protobuf)");

  pb::WriteRequest request;
  auto* ts = request.add_timeseries();
  add_labels(*ts, {{"__name__", "big"}, {"pad", std::string(4000, 'x').c_str()}});
  add_sample(*ts, 1, 1);
  s = decoder.decode(compressed(request), 1000, out);
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
  REQUIRE(decoder.decode(compressed(first), 1 << 20, out).is_ok());
  CHECK(out.series.size() == 1);
  CHECK(out.rejected.size() == 1);
  pb::WriteRequest second;
  auto* b = second.add_timeseries();
  add_labels(*b, {{"__name__", "b"}});
  add_sample(*b, 2, 2);
  REQUIRE(decoder.decode(compressed(second), 1 << 20, out).is_ok());
  REQUIRE(out.series.size() == 1);
  CHECK(labels_of(out.series[0]) == "__name__=b;");
  CHECK(out.rejected.empty());
  CHECK(out.samples == 1);
}
