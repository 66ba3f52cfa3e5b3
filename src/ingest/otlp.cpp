#include "kpid/ingest/otlp.h"

#include "kpid/core/stale_marker.h"

#include <google/protobuf/arena.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "kpid/core/labels.h"
#include "otlp/metrics_service_v1.pb.h"

namespace kpid::ingest {

namespace pb = kpid::wire::otlp::v1;

namespace {

// Text that lives until clear(): blocks are kept from one request to the next, so a steady
// stream of requests copies label text without allocating.
class TextArena {
 public:
  std::string_view keep(std::string_view text) {
    if (text.empty()) return {};
    if (current_ >= blocks_.size() || used_ + text.size() > blocks_[current_].size) {
      next_block(text.size());
    }
    char* at = blocks_[current_].data.get() + used_;
    std::memcpy(at, text.data(), text.size());
    used_ += text.size();
    return {at, text.size()};
  }
  void clear() {
    current_ = 0;
    used_ = 0;
  }

 private:
  struct Block {
    std::unique_ptr<char[]> data;
    size_t size = 0;
  };
  void next_block(size_t need) {
    if (current_ < blocks_.size() && used_ > 0) ++current_;
    while (current_ < blocks_.size() && blocks_[current_].size < need) ++current_;
    if (current_ == blocks_.size()) {
      const size_t size = std::max<size_t>(64 << 10, need);
      blocks_.push_back({std::make_unique<char[]>(size), size});
    }
    used_ = 0;
  }
  std::vector<Block> blocks_;
  size_t current_ = 0;
  size_t used_ = 0;
};

void append_json_text(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
  }
}

void append_base64(std::string& out, std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(n >> shift) & 63]);
  }
  if (i < bytes.size()) {
    uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
}

// An attribute value as label text, as the OpenTelemetry collector prints one: scalars plainly,
// arrays and maps as JSON, bytes in base64. `depth` bounds the recursion of hostile input.
void append_value(std::string& out, const pb::AnyValue& v, bool in_json, int depth = 0) {
  switch (v.value_case()) {
    case pb::AnyValue::kStringValue:
      if (in_json) {
        append_json_text(out, v.string_value());
      } else {
        out += v.string_value();
      }
      break;
    case pb::AnyValue::kBoolValue: out += v.bool_value() ? "true" : "false"; break;
    case pb::AnyValue::kIntValue: out += std::to_string(v.int_value()); break;
    case pb::AnyValue::kDoubleValue: append_double(out, v.double_value()); break;
    case pb::AnyValue::kBytesValue:
      if (in_json) out.push_back('"');
      append_base64(out, v.bytes_value());
      if (in_json) out.push_back('"');
      break;
    case pb::AnyValue::kArrayValue:
      out.push_back('[');
      for (int i = 0; i < v.array_value().values_size(); ++i) {
        if (i > 0) out.push_back(',');
        if (depth < 16) append_value(out, v.array_value().values(i), true, depth + 1);
      }
      out.push_back(']');
      break;
    case pb::AnyValue::kKvlistValue:
      out.push_back('{');
      for (int i = 0; i < v.kvlist_value().values_size(); ++i) {
        if (i > 0) out.push_back(',');
        append_json_text(out, v.kvlist_value().values(i).key());
        out.push_back(':');
        if (depth < 16) append_value(out, v.kvlist_value().values(i).value(), true, depth + 1);
      }
      out.push_back('}');
      break;
    case pb::AnyValue::VALUE_NOT_SET:
      if (in_json) out += "null";
      break;
  }
}

constexpr uint32_t kNoRecordedValue = 1;  // DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
constexpr int32_t kMaxSchema = 8;         // Prometheus' finest exponential schema
constexpr int32_t kMinScale = -10;        // OTLP's range of scales
constexpr int32_t kMaxScale = 20;
// Bucket offsets beyond this are not from a real histogram (and would overflow an index).
constexpr int64_t kMaxOffset = int64_t{1} << 30;

}  // namespace

