// HttpServer on the connection layer with asynchronous handlers: work handed to a pool keeps
// the network thread free, and a stop finishes or aborts requests whose work runs elsewhere.

#include "kpid/server/http_server.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kpid/net/run_on.h"
#include "support/raw_client.h"

using namespace kpid;
using namespace std::chrono_literals;
using Catch::Contains;
using kpid::testing::RawClient;
using SteadyClock = std::chrono::steady_clock;
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

long long ms_since(SteadyClock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0).count();
}

std::string get(const std::string& target, bool keep_alive = true) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
         (keep_alive ? "" : "Connection: close\r\n") + "\r\n";
}

// An HTTP server with ONE network thread and a pool of two for offloaded work:
//   /healthz      answered on the network thread
//   /sleep?MS     sleeps MS on the pool (run_on), then answers "slept"
//   /blocked      waits on the pool until release(), then answers "released"
//   /timer?MS     waits MS on a timer of the connection's strand, then answers "timer"
class Server {
 public:
  Server() {
    server::HttpOptions options;
    options.listen = "127.0.0.1:0";  // the kernel picks a free port
    server_.emplace(
        io_, options, [this](const server::Request& r) { return handle(r); },
        [](const server::Request&, uint64_t) {
          return server::Response{http::status::payload_too_large, 11};
        });
    REQUIRE(server_->start());
    network_ = std::thread([this] { io_.run(); });
  }
  ~Server() {
    release();
    server_->listener().stop();
    if (!server_->listener().drain(SteadyClock::now() + 1s))
      server_->listener().abort(SteadyClock::now() + 1s);
    pool_.join();
    work_.reset();
    io_.stop();
    network_.join();
    server_.reset();
  }

  server::HttpServer& http() { return *server_; }
  uint16_t port() const { return server_->local_port(); }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    released_cv_.notify_all();
  }
  // Waits until `n` requests reached the handler, at most 5 s.
  bool wait_handled(int n) {
    const auto deadline = SteadyClock::now() + 5s;
    while (handled_.load() < n && SteadyClock::now() < deadline) std::this_thread::sleep_for(2ms);
    return handled_.load() >= n;
  }

 private:
  asio::awaitable<server::Response> handle(const server::Request& request) {
    ++handled_;
    const std::string target(request.target());
    std::string body;
    if (target.starts_with("/sleep?")) {
      body = co_await net::run_on(pool_.get_executor(), [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::stoll(target.substr(7))));
        return std::string("slept");
      });
    } else if (target == "/blocked") {
      body = co_await net::run_on(pool_.get_executor(), [&] {
        std::unique_lock lock(mutex_);
        released_cv_.wait(lock, [this] { return released_; });
        // Reads the request in the waiting coroutine's frame, after an abort too.
        return "released " + std::string(request.target());
      });
    } else if (target.starts_with("/timer?")) {
      asio::steady_timer timer(co_await asio::this_coro::executor,
                               std::chrono::milliseconds(std::stoll(target.substr(7))));
      co_await timer.async_wait(asio::use_awaitable);
      body = "timer";
    } else {
      body = "ok";
    }
    server::Response response{http::status::ok, request.version()};
    response.body() = body + "\n";
    co_return response;
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  asio::thread_pool pool_{2};
  std::mutex mutex_;
  std::condition_variable released_cv_;
  bool released_ = false;
  std::atomic<int> handled_{0};
  std::optional<server::HttpServer> server_;
  std::thread network_;
};

}  // namespace

