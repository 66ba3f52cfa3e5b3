#pragma once
// A small line protocol on net::Listener for the connection layer's tests: it shows what a
// protocol supplies (one session coroutine) and gives the tests requests that finish at once,
// later, or only when the test says so.
//
// One request per line, one answer line "echo: <line>" per request:
//   "slow MS"  busy for MS milliseconds (a timer on the connection's strand), then answered
//   "wait"     its work runs on a thread pool (net::run_on) until the test opens the gate; the
//              work reads the request line from the session's coroutine frame
//   "pause MS" Connection::pause(MS); answered "echo: paused" or "echo: pause ended by a stop"
//   anything else is answered at once.

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kpid/net/listener.h"
#include "kpid/net/run_on.h"

namespace kpid::testing {

// Blocks the threads that wait() until open().
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mutex_);
    opened_cv_.wait(lock, [this] { return opened_; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    opened_ = true;
    opened_cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_cv_;
  bool opened_ = false;
};

class EchoServer {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts `network_threads` threads on the io_context and a listener on an ephemeral port.
  // `options.name` defaults to "echo".
  explicit EchoServer(net::ListenerOptions options, DurationMs request_timeout = 5'000,
                      int network_threads = 1)
      : request_timeout_(request_timeout) {
    if (options.name.empty()) options.name = "echo";
    listener_.emplace(io_, std::move(options), [this](net::Connection& c) { return serve(c); });
    start_status_ = listener_->start();
    for (int i = 0; i < network_threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  // Whatever a test left running ends here, in the order the layer needs: the gate opens (so
  // offloaded work returns), connections end or are aborted, the pool joins, then the network.
  ~EchoServer() {
    gate_.open();
    listener_->stop();
    if (!listener_->drain(Clock::now() + std::chrono::seconds(2))) {
      listener_->abort(Clock::now() + std::chrono::seconds(1));
    }
    pool_.join();
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
    listener_.reset();
  }

  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  const Status& start_status() const { return start_status_; }
  net::Listener& listener() { return *listener_; }
  uint16_t port() const { return listener_->local_port(); }
  Gate& gate() { return gate_; }
  // Requests read in full so far (counted before they are worked on).
  int started() const { return started_.load(); }
  // Waits until `n` requests were read in full, at most 5 s.
  bool wait_started(int n) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (started_.load() < n) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

 private:
  boost::asio::awaitable<void> serve(net::Connection& c) {
    namespace asio = boost::asio;
    std::string pending;
    std::array<char, 1024> chunk{};
    for (;;) {
      if (pending.find('\n') == std::string::npos) {
        auto [ec, n] = co_await c.read_idle(asio::buffer(chunk));
        if (ec) co_return;
        pending.append(chunk.data(), n);
      }
      auto busy = c.busy();
      c.set_timeout(request_timeout_);
      while (pending.find('\n') == std::string::npos) {
        auto [ec, n] = co_await c.stream().async_read_some(asio::buffer(chunk),
                                                           asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        pending.append(chunk.data(), n);
      }
      const size_t nl = pending.find('\n');
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      ++started_;
      c.set_timeout(0);
      if (line.starts_with("slow ")) {
        asio::steady_timer timer(co_await asio::this_coro::executor,
                                 std::chrono::milliseconds(std::stoll(line.substr(5))));
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      } else if (line == "wait") {
        line = co_await net::run_on(pool_.get_executor(), [&] {
          gate_.wait();
          return line + " released";  // reads the frame's `line` after the gate opened
        });
      } else if (line.starts_with("pause ")) {
        const bool paused = co_await c.pause(std::chrono::milliseconds(std::stoll(line.substr(6))));
        line = paused ? "paused" : "pause ended by a stop";
      }
      const std::string answer = "echo: " + line + "\n";
      c.set_timeout(request_timeout_);
      auto [wec, wn] = co_await asio::async_write(c.stream(), asio::buffer(answer),
                                                  asio::as_tuple(asio::use_awaitable));
      (void)wn;
      if (wec || c.stopping()) co_return;
    }
  }

  const DurationMs request_timeout_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      boost::asio::make_work_guard(io_)};
  std::vector<std::thread> threads_;
  boost::asio::thread_pool pool_{1};
  Gate gate_;
  std::atomic<int> started_{0};
  std::optional<net::Listener> listener_;
  Status start_status_;
};

}  // namespace kpid::testing
