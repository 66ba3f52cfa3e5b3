// The scripts a new user runs first, on the binaries this build made (KPID_SKIP_BUILD=1), on
// free loopback ports and private temp dirs: scripts/demo.sh stops on SIGTERM as on Ctrl-C,
// within seconds and with nothing left running; scripts/run.sh --wait returns once kpid is ready,
// leaving it running in the background with its pid file, and says why when kpid cannot start.
//
// Each script runs in a session of its own (the harness starts every child so), so every process
// it starts is found by its process group, and a guard SIGKILLs whatever of that group is left
// should the test fail.

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;

namespace {

constexpr const char* kSourceDir = KPID_SOURCE_DIR;
constexpr const char* kBuildDir = KPID_BUILD_DIR;

// Live (not zombie) processes whose process group is `pgid`, from /proc.
std::vector<pid_t> group_members(pid_t pgid) {
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    std::ifstream in("/proc/" + std::string(e->d_name) + "/stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces, so parse after its ')'.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    char state = 0;
    long ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z') out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(proc);
  return out;
}

// SIGKILLs, by PID, whatever is left of the process group on the way out.
struct GroupGuard {
  pid_t pgid;
  ~GroupGuard() {
    for (pid_t pid : group_members(pgid)) ::kill(pid, SIGKILL);
  }
};

std::string env_arg(const std::string& name, const std::string& value) {
  return name + "=" + value;
}

// The data dir demo.sh announces ("data in /tmp/.../kpid-demo-XXXXXX, removed on exit").
std::string demo_work_dir(const std::string& log) {
  std::smatch m;
  const std::regex re(R"(data in (\S+), removed on exit)");
  return std::regex_search(log, m, re) ? m[1].str() : std::string();
}

// Runs scripts/demo.sh on free ports until kpid-demo is at `stage` in its log, then sends
// `sig` (to the script alone, or to its whole process group as a terminal's Ctrl-C does) and
// checks that it ends within a few seconds with `expected_exit`, leaving no process and no data.
void demo_stops_on(int sig, bool whole_group, const std::string& stage, int expected_exit) {
  TempDir tmp;
  const std::string http_port = std::to_string(free_port());
  const std::string line_port = std::to_string(free_port());
  BackgroundProcess demo(
      "demo.sh",
      {"/usr/bin/env", env_arg("TMPDIR", tmp.path()), "KPID_SKIP_BUILD=1",
       env_arg("KPID_BUILD_DIR", kBuildDir), env_arg("KPID_DEMO_HTTP_PORT", http_port),
       env_arg("KPID_DEMO_LINE_PORT", line_port), "/bin/bash",
       std::string(kSourceDir) + "/scripts/demo.sh", "--days", "3"},
      tmp.file("demo.log"));
  GroupGuard guard{demo.pid()};
  REQUIRE(eventually([&] { return contains(demo.log(), stage) || !demo.running(); }, 60s, 50ms));
  INFO("demo.sh log:\n" << demo.log());
  REQUIRE(demo.running());
  const std::string work = demo_work_dir(demo.log());
  REQUIRE_FALSE(work.empty());
  REQUIRE(std::filesystem::exists(work));
  // demo.sh, kpid and kpid-demo at least.
  CHECK(group_members(demo.pid()).size() >= 3);

  const auto signalled = Clock::now();
  REQUIRE(::kill(whole_group ? -demo.pid() : demo.pid(), sig) == 0);
  const bool ended = eventually([&] { return !demo.running(); }, 10s, 20ms);
  const double took = std::chrono::duration<double>(Clock::now() - signalled).count();
  INFO("demo.sh log:\n" << demo.log() << "\nended " << took << " s after the signal");
  REQUIRE(ended);
  CHECK(took < 5);
  CHECK(demo.exit_status() == expected_exit);
  // Its children were stopped and reaped: nothing of the group is left, nor the data dir.
  CHECK(eventually([&] { return group_members(demo.pid()).empty(); }, 2s, 20ms));
  CHECK_FALSE(std::filesystem::exists(work));
}

}  // namespace

TEST_CASE("scripts: demo.sh stops on SIGTERM within seconds, its children and data dir gone",
          "[scripts][demo]") {
  SECTION("while kpid-demo backfills") { demo_stops_on(SIGTERM, false, "backfill: writing", 143); }
  SECTION("while kpid-demo writes live data") {
    demo_stops_on(SIGTERM, false, "live: writing every series", 143);
  }
}

TEST_CASE("scripts: demo.sh stops on Ctrl-C (SIGINT to its process group) as before",
          "[scripts][demo]") {
  demo_stops_on(SIGINT, true, "live: writing every series", 130);
}

TEST_CASE("scripts: run.sh --wait returns once kpid is ready and leaves it running", "[scripts]") {
  TempDir tmp;
  const uint16_t http_port = free_port();
  const std::string run_dir = tmp.file("run");
  auto run = [&](std::vector<std::string> kpid_args) {
    std::vector<std::string> argv = {"/usr/bin/env",
                                     "KPID_SKIP_BUILD=1",
                                     env_arg("KPID_BUILD_DIR", kBuildDir),
                                     env_arg("KPID_RUN_DIR", run_dir),
                                     "/bin/bash",
                                     std::string(kSourceDir) + "/scripts/run.sh",
                                     "--wait"};
    argv.insert(argv.end(), kpid_args.begin(), kpid_args.end());
    return run_command(argv, {}, 60s);
  };
  const std::vector<std::string> flags = {"--data-dir",    tmp.file("data"),
                                          "--http-listen", "127.0.0.1:" + std::to_string(http_port),
                                          "--line-listen", "127.0.0.1:0"};

  const CommandResult started = run(flags);
  INFO("run.sh: exit " << started.exit_code << "\n" << started.out << started.err);
  INFO("kpid log:\n" << read_file(run_dir + "/kpid.log"));
  REQUIRE(started.exit_code == 0);
  const std::string pid_text = read_file(run_dir + "/kpid.pid");
  REQUIRE(std::regex_match(pid_text, std::regex(R"(\d+\n)")));
  const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
  GroupGuard guard{pid};  // kpid leads a session (setsid) of its own
  CHECK(contains(started.out, "run: kpid is ready (pid " + std::to_string(pid) +
                                  "; HTTP listening on 127.0.0.1:" + std::to_string(http_port)));
  CHECK(contains(started.out, "kill $(cat " + run_dir + "/kpid.pid)"));
  // Ready when the script returned: no waiting, no retry.
  CHECK(http_request(http_port, "GET", "/readyz").status == 200);
  CHECK(::kill(pid, 0) == 0);

  // A second one sees the first and says so.
  const CommandResult again = run(flags);
  CHECK(again.exit_code == 1);
  CHECK(contains(again.err, "run: kpid is already running (pid " + std::to_string(pid)));

  // The pid file is the way to stop it: SIGTERM, and the file is gone once kpid has exited.
  REQUIRE(::kill(pid, SIGTERM) == 0);
  CHECK(eventually([&] { return ::kill(pid, 0) != 0 || group_members(pid).empty(); }, 15s));
  CHECK(eventually([&] { return !std::filesystem::exists(run_dir + "/kpid.pid"); }, 5s));

  // A kpid that cannot start: the script says so with the end of its log, exit 1.
  const CommandResult failed = run({"--data-dir", tmp.file("data"), "--http-listen", "nowhere"});
  INFO("run.sh: exit " << failed.exit_code << "\n" << failed.out << failed.err);
  CHECK(failed.exit_code == 1);
  CHECK(contains(failed.err, "run: kpid exited (status 1) before it was ready"));
  CHECK(contains(failed.err, "--http-listen: invalid listen address \"nowhere\""));
}
