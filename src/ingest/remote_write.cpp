#include "kpid/ingest/remote_write.h"

#include <google/protobuf/arena.h>
#include <snappy.h>

#include <algorithm>
#include <deque>
#include <unordered_set>

#include "kpid/core/labels.h"
#include "kpid/core/stale_marker.h"
#include "kpid/ingest/native_histogram.h"
#include "prometheus/remote_write_v1.pb.h"
#include "prometheus/remote_write_v2.pb.h"

namespace kpid::ingest {

namespace pb1 = kpid::wire::prometheus::v1;
namespace pb2 = kpid::wire::prometheus::v2;

namespace {

// 1.0 and 2.0 number their metric types alike (2.0 calls 0 "unspecified").
std::string_view type_name(int type) {
  switch (type) {
    case 1: return "counter";
    case 2: return "gauge";
    case 3: return "histogram";
    case 4: return "gaugehistogram";
    case 5: return "summary";
    case 6: return "info";
    case 7: return "stateset";
    default: return "unknown";
  }
}

// The series' labels as Prometheus prints them, for a rejection's message.
std::string printed(std::span<const RemoteLabel> labels) {
  std::string out = "{";
  for (const RemoteLabel& l : labels) {
    if (out.size() > 1) out.push_back(',');
    out.append(l.name).push_back('=');
    append_quoted(out, l.value);
  }
  out.push_back('}');
  return out;
}

// Why Prometheus would refuse the labels (empty values already left out), or "" when they are
// fine; `metric` is set to the metric name.
std::string label_problem(std::span<const RemoteLabel> labels, std::vector<std::string_view>& names,
                          std::string_view& metric) {
  names.clear();
  metric = {};
  for (const RemoteLabel& l : labels) {
    if (l.name == "__name__") {
      if (!is_metric_name(l.value)) return "invalid metric name \"" + std::string(l.value) + "\"";
      metric = l.value;
    } else if (!is_label_name(l.name)) {
      return "invalid label name \"" + std::string(l.name) + "\"";
    }
    names.push_back(l.name);
  }
  if (metric.empty()) return "no metric name (label __name__)";
  std::sort(names.begin(), names.end());
  if (auto dup = std::adjacent_find(names.begin(), names.end()); dup != names.end()) {
    return "label \"" + std::string(*dup) + "\" appears twice";
  }
  return {};
}

// The family a series' metadata describes: classic histograms and summaries describe their
// _bucket, _sum and _count series under the family's name.
std::string_view family_of(std::string_view metric, std::string_view type) {
  if (type == "histogram" || type == "gaugehistogram" || type == "summary") {
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (metric.size() > suffix.size() && metric.ends_with(suffix)) {
        return metric.substr(0, metric.size() - suffix.size());
      }
    }
  }
  return metric;
}

// Whether a created timestamp means "this counter started here" for a series of `type`.
bool counts_from_creation(std::string_view type) {
  return type == "counter" || type == "histogram" || type == "summary";
}

// One side's buckets of a native histogram: spans over deltas (integer histograms) or absolute
// counts (float histograms) -> (index, count) pairs. Returns why they do not fit, or "".
template <class Spans, class Deltas, class Counts>
std::string expand_buckets(const Spans& spans, const Deltas& deltas, const Counts& counts,
                           bool float_counts, const char* side, std::vector<IndexedCount>& out) {
  out.clear();
  const int values = float_counts ? counts.size() : deltas.size();
  int64_t index = 0;
  int64_t running = 0;
  int k = 0;
  for (const auto& span : spans) {
    index += span.offset();
    for (uint32_t j = 0; j < span.length(); ++j, ++index, ++k) {
      if (k >= values) {
        return std::string(side) + " spans cover more buckets than the " + std::to_string(values) +
               " counts given";
      }
      if (index < INT32_MIN || index > INT32_MAX) {
        return std::string(side) + " bucket index " + std::to_string(index) + " is out of range";
      }
      double count = 0;
      if (float_counts) {
        count = counts.Get(k);
      } else {
        if (__builtin_add_overflow(running, deltas.Get(k), &running)) {
          return std::string(side) + " bucket deltas overflow";
        }
        count = static_cast<double>(running);
      }
      out.push_back({static_cast<int32_t>(index), count});
    }
  }
  if (k != values) {
    return std::string(side) + " spans cover " + std::to_string(k) + " buckets but " +
           std::to_string(values) + " counts are given";
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
  // Strings the request does not hold: histogram series' names and `le` values. A deque keeps
  // each in place as more are added.
  std::deque<std::string> strings;
  // Series as positions in `labels` and `samples`: spans are taken once both stop growing.
  struct Pending {
    size_t index;
    size_t first_label, label_count, first_sample, sample_count;
    int64_t created_timestamp;
    RemoteSeries::Part part;
  };
  std::vector<Pending> pending;
  std::vector<RemoteLabel> series_labels;  // the series being decoded (non-empty values)
  std::vector<std::string_view> names;     // scratch for the duplicate check
  std::vector<IndexedCount> positive, negative;
  std::vector<ClassicBucket> buckets;
  std::unordered_set<std::string_view> families;  // metadata already taken from this request

  void reset() {
    labels.clear();
    samples.clear();
    strings.clear();
    pending.clear();
    families.clear();
  }

  // Adds a series with `labels` (the metric name replaced by `metric` when not empty, plus
  // `extra` when its name is not empty) and `values`.
  void add(size_t index, std::string_view metric, RemoteLabel extra,
           std::span<const RemoteSample> values, int64_t created, RemoteSeries::Part part) {
    const size_t first_label = labels.size();
    for (const RemoteLabel& l : series_labels) {
      labels.push_back(l.name == "__name__" && !metric.empty() ? RemoteLabel{l.name, metric} : l);
    }
    if (!extra.name.empty()) labels.push_back(extra);
    const size_t first_sample = samples.size();
    samples.insert(samples.end(), values.begin(), values.end());
    pending.push_back({index, first_label, labels.size() - first_label, first_sample, values.size(),
                       created, part});
  }

  std::string_view own(std::string text) { return strings.emplace_back(std::move(text)); }

  // A native histogram sample (1.0's message, which 2.0 reuses) -> NativeHistogram over
  // `positive`/`negative`; why not, or "".
  std::string native(const pb1::Histogram& h, NativeHistogram& out) {
    using H = pb1::Histogram;
    if (h.schema() != kCustomBucketsSchema && (h.schema() < -4 || h.schema() > 8)) {
      return "native histogram schema " + std::to_string(h.schema()) +
             " is not one kpid knows (-4..8, or -53 for custom buckets)";
    }
    const bool float_counts = h.count_case() == H::kCountFloat;
    out.schema = h.schema();
    out.count = float_counts ? h.count_float() : static_cast<double>(h.count_int());
    out.sum = h.sum();
    out.zero_threshold = h.zero_threshold();
    out.zero_count = h.zero_count_case() == H::kZeroCountFloat
                         ? h.zero_count_float()
                         : static_cast<double>(h.zero_count_int());
    if (auto p = expand_buckets(h.positive_spans(), h.positive_deltas(), h.positive_counts(),
                                float_counts, "positive", positive);
        !p.empty()) {
      return p;
    }
    if (auto p = expand_buckets(h.negative_spans(), h.negative_deltas(), h.negative_counts(),
                                float_counts, "negative", negative);
        !p.empty()) {
      return p;
    }
    out.positive = positive;
    out.negative = negative;
    out.custom_bounds = std::span(h.custom_values().data(), h.custom_values().size());
    if (h.schema() == kCustomBucketsSchema) {
      if (!std::is_sorted(out.custom_bounds.begin(), out.custom_bounds.end()) ||
          std::adjacent_find(out.custom_bounds.begin(), out.custom_bounds.end()) !=
              out.custom_bounds.end()) {
        return "custom bucket bounds are not strictly ascending";
      }
      for (const IndexedCount& b : positive) {
        if (b.index < 0 || static_cast<size_t>(b.index) > out.custom_bounds.size()) {
          return "custom bucket " + std::to_string(b.index) + " has no bound (" +
                 std::to_string(out.custom_bounds.size()) + " bounds)";
        }
      }
    }
    return {};
  }

  // The series' native histogram samples as classic bucket, sum and count series.
  std::string histograms(size_t index, std::string_view metric,
                         const google::protobuf::RepeatedPtrField<pb1::Histogram>& hs,
                         int64_t created, size_t max_buckets) {
    using Part = RemoteSeries::Part;
    for (const RemoteLabel& l : series_labels) {
      if (l.name == "le") return "a native histogram series has a label \"le\"";
    }
    const std::string_view bucket_name = own(std::string(metric) + "_bucket");
    const std::string_view sum_name = own(std::string(metric) + "_sum");
    const std::string_view count_name = own(std::string(metric) + "_count");
    for (const auto& h : hs) {
      NativeHistogram native_histogram;
      if (std::string problem = native(h, native_histogram); !problem.empty()) return problem;
      const int64_t t = h.timestamp();
      char le_buffer[32];
      if (is_stale_marker(h.sum())) {
        // The series ended: mark what a query would look up. The other buckets age out of the
        // lookback window.
        const RemoteSample stale{t, h.sum()};
        add(index, bucket_name, {"le", "+Inf"}, std::span(&stale, 1), 0, Part::kHistogramBucket);
        add(index, sum_name, {}, std::span(&stale, 1), 0, Part::kHistogramSum);
        add(index, count_name, {}, std::span(&stale, 1), 0, Part::kHistogramCount);
        continue;
      }
      to_classic_buckets(native_histogram, max_buckets, buckets);
      for (const ClassicBucket& b : buckets) {
        const std::string_view le = own(std::string(format_le(b.upper_bound, le_buffer)));
        const RemoteSample value{t, b.cumulative};
        add(index, bucket_name, {"le", le}, std::span(&value, 1), created, Part::kHistogramBucket);
      }
      const RemoteSample sum{t, native_histogram.sum};
      const RemoteSample count{t, native_histogram.count};
      add(index, sum_name, {}, std::span(&sum, 1), created, Part::kHistogramSum);
      add(index, count_name, {}, std::span(&count, 1), created, Part::kHistogramCount);
    }
    return {};
  }

  // A series whose labels are in `series_labels`: its float samples and histograms, or its
  // rejection. `type` is its metadata's type ("" when the request says none).
  template <class TimeSeries>
  void series(size_t index, const TimeSeries& ts, std::string_view type, int64_t created,
              size_t max_buckets, RemoteWriteRequest& out) {
    std::string_view metric;
    std::string problem = label_problem(series_labels, names, metric);
    if (!counts_from_creation(type)) created = 0;
    if (problem.empty() && ts.samples_size() > 0) {
      const size_t first_sample = samples.size();
      for (const auto& s : ts.samples()) samples.push_back({s.timestamp(), s.value()});
      const size_t first_label = labels.size();
      labels.insert(labels.end(), series_labels.begin(), series_labels.end());
      pending.push_back({index, first_label, series_labels.size(), first_sample,
                         static_cast<size_t>(ts.samples_size()), created,
                         RemoteSeries::Part::kSamples});
      out.samples += static_cast<size_t>(ts.samples_size());
    }
    if (problem.empty() && ts.histograms_size() > 0) {
      const size_t pending_before = pending.size();
      problem = histograms(index, metric, ts.histograms(), created, max_buckets);
      if (problem.empty()) {
        out.histograms += static_cast<size_t>(ts.histograms_size());
      } else {
        pending.resize(pending_before);  // a histogram series is kept whole or not at all
      }
    }
    if (!problem.empty()) {
      out.rejected.push_back({index, printed(series_labels), std::move(problem)});
      out.histograms_rejected += static_cast<size_t>(ts.histograms_size());
    }
  }

  Status decode_v1(const RemoteWriteLimits& limits, RemoteWriteRequest& out) {
    auto* request = google::protobuf::Arena::CreateMessage<pb1::WriteRequest>(arena.get());
    if (!request->ParseFromArray(decompressed.data(), static_cast<int>(decompressed.size()))) {
      return Status::invalid_argument("the body is not a remote write 1.0 WriteRequest (protobuf)");
    }
    for (int i = 0; i < request->timeseries_size(); ++i) {
      const pb1::TimeSeries& ts = request->timeseries(i);
      out.exemplars += static_cast<size_t>(ts.exemplars_size());
      if (ts.samples_size() == 0 && ts.histograms_size() == 0) continue;  // exemplars only
      series_labels.clear();
      for (const auto& l : ts.labels()) {
        if (!l.value().empty()) series_labels.push_back({l.name(), l.value()});
      }
      series(static_cast<size_t>(i), ts, "", 0, limits.max_histogram_buckets, out);
    }
    for (const auto& m : request->metadata()) {
      out.metadata.push_back({m.metric_family_name(), type_name(m.type()), m.help(), m.unit()});
    }
    return Status::ok();
  }

  Status decode_v2(const RemoteWriteLimits& limits, RemoteWriteRequest& out) {
    auto* request = google::protobuf::Arena::CreateMessage<pb2::Request>(arena.get());
    if (!request->ParseFromArray(decompressed.data(), static_cast<int>(decompressed.size()))) {
      return Status::invalid_argument(
          "the body is not a remote write 2.0 io.prometheus.write.v2.Request (protobuf)");
    }
    const auto& symbols = request->symbols();
    auto symbol = [&](uint32_t ref, std::string_view& text) {
      if (ref >= static_cast<uint32_t>(symbols.size())) return false;
      text = symbols.Get(static_cast<int>(ref));
      return true;
    };
    for (int i = 0; i < request->timeseries_size(); ++i) {
      const pb2::TimeSeries& ts = request->timeseries(i);
      out.exemplars += static_cast<size_t>(ts.exemplars_size());
      series_labels.clear();
      std::string problem;
      if (ts.labels_refs_size() % 2 != 0) {
        problem = "an odd number of label references (" + std::to_string(ts.labels_refs_size()) +
                  "): they come in name, value pairs";
      }
      for (int k = 0; problem.empty() && k + 1 < ts.labels_refs_size(); k += 2) {
        RemoteLabel l;
        if (!symbol(ts.labels_refs(k), l.name) || !symbol(ts.labels_refs(k + 1), l.value)) {
          problem = "label reference " +
                    std::to_string(std::max(ts.labels_refs(k), ts.labels_refs(k + 1))) +
                    " is outside the symbols table (" + std::to_string(symbols.size()) +
                    " symbols)";
        } else if (!l.value.empty()) {
          series_labels.push_back(l);
        }
      }
      std::string_view type, help, unit;
      if (problem.empty() && ts.has_metadata()) {
        type = type_name(ts.metadata().type());
        if (!symbol(ts.metadata().help_ref(), help) || !symbol(ts.metadata().unit_ref(), unit)) {
          problem = "metadata refers to a string outside the symbols table (" +
                    std::to_string(symbols.size()) + " symbols)";
        }
      }
      if (!problem.empty()) {
        out.rejected.push_back({static_cast<size_t>(i), printed(series_labels), problem});
        out.histograms_rejected += static_cast<size_t>(ts.histograms_size());
        continue;
      }
      if (ts.samples_size() == 0 && ts.histograms_size() == 0 && !ts.has_metadata()) continue;
      const size_t rejected_before = out.rejected.size();
      if (ts.samples_size() > 0 || ts.histograms_size() > 0) {
        series(static_cast<size_t>(i), ts, type, ts.created_timestamp(),
               limits.max_histogram_buckets, out);
      }
      // Metadata of a kept series (or of one that carries only metadata), once per family.
      if (ts.has_metadata() && out.rejected.size() == rejected_before && type != "unknown") {
        std::string_view metric;
        for (const RemoteLabel& l : series_labels) {
          if (l.name == "__name__") metric = l.value;
        }
        const std::string_view family = family_of(metric, type);
        if (!family.empty() && families.insert(family).second) {
          out.metadata.push_back({family, type, help, unit});
        }
      }
    }
    return Status::ok();
  }
};

RemoteWriteDecoder::RemoteWriteDecoder() : impl_(std::make_unique<Impl>()) {}
RemoteWriteDecoder::~RemoteWriteDecoder() = default;

Status RemoteWriteDecoder::decode(std::string_view body, RemoteWriteVersion version,
                                  const RemoteWriteLimits& limits, RemoteWriteRequest& out) {
  out.series.clear();
  out.rejected.clear();
  out.metadata.clear();
  out.samples = out.histograms = out.histograms_rejected = out.exemplars = 0;
  Impl& im = *impl_;
  im.reset();

  size_t length = 0;
  if (!snappy::GetUncompressedLength(body.data(), body.size(), &length)) {
    return Status::invalid_argument(
        "the body is not snappy-compressed (block format, as remote write sends it)");
  }
  if (length > limits.max_bytes) {
    return Status::invalid_argument("the body is " + std::to_string(length) +
                                    " bytes decompressed, over the limit of " +
                                    std::to_string(limits.max_bytes) + " (http.max_body_bytes)");
  }
  if (!snappy::Uncompress(body.data(), body.size(), &im.decompressed)) {
    return Status::invalid_argument("the body's snappy data is corrupt");
  }
  im.arena = std::make_unique<google::protobuf::Arena>();
  Status decoded =
      version == RemoteWriteVersion::kV1 ? im.decode_v1(limits, out) : im.decode_v2(limits, out);
  if (!decoded) return decoded;
  // `labels` and `samples` are complete: views into them stay valid until the next decode().
  out.series.reserve(im.pending.size());
  for (const Impl::Pending& p : im.pending) {
    out.series.push_back({p.index, std::span(im.labels).subspan(p.first_label, p.label_count),
                          std::span(im.samples).subspan(p.first_sample, p.sample_count),
                          p.created_timestamp, p.part});
  }
  return Status::ok();
}

}  // namespace kpid::ingest
