#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "kpid/ctl/cli.h"

int main(int argc, char** argv) {
  kpid::ctl::Terminal terminal;
  terminal.stdout_is_tty = isatty(STDOUT_FILENO) == 1;
  terminal.stderr_is_tty = isatty(STDERR_FILENO) == 1;
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  terminal.url_env = env("KPID_URL");
  terminal.no_color = env("NO_COLOR");
  terminal.user = env("USER");
  terminal.token_env = env("KPID_TOKEN");
  terminal.path_env = env("PATH");
  std::error_code ec;
  terminal.self_path = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  std::ios::sync_with_stdio(false);
  const int code = kpid::ctl::run(std::vector<std::string>(argv + 1, argv + argc), std::cin,
                                  std::cout, std::cerr, terminal);
  std::cout.flush();
  return code;
}
