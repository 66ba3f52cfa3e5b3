#pragma once
// systemd integration for Type=notify units: READY=1 once storage is open and the listeners
// are bound, RELOADING=1 / READY=1 around a SIGHUP reload, STOPPING=1 on shutdown, and
// WATCHDOG=1 pings while the server answers. Without NOTIFY_SOCKET (not run by systemd) every
// call does nothing.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace kpid::app {

class SystemdNotifier {
 public:
  // `alive` is asked before each watchdog ping (from the watchdog thread, at most every half
  // interval); it returns true when the daemon still does its work. No ping when it says no,
  // so systemd restarts a wedged kpid.
  explicit SystemdNotifier(std::function<bool()> alive);
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  // READY=1 with a STATUS line; starts the watchdog pings when WatchdogSec= is set.
  void ready(const std::string& status);
  void reloading();
  // STOPPING=1; ends the watchdog pings (call before what `alive` probes goes away).
  void stopping();

 private:
  void watchdog(uint64_t interval_us);

  std::function<bool()> alive_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kpid::app
