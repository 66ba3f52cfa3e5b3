#pragma once
// HTTP/1.1 server on Boost.Beast: an acceptor and one coroutine per connection on its own
// strand, keep-alive, header/idle and request timeouts, a request body limit (413 past it),
// and a graceful stop that lets in-flight requests finish. Optionally TLS: every connection
// then starts with a handshake, bounded by the request timeout, and is served the same way.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/net/acceptor.h"
#include "kpid/net/tls.h"

namespace kpid::server {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// Looks at a request's header before its body is read, with the client's address; a response
// refuses the request (429, 503) without reading the body, nullopt lets it through. Called
// like Handler; must not throw.
using Admission =
    std::function<std::optional<Response>(const Request& header, std::string_view client)>;

// Turns a complete request into a response. Called on the connection's strand, possibly from
// several threads at once for different connections; must not throw.
using Handler = std::function<Response(const Request&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: the kernel picks one; see local_port()
  uint64_t max_body_bytes = 25ull << 20;
  DurationMs request_timeout = 30'000;  // to read a request once its first byte arrived
  DurationMs idle_timeout = 120'000;    // a keep-alive connection with no request is closed
  std::optional<net::TlsOptions> tls;   // HTTPS when set
  size_t max_connections = 1024;        // live connections; more are closed at once (0: none)
};

class HttpServer {
 public:
  // `on_too_large` builds the 413 response for a body over the limit, given the request's
  // header (its body is empty).
  using TooLargeHandler = std::function<Response(const Request& header, uint64_t limit)>;
  HttpServer(boost::asio::io_context& io, HttpServerOptions options, Handler handler,
             TooLargeHandler on_too_large, Admission admission = {});

  // Loads the TLS pair (when configured), binds and starts accepting. A failure of either is
  // returned, never just logged.
  Status start();
  // Connections closed at once because max_connections were open.
  uint64_t connections_refused() const { return acceptor_.refused(); }
  uint16_t local_port() const { return acceptor_.local_port(); }

  // The body limit for requests read from now on (config reload). Thread-safe.
  void set_max_body_bytes(uint64_t bytes) { max_body_bytes_.store(bytes); }
  uint64_t max_body_bytes() const { return max_body_bytes_.load(); }

  // Re-reads the certificate chain and key (config reload): connections accepted from now on
  // use the new pair, open ones keep theirs. On error the running pair stays. Thread-safe;
  // a no-op without TLS.
  Status reload_tls(const std::string& cert_file, const std::string& key_file);

  // Stops accepting; idle connections close now, busy ones after their current response.
  void stop() { acceptor_.stop(); }
  // Waits until every connection has closed or `timeout` passed; returns whether all closed.
  bool wait_idle(DurationMs timeout) { return acceptor_.wait_idle(timeout); }

  struct Connection;

 private:
  void run(std::shared_ptr<Connection> connection);
  // One coroutine for both kinds of connection: Stream is beast::tcp_stream or an SSL stream
  // over one, owned by `connection`.
  template <typename Stream>
  boost::asio::awaitable<void> serve(std::shared_ptr<Connection> connection, Stream& stream);

  HttpServerOptions options_;
  Handler handler_;
  TooLargeHandler on_too_large_;
  Admission admission_;
  std::atomic<uint64_t> max_body_bytes_;
  std::unique_ptr<net::ServerTls> tls_;  // null: plain HTTP
  net::Acceptor acceptor_;
};

}  // namespace kpid::server
