#pragma once
// TCP listener for newline-delimited line protocol (precision ns), as Telegraf's socket_writer
// and `nc` send it. A line is consumed (and so acknowledged) once it is stored; bad lines are
// counted and logged at a limited rate, and the connection stays up; a line longer than the
// limit is skipped without being buffered. A protocol on the net connection layer
// (net::Listener), which does the connection limit, TLS (a handshake that must finish within
// handshake_timeout) and the stop.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/ingest/options.h"
#include "kpid/ingest/write_pipeline.h"
#include "kpid/net/listener.h"
#include "kpid/net/tls.h"
#include "kpid/store/sample_store.h"

namespace kpid::ingest {

class LineListener {
 public:
  // The store, metrics, clock and observer (may be null) must outlive the listener; `io` runs
  // its connections.
  LineListener(boost::asio::io_context& io, store::SampleStore& store, IngestMetrics& metrics,
               const Clock& clock, const LineOptions& options, DurationMs handshake_timeout,
               store::SampleObserver* observer = nullptr);

  // Loads the TLS pair (when configured), binds and starts accepting. A failure of either is
  // returned, never just logged.
  Status start() { return listener_.start(); }
  uint16_t local_port() const { return listener_.local_port(); }

  // Changes the line length limit for lines read from now on (config reload). Thread-safe.
  void set_max_line_bytes(size_t bytes) { max_line_bytes_.store(bytes); }

  // The connection layer under the listener: TLS reload, refused connections, and the stop
  // (stop, drain, abort). A stop ends a connection once the batch it is storing is stored;
  // lines not yet complete are dropped (they were never acknowledged), and so are lines
  // waiting for storage to take writes again.
  net::Listener& listener() { return listener_; }
  const net::Listener& listener() const { return listener_; }

 private:
  // The line-protocol session of one connection: reads lines and stores them until EOF, an
  // error or a stop.
  boost::asio::awaitable<void> serve(net::Connection& connection);
  void log_bad_line(const std::string& peer, const LineError& error);

  store::SampleStore& store_;
  IngestMetrics& metrics_;
  const Clock& clock_;
  store::SampleObserver* observer_;
  LineOptions options_;
  std::atomic<size_t> max_line_bytes_;
  net::Listener listener_;

  std::mutex log_mutex_;  // guards the rate limit of bad-line logs
  TimestampMs last_log_ms_ = INT64_MIN;
  size_t suppressed_logs_ = 0;
};

}  // namespace kpid::ingest