std::string describe(const OtlpPointRef& point) {
  std::string out = "resource_metrics[" + std::to_string(point.resource) + "].scope_metrics[" +
                    std::to_string(point.scope) + "].metrics[" + std::to_string(point.metric) +
                    "] ";
  append_quoted(out, point.metric_name);
  out += " data_points[" + std::to_string(point.index) + "]";
  return out;
}

// ---------------------------------------------------------------------------------------------
// OtlpSeriesBuilder

struct OtlpSeriesBuilder::Impl {
  struct Pending {
    size_t point;
    size_t label_begin;
    size_t label_count;
    int64_t timestamp_ms;
    double value;
  };
  struct Rejection {
    size_t point;
    std::string where;
    std::string reason;
    std::string_view metric_reason;
  };
  TextArena text;
  std::vector<RemoteLabel> labels;
  std::vector<Pending> pending;
  std::vector<RemoteSample> samples;
  std::vector<Rejection> rejections;
  std::string scratch;
};

OtlpSeriesBuilder::OtlpSeriesBuilder() : impl_(std::make_unique<Impl>()) {}
OtlpSeriesBuilder::~OtlpSeriesBuilder() = default;

void OtlpSeriesBuilder::clear() {
  impl_->text.clear();
  impl_->labels.clear();
  impl_->pending.clear();
  impl_->samples.clear();
  impl_->rejections.clear();
}

std::string_view OtlpSeriesBuilder::keep(std::string_view text) { return impl_->text.keep(text); }

void OtlpSeriesBuilder::add(size_t point, std::string_view name,
                            std::span<const RemoteLabel> labels, RemoteLabel extra,
                            int64_t timestamp_ms, double value) {
  Impl& im = *impl_;
  const size_t begin = im.labels.size();
  im.labels.push_back({"__name__", name});
  im.labels.insert(im.labels.end(), labels.begin(), labels.end());
  if (!extra.name.empty()) im.labels.push_back(extra);
  im.pending.push_back({point, begin, im.labels.size() - begin, timestamp_ms, value});
}

void OtlpSeriesBuilder::add_histogram(size_t point, std::string_view base,
                                      std::span<const RemoteLabel> labels,
                                      std::span<const ClassicBucket> buckets, const double* sum,
                                      double count, int64_t timestamp_ms) {
  Impl& im = *impl_;
  auto suffixed = [&](std::string_view suffix) {
    im.scratch.assign(base).append(suffix);
    return keep(im.scratch);
  };
  const std::string_view bucket_name = suffixed("_bucket");
  for (const ClassicBucket& b : buckets) {
    std::array<char, 32> buffer;
    const std::string_view le = keep(format_le(b.upper_bound, buffer));
    add(point, bucket_name, labels, {"le", le}, timestamp_ms, b.cumulative);
  }
  if (sum != nullptr) add(point, suffixed("_sum"), labels, {}, timestamp_ms, *sum);
  add(point, suffixed("_count"), labels, {}, timestamp_ms, count);
}

void OtlpSeriesBuilder::reject(size_t point, std::string where, std::string reason,
                               std::string_view metric_reason) {
  impl_->rejections.push_back({point, std::move(where), std::move(reason), metric_reason});
}

void OtlpSeriesBuilder::finish(RemoteWriteRequest& out, std::vector<size_t>& point_of_index) {
  Impl& im = *impl_;
  point_of_index.clear();
  im.samples.resize(im.pending.size());
  out.series.reserve(out.series.size() + im.pending.size());
  for (size_t i = 0; i < im.pending.size(); ++i) {
    const Impl::Pending& p = im.pending[i];
    im.samples[i] = {p.timestamp_ms, p.value};
    out.series.push_back(
        {point_of_index.size(),
         std::span<const RemoteLabel>(im.labels).subspan(p.label_begin, p.label_count),
         std::span<const RemoteSample>(im.samples).subspan(i, 1)});
    point_of_index.push_back(p.point);
  }
  out.samples += im.pending.size();
  for (auto& r : im.rejections) {
    out.rejected.push_back(
        {point_of_index.size(), std::move(r.where), std::move(r.reason), r.metric_reason});
    point_of_index.push_back(r.point);
  }
  im.rejections.clear();
}

// ---------------------------------------------------------------------------------------------
// OtlpDecoder

