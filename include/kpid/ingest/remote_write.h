#pragma once
// Prometheus remote write bodies (https://prometheus.io/docs/specs/prw/remote_write_spec/ and
// remote_write_spec_2_0/): a snappy block-compressed protobuf WriteRequest (1.0) or Request
// (2.0, strings in a symbols table) -> series, each with its labels and float samples,
// validated as Prometheus validates them. Native histogram samples become classic bucket
// series (native_histogram.h): `<name>_bucket{le}`, `<name>_sum`, `<name>_count`. The decoder
// knows nothing of the store: the write pipeline resolves and stores what it returns.
//
// A body that cannot be decoded at all (corrupt snappy, larger than the limit once
// decompressed, not a WriteRequest) is an error for the whole request: a sender does not retry
// a 400. A series that breaks a rule (no metric name, a bad or repeated label name) is
// rejected alone, with a reason naming it; the request's other series are kept.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/ingest/native_histogram.h"

namespace kpid::ingest {

struct RemoteLabel {
  std::string_view name;
  std::string_view value;
};

struct RemoteSample {
  int64_t timestamp_ms = 0;
  double value = 0;  // Prometheus' stale marker (a NaN with its own bits) is passed through
};

// One series of a request: views into the decoder's buffers, valid until its next decode().
// A native histogram's bucket, sum and count series are series of their own, with the index of
// the request series they came from.
struct RemoteSeries {
  // What the series holds: samples the sender sent as such, or one part of native histograms.
  enum class Part : uint8_t { kSamples, kHistogramBucket, kHistogramSum, kHistogramCount };
  size_t index = 0;                     // 0-based position among the request's series
  std::span<const RemoteLabel> labels;  // non-empty values only, as the sender ordered them
  std::span<const RemoteSample> samples;
  // 2.0: when the counter started counting (ms), 0 when not given. The pipeline stores a 0
  // there, once, so rate() and increase() count from the counter's true start.
  int64_t created_timestamp = 0;
  Part part = Part::kSamples;
};

// A series left out of a request, and why.
struct RejectedSeries {
  size_t index = 0;    // 0-based position among the request's series
  std::string series;  // its labels as Prometheus prints them, {__name__="x",...}, or "{}"
  std::string reason;
  // The `reason` label of kpid_ingest_lines_rejected_total it is counted under.
  std::string_view metric_reason = "invalid_series_name";
};

// What a request's metadata says of one metric family.
struct RemoteMetadata {
  std::string_view family;
  std::string_view type;  // "counter", "gauge", "histogram", "gaugehistogram", "summary",
                          // "info", "stateset" or "unknown"
  std::string_view help;
  std::string_view unit;
};

struct RemoteWriteRequest {
  std::vector<RemoteSeries> series;  // the valid ones, in request order
  std::vector<RejectedSeries> rejected;
  std::vector<RemoteMetadata> metadata;
  size_t samples = 0;     // float samples sent in valid series (not those made from histograms)
  size_t histograms = 0;  // native histogram samples converted into `series`
  size_t histograms_rejected = 0;  // native histogram samples of rejected series
  size_t exemplars = 0;            // exemplars in the request (counted, never stored)
};

enum class RemoteWriteVersion {
  kV1,  // prometheus.WriteRequest
  kV2,  // io.prometheus.write.v2.Request
};

struct RemoteWriteLimits {
  size_t max_bytes = 25u << 20;  // decompressed body
  size_t max_histogram_buckets = kDefaultHistogramBuckets;
};

// Decodes remote write bodies, reusing its buffers from one request to the next. Not
// thread-safe: one per worker.
class RemoteWriteDecoder {
 public:
  RemoteWriteDecoder();
  ~RemoteWriteDecoder();
  RemoteWriteDecoder(const RemoteWriteDecoder&) = delete;
  RemoteWriteDecoder& operator=(const RemoteWriteDecoder&) = delete;

  // Decodes `body` (snappy block format) into `out`, whose views stay valid until the next
  // call. Errors (invalid_argument, the message says what was wrong): not snappy, more than
  // `limits.max_bytes` once decompressed, not a message of `version`, a 2.0 symbol reference
  // out of the table in metadata.
  Status decode(std::string_view body, RemoteWriteVersion version, const RemoteWriteLimits& limits,
                RemoteWriteRequest& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpid::ingest
