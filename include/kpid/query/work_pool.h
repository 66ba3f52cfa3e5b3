#pragma once
// A bounded pool of worker threads for the work the network threads must not do themselves:
// PromQL evaluation, long KPI histories and charts, label scans, admin compaction, HTTP writes. A
// request handler hands its work over with net::run_on(pool.executor(), fn) and its connection
// stays free meanwhile; at most max_concurrency tasks run at once, at most max_queued wait, and a
// task over that is refused at once (the handler answers 503) rather than queued without bound.
//
// Metrics (when given): kpid_query_pool_running and kpid_query_pool_queued (gauges),
// kpid_query_rejected_total (tasks refused because the queue was full or the pool stopping).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>

#include "kpid/core/status.h"
#include "kpid/metrics/metrics.h"
#include "kpid/query/options.h"

namespace prometheus {
class Counter;
class Gauge;
}  // namespace prometheus

namespace kpid::query {

struct WorkPoolOptions {
  size_t max_concurrency = 1;  // worker threads (tasks running at once), at least 1
  size_t max_queued = 64;      // tasks waiting for a worker; 0: none wait, over capacity refused
  // The workers' nice value (Linux, per thread; 0 keeps the process's): above 0, the kernel
  // prefers the network and ingest threads when the cores are busy, so heavy queries take what
  // ingest leaves rather than slowing it.
  int nice = 0;
  // Linux's SCHED_IDLE for the workers: they run on cores nothing else wants, and a waking
  // network or ingest thread takes the core from them at once (a nice value only weighs their
  // share). For work that holds no lock the store's own threads wait for.
  bool idle = false;
};

// The nice value of compaction workers, and of query workers at worker_priority "low": ingest
// and /healthz first when the cores are busy. Compactions are never SCHED_IDLE: one holds the
// store's maintenance lock, which checkpoints wait for.
inline constexpr int kQueryNice = 10;

// The API's query pool as [query] sets it: max_concurrency workers (0: one per core),
// max_queued waiting, at worker_priority (SCHED_IDLE, kQueryNice or the process's).
WorkPoolOptions pool_options(const QueryOptions& options);

// What the pool's executor throws when it refuses a task (net::run_on rethrows it in the
// awaiting coroutine): the queue is full or the pool is stopping. status() is unavailable.
class WorkRejected : public std::runtime_error {
 public:
  explicit WorkRejected(Status status)
      : std::runtime_error(status.message()), status_(std::move(status)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

// Thread-safe. Tasks must not throw (an exception from one is caught and dropped, so the worker
// goes on). Destruction stops the pool (stop() without a deadline) and joins every worker.
class WorkPool : public boost::asio::execution_context {
 public:
  // One queued task, move-only like Asio's handlers.
  class Task {
   public:
    Task() = default;
    template <typename F>
    requires(!std::is_same_v<std::decay_t<F>, Task>) explicit Task(F&& f)
        : impl_(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(f))) {}
    void operator()() { impl_->run(); }
    explicit operator bool() const { return impl_ != nullptr; }

   private:
    struct Base {
      virtual ~Base() = default;
      virtual void run() = 0;
    };
    template <typename F>
    struct Impl final : Base {
      explicit Impl(F fn) : f(std::move(fn)) {}
      void run() override { f(); }
      F f;
    };
    std::unique_ptr<Base> impl_;
  };

  // An Asio executor (for net::run_on and boost::asio::post) that submits to the pool and
  // throws WorkRejected when the pool refuses the task. Never runs a task inline.
  class Executor {
   public:
    explicit Executor(WorkPool* pool) noexcept : pool_(pool) {}
    boost::asio::execution_context& query(boost::asio::execution::context_t) const noexcept {
      return *pool_;
    }
    static constexpr boost::asio::execution::blocking_t::never_t query(
        boost::asio::execution::blocking_t) noexcept {
      return boost::asio::execution::blocking.never;
    }
    template <typename F>
    void execute(F&& f) const {
      if (auto s = pool_->submit(Task(std::forward<F>(f))); !s) throw WorkRejected(std::move(s));
    }
    bool operator==(const Executor& other) const noexcept { return pool_ == other.pool_; }
    bool operator!=(const Executor& other) const noexcept { return pool_ != other.pool_; }

   private:
    WorkPool* pool_;
  };

  // Starts max_concurrency workers. With `metrics`, registers the pool's metrics on it.
  explicit WorkPool(WorkPoolOptions options, metrics::Metrics* metrics = nullptr);
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues `task` to run on a worker. Errors (unavailable, the task is destroyed unrun):
  // max_queued tasks wait already ("the query queue is full: N queries running, N waiting
  // ([query] max_concurrency, max_queued)"), or the pool is stopping.
  Status submit(Task task);
  Executor executor() noexcept { return Executor(this); }

  // Set once stop() begins. Running queries watch it (QueryLimits::cancel) and stop.
  const std::atomic<bool>& cancelled() const noexcept { return stopping_; }

  // Stops the pool: refuses new tasks, sets cancelled(), destroys the queued tasks unrun (a
  // run_on awaiting one resumes with operation_aborted), waits for the running ones until
  // `deadline`, and joins the workers. True when every worker was joined; false when a task was
  // still running at the deadline (work that watches no cancel flag, e.g. a compaction that
  // only closing the store stops): its worker is joined by a later stop() or the destructor.
  bool stop(std::chrono::steady_clock::time_point deadline);

  size_t running() const;
  size_t queued() const;
  uint64_t rejected() const { return rejected_count_.load(); }
  size_t max_concurrency() const { return options_.max_concurrency; }
  size_t max_queued() const { return options_.max_queued; }

 private:
  void work();
  Status reject(std::string message);

  const WorkPoolOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;  // a task queued, or stopping
  std::condition_variable idle_;  // a worker finished a task or exited
  std::deque<Task> queue_;
  size_t running_ = 0;
  size_t exited_ = 0;  // workers that left their loop
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> rejected_count_{0};
  std::vector<std::thread> workers_;
  prometheus::Gauge* running_gauge_ = nullptr;
  prometheus::Gauge* queued_gauge_ = nullptr;
  prometheus::Counter* rejected_counter_ = nullptr;
};

}  // namespace kpid::query