struct OtlpDecoder::Impl {
  explicit Impl(size_t max_buckets) : max_buckets(max_buckets) {}

  size_t max_buckets;
  std::unique_ptr<google::protobuf::Arena> arena;
  OtlpSeriesBuilder builder;
  OtlpRequest* out = nullptr;

  // Names seen before: translating a name allocates, looking it up does not. Bounded.
  std::unordered_map<std::string, std::string> metric_names;
  std::unordered_map<std::string, std::string> label_names;
  std::string key;
  std::string text;

  // The labels of the resource being decoded (job, instance) and of the current point.
  std::vector<RemoteLabel> resource_labels;
  struct Attribute {
    std::string_view name;
    std::string_view value;
    std::string_view key;
  };
  std::vector<Attribute> attributes;
  std::vector<RemoteLabel> labels;
  std::vector<ClassicBucket> buckets;
  std::vector<IndexedCount> positive;
  std::vector<IndexedCount> negative;
  // What deltas point into, bound to their spans once the request is decoded (these grow).
  struct DeltaRefs {
    size_t labels_begin, labels_count;
    size_t bounds_begin, bounds_count;
    size_t counts_begin, counts_count;
    size_t positive_begin, positive_count;
    size_t negative_begin, negative_count;
  };
  std::vector<DeltaRefs> delta_refs;
  std::vector<RemoteLabel> delta_labels;
  std::vector<double> delta_values;

  std::string_view metric_name(std::string_view name, std::string_view unit, char kind) {
    key.assign(1, kind).append(unit).push_back('\0');
    key.append(name);
    auto it = metric_names.find(key);
    if (it == metric_names.end()) {
      it = metric_names.emplace(key, otlp_metric_name(name, unit, kind)).first;
    }
    return it->second;
  }

  std::string_view label_name(std::string_view attribute) {
    key.assign(attribute);
    auto it = label_names.find(key);
    if (it == label_names.end()) {
      it = label_names.emplace(key, otlp_label_name(attribute)).first;
    }
    return it->second;
  }

  std::string_view value_text(const pb::AnyValue& v) {
    if (v.value_case() == pb::AnyValue::kStringValue) return v.string_value();
    text.clear();
    append_value(text, v, false);
    return builder.keep(text);
  }

  void set_resource(const pb::Resource& resource) {
    resource_labels.clear();
    std::string_view name, space, instance;
    for (const auto& kv : resource.attributes()) {
      if (kv.key() == "service.name") name = value_text(kv.value());
      if (kv.key() == "service.namespace") space = value_text(kv.value());
      if (kv.key() == "service.instance.id") instance = value_text(kv.value());
    }
    if (!name.empty()) {
      if (!space.empty()) {
        text.assign(space).append("/").append(name);
        name = builder.keep(text);
      }
      resource_labels.push_back({"job", name});
    }
    if (!instance.empty()) resource_labels.push_back({"instance", instance});
  }

  // The point's labels, sorted by name, in `labels`; false (with the reason) when an attribute
  // gives no valid label name.
  bool point_labels(const google::protobuf::RepeatedPtrField<pb::KeyValue>& attrs,
                    std::string& reason) {
    attributes.clear();
    for (const auto& kv : attrs) {
      const std::string_view name = label_name(kv.key());
      if (name.empty()) {
        reason = "attribute ";
        append_quoted(reason, kv.key());
        reason += " has no character valid in a label name";
        return false;
      }
      const std::string_view value = value_text(kv.value());
      if (value.empty()) continue;  // an empty value is an absent label
      attributes.push_back({name, value, kv.key()});
    }
    std::sort(attributes.begin(), attributes.end(), [](const Attribute& a, const Attribute& b) {
      return a.name != b.name ? a.name < b.name : a.key < b.key;
    });
    labels.clear();
    for (size_t i = 0; i < attributes.size();) {
      size_t j = i + 1;
      while (j < attributes.size() && attributes[j].name == attributes[i].name) ++j;
      if (j == i + 1) {
        labels.push_back({attributes[i].name, attributes[i].value});
      } else {
        // Attributes whose names collide once sanitized: one label, values in key order.
        text.clear();
        for (size_t k = i; k < j; ++k) {
          if (k > i) text.push_back(';');
          text.append(attributes[k].value);
        }
        labels.push_back({attributes[i].name, builder.keep(text)});
      }
      i = j;
    }
    // The resource's job and instance win over attributes of the same name.
    for (const RemoteLabel& r : resource_labels) {
      auto it = std::find_if(labels.begin(), labels.end(),
                             [&](const RemoteLabel& l) { return l.name == r.name; });
      if (it != labels.end()) {
        it->value = r.value;
      } else {
        labels.push_back(r);
      }
    }
    std::sort(labels.begin(), labels.end(),
              [](const RemoteLabel& a, const RemoteLabel& b) { return a.name < b.name; });
    return true;
  }

