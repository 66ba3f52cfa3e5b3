#pragma once
// A module's background thread whose end can be waited for until a deadline: a stop asks the
// thread to end (the module's own flag or stop token), waits for it at most until the shared
// shutdown deadline, says so when it is late, then joins it.

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "kpid/core/deadline.h"

namespace kpid {

class WorkerThread {
 public:
  WorkerThread() = default;
  ~WorkerThread() { join(); }
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  // Runs `body` on a new thread (once per WorkerThread).
  void start(std::function<void()> body) {
    state_ = std::make_shared<State>();
    thread_ = std::thread([state = state_, body = std::move(body)] {
      body();
      std::lock_guard lock(state->mutex);
      state->done = true;
      state->ended.notify_all();
    });
  }

  bool started() const { return thread_.joinable(); }

  // Waits for the body to return, at most until `deadline`: false if it is still running then.
  bool wait(Deadline deadline) {
    if (!state_) return true;
    std::unique_lock lock(state_->mutex);
    auto done = [this] { return state_->done; };
    if (deadline.when() == Deadline::SteadyClock::time_point::max()) {
      state_->ended.wait(lock, done);
      return true;
    }
    return state_->ended.wait_until(lock, deadline.when(), done);
  }

  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable ended;
    bool done = false;
  };
  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace kpid
