// systemd integration: the unit verifies, `cmake --install` lays out kpid, the unit and the
// config, and kpid speaks the sd_notify protocol (READY, WATCHDOG, RELOADING, STOPPING) to a
// NOTIFY_SOCKET this test listens on, as systemd would for Type=notify.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <regex>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;

namespace {

const std::string kSourceDir = std::string(KPID_TEST_DATA_DIR) + "/../..";

// A datagram socket like systemd's notify socket; collects the messages.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path_.size() < sizeof(addr.sun_path));
    std::strcpy(addr.sun_path, path_.c_str());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{0, 100'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() { ::close(fd_); }

  // Reads what arrived until `pred` holds on the messages so far or `timeout` passes.
  bool wait(const std::function<bool(const std::vector<std::string>&)>& pred,
            std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    while (!pred(messages_)) {
      if (Clock::now() > until) return false;
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n > 0) messages_.emplace_back(buffer, static_cast<size_t>(n));
    }
    return true;
  }
  const std::vector<std::string>& messages() const { return messages_; }
  size_t count(std::string_view needle) const {
    size_t n = 0;
    for (const auto& m : messages_) n += contains(m, needle) ? 1 : 0;
    return n;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<std::string> messages_;
};

std::string joined(const std::vector<std::string>& messages) {
  std::string out;
  for (const auto& m : messages) out += "[" + m + "] ";
  return out;
}

}  // namespace

TEST_CASE("systemd: kpid tells a Type=notify manager READY, WATCHDOG, RELOADING and STOPPING",
          "[systemd]") {
  TempDir dir;
  NotifySocket notify(dir.file("notify.sock"));
  const uint16_t port = free_port();
  write_file(dir.file("kpid.toml"), "[log]\nlevel = \"info\"\n");
  BackgroundProcess kpid(
      "kpid",
      {"/usr/bin/env", "NOTIFY_SOCKET=" + dir.file("notify.sock"), "WATCHDOG_USEC=400000",
       kKpidBinary, "--config", dir.file("kpid.toml"), "--data-dir", dir.file("data"),
       "--http-listen", "127.0.0.1:" + std::to_string(port), "--line-listen", ""},
      dir.file("kpid.log"));
  auto has = [](std::string_view what) {
    return [what](const std::vector<std::string>& m) {
      for (const auto& x : m) {
        if (contains(x, what)) return true;
      }
      return false;
    };
  };
  REQUIRE(notify.wait(has("READY=1"), 15s));
  INFO("messages: " << joined(notify.messages()));
  // READY only once it serves.
  CHECK(http_request(port, "GET", "/readyz").status == 200);
  CHECK(contains(notify.messages().front(), "STATUS=serving HTTP on port " + std::to_string(port)));
  // Pings at half of WatchdogSec (here 0.4 s): several within 1.5 s.
  notify.wait([&](const auto&) { return notify.count("WATCHDOG=1") >= 3; }, 1500ms);
  CHECK(notify.count("WATCHDOG=1") >= 3);

  ::kill(kpid.pid(), SIGHUP);
  REQUIRE(notify.wait([&](const auto&) { return notify.count("READY=1") >= 2; }, 10s));
  CHECK(notify.count("RELOADING=1") == 1);

  ::kill(kpid.pid(), SIGTERM);
  REQUIRE(notify.wait(has("STOPPING=1"), 10s));
  CHECK(kpid.stop(15s) == 0);
}

TEST_CASE("systemd: without NOTIFY_SOCKET kpid runs as usual", "[systemd]") {
  Kpid k;
  k.start();
  CHECK_FALSE(contains(k.log(), "systemd:"));
  CHECK(k.stop() == 0);
}

TEST_CASE("systemd: the unit verifies and cmake --install lays out kpid, kpictl, unit and config",
          "[systemd]") {
  TempDir prefix;
  auto installed = run_command(
      {"/usr/bin/cmake", "--install", KPID_BUILD_DIR, "--prefix", prefix.path()}, {}, 60s);
  INFO("cmake --install: " << installed.out << installed.err);
  REQUIRE(installed.exit_code == 0);
  const std::string unit = prefix.file("lib/systemd/system/kpid.service");
  for (const auto& f : {prefix.file("bin/kpid"), prefix.file("bin/kpictl"), unit,
                        prefix.file("lib/sysusers.d/kpid.conf"), prefix.file("etc/kpid/kpid.toml"),
                        prefix.file("etc/kpid/kpis.d/examples.toml")}) {
    INFO(f);
    CHECK(std::filesystem::exists(f));
  }
  const std::string text = read_file(unit);
  CHECK(contains(text, "ExecStart=" + prefix.file("bin/kpid") + " --config " +
                           prefix.file("etc/kpid/kpid.toml")));
  CHECK(contains(text, "Type=notify"));
  CHECK(contains(text, "ExecReload=/bin/kill -HUP $MAINPID"));
  // The installed config is valid as installed.
  auto check = run_command(
      {prefix.file("bin/kpid"), "--check-config", "--config", prefix.file("etc/kpid/kpid.toml")},
      {}, 30s);
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  auto ctl_check = run_command(
      {prefix.file("bin/kpictl"), "check-config", prefix.file("etc/kpid/kpid.toml")}, {}, 30s);
  INFO(ctl_check.out << ctl_check.err);
  CHECK(ctl_check.exit_code == 0);
  CHECK(contains(ctl_check.out, "configuration OK"));
  // systemd's own checker, on the installed unit (its ExecStart exists).
  auto verify = run_command({"/usr/bin/systemd-analyze", "verify", unit}, {}, 60s);
  INFO("systemd-analyze verify: " << verify.out << verify.err);
  CHECK(verify.exit_code == 0);
  CHECK_FALSE(contains(verify.err, "kpid.service"));  // no warning about our unit
}