  // Appends OTLP buckets (index offset + i) at `scale` as Prometheus-indexed counts at
  // min(scale, 8), merging the buckets a coarser scale joins. False when the offset is absurd.
  static bool exponential_buckets(const pb::ExponentialHistogramDataPoint::Buckets& b,
                                  int32_t scale, std::vector<IndexedCount>& out) {
    out.clear();
    if (std::abs(static_cast<int64_t>(b.offset())) > kMaxOffset) return false;
    const int shift = scale > kMaxSchema ? scale - kMaxSchema : 0;
    if (b.offset() + static_cast<int64_t>(b.bucket_counts_size()) > kMaxOffset) return false;
    for (int i = 0; i < b.bucket_counts_size(); ++i) {
      const int32_t k = (b.offset() + i) >> shift;
      const auto count = static_cast<double>(b.bucket_counts(i));
      if (!out.empty() && out.back().index == k + 1) {
        out.back().count += count;
      } else {
        out.push_back({k + 1, count});
      }
    }
    return true;
  }

  size_t new_point(uint32_t r, uint32_t s, uint32_t m, uint32_t i, std::string_view metric) {
    out->points.push_back({r, s, m, i, metric});
    return out->points.size() - 1;
  }

  void reject(size_t point, std::string reason) {
    builder.reject(point, describe(out->points[point]), std::move(reason));
  }

  template <typename Point>
  bool common_checks(size_t point, const Point& p, std::string& reason) {
    if (p.time_unix_nano() == 0) {
      reject(point, "time_unix_nano is 0 (not set)");
      return false;
    }
    if (!point_labels(p.attributes(), reason)) {
      reject(point, reason);
      return false;
    }
    return true;
  }

  static int64_t to_ms(uint64_t ns) { return static_cast<int64_t>(ns / 1'000'000); }

  OtlpDelta& new_delta(OtlpDelta::Kind kind, size_t point, std::string_view name, uint64_t start_ns,
                       uint64_t end_ns) {
    OtlpDelta& d = out->deltas.emplace_back();
    d.kind = kind;
    d.point = point;
    d.name = name;
    d.start_ns = static_cast<int64_t>(std::min<uint64_t>(start_ns, INT64_MAX));
    d.end_ns = static_cast<int64_t>(std::min<uint64_t>(end_ns, INT64_MAX));
    DeltaRefs& refs = delta_refs.emplace_back();
    refs = {delta_labels.size(), labels.size(), 0, 0, 0, 0, 0, 0, 0, 0};
    delta_labels.insert(delta_labels.end(), labels.begin(), labels.end());
    return d;
  }

  // Copies `values` into delta_values; returns where they start.
  template <typename Range, typename Fn>
  size_t keep_values(const Range& values, Fn value) {
    const size_t begin = delta_values.size();
    for (const auto& v : values) delta_values.push_back(value(v));
    return begin;
  }

