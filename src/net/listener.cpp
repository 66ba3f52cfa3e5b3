#include "kpid/net/listener.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <mutex>
#include <vector>

namespace kpid::net {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

// How long a closing TLS connection waits for the client's close_notify after sending its own.
constexpr std::chrono::milliseconds kTlsShutdownWait{1000};
// At most one log line per this long about refused connections, however many a flood brings.
constexpr std::chrono::seconds kRefusalLogInterval{10};

std::string peer_of(const tcp::socket& socket, std::string* address) {
  error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  *address = remote.address().to_string();
  return *address + ":" + std::to_string(remote.port());
}

}  // namespace

Connection::Connection(tcp::socket socket, std::shared_ptr<ssl::context> tls,
                       DurationMs idle_timeout)
    : stream_(std::move(socket), std::move(tls)),
      idle_timeout_(idle_timeout),
      pause_timer_(stream_.get_executor()) {
  peer_ = peer_of(stream_.tcp().socket(), &client_address_);
}

asio::awaitable<std::tuple<error_code, size_t>> Connection::read_idle(asio::mutable_buffer buffer) {
  if (stopping_) co_return std::tuple(error_code(asio::error::operation_aborted), size_t{0});
  set_timeout(idle_timeout_);
  co_return co_await stream_.async_read_some(buffer, asio::as_tuple(asio::use_awaitable));
}

void Connection::set_timeout(DurationMs timeout) {
  if (timeout > 0) {
    stream_.tcp().expires_after(std::chrono::milliseconds(timeout));
  } else {
    stream_.tcp().expires_never();
  }
}

asio::awaitable<bool> Connection::pause(std::chrono::milliseconds duration) {
  if (stopping_) co_return false;
  pause_timer_.expires_after(duration);
  co_await pause_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return !stopping_;
}

void Connection::request_stop(std::shared_ptr<Connection> self) {
  asio::post(stream_.get_executor(), [self = std::move(self)] {
    self->stopping_ = true;
    self->pause_timer_.cancel();
    // A busy connection finishes its request; an idle one has nothing to lose.
    if (self->busy_ == 0) self->stream_.tcp().cancel();
  });
}

void Connection::request_abort(std::shared_ptr<Connection> self, std::function<void()> closed) {
  asio::post(stream_.get_executor(), [self = std::move(self), closed = std::move(closed)] {
    self->stopping_ = true;
    self->aborted_ = true;
    self->pause_timer_.cancel();
    // Closing (not just cancelling) fails whatever the session does next, so nothing more is
    // sent on this connection, an answer to a write that did not finish least of all.
    self->stream_.tcp().close();
    closed();
  });
}

namespace detail {

struct ListenerState : std::enable_shared_from_this<ListenerState> {
  ListenerState(asio::io_context& io_context, ListenerOptions listener_options,
                Listener::Session serve)
      : io(io_context),
        options(std::move(listener_options)),
        session(std::move(serve)),
        acceptor(asio::make_strand(io_context)),
        max_connections(options.max_connections) {}

  void accept_next();
  void accepted(tcp::socket socket);
  asio::awaitable<void> run(std::shared_ptr<Connection> c);
  void ended(Connection& c);
  // Stops accepting; returns the live connections. Caller holds `mutex`.
  std::vector<std::shared_ptr<Connection>> begin_stop();

  asio::io_context& io;
  const ListenerOptions options;
  const Listener::Session session;
  tcp::acceptor acceptor;  // used on its strand once accepting started
  std::unique_ptr<ServerTls> tls;
  uint16_t local_port = 0;

