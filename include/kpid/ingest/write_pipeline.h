#pragma once
// The ingest pipeline: a body of line-protocol text -> parsed points -> series samples -> one
// atomic append to the store. Shared by the HTTP write endpoints and the TCP listener.

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include "kpid/core/labels.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/ingest/line_protocol.h"
#include "kpid/ingest/remote_write.h"
#include "kpid/ingest/series_cache.h"
#include "kpid/ingest/series_naming.h"
#include "kpid/store/sample_store.h"

namespace kpid::ingest {

// Timestamp unit of a write, from the `precision` parameter.
enum class Precision { kNanoseconds, kMicroseconds, kMilliseconds, kSeconds, kMinutes, kHours };

// Accepts InfluxDB 1.x (n, ns, u, us, µ, ms, s, m, h) and 2.x (ns, us, ms, s) spellings; "" is
// nanoseconds.
Result<Precision> parse_precision(std::string_view text);

// Converts a raw timestamp in `precision` to milliseconds (floor for sub-ms units). Fails when
// the result does not fit int64.
Result<TimestampMs> to_milliseconds(int64_t raw, Precision precision);

// Where a write came from; a label of the ingest metrics.
enum class Protocol { kHttp, kTcp, kRemoteWrite, kOtlp };
inline constexpr size_t kProtocolCount = 4;

// Ingest counters, registered once per process; thread-safe.
class IngestMetrics {
 public:
  explicit IngestMetrics(prometheus::Registry& registry);
  void samples(Protocol p, double n) { samples_[index(p)]->Increment(n); }
  void string_fields(Protocol p, double n) { string_fields_[index(p)]->Increment(n); }
  void rejected(Protocol p, std::string_view reason, double n = 1);
  // A write turned away or paused because the store pushed back.
  void pushback(Protocol p, store::Pushback::Reason reason);

 private:
  static size_t index(Protocol p) { return static_cast<size_t>(p); }
  prometheus::Counter* samples_[kProtocolCount];
  prometheus::Counter* string_fields_[kProtocolCount];
  prometheus::Family<prometheus::Counter>* rejected_;
  prometheus::Family<prometheus::Counter>* pushback_;
};

struct LineError {
  size_t line = 0;  // 1-based line number within the body
  std::string message;
};

struct OtlpRequest;
class OtlpDecoder;
class DeltaAccumulator;
enum class OtlpEncoding;

struct WriteResult {
  size_t lines_accepted = 0;   // points (non-blank, non-comment lines) stored
  size_t lines_rejected = 0;   // lines that were not stored because they are malformed
  size_t samples_written = 0;  // samples stored (0 when storage failed)
  size_t string_fields = 0;    // string fields skipped
  // Remote write and OTLP: float samples stored as the sender sent them (not counting the
  // series made from histograms), and histogram samples stored (as classic bucket series).
  size_t float_samples_written = 0;
  size_t histograms_written = 0;
  std::vector<LineError> errors;  // the first `max_errors` rejected lines, in order
  Status storage;                 // not ok when the store failed: none of the body was stored
};

// What an OTLP request did: its data points, stored or not.
struct OtlpWriteResult {
  WriteResult write;                // samples stored; `storage` not ok: nothing was stored
  size_t points = 0;                // data points in the request
  size_t rejected_points = 0;       // points not (wholly) stored: rules, the delta rule, the store
  std::vector<std::string> errors;  // the first `max_errors` reasons, each naming its point
  // Not ok when the samples were stored but the delta totals could not be recorded (a retry
  // stores the same values again).
  Status deltas;
};

// Parses and stores bodies of line protocol. Reuses its buffers, so steady state does not
// allocate per line. Not thread-safe: one per connection or worker; the store and metrics it
// refers to are shared and must outlive it.
class WritePipeline {
 public:
  // `observer` (may be null) is told of each stored batch.
  WritePipeline(store::SampleStore& store, IngestMetrics& metrics, const Clock& clock,
                store::SampleObserver* observer = nullptr);
  ~WritePipeline();