  void number_points(const google::protobuf::RepeatedPtrField<pb::NumberDataPoint>& points,
                     uint32_t r, uint32_t s, uint32_t m, const pb::Metric& metric,
                     std::string_view name, bool delta) {
    std::string reason;
    for (int i = 0; i < points.size(); ++i) {
      const pb::NumberDataPoint& p = points[i];
      const size_t point = new_point(r, s, m, static_cast<uint32_t>(i), metric.name());
      out->write.exemplars += static_cast<size_t>(p.exemplars_size());
      if (!common_checks(point, p, reason)) continue;
      double value = 0;
      if (p.value_case() == pb::NumberDataPoint::kAsDouble) {
        value = p.as_double();
      } else if (p.value_case() == pb::NumberDataPoint::kAsInt) {
        value = static_cast<double>(p.as_int());
      } else if ((p.flags() & kNoRecordedValue) == 0) {
        reject(point, "no value (neither as_double nor as_int is set)");
        continue;
      }
      const int64_t ts = to_ms(p.time_unix_nano());
      if ((p.flags() & kNoRecordedValue) != 0) {
        builder.add(point, name, labels, {}, ts, kStaleNaN);
      } else if (delta) {
        new_delta(OtlpDelta::Kind::kSum, point, name, p.start_time_unix_nano(), p.time_unix_nano())
            .value = value;
      } else {
        builder.add(point, name, labels, {}, ts, value);
      }
    }
  }

  void histogram_points(const pb::Histogram& h, uint32_t r, uint32_t s, uint32_t m,
                        const pb::Metric& metric, std::string_view name, bool delta) {
    std::string reason;
    for (int i = 0; i < h.data_points_size(); ++i) {
      const pb::HistogramDataPoint& p = h.data_points(i);
      const size_t point = new_point(r, s, m, static_cast<uint32_t>(i), metric.name());
      out->write.exemplars += static_cast<size_t>(p.exemplars_size());
      if (!common_checks(point, p, reason)) continue;
      const int64_t ts = to_ms(p.time_unix_nano());
      if ((p.flags() & kNoRecordedValue) != 0) {
        buckets.clear();
        for (double b : p.explicit_bounds()) buckets.push_back({b, kStaleNaN});
        buckets.push_back({std::numeric_limits<double>::infinity(), kStaleNaN});
        const double stale = kStaleNaN;
        builder.add_histogram(point, name, labels, buckets, &stale, stale, ts);
        continue;
      }
      const int bounds = p.explicit_bounds_size();
      if (p.bucket_counts_size() != 0 && p.bucket_counts_size() != bounds + 1) {
        reject(point, "bucket_counts has " + std::to_string(p.bucket_counts_size()) +
                          " entries for " + std::to_string(bounds) + " explicit_bounds (expected " +
                          std::to_string(bounds + 1) + ")");
        continue;
      }
      bool ascending = true;
      for (int b = 0; b < bounds; ++b) {
        const double bound = p.explicit_bounds(b);
        if (std::isnan(bound) || (b > 0 && !(bound > p.explicit_bounds(b - 1)))) ascending = false;
      }
      if (!ascending) {
        reject(point, "explicit_bounds are not strictly ascending numbers");
        continue;
      }
      const bool with_buckets = p.bucket_counts_size() != 0;
      if (delta) {
        OtlpDelta& d = new_delta(OtlpDelta::Kind::kHistogram, point, name, p.start_time_unix_nano(),
                                 p.time_unix_nano());
        d.count = static_cast<double>(p.count());
        d.has_sum = p.has_sum();
        d.sum = p.sum();
        DeltaRefs& refs = delta_refs.back();
        if (with_buckets) {
          refs.bounds_count = static_cast<size_t>(bounds);
          refs.bounds_begin = keep_values(p.explicit_bounds(), [](double v) { return v; });
          refs.counts_count = static_cast<size_t>(bounds + 1);
          refs.counts_begin =
              keep_values(p.bucket_counts(), [](uint64_t v) { return static_cast<double>(v); });
        }
        continue;
      }
      buckets.clear();
      if (with_buckets) {
        double cumulative = 0;
        for (int b = 0; b < bounds; ++b) {
          cumulative += static_cast<double>(p.bucket_counts(b));
          buckets.push_back({p.explicit_bounds(b), cumulative});
        }
      }
      const auto count = static_cast<double>(p.count());
      buckets.push_back({std::numeric_limits<double>::infinity(), count});
      const double sum = p.sum();
      builder.add_histogram(point, name, labels, buckets, p.has_sum() ? &sum : nullptr, count, ts);
    }
  }

