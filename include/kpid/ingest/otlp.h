#pragma once
// OTLP metrics (OpenTelemetry's ExportMetricsServiceRequest, as POST /v1/metrics carries it in
// protobuf or OTLP/JSON) -> the same series a remote write request decodes to, named as
// Prometheus' OTLP receiver names them with its default settings:
//   - metric names: every run of characters outside [a-zA-Z0-9:] becomes one '_'; the unit is
//     appended ("s" -> _seconds, "By" -> _bytes, "By/s" -> _bytes_per_second, "{request}"
//     and "1" add nothing) unless the name already holds that word; monotonic sums end in
//     _total, gauges of unit "1" in _ratio; a leading digit gets a '_' in front;
//   - labels: attribute names sanitized the same way (a leading digit gets "key_"; `__x__`
//     stays reserved), attributes whose names collide are joined with ';' in key order;
//     resource `service.name` (with `service.namespace`: "namespace/name") becomes `job`,
//     `service.instance.id` `instance`; other resource and scope attributes are not labels;
//   - gauges and non-monotonic sums are gauges, monotonic sums counters; histograms give
//     `_bucket{le}` (cumulative, +Inf = count), `_sum`, `_count`; exponential histograms the
//     same through classic buckets (native_histogram.h); summaries `{quantile}`, `_sum`,
//     `_count`; a point flagged "no recorded value" is Prometheus' stale marker;
//   - time_unix_nano in milliseconds (floor).
// Delta points (sums and histograms of DELTA temporality) are not series yet: they are handed
// out as OtlpDelta for DeltaAccumulator (delta_accumulator.h) to add to each stream's total.
//
// A body that cannot be decoded (not protobuf, not OTLP/JSON, over the size limit) is an error
// for the whole request. A data point that breaks a rule is rejected alone with a message
// naming it by its path (resource_metrics[0].scope_metrics[0].metrics[2] "name"
// data_points[1]); the others are kept.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/ingest/native_histogram.h"
#include "kpid/ingest/remote_write.h"

namespace kpid::ingest {

enum class OtlpEncoding { kProtobuf, kJson };

// Owns the text and series a request decodes to; views handed out stay valid until clear().
// Series are added with one sample each and bound to their spans by finish(), so adding never
// invalidates a view given out earlier. Not thread-safe.
class OtlpSeriesBuilder {
 public:
  OtlpSeriesBuilder();
  ~OtlpSeriesBuilder();
  OtlpSeriesBuilder(const OtlpSeriesBuilder&) = delete;
  OtlpSeriesBuilder& operator=(const OtlpSeriesBuilder&) = delete;

