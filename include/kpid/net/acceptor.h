#pragma once
// A TCP acceptor that keeps track of its live connections, so a server can stop accepting,
// ask every connection to end, and wait for them to drain. Shared by the HTTP server and the
// TCP line-protocol listener.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "kpid/core/status.h"
#include "kpid/core/time.h"

namespace kpid::net {

// A connection the acceptor can ask to end. request_stop() is called from any thread; an
// implementation posts to its own strand and ends once any in-flight work is finished.
class StoppableConnection {
 public:
  virtual ~StoppableConnection() = default;
  virtual void request_stop() = 0;
};

class Acceptor {
 public:
  // Builds and starts a connection for an accepted socket (which is bound to a fresh strand).
  // The connection must call connection_ended() exactly once when it is over.
  using OnAccept =
      std::function<std::shared_ptr<StoppableConnection>(boost::asio::ip::tcp::socket)>;

  // `what` names the listener in logs and errors ("HTTP", "line protocol").
  Acceptor(boost::asio::io_context& io, std::string what);
  ~Acceptor();

  // Binds HOST:PORT (port 0: the kernel picks; see local_port()) and logs
  // "<what> listening on HOST:PORT". A failure is returned, never just logged.
  Status listen(const std::string& host, uint16_t port);
  uint16_t local_port() const { return local_port_; }
  void start(OnAccept on_accept);
  // At most this many live connections (0: no limit); one more is closed as soon as it is
  // accepted, so a flood of idle sockets cannot exhaust file descriptors or memory.
  // Thread-safe; applies to connections accepted from then on.
  void set_max_connections(size_t max);
  // Connections closed at once because of the limit, since the start.
  uint64_t refused() const;

  void connection_ended();
  // Stops accepting and asks every live connection to end. Thread-safe, idempotent.
  void stop();
  // Waits until every connection has ended or `timeout` passed; returns whether all ended.
  bool wait_idle(DurationMs timeout);

 private:
  void accept_next();

  boost::asio::io_context& io_;
  std::string what_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t local_port_ = 0;
  OnAccept on_accept_;

  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::list<std::weak_ptr<StoppableConnection>> connections_;
  size_t active_ = 0;
  size_t max_connections_ = 0;
  uint64_t refused_ = 0;
  TimestampMs last_refusal_log_ = 0;
  bool stopping_ = false;
};

}  // namespace kpid::net
