// WorkPool: bounded concurrency and queue, refusal over the limit, stop() that cancels running
// work, drops queued work and joins; and its Asio executor under net::run_on.
#include "kpid/query/work_pool.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kpid/metrics/metrics.h"
#include "kpid/net/run_on.h"

using namespace kpid;
using namespace kpid::query;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

// Holds tasks until released; counts how many run at once.
class Gate {
 public:
  void enter() {
    std::unique_lock lock(mutex_);
    ++inside_;
    peak_ = std::max(peak_, inside_);
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
    --inside_;
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  bool wait_inside(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return inside_ == n; });
  }
  int peak() {
    std::lock_guard lock(mutex_);
    return peak_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
  int inside_ = 0;
  int peak_ = 0;
};

bool eventually(const std::function<bool()>& condition) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return condition();
}

}  // namespace

TEST_CASE("work pool: runs at most max_concurrency tasks at once and queues max_queued") {
  metrics::Metrics metrics;
  WorkPool pool({2, 3}, &metrics);
  Gate gate;
  std::atomic<int> done{0};
  for (int i = 0; i < 5; ++i) {
    REQUIRE(pool.submit(WorkPool::Task([&] {
                  gate.enter();
                  ++done;
                }))
                .is_ok());
  }
  REQUIRE(gate.wait_inside(2));
  CHECK(pool.running() == 2);
  CHECK(pool.queued() == 3);
  const std::string text = metrics.scrape();
  CHECK(text.find("kpid_query_pool_running 2") != std::string::npos);
  CHECK(text.find("kpid_query_pool_queued 3") != std::string::npos);

  // The sixth is refused at once, with what is running and waiting.
  auto refused = pool.submit(WorkPool::Task([&] { ++done; }));
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.code() == StatusCode::kUnavailable);
  CHECK(refused.message() ==
        "too many queries: 2 running and 3 waiting (query.max_concurrency, query.max_queued); "
        "retry later");
  CHECK(pool.rejected() == 1);
  CHECK(metrics.scrape().find("kpid_query_rejected_total 1") != std::string::npos);

  gate.open();
  REQUIRE(eventually([&] { return done.load() == 5; }));
  CHECK(gate.peak() == 2);
  REQUIRE(eventually([&] { return pool.running() == 0; }));
  CHECK(pool.queued() == 0);
  // Room again once the queue has drained.
  CHECK(pool.submit(WorkPool::Task([&] { ++done; })).is_ok());
  REQUIRE(eventually([&] { return done.load() == 6; }));
}

TEST_CASE(
    "work pool: stop() sets the cancel flag, drops queued tasks unrun, refuses new ones and "
    "joins the workers") {
  WorkPool pool({1, 4});
  std::atomic<bool> started{false};
  std::atomic<bool> saw_cancel{false};
  std::atomic<int> queued_ran{0};
  REQUIRE(pool.submit(WorkPool::Task([&] {
                started = true;
                // A query watching the flag, as QueryLimits::cancel does.
                while (!pool.cancelled().load()) std::this_thread::sleep_for(1ms);
                saw_cancel = true;
              }))
              .is_ok());
  REQUIRE(eventually([&] { return started.load(); }));
  // A queued task is destroyed unrun: what it owns goes with it.
  auto owned = std::make_shared<int>(7);
  std::weak_ptr<int> watch = owned;
  REQUIRE(pool.submit(WorkPool::Task([&, owned = std::move(owned)] { ++queued_ran; })).is_ok());
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(pool.stop(std::chrono::steady_clock::now() + 5s));
  CHECK(std::chrono::steady_clock::now() - t0 < 4s);
  CHECK(saw_cancel.load());
  CHECK(queued_ran.load() == 0);
  CHECK(watch.expired());
  auto late = pool.submit(WorkPool::Task([] {}));
  REQUIRE_FALSE(late.is_ok());
  CHECK(late.code() == StatusCode::kUnavailable);
  CHECK(late.message() == "kpid is shutting down");
}

TEST_CASE("work pool: stop() gives up at its deadline on work that ignores the cancel flag") {
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> started{false};
  auto pool = std::make_unique<WorkPool>(WorkPoolOptions{1, 0});
  REQUIRE(pool->submit(WorkPool::Task([&, released] {
                started = true;
                released.wait();
              }))
              .is_ok());
  REQUIRE(eventually([&] { return started.load(); }));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(pool->stop(std::chrono::steady_clock::now() + 100ms));
  const auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(waited >= 100ms);
  CHECK(waited < 5s);
  // The destructor joins it once the work ends.
  release.set_value();
  pool.reset();
}

