// net::run_on: work on another executor, the answer back on the caller's.

#include "kpid/net/run_on.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

using namespace kpid;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

// A minimal executor whose execute() is `Policy::execute(task)`: a stand-in for pools that
// refuse a task or drop it unrun.
template <typename Policy>
struct TestExecutor {
  asio::thread_pool* context;
  asio::execution_context& query(asio::execution::context_t) const noexcept { return *context; }
  static constexpr asio::execution::blocking_t::never_t query(asio::execution::blocking_t) {
    return asio::execution::blocking.never;
  }
  template <typename F>
  void execute(F&& f) const {
    Policy::execute(std::forward<F>(f));
  }
  bool operator==(const TestExecutor& o) const noexcept { return context == o.context; }
  bool operator!=(const TestExecutor& o) const noexcept { return context != o.context; }
};

// Throws when handed a task, as a pool with a full queue may.
struct Refuse {
  template <typename F>
  static void execute(F&&) {
    throw std::runtime_error("queue full");
  }
};
using RefusingExecutor = TestExecutor<Refuse>;

// Takes the task and destroys it without running it, as a pool stopped with tasks queued may.
struct Drop {
  template <typename F>
  static void execute(F&& f) {
    auto dropped = std::forward<F>(f);
  }
};
using DroppingExecutor = TestExecutor<Drop>;

// Runs `body` as a coroutine on a strand of `io` with io.run() on this thread; returns once
// io.run() does, which needs no other work than the coroutine's.
void run_coroutine(asio::io_context& io, std::function<asio::awaitable<void>()> body) {
  std::exception_ptr failure;
  asio::co_spawn(asio::make_strand(io), std::move(body),
                 [&](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

TEST_CASE(
    "run_on: the work runs on the other executor, the coroutine resumes on its own with "
    "the result") {
  asio::io_context io;
  asio::thread_pool pool(1);
  std::thread::id caller;
  std::thread::id worker;
  std::string got;
  bool back_on_strand = false;
  run_coroutine(io, [&]() -> asio::awaitable<void> {
    caller = std::this_thread::get_id();
    const std::string input = "request";
    // No other work keeps io.run() going while the pool sleeps: run_on must count as work.
    got = co_await net::run_on(pool.get_executor(), [&] {
      worker = std::this_thread::get_id();
      std::this_thread::sleep_for(100ms);
      return input + " evaluated";
    });
    auto executor = co_await asio::this_coro::executor;
    back_on_strand =
        executor.target<asio::strand<asio::io_context::executor_type>>()->running_in_this_thread();
  });
  pool.join();
  CHECK(got == "request evaluated");
  CHECK(worker != caller);
  CHECK(worker != std::thread::id());
  CHECK(back_on_strand);
}

TEST_CASE("run_on: an exception from the work is rethrown in the coroutine") {
  asio::io_context io;
  asio::thread_pool pool(1);
  std::string caught;
  int value = 0;
  run_coroutine(io, [&]() -> asio::awaitable<void> {
    try {
      value = co_await net::run_on(pool.get_executor(),
                                   []() -> int { throw std::invalid_argument("bad query"); });
    } catch (const std::invalid_argument& e) {
      caught = e.what();
    }
    // void work, and the coroutine goes on normally after a failure.
    co_await net::run_on(pool.get_executor(), [&] { value = 7; });
  });
  pool.join();
  CHECK(caught == "bad query");
  CHECK(value == 7);
}

TEST_CASE(
    "run_on: an executor that refuses the task, or drops it unrun, resumes the coroutine "
    "with an error") {
  asio::io_context io;
  asio::thread_pool context(1);
  std::string refused;
  std::string dropped;
  run_coroutine(io, [&]() -> asio::awaitable<void> {
    try {
      co_await net::run_on(RefusingExecutor{&context}, [] { return 1; });
    } catch (const std::runtime_error& e) {
      refused = e.what();
    }
    try {
      co_await net::run_on(DroppingExecutor{&context}, [] { return 1; });
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == asio::error::operation_aborted);
      dropped = e.what();
    }
  });
  context.join();
  CHECK(refused == "queue full");
  CHECK_THAT(dropped, Catch::Contains("the executor dropped the task"));
}
