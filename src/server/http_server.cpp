#include "kpid/server/http_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <chrono>
#include <string_view>
#include <vector>

#include "kpid/core/host_port.h"

namespace kpid::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// After answering a request whose body was left unread (413, or refused by admission), the
// body is read and dropped for at most this long: closing with unread data would reset the
// connection, and the client could lose the answer before reading it (nginx's lingering close).
constexpr std::chrono::milliseconds kLingerWait{2000};

// What a client speaking plain HTTP to the HTTPS port gets instead of a silent close.
constexpr std::string_view kPlainHttpToTls =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 33\r\nConnection: close\r\n\r\nthis port speaks HTTPS, not HTTP\n";

net::ListenerOptions listener_options(const HttpOptions& o) {
  // The config checked the address; one that does not parse fails at start, naming it.
  auto address = parse_host_port(o.listen);
  return {.name = "HTTP",
          .host = address ? address->host : o.listen,
          .port = address ? address->port : uint16_t{0},
          .tls = o.tls.enabled() ? std::optional(o.tls) : std::nullopt,
          // Bounded like a request, so a client that connects and stalls holds nothing for long.
          .handshake_timeout = o.request_timeout,
          .idle_timeout = o.idle_timeout,
          .max_connections = static_cast<size_t>(o.max_connections),
          .plain_http_reply = std::string(kPlainHttpToTls)};
}

}  // namespace

HttpServer::HttpServer(asio::io_context& io, const HttpOptions& options, Handler handler,
                       TooLargeHandler on_too_large, Admission admission)
    : options_(options),
      handler_(std::move(handler)),
      on_too_large_(std::move(on_too_large)),
      admission_(std::move(admission)),
      max_body_bytes_(options_.max_body_bytes),
      listener_(io, listener_options(options_),
                [this](net::Connection& connection) { return serve(connection); }) {}

asio::awaitable<void> HttpServer::serve(net::Connection& c) {
  net::Stream& stream = c.stream();
  beast::flat_buffer buffer;
  bool unread_body = false;  // the last answer left a request body on the wire
  for (;;) {
    http::request_parser<http::string_body> parser;
    uint64_t limit = max_body_bytes_.load();
    parser.body_limit(limit);
    parser.header_limit(64 << 10);

    if (buffer.size() == 0) {
      // Between requests the connection is idle (a stop closes it at once, idle_timeout
      // bounds it); once a request's first byte is in, all of it must arrive within
      // request_timeout, so a client trickling a header (slowloris) cannot hold the connection
      // for idle_timeout.
      auto [rec, rn] = co_await c.read_idle(buffer.prepare(4096));
      if (rec) break;
      buffer.commit(rn);
    }
    // From its first byte to its answer, a request is in flight: a stop lets it finish.
    auto busy = c.busy();
    c.set_timeout(options_.request_timeout);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser,
                                                      asio::as_tuple(asio::use_awaitable));
    (void)hn;
    bool too_large = hec == http::error::body_limit;
    if (hec && !too_large) {
      // A malformed request gets a plain answer saying why before the connection closes;
      // a closed, timed-out or cancelled one has nobody left to answer.
      if (hec.category() == http::make_error_code(http::error::bad_target).category() &&
          hec != http::error::end_of_stream && hec != http::error::partial_message) {
        bool header_too_large = hec == http::error::header_limit;
        http::response<http::string_body> bad{header_too_large
                                                  ? http::status::request_header_fields_too_large
                                                  : http::status::bad_request,
                                              11};
        bad.set(http::field::content_type, "text/plain; charset=utf-8");
        bad.set(http::field::connection, "close");
        bad.body() = (header_too_large ? "request header too large (limit 64 KiB)"
                                       : "malformed HTTP request: " + hec.message()) +
                     "\n";
        bad.prepare_payload();
        c.set_timeout(options_.request_timeout);
        co_await http::async_write(stream, bad, asio::as_tuple(asio::use_awaitable));
      }
      break;
    }
    if (!too_large && admission_) {
      if (auto refusal = admission_(parser.get(), c.client_address())) {
        // Refused before its body is read; a body still on the wire means the connection
        // cannot carry another request.
        const bool keep_alive = parser.is_done() && parser.get().keep_alive() && !c.stopping();
        refusal->version(parser.get().version());
        refusal->keep_alive(keep_alive);
        refusal->prepare_payload();
        if (parser.get().method() == http::verb::head) refusal->body().clear();
        c.set_timeout(options_.request_timeout);
        auto [rec, rn] =
            co_await http::async_write(stream, *refusal, asio::as_tuple(asio::use_awaitable));
        (void)rn;
        unread_body = !parser.is_done();
        if (rec || !keep_alive) break;
        continue;
      }
    }
    if (!too_large) {
      if (parser.get()[http::field::expect] == "100-continue") {
        http::response<http::empty_body> cont{http::status::continue_, 11};
        c.set_timeout(options_.request_timeout);
        auto [cec, cn] =
            co_await http::async_write(stream, cont, asio::as_tuple(asio::use_awaitable));
        (void)cn;
        if (cec) break;
      }
      c.set_timeout(options_.request_timeout);
      auto [bec, bn] =
          co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      (void)bn;
      if (bec == http::error::body_limit) {
        too_large = true;
      } else if (bec) {
        break;
      }
    }
    Response response;
    bool keep_alive = false;
    bool head = false;
    if (too_large) {
      // The rest of the body is unread, so the connection cannot be reused.
      Request header;
      header.base() = parser.get().base();
      response = on_too_large_(header, limit);
    } else {
      Request request = parser.release();
      keep_alive = request.keep_alive();
      head = request.method() == http::verb::head;
      // No timeout while the handler works (its work may run elsewhere); the answer is bounded.
      c.set_timeout(0);
      response = co_await handler_(request);
      response.version(request.version());
    }
    keep_alive = keep_alive && !c.stopping();
    response.keep_alive(keep_alive);
    response.prepare_payload();
    if (head) {
      // HEAD answers with the headers GET would have, Content-Length included, and no body.
      response.body().clear();
    }
    c.set_timeout(options_.request_timeout);
    auto [wec, wn] =
        co_await http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    unread_body = too_large;
    if (wec || !keep_alive) break;
  }
  if (unread_body && !c.aborted()) {
    // Plain TCP: the client sees the end of the answer at once, then its body is drained.
    if (!stream.is_tls()) {
      boost::system::error_code ignored;
      stream.tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    c.set_timeout(kLingerWait.count());
    // On the heap: as an array it would be in every connection's coroutine frame.
    std::vector<char> sink(16 << 10);
    for (uint64_t drained = 0; drained <= max_body_bytes_.load();) {
      auto [dec, dn] =
          co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
      if (dec) break;
      drained += dn;
    }
  }
}

}  // namespace kpid::server