  // Parses every line of `body` (split on '\n'; a trailing '\r' is ignored) and stores every
  // valid sample in one atomic append. Lines without a timestamp get the current time.
  // `first_line` numbers the first line of `body` in error messages.
  WriteResult write(std::string_view body, Precision precision, Protocol protocol,
                    size_t max_errors = 100, size_t first_line = 1);

  // Gives every line written from now on the label `name`="`value`" (ingest.db_label and the
  // write's `db` or `bucket`); an empty name stops it. A tag of the same name rejects its line.
  void set_db_label(std::string_view name, std::string_view value);

  // Stores a decoded remote write request's series in one atomic append. A series is stored
  // whole or not at all: one the store refuses (series limit, a sample out of the store's time
  // range) is counted in lines_rejected with an error whose `line` is its 1-based position in
  // the request. Metrics under `protocol` ("remote_write" or "otlp": both decode to series).
  WriteResult write_remote(const RemoteWriteRequest& request, Protocol protocol,
                           size_t max_errors = 100);

  // Decodes a remote write body (RemoteWriteDecoder, reused) and stores it as write_remote()
  // does. An undecodable body is the decoder's error, with nothing stored.
  Result<WriteResult> write_remote_body(std::string_view body, RemoteWriteVersion version,
                                        const RemoteWriteLimits& limits, size_t max_errors = 100);
  // The request the last write_remote_body() decoded (null before the first); its views are
  // valid until the next call.
  const RemoteWriteRequest* last_remote_request() const { return remote_request_.get(); }

  // Decodes an OTLP metrics body (OtlpDecoder, reused; `body` already decompressed), adds its
  // delta points to `deltas`' totals, and stores every series as write_remote() does under
  // Protocol::kOtlp, then records the new totals (write, then apply: see DeltaAccumulator).
  // Delta points are refused when `deltas` is null. An undecodable body is the decoder's
  // error, with nothing stored.
  // Exponential histograms keep at most `max_histogram_buckets` finite buckets.
  Result<OtlpWriteResult> write_otlp_body(std::string_view body, OtlpEncoding encoding,
                                          DeltaAccumulator* deltas, size_t max_histogram_buckets,
                                          size_t max_errors = 100);
  // The request the last write_otlp_body() decoded (null before the first): its metadata.
  const OtlpRequest* last_otlp_request() const { return otlp_request_.get(); }

 private:
  // Adds one line's samples to batch_; returns false (with the reason in error_) if rejected.
  bool add_line(std::string_view line, Precision precision, TimestampMs now);
  // Adds the 0 sample at a remote series' created timestamp to batch_ when it is due.
  void add_created_zero(store::SeriesId id, const RemoteSeries& series);
  static constexpr size_t kCreatedRemembered = 1 << 20;

  store::SampleStore& store_;
  IngestMetrics& metrics_;
  const Clock& clock_;
  store::SampleObserver* observer_;
  LineParser parser_;
  SeriesNamer namer_;
  LabelsBuilder labels_;
  SeriesCache series_cache_;  // keyed by line text: valid for one db label only
  std::string db_label_name_;
  std::string db_label_value_;
  std::vector<store::Sample> batch_;
  std::string error_;
  std::string_view error_reason_;
  size_t string_fields_ = 0;
  size_t points_ = 0;       // valid lines in the current body
  Status storage_failure_;  // set when the store failed while resolving a series
  // Remote write's decoder and its output, made at the first remote write body.
  std::unique_ptr<RemoteWriteDecoder> remote_decoder_;
  std::unique_ptr<RemoteWriteRequest> remote_request_;
  // Series ids of remote write and OTLP series, by their labels as sent (see write_remote()).
  SeriesCache remote_series_cache_;
  std::string remote_key_;
  // Created timestamps already stored as a 0 sample, per series: each request repeats them.
  std::unordered_map<store::SeriesId, int64_t> created_stored_;
  // OTLP's, made at the first OTLP body; per-point tallies reused from one body to the next.
  std::unique_ptr<OtlpDecoder> otlp_decoder_;
  size_t otlp_max_buckets_ = 0;  // what otlp_decoder_ was made with
  std::unique_ptr<OtlpRequest> otlp_request_;
  std::vector<uint32_t> otlp_series_;
  std::vector<uint32_t> otlp_refused_;
};

}  // namespace kpid::ingest