  mutable std::mutex mutex;
  std::condition_variable changed;  // a connection ended, or one of abort's closes ran
  std::list<std::weak_ptr<Connection>> connections;
  size_t active = 0;
  size_t max_connections;
  uint64_t refused = 0;
  std::chrono::steady_clock::time_point last_refusal_log{};
  bool stopping = false;
  bool aborting = false;
  size_t closes_pending = 0;
};

void ListenerState::accept_next() {
  acceptor.async_accept(
      asio::make_strand(io), [self = shared_from_this()](error_code ec, tcp::socket socket) {
        bool over_limit = false;
        {
          std::lock_guard lock(self->mutex);
          if (self->stopping || !self->acceptor.is_open()) return;
          over_limit = !ec && self->max_connections > 0 && self->active >= self->max_connections;
          if (over_limit) {
            ++self->refused;
            const auto now = std::chrono::steady_clock::now();
            if (now - self->last_refusal_log >= kRefusalLogInterval) {
              self->last_refusal_log = now;
              spdlog::warn("{}: {} connections open, the limit; closing new ones ({} so far)",
                           self->options.name, self->max_connections, self->refused);
            }
          } else if (!ec) {
            ++self->active;
          }
        }
        if (over_limit) {
          // Closed at once, so a flood of idle sockets cannot exhaust descriptors or memory.
          error_code ignored;
          socket.close(ignored);
        } else if (ec) {
          // Out of file descriptors and the like: back off instead of spinning.
          spdlog::warn("{}: accept failed: {}", self->options.name, ec.message());
          auto timer = std::make_shared<asio::steady_timer>(self->acceptor.get_executor(),
                                                            std::chrono::milliseconds(100));
          timer->async_wait([self, timer](error_code) {
            {
              std::lock_guard lock(self->mutex);
              if (self->stopping) return;
            }
            self->accept_next();
          });
          return;
        } else {
          self->accepted(std::move(socket));
        }
        self->accept_next();
      });
}

void ListenerState::accepted(tcp::socket socket) {
  auto c = std::make_shared<Connection>(std::move(socket), tls ? tls->context() : nullptr,
                                        options.idle_timeout);
  {
    std::lock_guard lock(mutex);
    c->registration_ = connections.insert(connections.end(), c);
    // A stop() or abort() that ran since the accept completed missed this connection.
    if (aborting) {
      ++closes_pending;
      c->request_abort(c, [self = shared_from_this()] {
        std::lock_guard lock(self->mutex);
        --self->closes_pending;
        self->changed.notify_all();
      });
    } else if (stopping) {
      c->request_stop(c);
    }
  }
  auto executor = c->stream().get_executor();
  asio::co_spawn(executor, run(c), [self = shared_from_this(), c](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("{} {}: connection failed: {}", self->options.name, c->peer(), ex.what());
      }
    }
    self->ended(*c);
  });
}

// GCC 12 pairs a coroutine frame's inlined aligned_alloc with its class operator delete and
// warns, though that delete frees with the matching function (a false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<void> ListenerState::run(std::shared_ptr<Connection> c) {
  Stream& stream = c->stream();
  if (Stream::TlsStream* tls_stream = stream.tls()) {
    // A connection may idle later, but not before its handshake is done.
    c->set_timeout(options.handshake_timeout);
    auto [ec] = co_await tls_stream->async_handshake(ssl::stream_base::server,
                                                     asio::as_tuple(asio::use_awaitable));
    if (ec) {
      spdlog::debug("{} {}: TLS handshake failed: {}", options.name, c->peer(), ec.message());
      if (!options.plain_http_reply.empty() && !c->aborted() &&
          ec.category() == asio::error::get_ssl_category() &&
          ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST) {
        co_await asio::async_write(stream.tcp(), asio::buffer(options.plain_http_reply),
                                   asio::as_tuple(asio::use_awaitable));
      }
      stream.tcp().close();
      co_return;
    }
  }
  c->set_timeout(0);
  try {
    co_await session(*c);
  } catch (const std::exception& e) {
    spdlog::error("{} {}: connection failed: {}", options.name, c->peer(), e.what());
  }
  if (Stream::TlsStream* tls_stream = stream.tls(); tls_stream != nullptr && !c->aborted()) {
    // close_notify tells the client the last answer is complete; its own is awaited only
    // briefly, so an idle client cannot keep the connection open.
    c->set_timeout(kTlsShutdownWait.count());
    co_await tls_stream->async_shutdown(asio::as_tuple(asio::use_awaitable));
  }
  error_code ignored;
  stream.tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.tcp().close();
}
#pragma GCC diagnostic pop