TEST_CASE(
    "http server: with one network thread, /healthz answers while another request's "
    "offloaded work sleeps 1 s") {
  Server server;
  RawClient slow(server.port());
  const auto t0 = SteadyClock::now();
  slow.send(get("/sleep?1000"));
  REQUIRE(server.wait_handled(1));

  RawClient health(server.port());  // keep-alive: one connection, many requests
  for (int i = 0; i < 10; ++i) {
    const auto sent = SteadyClock::now();
    health.send(get("/healthz"));
    const std::string answer = health.read_until("ok\n", 2s);
    const auto took = ms_since(sent);
    INFO("request " << i << " took " << took << " ms: " << answer);
    CHECK(took < 50);
    REQUIRE_THAT(answer, Contains("HTTP/1.1 200 OK") && Contains("ok\n"));
    health.take();
  }
  CHECK(ms_since(t0) < 1000);
  CHECK_THAT(slow.read_until("slept\n", 3s), Contains("HTTP/1.1 200 OK"));
  CHECK_THAT(slow.received(), Contains("slept"));
  CHECK(ms_since(t0) >= 950);
}

TEST_CASE(
    "http server: stop() closes idle connections at once, a request whose work runs "
    "elsewhere is answered, with Connection: close") {
  Server server;
  RawClient idle(server.port());
  idle.send(get("/healthz"));
  REQUIRE_THAT(idle.read_until("ok\n", 2s), Contains("200 OK"));
  RawClient busy(server.port());
  busy.send(get("/sleep?600"));
  REQUIRE(server.wait_handled(2));
  RawClient half_sent(server.port());  // in flight from its first byte: header and half a body
  half_sent.send("POST /write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n12345");
  std::this_thread::sleep_for(100ms);

  const auto t0 = SteadyClock::now();
  server.http().listener().stop();
  CHECK(idle.closed_within(1s));
  CHECK(ms_since(t0) < 300);
  CHECK_FALSE(half_sent.closed());
  half_sent.send("67890");
  CHECK_THAT(half_sent.read_until("ok\n", 2s),
             Contains("HTTP/1.1 200 OK") && Contains("Connection: close"));
  CHECK(half_sent.closed_within(1s));
  const std::string answer = busy.read_until("slept\n", 3s);
  CHECK_THAT(answer,
             Contains("HTTP/1.1 200 OK") && Contains("Connection: close") && Contains("slept"));
  CHECK(busy.closed_within(1s));
  CHECK(server.http().listener().drain(SteadyClock::now() + 2s));
}

TEST_CASE(
    "http server: drain() returns false at its deadline, abort() closes requests whose "
    "handler never finishes without an answer") {
  Server server;
  RawClient offloaded(server.port());
  offloaded.send(get("/blocked"));
  RawClient on_strand(server.port());
  on_strand.send(get("/timer?3600000"));
  REQUIRE(server.wait_handled(2));

  server.http().listener().stop();
  auto t0 = SteadyClock::now();
  CHECK_FALSE(server.http().listener().drain(SteadyClock::now() + 300ms));
  CHECK(ms_since(t0) >= 250);

  t0 = SteadyClock::now();
  CHECK(server.http().listener().abort(SteadyClock::now() + 1s));
  CHECK(offloaded.closed_within(1s));
  CHECK(on_strand.closed_within(1s));
  CHECK(ms_since(t0) < 500);
  CHECK(offloaded.received().empty());
  CHECK(on_strand.received().empty());

  // The blocked work reads the request from the aborted coroutine's frame when it resumes;
  // the frame is still there (ASan would say otherwise) and the answer goes nowhere.
  server.release();
  std::this_thread::sleep_for(100ms);
  CHECK(offloaded.received().empty());
}

TEST_CASE(
    "http server: a keep-alive connection's requests are answered in turn when one waits "
    "on the pool, HEAD gets GET's Content-Length") {
  Server server;
  RawClient client(server.port());
  client.send(get("/sleep?50") + get("/healthz"));  // pipelined
  const std::string answers = client.read_until("ok\n", 3s);
  const auto slept = answers.find("slept\n");
  const auto ok = answers.find("ok\n");
  REQUIRE(slept != std::string::npos);
  REQUIRE(ok != std::string::npos);
  CHECK(slept < ok);
  client.take();
  client.send("HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  const std::string head = client.read_until("\r\n\r\n", 2s);
  CHECK_THAT(head, Contains("Content-Length: 3\r\n"));
  CHECK_FALSE(client.closed_within(100ms));
  CHECK(client.received().ends_with("\r\n\r\n"));
}
