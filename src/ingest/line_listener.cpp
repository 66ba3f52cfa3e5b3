#include "kpid/ingest/line_listener.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

namespace kpid::ingest {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {
constexpr size_t kReadChunk = 64 << 10;
// How long a closing TLS connection waits for the client's close_notify after sending its own.
constexpr std::chrono::milliseconds kTlsShutdownWait{1000};
// While the store pushes back, a connection stops reading and looks again after these waits,
// doubling; the kernel's buffers then hold the sender (TCP flow control).
constexpr std::chrono::milliseconds kFirstPause{20};
constexpr std::chrono::milliseconds kLongestPause{1000};
}  // namespace

struct LineListener::Connection final : kpid::net::StoppableConnection,
                                        std::enable_shared_from_this<LineListener::Connection> {
  Connection(tcp::socket s, std::shared_ptr<ssl::context> tls_context)
      : tls(std::move(tls_context)) {
    if (tls) {
      secure.emplace(std::move(s), *tls);
    } else {
      plain.emplace(std::move(s));
    }
  }
  void request_stop() override {
    // On the connection's strand, so a batch being stored completes before the cancel.
    asio::post(transport().get_executor(), [self = shared_from_this()] {
      self->stopping = true;
      if (self->pause_timer) self->pause_timer->cancel();
      self->transport().cancel();
    });
  }
  // The TCP layer under either stream: it carries the handshake timeout and is what a stop
  // cancels.
  beast::tcp_stream& transport() { return secure ? secure->next_layer() : *plain; }

  std::shared_ptr<ssl::context> tls;  // the pair this connection was accepted with; null: plain
  std::optional<beast::tcp_stream> plain;
  std::optional<ssl::stream<beast::tcp_stream>> secure;
  std::string peer;
  // Set while reads are paused for the store; only touched on the connection's strand.
  asio::steady_timer* pause_timer = nullptr;
  bool stopping = false;
};

LineListener::LineListener(asio::io_context& io, store::SampleStore& store, IngestMetrics& metrics,
                           const Clock& clock, LineListenerOptions options,
                           store::SampleObserver* observer)
    : store_(store),
      metrics_(metrics),
      clock_(clock),
      observer_(observer),
      options_(std::move(options)),
      max_line_bytes_(options_.max_line_bytes),
      acceptor_(io, "line protocol") {}

Status LineListener::start() {
  if (options_.tls) {
    tls_ = std::make_unique<net::ServerTls>(options_.tls->min_version);
    if (auto s = tls_->load(options_.tls->cert_file, options_.tls->key_file); !s) {
      return Status(s.code(), "line protocol TLS: " + s.message());
    }
    spdlog::info("line protocol TLS: certificate {}, TLS {} or newer", options_.tls->cert_file,
                 options_.tls->min_version == net::TlsVersion::kTls13 ? "1.3" : "1.2");
  }
  if (auto s = acceptor_.listen(options_.host, options_.port); !s) return s;
  acceptor_.set_max_connections(options_.max_connections);
  acceptor_.start([this](tcp::socket socket) {
    auto connection =
        std::make_shared<Connection>(std::move(socket), tls_ ? tls_->context() : nullptr);
    boost::system::error_code ec;
    auto remote = connection->transport().socket().remote_endpoint(ec);
    connection->peer =
        ec ? "unknown" : remote.address().to_string() + ":" + std::to_string(remote.port());
    run(connection);
    return connection;
  });
  return Status::ok();
}

Status LineListener::reload_tls(const std::string& cert_file, const std::string& key_file) {
  if (!tls_) return Status::ok();
  if (auto s = tls_->load(cert_file, key_file); !s) {
    return Status(s.code(), "line protocol TLS: " + s.message());
  }
  return Status::ok();
}

void LineListener::run(std::shared_ptr<Connection> connection) {
  auto done = [this](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("tcp connection failed: {}", ex.what());
      }
    }
    acceptor_.connection_ended();
  };
  auto executor = connection->transport().get_executor();
  if (connection->secure) {
    asio::co_spawn(executor, serve(connection, *connection->secure), std::move(done));
  } else {
    asio::co_spawn(executor, serve(connection, *connection->plain), std::move(done));
  }
}

