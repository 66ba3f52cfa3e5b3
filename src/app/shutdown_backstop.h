#pragma once
// The last guarantee of a bounded stop: if the stop has not finished shortly before its
// deadline, whatever step it is stuck in, the process ends there. Everything acknowledged is in
// RocksDB's write-ahead log and replays at the next start (as after kill -9), so ending early
// loses nothing; a stop that hangs until systemd's SIGKILL is what an operator must never see.
// Every step has its own bound, so this fires only for a hang nobody foresaw, and says so.

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "kpid/core/deadline.h"

namespace kpid::app {

class ShutdownBackstop {
 public:
  // Starts watching; `timeout` only names the deadline in the log line.
  ShutdownBackstop(Deadline deadline, DurationMs timeout);
  ~ShutdownBackstop();
  ShutdownBackstop(const ShutdownBackstop&) = delete;
  ShutdownBackstop& operator=(const ShutdownBackstop&) = delete;

  // The step the stop is in now, for the log line.
  void entering(const char* step);
  // The stop is over: the watch ends.
  void finished();

 private:
  void watch(Deadline deadline, DurationMs timeout);

  std::mutex mutex_;
  std::condition_variable done_;
  bool finished_ = false;
  std::string step_ = "starting the stop";
  std::thread thread_;
};

}  // namespace kpid::app