  void exponential_points(const pb::ExponentialHistogram& h, uint32_t r, uint32_t s, uint32_t m,
                          const pb::Metric& metric, std::string_view name, bool delta) {
    std::string reason;
    for (int i = 0; i < h.data_points_size(); ++i) {
      const pb::ExponentialHistogramDataPoint& p = h.data_points(i);
      const size_t point = new_point(r, s, m, static_cast<uint32_t>(i), metric.name());
      out->write.exemplars += static_cast<size_t>(p.exemplars_size());
      if (!common_checks(point, p, reason)) continue;
      const int64_t ts = to_ms(p.time_unix_nano());
      if ((p.flags() & kNoRecordedValue) != 0) {
        const ClassicBucket inf{std::numeric_limits<double>::infinity(), kStaleNaN};
        const double stale = kStaleNaN;
        builder.add_histogram(point, name, labels, std::span(&inf, 1), &stale, stale, ts);
        continue;
      }
      if (p.scale() < kMinScale || p.scale() > kMaxScale) {
        reject(point, "scale " + std::to_string(p.scale()) + " is outside OTLP's range " +
                          std::to_string(kMinScale) + ".." + std::to_string(kMaxScale));
        continue;
      }
      if (!(p.zero_threshold() >= 0) || std::isinf(p.zero_threshold())) {
        reject(point, "zero_threshold must be a finite number >= 0");
        continue;
      }
      if (!exponential_buckets(p.positive(), p.scale(), positive) ||
          !exponential_buckets(p.negative(), p.scale(), negative)) {
        reject(point, "a bucket offset is out of range");
        continue;
      }
      const int32_t schema = std::min(p.scale(), kMaxSchema);
      if (delta) {
        OtlpDelta& d = new_delta(OtlpDelta::Kind::kExponentialHistogram, point, name,
                                 p.start_time_unix_nano(), p.time_unix_nano());
        d.count = static_cast<double>(p.count());
        d.has_sum = p.has_sum();
        d.sum = p.sum();
        d.scale = schema;
        d.zero_threshold = p.zero_threshold();
        d.zero_count = static_cast<double>(p.zero_count());
        // Dense again (downscaling may have merged), in OTLP's numbering.
        auto dense = [&](const std::vector<IndexedCount>& counts, int32_t& offset, size_t& begin,
                         size_t& size) {
          begin = delta_values.size();
          size = 0;
          offset = counts.empty() ? 0 : counts.front().index - 1;
          for (const IndexedCount& c : counts) {
            while (offset + static_cast<int32_t>(size) < c.index - 1) {
              delta_values.push_back(0);
              ++size;
            }
            delta_values.push_back(c.count);
            ++size;
          }
        };
        DeltaRefs& refs = delta_refs.back();
        dense(positive, d.positive_offset, refs.positive_begin, refs.positive_count);
        dense(negative, d.negative_offset, refs.negative_begin, refs.negative_count);
        continue;
      }
      NativeHistogram native;
      native.schema = schema;
      native.zero_threshold = p.zero_threshold();
      native.zero_count = static_cast<double>(p.zero_count());
      native.count = static_cast<double>(p.count());
      native.sum = p.sum();
      native.positive = positive;
      native.negative = negative;
      to_classic_buckets(native, max_buckets, buckets);
      const double sum = p.sum();
      builder.add_histogram(point, name, labels, buckets, p.has_sum() ? &sum : nullptr,
                            native.count, ts);
    }
  }

  void summary_points(const pb::Summary& summary, uint32_t r, uint32_t s, uint32_t m,
                      const pb::Metric& metric, std::string_view name) {
    std::string reason;
    std::string_view sum_name, count_name;
    if (summary.data_points_size() > 0) {
      text.assign(name).append("_sum");
      sum_name = builder.keep(text);
      text.assign(name).append("_count");
      count_name = builder.keep(text);
    }
    for (int i = 0; i < summary.data_points_size(); ++i) {
      const pb::SummaryDataPoint& p = summary.data_points(i);
      const size_t point = new_point(r, s, m, static_cast<uint32_t>(i), metric.name());
      if (!common_checks(point, p, reason)) continue;
      const int64_t ts = to_ms(p.time_unix_nano());
      const bool stale = (p.flags() & kNoRecordedValue) != 0;
      for (const auto& q : p.quantile_values()) {
        std::array<char, 32> buffer;
        const std::string_view quantile = builder.keep(format_le(q.quantile(), buffer));
        builder.add(point, name, labels, {"quantile", quantile}, ts, stale ? kStaleNaN : q.value());
      }
      builder.add(point, sum_name, labels, {}, ts, stale ? kStaleNaN : p.sum());
      builder.add(point, count_name, labels, {}, ts,
                  stale ? kStaleNaN : static_cast<double>(p.count()));
    }
  }