  void clear();
  // A copy of `text` that lives until clear().
  std::string_view keep(std::string_view text);
  // Adds the series `name`{labels..., extra} (extra skipped when its name is empty) with one
  // sample, produced by data point `point` (a 0-based ordinal of the request's points).
  void add(size_t point, std::string_view name, std::span<const RemoteLabel> labels,
           RemoteLabel extra, int64_t timestamp_ms, double value);
  // Adds `base`_bucket{le} for each bucket, `base`_sum (when `sum` is given), `base`_count.
  void add_histogram(size_t point, std::string_view base, std::span<const RemoteLabel> labels,
                     std::span<const ClassicBucket> buckets, const double* sum, double count,
                     int64_t timestamp_ms);
  // A rejection of data point `point` (`where` names it), for `out.rejected` at finish();
  // counted under `metric_reason` (a static string).
  void reject(size_t point, std::string where, std::string reason,
              std::string_view metric_reason = "invalid_data_point");
  // Moves every series and rejection added since clear() into `out.series` / `out.rejected`
  // (each with its own index) and records each index's point in `point_of_index`.
  void finish(RemoteWriteRequest& out, std::vector<size_t>& point_of_index);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A delta point, for DeltaAccumulator. Views into the decoder's buffers (valid until its next
// decode()).
struct OtlpDelta {
  enum class Kind : uint8_t { kSum, kHistogram, kExponentialHistogram };
  Kind kind = Kind::kSum;
  size_t point = 0;                     // the request's data point ordinal
  std::string_view name;                // the series name (sums) or the histogram's base name
  std::span<const RemoteLabel> labels;  // sorted by name, __name__ not among them
  int64_t start_ns = 0;                 // start_time_unix_nano (0: not given)
  int64_t end_ns = 0;                   // time_unix_nano, > 0
  double value = 0;                     // kSum: the change over (start, end]
  // Histograms: the observations over (start, end].
  double count = 0;
  double sum = 0;
  bool has_sum = false;
  std::span<const double> bounds;         // kHistogram: explicit bounds, ascending
  std::span<const double> bucket_counts;  // kHistogram: bounds.size() + 1 counts
  int32_t scale = 0;                      // kExponentialHistogram (at most 8)
  double zero_threshold = 0;
  double zero_count = 0;
  int32_t positive_offset = 0;  // OTLP bucket index of positive_counts[0]
  std::span<const double> positive_counts;
  int32_t negative_offset = 0;
  std::span<const double> negative_counts;
};

// Where a data point is in its request, for messages.
struct OtlpPointRef {
  uint32_t resource = 0;         // resource_metrics[i]
  uint32_t scope = 0;            // scope_metrics[i]
  uint32_t metric = 0;           // metrics[i]
  uint32_t index = 0;            // data_points[i]
  std::string_view metric_name;  // as sent
};

// "resource_metrics[0].scope_metrics[1].metrics[2] \"http.duration\" data_points[3]"
std::string describe(const OtlpPointRef& point);

struct OtlpRequest {
  // Gauges, cumulative sums and histograms, summaries, stale markers; metadata per metric.
  // Each series' `index` maps to its data point through point_of_index.
  RemoteWriteRequest write;
  std::vector<size_t> point_of_index;
  std::vector<OtlpPointRef> points;  // every data point of the request, by ordinal
  std::vector<OtlpDelta> deltas;     // delta points, in request order
};

// Decodes OTLP metrics bodies, reusing its buffers from one request to the next. Not
// thread-safe: one per worker.
class OtlpDecoder {
 public:
  explicit OtlpDecoder(size_t max_histogram_buckets = kDefaultHistogramBuckets);
  ~OtlpDecoder();
  OtlpDecoder(const OtlpDecoder&) = delete;
  OtlpDecoder& operator=(const OtlpDecoder&) = delete;

  // Decodes `body` (uncompressed) into `out`, whose views stay valid until the next call. The
  // series are not bound yet: the caller adds the accumulated delta series to builder() and
  // then calls builder().finish(out.write, out.point_of_index). Errors (invalid_argument, the
  // message says what and where): not an ExportMetricsServiceRequest in `encoding`.
  Status decode(std::string_view body, OtlpEncoding encoding, OtlpRequest& out);

  OtlpSeriesBuilder& builder();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The body of an ExportMetricsServiceResponse in `encoding`: empty (everything accepted) when
// `rejected` is 0, else with partial_success.
std::string export_response(OtlpEncoding encoding, int64_t rejected, std::string_view message);

// A google.rpc.Status body (protobuf, or JSON {"code":..,"message":..}) for an error answer.
std::string rpc_status(OtlpEncoding encoding, int32_t code, std::string_view message);

// The Prometheus name of an OTLP metric (see the top of this file); "" when nothing valid
// remains. `kind`: 'g' gauge, 'c' monotonic sum, 'o' anything else.
std::string otlp_metric_name(std::string_view name, std::string_view unit, char kind);
// The Prometheus label name of an attribute; "" when nothing valid remains.
std::string otlp_label_name(std::string_view attribute);
// The unit as Prometheus' metadata states it ("By/s" -> "bytes_per_second").
std::string otlp_unit(std::string_view unit);

}  // namespace kpid::ingest
