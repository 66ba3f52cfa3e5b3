#include "kpid/server/http_server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <chrono>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

namespace kpid::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// How long a closing TLS connection waits for the client's close_notify after sending its own.
constexpr std::chrono::milliseconds kTlsShutdownWait{1000};

// After answering a request whose body was left unread (413, or refused by admission), the
// body is read and dropped for at most this long: closing with unread data would reset the
// connection, and the client could lose the answer before reading it (nginx's lingering close).
constexpr std::chrono::milliseconds kLingerWait{2000};

// What a client speaking plain HTTP to the HTTPS port gets instead of a silent close.
constexpr std::string_view kPlainHttpToTls =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 33\r\nConnection: close\r\n\r\nthis port speaks HTTPS, not HTTP\n";

}  // namespace

struct HttpServer::Connection final : kpid::net::StoppableConnection,
                                      std::enable_shared_from_this<HttpServer::Connection> {
  Connection(tcp::socket s, std::shared_ptr<ssl::context> tls_context)
      : tls(std::move(tls_context)) {
    if (tls) {
      secure.emplace(std::move(s), *tls);
    } else {
      plain.emplace(std::move(s));
    }
  }
  void request_stop() override {
    // On the connection's strand: a busy connection finishes its response first.
    asio::post(transport().get_executor(), [self = shared_from_this()] {
      self->stopping = true;
      if (!self->busy) self->transport().cancel();
    });
  }
  // The TCP layer under either stream: it carries the timeouts and is what a stop cancels.
  beast::tcp_stream& transport() { return secure ? secure->next_layer() : *plain; }

  std::shared_ptr<ssl::context> tls;  // the pair this connection was accepted with; null: plain
  std::optional<beast::tcp_stream> plain;
  std::optional<ssl::stream<beast::tcp_stream>> secure;
  bool busy = false;      // handling a request; only touched on the connection's strand
  bool stopping = false;  // close after the current response
};

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, Handler handler,
                       TooLargeHandler on_too_large, Admission admission)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      on_too_large_(std::move(on_too_large)),
      admission_(std::move(admission)),
      max_body_bytes_(options_.max_body_bytes),
      acceptor_(io, "HTTP") {}

Status HttpServer::start() {
  if (options_.tls) {
    tls_ = std::make_unique<net::ServerTls>(options_.tls->min_version);
    if (auto s = tls_->load(options_.tls->cert_file, options_.tls->key_file); !s) {
      return Status(s.code(), "HTTP TLS: " + s.message());
    }
    spdlog::info("HTTP TLS: certificate {}, TLS {} or newer", options_.tls->cert_file,
                 options_.tls->min_version == net::TlsVersion::kTls13 ? "1.3" : "1.2");
  }
  if (auto s = acceptor_.listen(options_.host, options_.port); !s) return s;
  acceptor_.set_max_connections(options_.max_connections);
  acceptor_.start([this](tcp::socket socket) {
    auto connection =
        std::make_shared<Connection>(std::move(socket), tls_ ? tls_->context() : nullptr);
    run(connection);
    return connection;
  });
  return Status::ok();
}

Status HttpServer::reload_tls(const std::string& cert_file, const std::string& key_file) {
  if (!tls_) return Status::ok();
  if (auto s = tls_->load(cert_file, key_file); !s) {
    return Status(s.code(), "HTTP TLS: " + s.message());
  }
  return Status::ok();
}

void HttpServer::run(std::shared_ptr<Connection> c) {
  auto done = [this](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("http connection failed: {}", ex.what());
      }
    }
    acceptor_.connection_ended();
  };
  auto executor = c->transport().get_executor();
  if (c->secure) {
    asio::co_spawn(executor, serve(c, *c->secure), std::move(done));
  } else {
    asio::co_spawn(executor, serve(c, *c->plain), std::move(done));
  }
}