TEST_CASE("work pool: net::run_on through its executor, a full queue throws WorkRejected") {
  WorkPool pool({1, 0});
  asio::io_context io;
  std::string answer;
  std::string refused;
  std::thread::id worker;
  Gate gate;
  // Occupies the only worker, so the coroutine's second task is refused.
  std::atomic<bool> hold_worker{false};
  asio::co_spawn(
      asio::make_strand(io),
      [&]() -> asio::awaitable<void> {
        answer = co_await net::run_on(pool.executor(), [&] {
          worker = std::this_thread::get_id();
          return std::string("evaluated");
        });
        // The worker counts as free once the task has returned, a moment after the answer.
        while (pool.running() != 0) std::this_thread::sleep_for(1ms);
        REQUIRE(pool.submit(WorkPool::Task([&] {
                      hold_worker = true;
                      gate.enter();
                    }))
                    .is_ok());
        while (!hold_worker.load()) std::this_thread::sleep_for(1ms);
        try {
          co_await net::run_on(pool.executor(), [] { return 1; });
        } catch (const WorkRejected& e) {
          refused = e.what();
          CHECK(e.status().code() == StatusCode::kUnavailable);
        }
        gate.open();
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  CHECK(answer == "evaluated");
  CHECK(worker != std::this_thread::get_id());
  CHECK(refused.starts_with("too many queries: 1 running and 0 waiting"));
}

TEST_CASE("work pool: a task queued when the pool stops resumes its run_on with an error") {
  WorkPool pool({1, 2});
  asio::io_context io;
  Gate gate;
  std::atomic<bool> busy{false};
  REQUIRE(pool.submit(WorkPool::Task([&] {
                busy = true;
                gate.enter();
              }))
              .is_ok());
  REQUIRE(eventually([&] { return busy.load(); }));
  bool aborted = false;
  bool ran = false;
  asio::co_spawn(
      asio::make_strand(io),
      [&]() -> asio::awaitable<void> {
        try {
          co_await net::run_on(pool.executor(), [&] { ran = true; });
        } catch (const boost::system::system_error& e) {
          aborted = e.code() == asio::error::operation_aborted;
        }
      },
      asio::detached);
  // The io_context's thread waits for the coroutine's answer (run_on counts as work).
  std::thread network([&] { io.run(); });
  // The coroutine's task waits behind the busy worker; stopping drops it.
  REQUIRE(eventually([&] { return pool.queued() == 1; }));
  std::thread stopper([&] { pool.stop(std::chrono::steady_clock::now() + 5s); });
  REQUIRE(eventually([&] { return pool.queued() == 0; }));
  gate.open();
  stopper.join();
  network.join();
  CHECK(aborted);
  CHECK_FALSE(ran);
}

TEST_CASE("work pool: workers run at the nice value asked for, other threads keep theirs") {
  const int own = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
  WorkPool pool({1, 0, 10});
  std::promise<int> seen;
  REQUIRE(pool.submit(WorkPool::Task([&] {
                seen.set_value(getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid))));
              }))
              .is_ok());
  auto worker_nice = seen.get_future().get();
  if (own <= 10) CHECK(worker_nice == 10);  // raising priority back would need privileges
  CHECK(getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid))) == own);
}

TEST_CASE("work pool: idle workers run under SCHED_IDLE, other threads keep their policy") {
  const int own = sched_getscheduler(0);
  WorkPoolOptions options{1, 0, 0};
  options.idle = true;
  WorkPool pool(options);
  std::promise<int> seen;
  REQUIRE(pool.submit(WorkPool::Task([&] { seen.set_value(sched_getscheduler(0)); })).is_ok());
  CHECK(seen.get_future().get() == SCHED_IDLE);
  CHECK(sched_getscheduler(0) == own);
}

TEST_CASE("work pool: the API's query pool is SCHED_IDLE, one worker per core by default") {
  const WorkPoolOptions options = pool_options(QueryOptions{});
  CHECK(options.idle);
  CHECK(options.nice == 0);
  CHECK(options.max_concurrency == std::max(1u, std::thread::hardware_concurrency()));
  QueryOptions low;
  low.worker_priority = WorkerPriority::kLow;
  CHECK_FALSE(pool_options(low).idle);
  CHECK(pool_options(low).nice == kQueryNice);
  QueryOptions normal;
  normal.worker_priority = WorkerPriority::kNormal;
  CHECK_FALSE(pool_options(normal).idle);
  CHECK(pool_options(normal).nice == 0);
}

TEST_CASE("work pool: query.worker_priority takes effect after a restart, not a reload") {
  QueryOptions running;
  QueryOptions next;
  next.worker_priority = WorkerPriority::kNormal;
  CHECK(keys_needing_restart(running, next) == std::vector<std::string>{"query.worker_priority"});
  CHECK(reloaded(running, next).worker_priority == WorkerPriority::kIdle);
}
