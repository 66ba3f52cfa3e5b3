#pragma once
// The connection layer every listener is built on (HTTP, line protocol, ...). A connection goes
//   accept -> connection limit -> TLS handshake (when configured) -> protocol session -> close
// and the layer owns everything but the session: binding, the limit and its refusal count, TLS
// contexts and their reload, the handshake timeout, idle timeouts, close_notify, and a stop in
// three steps (stop, drain until a deadline, abort). A protocol supplies one coroutine, its
// Session, which reads and writes the connection's Stream; it marks the stretches in which it
// must not be interrupted (a request being read and answered, a batch being stored) with
// Connection::busy(), and everything else counts as idle.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/net/stream.h"
#include "kpid/net/tls.h"

namespace kpid::net {

namespace detail {
struct ListenerState;
}

// One accepted connection, as its session sees it. Every member is used on the connection's
// strand (the session's executor) only.
class Connection {
 public:
  // Marks the connection busy while it lives (see busy()).
  class [[nodiscard]] Busy {
   public:
    explicit Busy(Connection& c) : c_(&c) { ++c.busy_; }
    ~Busy() {
      if (c_ != nullptr) --c_->busy_;
    }
    Busy(Busy&& other) noexcept : c_(other.c_) { other.c_ = nullptr; }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;
    Busy& operator=(Busy&&) = delete;

   private:
    Connection* c_;
  };

  // Built by the Listener for an accepted socket (bound to a fresh strand); `tls` null: plain.
  Connection(boost::asio::ip::tcp::socket socket, std::shared_ptr<boost::asio::ssl::context> tls,
             DurationMs idle_timeout);

  Stream& stream() { return stream_; }
  // "address:port" of the client ("unknown" when the socket had no peer address at accept).
  const std::string& peer() const { return peer_; }
  // The client's address alone ("" when unknown), e.g. for per-client rate limits.
  const std::string& client_address() const { return client_address_; }

  // Waits for the first bytes of the next request or batch and reads them into `buffer`, at
  // most the listener's idle_timeout (0: no limit; past it: beast::error::timeout and the socket
  // is closed). The connection is idle meanwhile: stop() ends the wait at once with
  // operation_aborted, which is also the answer at once when the connection is already
  // stopping. Call it while not busy. Completion: (error, bytes read).
  boost::asio::awaitable<std::tuple<boost::system::error_code, size_t>> read_idle(
      boost::asio::mutable_buffer buffer);

  // Bounds every read and write from now on: each must complete within `timeout` of this call
  // (0: no limit) or fails with beast::error::timeout and the socket is closed. read_idle sets
  // its own bound.
  void set_timeout(DurationMs timeout);

  // Waits `duration` (e.g. backing off while storage pushes back). stop() and abort() end the
  // wait at once, busy or not. Returns false when the connection is stopping.
  boost::asio::awaitable<bool> pause(std::chrono::milliseconds duration);

  // The connection is busy while the returned guard lives: a request or batch is in flight.
  // stop() lets a busy connection finish (the session then sees stopping() and ends); abort()
  // closes it anyway. Guards may nest.
  Busy busy() { return Busy(*this); }

  // True once stop() or abort() reached this connection: finish what is in flight, start
  // nothing new (e.g. answer with Connection: close), then return from the session.
  bool stopping() const { return stopping_; }
  // True once abort() closed the socket: every read and write fails from then on.
  bool aborted() const { return aborted_; }

 private:
  friend struct detail::ListenerState;
  friend class Listener;

  // Both post to the connection's strand, so they may be called from any thread.
  void request_stop(std::shared_ptr<Connection> self);
  void request_abort(std::shared_ptr<Connection> self, std::function<void()> closed);

  Stream stream_;
  std::string peer_;
  std::string client_address_;
  const DurationMs idle_timeout_;
  boost::asio::steady_timer pause_timer_;
  int busy_ = 0;
  bool stopping_ = false;
  bool aborted_ = false;
  // Where the listener's registry holds this connection; guarded by the registry's mutex.
  std::list<std::weak_ptr<Connection>>::iterator registration_;
};

struct ListenerOptions {
  std::string name;  // names the listener in logs and errors: "HTTP", "line protocol"
  std::string host = "127.0.0.1";
  uint16_t port = 0;                      // 0: the kernel picks one; see local_port()
  std::optional<TlsOptions> tls;          // TLS when set
  DurationMs handshake_timeout = 30'000;  // a TLS client still handshaking then is dropped
  DurationMs idle_timeout = 0;            // bound of Connection::read_idle; 0: none
  size_t max_connections = 1024;          // live connections; more are closed at once (0: none)
  // Written to a client that sends a plain HTTP request to the TLS port (OpenSSL recognises one
  // in place of a ClientHello) before the connection closes; "": closed without a word.
  std::string plain_http_reply;
};

// Accepts connections and runs `session` for each on its own strand. Thread-safe unless said
// otherwise. Destroy it only once drain() returned true or the io_context stopped running: a
// session still running references what the Session captured.
class Listener {
 public:
  // Serves one connection until it returns; the layer then sends TLS close_notify (unless
  // aborted) and closes the socket. An exception escaping it is logged and closes the
  // connection.
  using Session = std::function<boost::asio::awaitable<void>(Connection&)>;

  Listener(boost::asio::io_context& io, ListenerOptions options, Session session);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Loads the TLS pair (when configured), binds HOST:PORT, logs "<name> listening on
  // HOST:PORT" and starts accepting. A failure of any is returned, never just logged. Once.
  Status start();
  uint16_t local_port() const;

  // Re-reads the certificate chain and key (config reload): connections accepted from now on
  // use the new pair, open ones keep theirs. On error the running pair stays and the error is
  // returned, prefixed "<name> TLS: ". A no-op without TLS.
  Status reload_tls(const std::string& cert_file, const std::string& key_file);

  // At most this many live connections (0: no limit), for connections accepted from now on.
  void set_max_connections(size_t max);
  // Connections closed as soon as accepted because max_connections were open, since start.
  uint64_t refused() const;
  // Connections accepted and not yet ended.
  size_t connections() const;

  // Stops accepting; idle connections close at once, busy ones once their session sees
  // stopping() (after the request or batch in flight). Idempotent; returns at once.
  void stop();
  // Waits until every connection has ended or `deadline` passed; true if all ended.
  bool drain(std::chrono::steady_clock::time_point deadline);
  // Stops (as stop()) and closes every connection's socket now, busy or not: a request not yet
  // answered is never answered, its client sees the connection close. The closes run on the
  // connections' strands; abort waits for them until `deadline` (a network thread may be stuck
  // in synchronous work) and returns whether all ran. A session whose handler still runs
  // elsewhere (net::run_on) ends once that work returns; drain() again to wait for it.
  bool abort(std::chrono::steady_clock::time_point deadline);

 private:
  std::shared_ptr<detail::ListenerState> state_;
};

}  // namespace kpid::net
