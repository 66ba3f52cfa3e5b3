#pragma once
// Ingest's options: the [line] table (the TCP line-protocol listener) and the [ingest] table
// (what every write protocol shares), parsed straight into these structs. What a reload may
// change is decided here too.

#include <cstdint>
#include <string>
#include <vector>

#include "kpid/core/time.h"
#include "kpid/ingest/native_histogram.h"
#include "kpid/net/tls_options.h"

namespace kpid::ingest {

struct LineOptions {
  std::string listen = "127.0.0.1:9471";  // HOST:PORT; "" turns the listener off
  uint64_t max_line_bytes = 64ull << 10;
  DurationMs error_log_interval = 10'000;  // one log line per client per interval for bad lines
  int64_t max_connections = 1024;          // live connections; more are closed as soon as accepted
  net::TlsOptions tls;                     // TLS when tls.enabled()
};

struct IngestOptions {
  // Finite `le` buckets a native histogram (remote write) or OTLP exponential histogram keeps
  // at most when stored as classic buckets; past it, adjacent buckets merge.
  int64_t native_histogram_max_buckets = static_cast<int64_t>(kDefaultHistogramBuckets);
  // When not empty: the label that InfluxDB writes' `db` (1.x) or `bucket` (2.x) parameter
  // becomes, so several databases written to one kpid stay apart.
  std::string db_label;
};

// The [ingest] keys that differ between `running` and `next`: all need a restart.
std::vector<std::string> keys_needing_restart(const IngestOptions& running,
                                              const IngestOptions& next);

// The [line] keys that differ between the running options and a reloaded config and take
// effect only after a restart (the listener and TLS on or off).
std::vector<std::string> keys_needing_restart(const LineOptions& running, const LineOptions& next);

// The running options with what a reload changes taken from `next`: the line limit (the rest
// keeps its running value until a restart; certificate files are re-read by the listener).
LineOptions reloaded(const LineOptions& running, const LineOptions& next);

}  // namespace kpid::ingest
