#include "kpid/ingest/remote_write.h"

#include <google/protobuf/arena.h>
#include <snappy.h>

#include <algorithm>

#include "kpid/core/labels.h"
#include "prometheus/remote_write_v1.pb.h"

namespace kpid::ingest {

namespace pb = kpid::wire::prometheus::v1;

namespace {

std::string_view type_name(pb::MetricMetadata::MetricType type) {
  switch (type) {
    case pb::MetricMetadata::COUNTER: return "counter";
    case pb::MetricMetadata::GAUGE: return "gauge";
    case pb::MetricMetadata::HISTOGRAM: return "histogram";
    case pb::MetricMetadata::GAUGEHISTOGRAM: return "gaugehistogram";
    case pb::MetricMetadata::SUMMARY: return "summary";
    case pb::MetricMetadata::INFO: return "info";
    case pb::MetricMetadata::STATESET: return "stateset";
    default: return "unknown";
  }
}

// The series' labels as Prometheus prints them, for a rejection's message.
std::string printed(const pb::TimeSeries& ts) {
  std::string out = "{";
  for (const auto& l : ts.labels()) {
    if (out.size() > 1) out.push_back(',');
    out.append(l.name()).push_back('=');
    append_quoted(out, l.value());
  }
  out.push_back('}');
  return out;
}

// Why Prometheus would refuse the series' labels, or "" when they are fine. Empty values are
// absent labels (and skipped by the caller).
std::string label_problem(const pb::TimeSeries& ts, std::vector<std::string_view>& names) {
  names.clear();
  bool has_name = false;
  for (const auto& l : ts.labels()) {
    if (l.value().empty()) continue;
    if (l.name() == "__name__") {
      if (!is_metric_name(l.value())) return "invalid metric name \"" + l.value() + "\"";
      has_name = true;
    } else if (!is_label_name(l.name())) {
      return "invalid label name \"" + l.name() + "\"";
    }
    names.push_back(l.name());
  }
  if (!has_name) return "no metric name (label __name__)";
  std::sort(names.begin(), names.end());
  if (auto dup = std::adjacent_find(names.begin(), names.end()); dup != names.end()) {
    return "label \"" + std::string(*dup) + "\" appears twice";
  }
  return {};
}

}  // namespace

struct RemoteWriteDecoder::Impl {
  std::string decompressed;
  // The request lives on an arena that is reset for each body: its strings stay put until the
  // next decode(), which is what the views handed out point into.
  std::unique_ptr<google::protobuf::Arena> arena;
  std::vector<RemoteLabel> labels;
  std::vector<RemoteSample> samples;
  std::vector<std::string_view> names;  // scratch for the duplicate check
};

RemoteWriteDecoder::RemoteWriteDecoder() : impl_(std::make_unique<Impl>()) {}
RemoteWriteDecoder::~RemoteWriteDecoder() = default;

Status RemoteWriteDecoder::decode(std::string_view body, size_t max_bytes,
                                  RemoteWriteRequest& out) {
  out.series.clear();
  out.rejected.clear();
  out.metadata.clear();
  out.samples = out.histograms = out.exemplars = 0;
  Impl& im = *impl_;

  size_t length = 0;
  if (!snappy::GetUncompressedLength(body.data(), body.size(), &length)) {
    return Status::invalid_argument(
        "the body is not snappy-compressed (block format, as remote write sends it)");
  }
  if (length > max_bytes) {
    return Status::invalid_argument("the body is " + std::to_string(length) +
                                    " bytes decompressed, over the limit of " +
                                    std::to_string(max_bytes) + " (http.max_body_bytes)");
  }
  if (!snappy::Uncompress(body.data(), body.size(), &im.decompressed)) {
    return Status::invalid_argument("the body's snappy data is corrupt");
  }
  im.arena = std::make_unique<google::protobuf::Arena>();
  auto* request = google::protobuf::Arena::CreateMessage<pb::WriteRequest>(im.arena.get());
  if (!request->ParseFromArray(im.decompressed.data(), static_cast<int>(im.decompressed.size()))) {
    return Status::invalid_argument("the body is not a remote write 1.0 WriteRequest (protobuf)");
  }

  // Sizes first, so the views into labels and samples never move.
  size_t label_count = 0;
  size_t sample_count = 0;
  for (const auto& ts : request->timeseries()) {
    label_count += static_cast<size_t>(ts.labels_size());
    sample_count += static_cast<size_t>(ts.samples_size());
  }
  im.labels.clear();
  im.labels.reserve(label_count);
  im.samples.clear();
  im.samples.reserve(sample_count);
  out.series.reserve(static_cast<size_t>(request->timeseries_size()));

  for (int i = 0; i < request->timeseries_size(); ++i) {
    const pb::TimeSeries& ts = request->timeseries(i);
    out.histograms += static_cast<size_t>(ts.histograms_size());
    out.exemplars += static_cast<size_t>(ts.exemplars_size());
    if (ts.samples_size() == 0) continue;  // histograms or exemplars only: nothing float to keep
    if (std::string problem = label_problem(ts, im.names); !problem.empty()) {
      out.rejected.push_back({static_cast<size_t>(i), printed(ts), std::move(problem)});
      continue;
    }
    const size_t first_label = im.labels.size();
    for (const auto& l : ts.labels()) {
      if (!l.value().empty()) im.labels.push_back({l.name(), l.value()});
    }
    const size_t first_sample = im.samples.size();
    for (const auto& s : ts.samples()) im.samples.push_back({s.timestamp(), s.value()});
    out.series.push_back({static_cast<size_t>(i), std::span(im.labels).subspan(first_label),
                          std::span(im.samples).subspan(first_sample)});
    out.samples += static_cast<size_t>(ts.samples_size());
  }
  for (const auto& m : request->metadata()) {
    out.metadata.push_back({m.metric_family_name(), type_name(m.type()), m.help(), m.unit()});
  }
  return Status::ok();
}

}  // namespace kpid::ingest