// GCC 12 pairs the coroutine frame's inlined aligned_alloc with its class operator delete and
// warns, though that delete frees with the matching function (a false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
template <typename Stream>
asio::awaitable<void> LineListener::serve(std::shared_ptr<Connection> connection, Stream& stream) {
  constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  beast::tcp_stream& lowest = connection->transport();
  bool handshake_done = !kTls;
  if constexpr (kTls) {
    // A line protocol connection may idle indefinitely, but not before its handshake is done.
    lowest.expires_after(std::chrono::milliseconds(options_.handshake_timeout));
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server,
                                                asio::as_tuple(asio::use_awaitable));
    lowest.expires_never();
    handshake_done = !ec;
    if (ec) spdlog::debug("tcp {}: TLS handshake failed: {}", connection->peer, ec.message());
  }
  WritePipeline pipeline(store_, metrics_, clock_, observer_);
  std::vector<char> buffer;
  size_t filled = 0;
  bool discarding = false;  // inside a line that was too long: drop until its newline
  size_t line_number = 1;   // of the first line in the buffer

  // Stores the complete lines in [data, data+size). Returns how many bytes it took: all, or
  // fewer when the store pushes back (the rest is offered again once the store takes writes);
  // nullopt when storing failed otherwise.
  bool failed = false;
  auto consume = [&](const char* data, size_t size) -> std::optional<size_t> {
    size_t max_line = max_line_bytes_.load();
    const char* segment = data;
    const char* end = data + size;
    bool stopped = false;  // a flush did not store its lines: nothing after them either
    // False when the lines from `segment` were not stored (pushback, or `failed`).
    auto flush = [&](const char* upto) -> bool {
      if (upto <= segment) return true;
      if (store_.pushback()) return false;
      std::string_view body(segment, static_cast<size_t>(upto - segment));
      WriteResult r = pipeline.write(body, Precision::kNanoseconds, Protocol::kTcp, 1, line_number);
      if (!r.storage) {
        if (r.storage.code() == StatusCode::kUnavailable) return false;
        spdlog::error("tcp {}: storing lines failed, closing connection: {}", connection->peer,
                      r.storage.to_string());
        failed = true;
        return false;
      }
      if (!r.errors.empty()) log_bad_line(connection->peer, r.errors.front());
      for (const char* p = segment; p < upto; ++p) line_number += (*p == '\n');
      segment = upto;
      return true;
    };
    for (const char* p = data; p < end;) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
      const char* line_end = nl ? nl : end;
      if (static_cast<size_t>(line_end - p) > max_line) {
        if (!flush(p)) {
          stopped = true;
          break;
        }
        metrics_.rejected(Protocol::kTcp, "line_too_long");
        log_bad_line(
            connection->peer,
            {line_number, "line longer than " + std::to_string(max_line) + " bytes skipped"});
        ++line_number;
        segment = nl ? nl + 1 : end;
      }
      p = nl ? nl + 1 : end;
    }
    if (!stopped) flush(end);
    if (failed) return std::nullopt;
    return static_cast<size_t>(segment - data);
  };

  // Offers [data, data+size) to consume() until all of it is taken, pausing (not reading)
  // while the store pushes back. False when the connection must close.
  asio::steady_timer timer(lowest.get_executor());
  auto store_all = [&](const char* data, size_t size) -> asio::awaitable<bool> {
    size_t taken = 0;
    auto pause = kFirstPause;
    bool counted = false;
    for (;;) {
      auto took = consume(data + taken, size - taken);
      if (!took) co_return false;
      taken += *took;
      if (taken == size) co_return true;
      if (!counted) {
        counted = true;
        auto why = store_.pushback();
        metrics_.pushback(Protocol::kTcp, why ? why.reason : store::Pushback::Reason::kWriteError);
        spdlog::debug("tcp {}: reads paused: {}", connection->peer,
                      why ? why.message : std::string("storage unavailable"));
      }
      if (connection->stopping) co_return false;
      timer.expires_after(pause);
      connection->pause_timer = &timer;
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      connection->pause_timer = nullptr;
      if (connection->stopping) co_return false;
      pause = std::min(pause * 2, kLongestPause);
    }
  };

  while (handshake_done) {
    size_t max_line = max_line_bytes_.load();
    if (buffer.size() < max_line + kReadChunk) buffer.resize(max_line + kReadChunk);
    auto [ec, n] = co_await stream.async_read_some(
        asio::buffer(buffer.data() + filled, buffer.size() - filled),
        asio::as_tuple(asio::use_awaitable));
    if (ec) {
      // At EOF a last line without its newline is still a complete line.
      if (ec == asio::error::eof && filled > 0 && !discarding) {
        co_await store_all(buffer.data(), filled);
      }
      break;
    }
    size_t begin = filled;
    filled += n;
    if (discarding) {
      const char* nl =
          static_cast<const char*>(std::memchr(buffer.data() + begin, '\n', filled - begin));
      if (nl == nullptr) {
        filled = 0;
        continue;
      }
      size_t drop = static_cast<size_t>(nl - buffer.data()) + 1;
      std::memmove(buffer.data(), buffer.data() + drop, filled - drop);
      filled -= drop;
      begin = 0;
      discarding = false;
      ++line_number;
    }
    // Everything up to the last newline is complete lines.
    size_t last_nl = filled;
    for (size_t i = filled; i > begin; --i) {
      if (buffer[i - 1] == '\n') {
        last_nl = i - 1;
        break;
      }
    }
    if (last_nl < filled) {
      if (!co_await store_all(buffer.data(), last_nl + 1)) break;
      std::memmove(buffer.data(), buffer.data() + last_nl + 1, filled - last_nl - 1);
      filled -= last_nl + 1;
    }
    if (filled > max_line) {
      // The incomplete line is already over the limit: skip it without buffering more.
      metrics_.rejected(Protocol::kTcp, "line_too_long");
      log_bad_line(connection->peer, {line_number, "line longer than " + std::to_string(max_line) +
                                                       " bytes skipped"});
      filled = 0;
      discarding = true;
    }
  }
  if constexpr (kTls) {
    // close_notify tells the client its data was taken in full; its own is awaited only briefly.
    if (handshake_done) {
      lowest.expires_after(kTlsShutdownWait);
      co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
    }
  }
  boost::system::error_code ignored;
  lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
  lowest.close();
}
#pragma GCC diagnostic pop

void LineListener::log_bad_line(const std::string& peer, const LineError& error) {
  TimestampMs now = clock_.now_ms();
  size_t suppressed = 0;
  {
    std::lock_guard lock(log_mutex_);
    if (last_log_ms_ != INT64_MIN && now - last_log_ms_ < options_.error_log_interval) {
      ++suppressed_logs_;
      return;
    }
    last_log_ms_ = now;
    suppressed = suppressed_logs_;
    suppressed_logs_ = 0;
  }
  if (suppressed > 0) {
    spdlog::warn("tcp {}: line {}: {} ({} more bad lines not logged)", peer, error.line,
                 error.message, suppressed);
  } else {
    spdlog::warn("tcp {}: line {}: {}", peer, error.line, error.message);
  }
}

}  // namespace kpid::ingest