  // Rejects every point of a metric that cannot be stored at all.
  template <typename Points>
  void reject_all(const Points& points, uint32_t r, uint32_t s, uint32_t m,
                  const pb::Metric& metric, const std::string& reason) {
    for (int i = 0; i < points.size(); ++i) {
      reject(new_point(r, s, m, static_cast<uint32_t>(i), metric.name()), reason);
    }
  }

  void metric(const pb::Metric& metric, uint32_t r, uint32_t s, uint32_t m) {
    char kind = 'o';
    std::string_view type = "gauge";
    int temporality = pb::AGGREGATION_TEMPORALITY_CUMULATIVE;
    switch (metric.data_case()) {
      case pb::Metric::kGauge: kind = 'g'; break;
      case pb::Metric::kSum:
        kind = metric.sum().is_monotonic() ? 'c' : 'o';
        type = metric.sum().is_monotonic() ? "counter" : "gauge";
        temporality = metric.sum().aggregation_temporality();
        break;
      case pb::Metric::kHistogram:
        type = "histogram";
        temporality = metric.histogram().aggregation_temporality();
        break;
      case pb::Metric::kExponentialHistogram:
        type = "histogram";
        temporality = metric.exponential_histogram().aggregation_temporality();
        break;
      case pb::Metric::kSummary: type = "summary"; break;
      case pb::Metric::DATA_NOT_SET: return;  // no data points: nothing to store or reject
    }
    const std::string_view name = builder.keep(metric_name(metric.name(), metric.unit(), kind));
    std::string problem;
    if (name.empty()) {
      problem = "metric name ";
      append_quoted(problem, metric.name());
      problem += " has no character valid in a Prometheus metric name";
    } else if (temporality != pb::AGGREGATION_TEMPORALITY_CUMULATIVE &&
               temporality != pb::AGGREGATION_TEMPORALITY_DELTA) {
      problem = "aggregation_temporality " + std::to_string(temporality) +
                " is neither DELTA (1) nor CUMULATIVE (2)";
    }
    if (!problem.empty()) {
      switch (metric.data_case()) {
        case pb::Metric::kGauge:
          reject_all(metric.gauge().data_points(), r, s, m, metric, problem);
          break;
        case pb::Metric::kSum:
          reject_all(metric.sum().data_points(), r, s, m, metric, problem);
          break;
        case pb::Metric::kHistogram:
          reject_all(metric.histogram().data_points(), r, s, m, metric, problem);
          break;
        case pb::Metric::kExponentialHistogram:
          reject_all(metric.exponential_histogram().data_points(), r, s, m, metric, problem);
          break;
        case pb::Metric::kSummary:
          reject_all(metric.summary().data_points(), r, s, m, metric, problem);
          break;
        case pb::Metric::DATA_NOT_SET: break;
      }
      return;
    }
    out->write.metadata.push_back(
        {name, type, metric.description(), builder.keep(otlp_unit(metric.unit()))});
    const bool delta = temporality == pb::AGGREGATION_TEMPORALITY_DELTA;
    switch (metric.data_case()) {
      case pb::Metric::kGauge:
        number_points(metric.gauge().data_points(), r, s, m, metric, name, false);
        break;
      case pb::Metric::kSum:
        number_points(metric.sum().data_points(), r, s, m, metric, name, delta);
        break;
      case pb::Metric::kHistogram:
        histogram_points(metric.histogram(), r, s, m, metric, name, delta);
        break;
      case pb::Metric::kExponentialHistogram:
        exponential_points(metric.exponential_histogram(), r, s, m, metric, name, delta);
        break;
      case pb::Metric::kSummary: summary_points(metric.summary(), r, s, m, metric, name); break;
      case pb::Metric::DATA_NOT_SET: break;
    }
  }
};

