#include "kpid/query/work_pool.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <tuple>

namespace kpid::query {

WorkPoolOptions pool_options(const QueryOptions& options) {
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  return {options.max_concurrency > 0 ? static_cast<size_t>(options.max_concurrency) : cores,
          static_cast<size_t>(options.max_queued),
          options.worker_priority == WorkerPriority::kLow ? kQueryNice : 0,
          options.worker_priority == WorkerPriority::kIdle};
}

WorkPool::WorkPool(WorkPoolOptions options, metrics::Metrics* metrics)
    : options_{std::max<size_t>(options.max_concurrency, 1), options.max_queued, options.nice,
               options.idle} {
  if (metrics != nullptr) {
    auto& registry = metrics->registry();
    running_gauge_ = &prometheus::BuildGauge()
                          .Name("kpid_query_pool_running")
                          .Help(
                              "Queries and other heavy requests running on the query pool "
                              "(at most query.max_concurrency).")
                          .Register(registry)
                          .Add({});
    queued_gauge_ = &prometheus::BuildGauge()
                         .Name("kpid_query_pool_queued")
                         .Help(
                             "Queries and other heavy requests waiting for a query pool worker "
                             "(at most query.max_queued).")
                         .Register(registry)
                         .Add({});
    rejected_counter_ = &prometheus::BuildCounter()
                             .Name("kpid_query_rejected_total")
                             .Help(
                                 "Queries and other heavy requests refused with 503 because the "
                                 "query pool's queue was full or kpid was stopping.")
                             .Register(registry)
                             .Add({});
  }
  workers_.reserve(options_.max_concurrency);
  for (size_t i = 0; i < options_.max_concurrency; ++i) workers_.emplace_back([this] { work(); });
}

WorkPool::~WorkPool() {
  stop(std::chrono::steady_clock::time_point::max());
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
}

Status WorkPool::reject(std::string message) {
  rejected_count_.fetch_add(1);
  if (rejected_counter_ != nullptr) rejected_counter_->Increment();
  return Status::unavailable(std::move(message));
}

Status WorkPool::submit(Task task) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_.load()) {
      if (running_ + queue_.size() < options_.max_concurrency + options_.max_queued) {
        queue_.push_back(std::move(task));
        if (queued_gauge_ != nullptr) queued_gauge_->Set(static_cast<double>(queue_.size()));
        wake_.notify_one();
        return Status::ok();
      }
      const std::string message = "too many queries: " + std::to_string(running_) +
                                  " running and " + std::to_string(queue_.size()) +
                                  " waiting (query.max_concurrency, query.max_queued); retry later";
      return reject(message);  // the task is destroyed after the lock is released
    }
  }
  return reject("kpid is shutting down");
}

void WorkPool::work() {
  if (options_.nice != 0) {
    // Linux nice values are per thread; lowering one's own priority needs no privilege. If it
    // fails the worker just runs at the process's priority.
    const auto tid = static_cast<id_t>(syscall(SYS_gettid));
    std::ignore = setpriority(PRIO_PROCESS, tid, options_.nice);
  }
  if (options_.idle) {
    // Lowering one's own policy to SCHED_IDLE needs no privilege either.
    sched_param param{};
    std::ignore = pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);
  }
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_.load() || !queue_.empty(); });
      if (stopping_.load()) break;
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
      if (queued_gauge_ != nullptr) queued_gauge_->Set(static_cast<double>(queue_.size()));
      if (running_gauge_ != nullptr) running_gauge_->Set(static_cast<double>(running_));
    }
    try {
      task();
    } catch (...) {  // a task's own failure must not take the worker (and the pool) down
    }
    task = Task();  // whatever it holds goes before the worker counts as free
    {
      std::lock_guard lock(mutex_);
      --running_;
      if (running_gauge_ != nullptr) running_gauge_->Set(static_cast<double>(running_));
    }
    idle_.notify_all();
  }
  {
    std::lock_guard lock(mutex_);
    ++exited_;
  }
  idle_.notify_all();
}

bool WorkPool::stop(std::chrono::steady_clock::time_point deadline) {
  std::deque<Task> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_.store(true);
    dropped.swap(queue_);
    if (queued_gauge_ != nullptr) queued_gauge_->Set(0);
  }
  wake_.notify_all();
  // Destroyed outside the lock: a run_on task resumes its coroutine (operation_aborted).
  dropped.clear();
  std::unique_lock lock(mutex_);
  auto all_exited_now = [&] { return exited_ == workers_.size(); };
  bool all_exited = true;
  if (deadline == std::chrono::steady_clock::time_point::max()) {
    idle_.wait(lock, all_exited_now);
  } else {
    all_exited = idle_.wait_until(lock, deadline, all_exited_now);
  }
  lock.unlock();
  if (!all_exited) return false;
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  return true;
}

size_t WorkPool::running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

size_t WorkPool::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

}  // namespace kpid::query
