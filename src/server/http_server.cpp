#include "kpid/server/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <chrono>

namespace kpid::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpServer::Connection final : kpid::net::StoppableConnection,
                                      std::enable_shared_from_this<HttpServer::Connection> {
  explicit Connection(tcp::socket s) : stream(std::move(s)) {}
  void request_stop() override {
    // On the connection's strand: a busy connection finishes its response first.
    asio::post(stream.get_executor(), [self = shared_from_this()] {
      self->stopping = true;
      if (!self->busy) self->stream.cancel();
    });
  }

  beast::tcp_stream stream;
  bool busy = false;      // handling a request; only touched on the connection's strand
  bool stopping = false;  // close after the current response
};

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, Handler handler,
                       TooLargeHandler on_too_large)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      on_too_large_(std::move(on_too_large)),
      max_body_bytes_(options_.max_body_bytes),
      acceptor_(io, "HTTP") {}

Status HttpServer::start() {
  if (auto s = acceptor_.listen(options_.host, options_.port); !s) return s;
  acceptor_.start([this](tcp::socket socket) {
    auto connection = std::make_shared<Connection>(std::move(socket));
    run(connection);
    return connection;
  });
  return Status::ok();
}

void HttpServer::run(std::shared_ptr<Connection> c) {
  auto session = [this, c]() -> asio::awaitable<void> {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      uint64_t limit = max_body_bytes_.load();
      parser.body_limit(limit);
      parser.header_limit(64 << 10);

      c->stream.expires_after(std::chrono::milliseconds(options_.idle_timeout));
      auto [hec, hn] = co_await http::async_read_header(c->stream, buffer, parser,
                                                         asio::as_tuple(asio::use_awaitable));
      (void)hn;
      bool too_large = hec == http::error::body_limit;
      if (hec && !too_large) {
        // A malformed request gets a plain answer saying why before the connection closes;
        // a closed, timed-out or cancelled one has nobody left to answer.
        if (hec.category() == http::make_error_code(http::error::bad_target).category() &&
            hec != http::error::end_of_stream && hec != http::error::partial_message) {
          bool header_too_large = hec == http::error::header_limit;
          http::response<http::string_body> bad{
              header_too_large ? http::status::request_header_fields_too_large
                               : http::status::bad_request,
              11};
          bad.set(http::field::content_type, "text/plain; charset=utf-8");
          bad.set(http::field::connection, "close");
          bad.body() = (header_too_large ? "request header too large (limit 64 KiB)"
                                         : "malformed HTTP request: " + hec.message()) +
                       "\n";
          bad.prepare_payload();
          c->stream.expires_after(std::chrono::milliseconds(options_.request_timeout));
          co_await http::async_write(c->stream, bad, asio::as_tuple(asio::use_awaitable));
        }
        break;
      }
      c->busy = true;
      if (!too_large) {
        if (parser.get()[http::field::expect] == "100-continue") {
          http::response<http::empty_body> cont{http::status::continue_, 11};
          c->stream.expires_after(std::chrono::milliseconds(options_.request_timeout));
          auto [cec, cn] = co_await http::async_write(c->stream, cont,
                                                      asio::as_tuple(asio::use_awaitable));
          (void)cn;
          if (cec) break;
        }
        c->stream.expires_after(std::chrono::milliseconds(options_.request_timeout));
        auto [bec, bn] = co_await http::async_read(c->stream, buffer, parser,
                                                   asio::as_tuple(asio::use_awaitable));
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
        response = handler_(request);
        response.version(request.version());
      }
      keep_alive = keep_alive && !c->stopping;
      response.keep_alive(keep_alive);
      response.prepare_payload();
      if (head) {
        // HEAD answers with the headers GET would have, Content-Length included, and no body.
        response.body().clear();
      }
      c->stream.expires_after(std::chrono::milliseconds(options_.request_timeout));
      auto [wec, wn] = co_await http::async_write(c->stream, response,
                                                  asio::as_tuple(asio::use_awaitable));
      (void)wn;
      c->busy = false;
      if (wec || !keep_alive) break;
    }
    boost::system::error_code ignored;
    c->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    c->stream.close();
    co_return;
  };
  asio::co_spawn(c->stream.get_executor(), std::move(session), [this](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("http connection failed: {}", ex.what());
      }
    }
    acceptor_.connection_ended();
  });
}

}  // namespace kpid::server