void ListenerState::ended(Connection& c) {
  std::lock_guard lock(mutex);
  connections.erase(c.registration_);
  --active;
  changed.notify_all();
}

std::vector<std::shared_ptr<Connection>> ListenerState::begin_stop() {
  if (!stopping) {
    stopping = true;
    asio::post(acceptor.get_executor(), [self = shared_from_this()] {
      error_code ignored;
      self->acceptor.close(ignored);
    });
  }
  std::vector<std::shared_ptr<Connection>> live;
  live.reserve(connections.size());
  for (auto& weak : connections) {
    if (auto c = weak.lock()) live.push_back(std::move(c));
  }
  return live;
}

}  // namespace detail

Listener::Listener(asio::io_context& io, ListenerOptions options, Session session)
    : state_(std::make_shared<detail::ListenerState>(io, std::move(options), std::move(session))) {}

Listener::~Listener() { stop(); }

Status Listener::start() {
  auto& s = *state_;
  const std::string& name = s.options.name;
  if (s.options.tls) {
    s.tls = std::make_unique<ServerTls>(s.options.tls->min_version);
    if (auto st = s.tls->load(s.options.tls->cert_file, s.options.tls->key_file); !st) {
      return Status(st.code(), name + " TLS: " + st.message());
    }
    spdlog::info("{} TLS: certificate {}, TLS {} or newer", name, s.options.tls->cert_file,
                 s.options.tls->min_version == TlsVersion::kTls13 ? "1.3" : "1.2");
  }
  error_code ec;
  const std::string& host = s.options.host;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  const std::string where = host + ":" + std::to_string(s.options.port);
  if (ec) return Status::invalid_argument(name + ": bad listen address " + where);
  tcp::endpoint endpoint(address, s.options.port);
  if (s.acceptor.open(endpoint.protocol(), ec); ec) {
    return Status::io_error(name + ": cannot open a socket for " + where + ": " + ec.message());
  }
  s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (s.acceptor.bind(endpoint, ec); ec) {
    return Status::io_error(name + ": cannot bind " + where + ": " + ec.message());
  }
  if (s.acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return Status::io_error(name + ": cannot listen on " + where + ": " + ec.message());
  }
  s.local_port = s.acceptor.local_endpoint().port();
  spdlog::info("{} listening on {}:{}", name, address.to_string(), s.local_port);
  // On the acceptor's strand, like every later use of it.
  asio::post(s.acceptor.get_executor(), [state = state_] { state->accept_next(); });
  return Status::ok();
}

uint16_t Listener::local_port() const { return state_->local_port; }

Status Listener::reload_tls(const std::string& cert_file, const std::string& key_file) {
  if (!state_->tls) return Status::ok();
  if (auto s = state_->tls->load(cert_file, key_file); !s) {
    return Status(s.code(), state_->options.name + " TLS: " + s.message());
  }
  return Status::ok();
}

void Listener::set_max_connections(size_t max) {
  std::lock_guard lock(state_->mutex);
  state_->max_connections = max;
}

uint64_t Listener::refused() const {
  std::lock_guard lock(state_->mutex);
  return state_->refused;
}

size_t Listener::connections() const {
  std::lock_guard lock(state_->mutex);
  return state_->active;
}

void Listener::stop() {
  std::lock_guard lock(state_->mutex);
  for (auto& c : state_->begin_stop()) c->request_stop(c);
}

bool Listener::drain(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(state_->mutex);
  return state_->changed.wait_until(lock, deadline, [this] { return state_->active == 0; });
}

bool Listener::abort(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(state_->mutex);
  auto live = state_->begin_stop();
  state_->aborting = true;
  state_->closes_pending += live.size();
  for (auto& c : live) {
    c->request_abort(c, [state = state_] {
      std::lock_guard lock(state->mutex);
      --state->closes_pending;
      state->changed.notify_all();
    });
  }
  return state_->changed.wait_until(lock, deadline, [this] { return state_->closes_pending == 0; });
}

}  // namespace kpid::net
