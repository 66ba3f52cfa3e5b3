#include "kpid/net/acceptor.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>

namespace kpid::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Acceptor::Acceptor(asio::io_context& io, std::string what)
    : io_(io), what_(std::move(what)), acceptor_(asio::make_strand(io)) {}

Acceptor::~Acceptor() { stop(); }

Status Acceptor::listen(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  std::string where = host + ":" + std::to_string(port);
  if (ec) return Status::invalid_argument(what_ + ": bad listen address " + where);
  tcp::endpoint endpoint(address, port);
  if (acceptor_.open(endpoint.protocol(), ec); ec) {
    return Status::io_error(what_ + ": cannot open a socket for " + where + ": " + ec.message());
  }
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (acceptor_.bind(endpoint, ec); ec) {
    return Status::io_error(what_ + ": cannot bind " + where + ": " + ec.message());
  }
  if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return Status::io_error(what_ + ": cannot listen on " + where + ": " + ec.message());
  }
  local_port_ = acceptor_.local_endpoint().port();
  spdlog::info("{} listening on {}:{}", what_, address.to_string(), local_port_);
  return Status::ok();
}

void Acceptor::start(OnAccept on_accept) {
  on_accept_ = std::move(on_accept);
  accept_next();
}

void Acceptor::set_max_connections(size_t max) {
  std::lock_guard lock(mutex_);
  max_connections_ = max;
}

uint64_t Acceptor::refused() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

void Acceptor::accept_next() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
  }
  acceptor_.async_accept(
      asio::make_strand(io_), [this](boost::system::error_code ec, tcp::socket socket) {
        bool over_limit = false;
        {
          std::lock_guard lock(mutex_);
          if (stopping_ || !acceptor_.is_open()) return;
          over_limit = !ec && max_connections_ > 0 && active_ >= max_connections_;
          if (over_limit) {
            ++refused_;
          } else if (!ec) {
            ++active_;
          }
        }
        if (over_limit) {
          boost::system::error_code ignored;
          socket.close(ignored);
          const TimestampMs now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now().time_since_epoch())
                                      .count();
          {
            std::lock_guard lock(mutex_);
            if (now - last_refusal_log_ >= 10'000) {  // at most one line per 10 s under a flood
              last_refusal_log_ = now;
              spdlog::warn("{}: {} connections open, the limit; closing new ones ({} so far)",
                           what_, max_connections_, refused_);
            }
          }
          accept_next();
          return;
        }
        if (ec) {
          // Out of file descriptors and the like: back off instead of spinning.
          spdlog::warn("{}: accept failed: {}", what_, ec.message());
          auto timer = std::make_shared<asio::steady_timer>(acceptor_.get_executor(),
                                                            std::chrono::milliseconds(100));
          timer->async_wait([this, timer](boost::system::error_code) { accept_next(); });
          return;
        }
        {
          auto connection = on_accept_(std::move(socket));
          std::lock_guard lock(mutex_);
          connections_.push_back(connection);
          // A stop() that ran between the two locks missed this connection: end it now.
          if (stopping_) connection->request_stop();
        }
        accept_next();
      });
}

void Acceptor::connection_ended() {
  std::lock_guard lock(mutex_);
  connections_.remove_if([](const auto& w) { return w.expired(); });
  --active_;
  idle_.notify_all();
}

void Acceptor::stop() {
  std::list<std::weak_ptr<StoppableConnection>> connections;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    connections = connections_;
  }
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  for (auto& weak : connections) {
    if (auto c = weak.lock()) c->request_stop();
  }
}

bool Acceptor::wait_idle(DurationMs timeout) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, std::chrono::milliseconds(timeout), [this] { return active_ == 0; });
}

}  // namespace kpid::net
