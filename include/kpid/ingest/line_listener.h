#pragma once
// TCP listener for newline-delimited line protocol (precision ns), as Telegraf's socket_writer
// and `nc` send it. A line is consumed (and so acknowledged) once it is stored; bad lines are
// counted and logged at a limited rate, and the connection stays up; a line longer than the
// limit is skipped without being buffered. Optionally over TLS: a connection then starts with a
// handshake that must finish within handshake_timeout.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/ingest/write_pipeline.h"
#include "kpid/net/acceptor.h"
#include "kpid/net/tls.h"
#include "kpid/store/sample_store.h"

namespace kpid::ingest {

struct LineListenerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: the kernel picks one; see local_port()
  size_t max_line_bytes = 64 << 10;
  DurationMs error_log_interval = 10'000;
  std::optional<net::TlsOptions> tls;     // TLS when set
  DurationMs handshake_timeout = 30'000;  // a TLS client still handshaking then is dropped
  size_t max_connections = 1024;          // live connections; more are closed at once (0: none)
};

class LineListener {
 public:
  // The store, metrics, clock and observer (may be null) must outlive the listener; `io` runs
  // its connections.
  LineListener(boost::asio::io_context& io, store::SampleStore& store, IngestMetrics& metrics,
               const Clock& clock, LineListenerOptions options,
               store::SampleObserver* observer = nullptr);

  // Loads the TLS pair (when configured), binds and starts accepting. A failure of either is
  // returned, never just logged.
  Status start();
  uint16_t local_port() const { return acceptor_.local_port(); }
  // Connections closed at once because max_connections were open.
  uint64_t connections_refused() const { return acceptor_.refused(); }

  // Changes the line length limit for lines read from now on (config reload). Thread-safe.
  void set_max_line_bytes(size_t bytes) { max_line_bytes_.store(bytes); }

  // Re-reads the certificate chain and key (config reload): connections accepted from now on
  // use the new pair, open ones keep theirs. On error the running pair stays. Thread-safe;
  // a no-op without TLS.
  Status reload_tls(const std::string& cert_file, const std::string& key_file);

  // Stops accepting and ends every connection once its current batch is stored; lines not
  // yet complete are dropped (they were never acknowledged). Thread-safe.
  void stop() { acceptor_.stop(); }
  // Waits until every connection has ended or `timeout` passed; returns whether all ended.
  bool wait_idle(DurationMs timeout) { return acceptor_.wait_idle(timeout); }

  struct Connection;

 private:
  void run(std::shared_ptr<Connection> connection);
  // One coroutine for both kinds of connection: Stream is beast::tcp_stream or an SSL stream
  // over one, owned by `connection`.
  template <typename Stream>
  boost::asio::awaitable<void> serve(std::shared_ptr<Connection> connection, Stream& stream);
  void log_bad_line(const std::string& peer, const LineError& error);

  store::SampleStore& store_;
  IngestMetrics& metrics_;
  const Clock& clock_;
  store::SampleObserver* observer_;
  LineListenerOptions options_;
  std::atomic<size_t> max_line_bytes_;
  std::unique_ptr<net::ServerTls> tls_;  // null: plain TCP
  net::Acceptor acceptor_;

  std::mutex log_mutex_;  // guards the rate limit of bad-line logs
  TimestampMs last_log_ms_ = INT64_MIN;
  size_t suppressed_logs_ = 0;
};

}  // namespace kpid::ingest