OtlpDecoder::OtlpDecoder(size_t max_histogram_buckets)
    : impl_(std::make_unique<Impl>(max_histogram_buckets)) {}
OtlpDecoder::~OtlpDecoder() = default;

OtlpSeriesBuilder& OtlpDecoder::builder() { return impl_->builder; }

Status OtlpDecoder::decode(std::string_view body, OtlpEncoding encoding, OtlpRequest& out) {
  Impl& im = *impl_;
  out.write.series.clear();
  out.write.rejected.clear();
  out.write.metadata.clear();
  out.write.samples = out.write.histograms = out.write.exemplars = 0;
  out.point_of_index.clear();
  out.points.clear();
  out.deltas.clear();
  im.builder.clear();
  im.delta_refs.clear();
  im.delta_labels.clear();
  im.delta_values.clear();
  im.out = &out;
  // The name caches are bounded; emptied only here, so views into them last a whole request.
  if (im.metric_names.size() > 100'000) im.metric_names.clear();
  if (im.label_names.size() > 100'000) im.label_names.clear();

  im.arena = std::make_unique<google::protobuf::Arena>();
  auto* request =
      google::protobuf::Arena::CreateMessage<pb::ExportMetricsServiceRequest>(im.arena.get());
  if (encoding == OtlpEncoding::kProtobuf) {
    if (body.size() > static_cast<size_t>(INT32_MAX) ||
        !request->ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return Status::invalid_argument(
          "the body is not an OTLP ExportMetricsServiceRequest (protobuf)");
    }
  } else {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;  // OTLP/JSON receivers must skip unknown fields
    const auto st = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(body.data(), body.size()), request, options);
    if (!st.ok()) {
      return Status::invalid_argument("the body is not an OTLP/JSON ExportMetricsServiceRequest: " +
                                      std::string(st.message()));
    }
  }

  for (int r = 0; r < request->resource_metrics_size(); ++r) {
    const pb::ResourceMetrics& rm = request->resource_metrics(r);
    im.set_resource(rm.resource());
    for (int s = 0; s < rm.scope_metrics_size(); ++s) {
      const pb::ScopeMetrics& sm = rm.scope_metrics(s);
      for (int m = 0; m < sm.metrics_size(); ++m) {
        im.metric(sm.metrics(m), static_cast<uint32_t>(r), static_cast<uint32_t>(s),
                  static_cast<uint32_t>(m));
      }
    }
  }

  // Nothing grows any more: bind the deltas' views.
  for (size_t i = 0; i < out.deltas.size(); ++i) {
    OtlpDelta& d = out.deltas[i];
    const Impl::DeltaRefs& refs = im.delta_refs[i];
    const std::span<const double> values(im.delta_values);
    d.labels =
        std::span<const RemoteLabel>(im.delta_labels).subspan(refs.labels_begin, refs.labels_count);
    d.bounds = values.subspan(refs.bounds_begin, refs.bounds_count);
    d.bucket_counts = values.subspan(refs.counts_begin, refs.counts_count);
    d.positive_counts = values.subspan(refs.positive_begin, refs.positive_count);
    d.negative_counts = values.subspan(refs.negative_begin, refs.negative_count);
  }
  im.out = nullptr;
  return Status::ok();
}

std::string export_response(OtlpEncoding encoding, int64_t rejected, std::string_view message) {
  pb::ExportMetricsServiceResponse response;
  if (rejected > 0) {
    response.mutable_partial_success()->set_rejected_data_points(rejected);
    response.mutable_partial_success()->set_error_message(std::string(message));
  }
  if (encoding == OtlpEncoding::kProtobuf) return response.SerializeAsString();
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(response, &json);
  return json;
}

std::string rpc_status(OtlpEncoding encoding, int32_t code, std::string_view message) {
  pb::RpcStatus status;
  status.set_code(code);
  status.set_message(std::string(message));
  if (encoding == OtlpEncoding::kProtobuf) return status.SerializeAsString();
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(status, &json);
  return json;
}

}  // namespace kpid::ingest
