#include "shutdown_backstop.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

namespace kpid::app {

namespace {
// How long before the deadline the backstop acts, so the process is gone by the deadline.
constexpr DurationMs kMargin = 50;
}  // namespace

ShutdownBackstop::ShutdownBackstop(Deadline deadline, DurationMs timeout)
    : thread_([this, deadline, timeout] { watch(deadline, timeout); }) {}

ShutdownBackstop::~ShutdownBackstop() { finished(); }

void ShutdownBackstop::entering(const char* step) {
  std::lock_guard lock(mutex_);
  step_ = step;
}

void ShutdownBackstop::finished() {
  {
    std::lock_guard lock(mutex_);
    finished_ = true;
  }
  done_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ShutdownBackstop::watch(Deadline deadline, DurationMs timeout) {
  std::unique_lock lock(mutex_);
  if (done_.wait_until(lock, deadline.leaving(kMargin).when(), [this] { return finished_; })) {
    return;
  }
  spdlog::error(
      "shutdown: shutdown_timeout ({}) reached while '{}' was still running; exiting now "
      "without finishing the stop (everything acknowledged is in the write-ahead log and is "
      "replayed at the next start)",
      format_duration(timeout), step_);
  spdlog::default_logger()->flush();
  _exit(0);
}

}  // namespace kpid::app
