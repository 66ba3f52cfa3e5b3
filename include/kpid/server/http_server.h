#pragma once
// HTTP/1.1 on Boost.Beast, a protocol on the net connection layer (net::Listener): keep-alive,
// header/idle and request timeouts, a request body limit (413 past it), admission before the
// body, and a stop in three steps (stop, drain, abort). Optionally TLS, which the layer does.
// The handler is asynchronous: it runs on the connection's strand and may hand heavy work to
// another executor (net::run_on) without holding the network thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/net/listener.h"
#include "kpid/net/tls.h"
#include "kpid/server/options.h"

namespace kpid::server {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// Looks at a request's header before its body is read, with the client's address; a response
// refuses the request (429, 503) without reading the body, nullopt lets it through. Called on
// the connection's strand, possibly from several threads at once for different connections;
// must not throw.
using Admission =
    std::function<std::optional<Response>(const Request& header, std::string_view client)>;

// Turns a complete request into a response. The coroutine starts on the connection's strand,
// possibly on several threads at once for different connections; it may co_await work on
// another executor (net::run_on), and the connection waits for it without holding its thread.
// The request lives until the coroutine completes. Must not throw (an exception closes the
// connection without an answer).
using Handler = std::function<boost::asio::awaitable<Response>(const Request&)>;

class HttpServer {
 public:
  // `on_too_large` builds the 413 response for a body over the limit, given the request's
  // header (its body is empty).
  using TooLargeHandler = std::function<Response(const Request& header, uint64_t limit)>;
  HttpServer(boost::asio::io_context& io, const HttpOptions& options, Handler handler,
             TooLargeHandler on_too_large, Admission admission = {});

  // Loads the TLS pair (when configured), binds and starts accepting. A failure of either is
  // returned, never just logged.
  Status start() { return listener_.start(); }
  uint16_t local_port() const { return listener_.local_port(); }

  // The body limit for requests read from now on (config reload). Thread-safe.
  void set_max_body_bytes(uint64_t bytes) { max_body_bytes_.store(bytes); }
  uint64_t max_body_bytes() const { return max_body_bytes_.load(); }

  // The connection layer under the server: TLS reload, refused connections, and the stop
  // (stop, drain, abort). For HTTP, a request is in flight from its first byte to its answer:
  // a stop lets it finish (answered with Connection: close), an abort closes it unanswered.
  net::Listener& listener() { return listener_; }
  const net::Listener& listener() const { return listener_; }

 private:
  // The HTTP session of one connection: requests in turn until one is not keep-alive, an error,
  // a timeout or a stop.
  boost::asio::awaitable<void> serve(net::Connection& connection);

  HttpOptions options_;
  Handler handler_;
  TooLargeHandler on_too_large_;
  Admission admission_;
  std::atomic<uint64_t> max_body_bytes_;
  net::Listener listener_;
};

}  // namespace kpid::server
