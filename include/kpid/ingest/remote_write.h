#pragma once
// Prometheus remote write 1.0 bodies (https://prometheus.io/docs/specs/prw/remote_write_spec/):
// a snappy block-compressed protobuf WriteRequest -> series, each with its labels and float
// samples, validated as Prometheus validates them. The decoder knows nothing of the store: the
// write pipeline resolves and stores what it returns.
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
struct RemoteSeries {
  size_t index = 0;                     // 0-based position among the request's series
  std::span<const RemoteLabel> labels;  // non-empty values only, as the sender ordered them
  std::span<const RemoteSample> samples;
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
  size_t samples = 0;     // float samples in `series`
  size_t histograms = 0;  // native histogram samples in the request (not in `series`)
  size_t exemplars = 0;   // exemplars in the request (counted, never stored)
};

// Decodes remote write 1.0 bodies, reusing its buffers from one request to the next. Not
// thread-safe: one per worker.
class RemoteWriteDecoder {
 public:
  RemoteWriteDecoder();
  ~RemoteWriteDecoder();
  RemoteWriteDecoder(const RemoteWriteDecoder&) = delete;
  RemoteWriteDecoder& operator=(const RemoteWriteDecoder&) = delete;

  // Decodes `body` (snappy block format) into `out`, whose views stay valid until the next
  // call. Errors (invalid_argument, the message says what was wrong): not snappy, more than
  // `max_bytes` once decompressed, not a WriteRequest.
  Status decode(std::string_view body, size_t max_bytes, RemoteWriteRequest& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpid::ingest