template <typename Stream>
asio::awaitable<void> HttpServer::serve(std::shared_ptr<Connection> c, Stream& stream) {
  constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  beast::tcp_stream& lowest = c->transport();
  bool handshake_done = !kTls;
  boost::system::error_code peer_ec;
  const auto peer = lowest.socket().remote_endpoint(peer_ec);
  const std::string client = peer_ec ? std::string() : peer.address().to_string();
  if constexpr (kTls) {
    // Bounded like a request, so a client that connects and stalls holds nothing for long.
    lowest.expires_after(std::chrono::milliseconds(options_.request_timeout));
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server,
                                                asio::as_tuple(asio::use_awaitable));
    handshake_done = !ec;
    if (ec) {
      spdlog::debug("HTTP {}: TLS handshake failed: {}",
                    peer_ec ? std::string("unknown peer")
                            : peer.address().to_string() + ":" + std::to_string(peer.port()),
                    ec.message());
      // OpenSSL recognises a plain HTTP request in place of a ClientHello and sends nothing.
      if (ec.category() == asio::error::get_ssl_category() &&
          ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST) {
        co_await asio::async_write(lowest, asio::buffer(kPlainHttpToTls),
                                   asio::as_tuple(asio::use_awaitable));
      }
    }
  }
  beast::flat_buffer buffer;
  bool unread_body = false;  // the last answer left a request body on the wire
  while (handshake_done) {
    http::request_parser<http::string_body> parser;
    uint64_t limit = max_body_bytes_.load();
    parser.body_limit(limit);
    parser.header_limit(64 << 10);

    if (buffer.size() == 0) {
      // Between requests the connection may idle; once a request's first byte is in, all of
      // it must arrive within request_timeout, so a client trickling a header (slowloris)
      // cannot hold the connection for idle_timeout.
      lowest.expires_after(std::chrono::milliseconds(options_.idle_timeout));
      auto [rec, rn] = co_await stream.async_read_some(buffer.prepare(4096),
                                                       asio::as_tuple(asio::use_awaitable));
      if (rec) break;
      buffer.commit(rn);
    }
    lowest.expires_after(std::chrono::milliseconds(options_.request_timeout));
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
        lowest.expires_after(std::chrono::milliseconds(options_.request_timeout));
        co_await http::async_write(stream, bad, asio::as_tuple(asio::use_awaitable));
      }
      break;
    }
    c->busy = true;
    if (!too_large && admission_) {
      if (auto refusal = admission_(parser.get(), client)) {
        // Refused before its body is read; a body still on the wire means the connection
        // cannot carry another request.
        const bool keep_alive = parser.is_done() && parser.get().keep_alive() && !c->stopping;
        refusal->version(parser.get().version());
        refusal->keep_alive(keep_alive);
        refusal->prepare_payload();
        if (parser.get().method() == http::verb::head) refusal->body().clear();
        lowest.expires_after(std::chrono::milliseconds(options_.request_timeout));
        auto [rec, rn] =
            co_await http::async_write(stream, *refusal, asio::as_tuple(asio::use_awaitable));
        (void)rn;
        c->busy = false;
        unread_body = !parser.is_done();
        if (rec || !keep_alive) break;
        continue;
      }
    }
    if (!too_large) {
      if (parser.get()[http::field::expect] == "100-continue") {
        http::response<http::empty_body> cont{http::status::continue_, 11};
        lowest.expires_after(std::chrono::milliseconds(options_.request_timeout));
        auto [cec, cn] =
            co_await http::async_write(stream, cont, asio::as_tuple(asio::use_awaitable));
        (void)cn;
        if (cec) break;
      }
      lowest.expires_after(std::chrono::milliseconds(options_.request_timeout));
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
    lowest.expires_after(std::chrono::milliseconds(options_.request_timeout));
    auto [wec, wn] =
        co_await http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    c->busy = false;
    unread_body = too_large;
    if (wec || !keep_alive) break;
  }
  if (unread_body) {
    // Plain TCP: the client sees the end of the answer at once, then its body is drained.
    if constexpr (!kTls) {
      boost::system::error_code ignored;
      lowest.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    lowest.expires_after(kLingerWait);
    // On the heap: as an array it would be in every connection's coroutine frame.
    std::vector<char> sink(16 << 10);
    for (uint64_t drained = 0; drained <= max_body_bytes_.load();) {
      auto [dec, dn] =
          co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
      if (dec) break;
      drained += dn;
    }
  }
  if constexpr (kTls) {
    // close_notify tells the client the last response is complete; its own is awaited only
    // briefly, so an idle client cannot keep the connection open.
    if (handshake_done) {
      lowest.expires_after(kTlsShutdownWait);
      co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
    }
  }
  boost::system::error_code ignored;
  lowest.socket().shutdown(tcp::socket::shutdown_send, ignored);
  lowest.close();
}

}  // namespace kpid::server
