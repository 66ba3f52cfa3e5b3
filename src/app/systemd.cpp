#include "kpid/app/systemd.h"

#include <systemd/sd-daemon.h>

#include <chrono>

#include <spdlog/spdlog.h>

namespace kpid::app {

SystemdNotifier::SystemdNotifier(std::function<bool()> alive) : alive_(std::move(alive)) {}

SystemdNotifier::~SystemdNotifier() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SystemdNotifier::ready(const std::string& status) {
  const std::string message = "READY=1\nSTATUS=" + status;
  if (sd_notify(0, message.c_str()) > 0) spdlog::info("systemd: told READY=1");
  uint64_t interval_us = 0;
  if (!thread_.joinable() && sd_watchdog_enabled(0, &interval_us) > 0 && interval_us > 0) {
    spdlog::info("systemd: watchdog every {} ms", interval_us / 1000);
    thread_ = std::thread([this, interval_us] { watchdog(interval_us); });
  }
}

void SystemdNotifier::reloading() { sd_notify(0, "RELOADING=1\nSTATUS=reloading"); }

void SystemdNotifier::stopping() {
  sd_notify(0, "STOPPING=1\nSTATUS=stopping");
  // Joined here, while what `alive` probes still exists.
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SystemdNotifier::watchdog(uint64_t interval_us) {
  // Half the interval, as sd_watchdog_enabled(3) advises.
  const auto period = std::chrono::microseconds(interval_us / 2);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    if (alive_()) {
      sd_notify(0, "WATCHDOG=1");
    } else {
      spdlog::warn("systemd: not pinging the watchdog: kpid does not answer its own probe");
    }
    lock.lock();
    wake_.wait_for(lock, period, [&] { return stopping_; });
  }
}

}  // namespace kpid::app
