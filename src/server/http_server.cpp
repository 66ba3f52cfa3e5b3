#include "kpid/server/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <chrono>

namespace kpid::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct HttpServer::Connection {
  explicit Connection(tcp::socket s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  bool busy = false;      // handling a request; only touched on the connection's strand
  bool stopping = false;  // close after the current response
};

HttpServer::HttpServer(net::io_context& io, HttpServerOptions options, Handler handler,
                       TooLargeHandler on_too_large)
    : io_(io),
      options_(std::move(options)),
      handler_(std::move(handler)),
      on_too_large_(std::move(on_too_large)),
      max_body_bytes_(options_.max_body_bytes),
      acceptor_(io) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start() {
  boost::system::error_code ec;
  auto address = net::ip::make_address(options_.host == "localhost" ? "127.0.0.1" : options_.host,
                                       ec);
  if (ec) return Status::invalid_argument("http: bad address " + options_.host);
  tcp::endpoint endpoint(address, options_.port);
  std::string where = options_.host + ":" + std::to_string(options_.port);
  if (acceptor_.open(endpoint.protocol(), ec); ec) {
    return Status::io_error("http: cannot open socket for " + where + ": " + ec.message());
  }
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (acceptor_.bind(endpoint, ec); ec) {
    return Status::io_error("http: cannot bind " + where + ": " + ec.message());
  }
  if (acceptor_.listen(net::socket_base::max_listen_connections, ec); ec) {
    return Status::io_error("http: cannot listen on " + where + ": " + ec.message());
  }
  local_port_ = acceptor_.local_endpoint().port();
  spdlog::info("HTTP listening on {}:{}", address.to_string(), local_port_);
  accept_loop();
  return Status::ok();
}

void HttpServer::accept_loop() {
  acceptor_.async_accept(net::make_strand(io_), [this](boost::system::error_code ec,
                                                       tcp::socket socket) {
    if (ec) {
      if (ec != net::error::operation_aborted) {
        spdlog::warn("http: accept failed: {}", ec.message());
      }
      std::lock_guard lock(mutex_);
      if (stopping_ || !acceptor_.is_open()) return;
    } else {
      auto connection = std::make_shared<Connection>(std::move(socket));
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        connections_.push_back(connection);
        ++active_;
      }
      run(connection);
    }
    accept_loop();
  });
}

void HttpServer::run(std::shared_ptr<Connection> c) {
  auto session = [this, c]() -> net::awaitable<void> {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      uint64_t limit = max_body_bytes_.load();
      parser.body_limit(limit);
      parser.header_limit(64 << 10);

      c->stream.expires_after(std::chrono::milliseconds(options_.idle_timeout));
      auto [hec, hn] = co_await http::async_read_header(c->stream, buffer, parser,
                                                         net::as_tuple(net::use_awaitable));
      (void)hn;
      bool too_large = hec == http::error::body_limit;
      if (hec && !too_large) break;  // closed, timed out, cancelled by stop(), or malformed
      c->busy = true;
      if (!too_large) {
        if (parser.get()[http::field::expect] == "100-continue") {
          http::response<http::empty_body> cont{http::status::continue_, 11};
          c->stream.expires_after(std::chrono::milliseconds(options_.request_timeout));
          auto [cec, cn] = co_await http::async_write(c->stream, cont,
                                                      net::as_tuple(net::use_awaitable));
          (void)cn;
          if (cec) break;
        }
        c->stream.expires_after(std::chrono::milliseconds(options_.request_timeout));
        auto [bec, bn] = co_await http::async_read(c->stream, buffer, parser,
                                                   net::as_tuple(net::use_awaitable));
        (void)bn;
        if (bec == http::error::body_limit) {
          too_large = true;
        } else if (bec) {
          break;
        }
      }
      Response response;
      bool keep_alive = false;
      if (too_large) {
        // The rest of the body is unread, so the connection cannot be reused.
        Request header;
        header.base() = parser.get().base();
        response = on_too_large_(header, limit);
      } else {
        Request request = parser.release();
        keep_alive = request.keep_alive();
        response = handler_(request);
        response.version(request.version());
      }
      keep_alive = keep_alive && !c->stopping;
      response.keep_alive(keep_alive);
      response.prepare_payload();
      c->stream.expires_after(std::chrono::milliseconds(options_.request_timeout));
      auto [wec, wn] = co_await http::async_write(c->stream, response,
                                                  net::as_tuple(net::use_awaitable));
      (void)wn;
      c->busy = false;
      if (wec || !keep_alive) break;
    }
    boost::system::error_code ignored;
    c->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    c->stream.close();
    co_return;
  };
  net::co_spawn(c->stream.get_executor(), std::move(session), [this](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("http connection failed: {}", ex.what());
      }
    }
    std::lock_guard lock(mutex_);
    connections_.remove_if([](const auto& w) { return w.expired(); });
    --active_;
    idle_.notify_all();
  });
}

void HttpServer::stop() {
  std::list<std::weak_ptr<Connection>> connections;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    connections = connections_;
  }
  net::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  for (auto& weak : connections) {
    if (auto c = weak.lock()) {
      // On the connection's strand: a busy connection finishes its response first.
      net::post(c->stream.get_executor(), [c] {
        c->stopping = true;
        if (!c->busy) c->stream.cancel();
      });
    }
  }
}

bool HttpServer::wait_idle(DurationMs timeout) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, std::chrono::milliseconds(timeout), [this] { return active_ == 0; });
}

}  // namespace kpid::server
