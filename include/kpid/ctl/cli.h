#pragma once
// kpictl: the command-line client of kpid's HTTP API. main() fills a Terminal from the process
// environment and calls run(); tests call run() with string streams.

#include <iosfwd>
#include <string>
#include <vector>

namespace kpid::ctl {

// What kpictl learns from its environment, so that run() reads no globals.
struct Terminal {
  bool stdout_is_tty = false;
  bool stderr_is_tty = false;
  std::string url_env;    // $KPID_URL
  std::string no_color;   // $NO_COLOR: set and non-empty turns color off
  std::string user;       // $USER, the default author of acks, silences and OKR changes
  std::string token_env;  // $KPID_TOKEN: the bearer token, when kpid requires one
  std::string self_path;  // kpictl's own executable (/proc/self/exe), to find kpid beside it
  std::string path_env;   // $PATH, to find kpid otherwise
};

// Runs one kpictl command line (argv without argv[0]); returns the exit code (client.h).
int run(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
        std::ostream& err, const Terminal& terminal);

}  // namespace kpid::ctl
