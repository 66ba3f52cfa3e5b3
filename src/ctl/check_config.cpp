// kpictl check-config: runs the kpid binary's own --check-config, so kpictl needs none of the
// daemon's code (nor RocksDB) and the check is exactly the one kpid makes at start.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ostream>

#include "command.h"

namespace kpid::ctl {

namespace {

bool executable(const std::string& path) {
  return !path.empty() && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

Result<int> run_passing_through(const std::vector<std::string>& argv, std::ostream& out,
                                std::ostream& err) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return Status::io_error(std::strerror(errno));
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return Status::io_error(std::strerror(e));
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::execv(args[0], args.data());
    const std::string why = "kpictl: cannot run " + argv[0] + ": " + std::strerror(errno) + "\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, why.data(), why.size());
    ::_exit(127);
  }
  const int fork_error = errno;
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (pid < 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return Status::io_error("cannot start " + argv[0] + ": " + std::strerror(fork_error));
  }
  std::array<pollfd, 2> fds{pollfd{out_pipe[0], POLLIN, 0}, pollfd{err_pipe[0], POLLIN, 0}};
  std::array<std::ostream*, 2> sinks{&out, &err};
  size_t open = 2;
  char buffer[8192];
  while (open > 0) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->write(buffer, n);
        sinks[i]->flush();
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  for (const auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return Status::io_error("waiting for " + argv[0] + ": " + std::strerror(errno));
  }
  if (WIFSIGNALED(status)) {
    return Status::unavailable(argv[0] + " " + (argv.size() > 1 ? argv[1] : std::string()) +
                               " was killed by signal " + std::to_string(WTERMSIG(status)));
  }
  return WEXITSTATUS(status);
}

Result<std::string> find_kpid(const Terminal& terminal, std::string_view purpose) {
  std::string beside;
  if (const auto slash = terminal.self_path.rfind('/'); slash != std::string::npos) {
    beside = terminal.self_path.substr(0, slash + 1) + "kpid";
    if (executable(beside)) return beside;
  }
  std::string_view path = terminal.path_env;
  while (!path.empty()) {
    const size_t colon = path.find(':');
    std::string dir(path.substr(0, colon));
    path = colon == std::string_view::npos ? std::string_view() : path.substr(colon + 1);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/kpid";
    if (executable(candidate)) return candidate;
  }
  return Status::not_found(
      std::string(purpose) + ", but found no kpid executable " +
      (beside.empty() ? std::string() : "beside kpictl (" + beside + ") nor ") +
      "on PATH: install kpid beside kpictl or put it on PATH");
}

int cmd_check_config(Context& c) {
  auto kpid = find_kpid(c.terminal);
  if (!kpid) {
    c.err << "kpictl: " << kpid.status().message() << "\n";
    return kExitUnavailable;
  }
  std::vector<std::string> argv = {*kpid, "--check-config", "--config", c.args.positional[0]};
  if (auto dir = c.args.value("data-dir")) {
    argv.push_back("--data-dir");
    argv.push_back(*dir);
  }
  if (c.json) argv.push_back("--json");
  auto code = run_passing_through(argv, c.out, c.err);
  if (!code) return c.fail(code.status());
  return *code;
}

}  // namespace kpid::ctl
