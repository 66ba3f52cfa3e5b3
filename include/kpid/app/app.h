#pragma once
// Wiring and lifecycle of the kpid process: parse flags, load config, open the store, start the
// servers, serve until SIGTERM/SIGINT (reloading on SIGHUP), then drain and close.

#include <optional>
#include <string>
#include <vector>

#include "kpid/config/config.h"
#include "kpid/core/status.h"

namespace kpid::app {

struct CommandLine {
  std::string config_path;  // "" when --config was not given
  config::Overrides overrides;
  bool check_config = false;
  bool version = false;
  bool help = false;
};

// Parses argv (without argv[0]). Both "--flag value" and "--flag=value" are accepted.
Result<CommandLine> parse_command_line(const std::vector<std::string>& args);

// The --help text.
std::string usage();

// Runs kpid; returns the process exit code (0 on a clean shutdown, 1 on a startup error).
int run(const CommandLine& command_line);

// Entry point for main(): parse, then --help/--version/--check-config or run.
int main(int argc, char** argv);

}  // namespace kpid::app
