#pragma once
// Wiring and lifecycle of the kpid process: parse flags, load config, open the store, start the
// servers, serve until SIGTERM/SIGINT (reloading on SIGHUP), then drain and close.

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "kpid/alert/rules.h"
#include "kpid/auth/auth.h"
#include "kpid/config/config.h"
#include "kpid/core/status.h"
#include "kpid/kpi/definition.h"
#include "kpid/okr/planner.h"
#include "kpid/rules/rule_file.h"
#include "kpid/slo/definition.h"

namespace kpid::app {

struct CommandLine {
  std::string config_path;  // "" when --config was not given
  config::Overrides overrides;
  bool check_config = false;
  bool json = false;        // --json: --check-config prints one JSON object
  std::string pid_file;     // --pid-file: "" for none
  bool hash_token = false;  // --hash-token: print the SHA-256 of the token on stdin
  bool version = false;
  bool help = false;
  // --restore BACKUP_DIR [--backup-id N]: restore a backup into the data dir and exit.
  std::string restore_from;
  std::optional<uint32_t> backup_id;
};

// kpid --restore: restores backup `backup_id` (default the latest) of command_line.restore_from
// into the data dir (--data-dir, else the config's storage.data_dir), which must be empty or
// missing; prints what it restored to `out`, errors to `err`. Returns the exit code.
int restore(const CommandLine& command_line, std::ostream& out, std::ostream& err);

// The configuration with its KPIs compiled: errors (config and KPI) stop a start or reload,
// warnings do not.
struct LoadedConfig {
  config::Config config;
  std::vector<kpi::Definition> kpis;
  std::vector<alert::Rule> rules;
  std::vector<alert::Receiver> receivers;
  std::vector<okr::Policy> okr_policies;
  std::vector<slo::Definition> slos;             // their burn-rate rules are in `rules`
  std::vector<okr::SloPolicy> slo_okr_policies;  // [slo.okr]
  auth::TokenSet tokens;                         // [[auth.token]] and auth.tokens_file
  std::vector<config::ConfigError> errors;
  std::vector<config::ConfigError> warnings;
  // Certificate and key files that do not load (these errors are in `errors` too): a reload
  // logs them and keeps the running pair instead of refusing the rest.
  std::vector<config::ConfigError> tls_file_errors;
  std::vector<rules::RuleGroup> rule_groups;  // [rules] files, checked as promtool checks them
};
LoadedConfig load_all(const CommandLine& command_line);

// Parses argv (without argv[0]). Both "--flag value" and "--flag=value" are accepted.
Result<CommandLine> parse_command_line(const std::vector<std::string>& args);

// The --help text.
std::string usage();

// load_all plus the warnings only --check-config gives: bands the stored history (opened
// read-only, so it works beside a running kpid) would breach most of the time.
LoadedConfig load_and_check(const CommandLine& command_line);

// kpid --check-config and kpictl check-config: prints every error and warning to `err` and
// "configuration OK: FILE (N KPIs, ...)" to `out`; returns 0 when there are no errors
// (warnings included), else 1.
int check_config(const CommandLine& command_line, std::ostream& out, std::ostream& err);

// kpid --check-config --json (and kpictl check-config --json): {"ok", "file", "kpis", "slos",
// "alert_rules", "receivers", "errors", "warnings"} on one line, each error and warning
// {"file", "line", "column", "key", "message", "text"}; returns 0 when ok, else 1.
int check_config_json(const CommandLine& command_line, std::ostream& out);

// kpid --hash-token: reads a token from `in`, prints its SHA-256 (what [[auth.token]] sha256
// and token files hold); 1 when the token is missing or shorter than 16 characters.
int hash_token(std::istream& in, std::ostream& out, std::ostream& err);

// Runs kpid; returns the process exit code (0 on a clean shutdown, 1 on a startup error).
int run(const CommandLine& command_line);

// Entry point for main(): parse, then --help/--version/--check-config or run.
int main(int argc, char** argv);

}  // namespace kpid::app
