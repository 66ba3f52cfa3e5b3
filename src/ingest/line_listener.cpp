#include "kpid/ingest/line_listener.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <chrono>
#include <cstring>
#include <optional>
#include <vector>

#include "kpid/core/host_port.h"

namespace kpid::ingest {

namespace asio = boost::asio;

namespace {
constexpr size_t kReadChunk = 64 << 10;
// While the store pushes back, a connection stops reading and looks again after these waits,
// doubling; the kernel's buffers then hold the sender (TCP flow control).
constexpr std::chrono::milliseconds kFirstPause{20};
constexpr std::chrono::milliseconds kLongestPause{1000};

net::ListenerOptions listener_options(const LineOptions& o, DurationMs handshake_timeout) {
  // The config checked the address; one that does not parse fails at start, naming it.
  auto address = parse_host_port(o.listen);
  return {.name = "line protocol",
          .host = address ? address->host : o.listen,
          .port = address ? address->port : uint16_t{0},
          .tls = o.tls.enabled() ? std::optional(o.tls) : std::nullopt,
          .handshake_timeout = handshake_timeout,
          .idle_timeout = 0,  // a line protocol connection may idle indefinitely
          .max_connections = static_cast<size_t>(o.max_connections),
          .plain_http_reply = {}};
}
}  // namespace

LineListener::LineListener(asio::io_context& io, store::SampleStore& store, IngestMetrics& metrics,
                           const Clock& clock, const LineOptions& options,
                           DurationMs handshake_timeout, store::SampleObserver* observer)
    : store_(store),
      metrics_(metrics),
      clock_(clock),
      observer_(observer),
      options_(options),
      max_line_bytes_(options_.max_line_bytes),
      listener_(io, listener_options(options_, handshake_timeout),
                [this](net::Connection& connection) { return serve(connection); }) {}

// GCC 12 pairs the coroutine frame's inlined aligned_alloc with its class operator delete and
// warns, though that delete frees with the matching function (a false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<void> LineListener::serve(net::Connection& connection) {
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
        spdlog::error("tcp {}: storing lines failed, closing connection: {}", connection.peer(),
                      r.storage.to_string());
        failed = true;
        return false;
      }
      if (!r.errors.empty()) log_bad_line(connection.peer(), r.errors.front());
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
            connection.peer(),
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
        spdlog::debug("tcp {}: reads paused: {}", connection.peer(),
                      why ? why.message : std::string("storage unavailable"));
      }
      if (!co_await connection.pause(pause)) co_return false;
      pause = std::min(pause * 2, kLongestPause);
    }
  };

  for (;;) {
    size_t max_line = max_line_bytes_.load();
    if (buffer.size() < max_line + kReadChunk) buffer.resize(max_line + kReadChunk);
    // Idle while reading: a stop ends the read at once, dropping an incomplete line. Storing
    // is synchronous on the strand, so a batch being stored always completes first.
    auto [ec, n] =
        co_await connection.read_idle(asio::buffer(buffer.data() + filled, buffer.size() - filled));
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
      log_bad_line(connection.peer(), {line_number, "line longer than " + std::to_string(max_line) +
                                                        " bytes skipped"});
      filled = 0;
      discarding = true;
    }
  }
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
