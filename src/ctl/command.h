#pragma once
// What every kpictl command gets: its parsed arguments, the output streams with their style, the
// API client, and small readers for the API's JSON. Internal to src/ctl/.

#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "kpid/core/json.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/ctl/cli.h"
#include "kpid/ctl/client.h"
#include "kpid/ctl/render.h"

namespace kpid::ctl {

struct FlagSpec {
  std::string_view name;  // without dashes: "state"
  char short_name = 0;    // 'm' for -m, or 0
  bool takes_value = false;
  std::string_view value_name;  // for help: "STATE"
  std::string_view help;
};

// The command line after the command words: positional arguments and flags by long name.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>, std::less<>> flags;

  bool has(std::string_view name) const { return flags.contains(name); }
  // The last value given for the flag, or nullopt.
  std::optional<std::string> value(std::string_view name) const;
  std::vector<std::string> values(std::string_view name) const;
};

struct Context {
  Context(const Args& a, std::istream& i, std::ostream& o, std::ostream& e)
      : args(a), in(i), out(o), err(e) {}

  const Args& args;
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  Style style;        // for out
  bool json = false;  // --json: print the API's data as JSON instead of tables
  bool stderr_is_tty = false;
  Terminal terminal;  // what main() learnt of the environment
  std::string user;   // default author
  TimestampMs now = 0;
  ClientOptions client_options;
  std::string url;

  // The client, opened on first use.
  Result<ApiClient*> api();
  // The author of a change: --author, else $USER, else "kpictl".
  std::string author() const;
  // Prints an error ("kpictl: message") and returns its exit code.
  int fail(const Status& status) const;
  // A mistake on the command line found by the command: printed, kExitUsage.
  int usage(const Status& status) const;
  // Prints the value as JSON on one line.
  void print_json(const boost::json::value& v) const;

  std::optional<ApiClient> client;  // opened by api()
};

// Readers over API objects that tolerate absent and null fields.
std::string text_of(const boost::json::value& o, std::string_view key);
std::optional<double> number_of(const boost::json::value& o, std::string_view key);
std::optional<TimestampMs> time_of(const boost::json::value& o, std::string_view key);
const boost::json::value* field_of(const boost::json::value& o, std::string_view key);
// "12m" since an RFC 3339 field, or "-".
std::string age_of(const Context& c, const boost::json::value& o, std::string_view key);
// "2026-11-22 19:08:57Z" for an RFC 3339 field, or "-".
std::string when_of(const boost::json::value& o, std::string_view key);
std::string format_time(TimestampMs t);

// The kpid executable: beside kpictl's own (terminal.self_path), else the first on
// terminal.path_env; not_found saying where it looked.
// `purpose` starts the message: "check-config runs kpid --check-config".
Result<std::string> find_kpid(const Terminal& terminal,
                              std::string_view purpose = "check-config runs kpid --check-config");

// Runs argv[0] (a path) with stdin closed, copying its stdout and stderr to `out` and `err` as
// they arrive; returns its exit status.
Result<int> run_passing_through(const std::vector<std::string>& argv, std::ostream& out,
                                std::ostream& err);

// A duration flag ("6h"), or its default.
Result<DurationMs> duration_flag(const Args& args, std::string_view name, DurationMs fallback);
// A number argument or flag value, with the name in the error.
Result<double> number_arg(std::string_view text, std::string_view what);

// The commands (each returns an exit code).
int cmd_status(Context& c);
int cmd_kpi_show(Context& c);
int cmd_query(Context& c);
int cmd_alerts(Context& c);
int cmd_ack(Context& c);
int cmd_silence_add(Context& c);
int cmd_silence_list(Context& c);
int cmd_silence_rm(Context& c);
int cmd_okr_list(Context& c);
int cmd_okr_show(Context& c);
int cmd_okr_accept(Context& c);
int cmd_okr_dismiss(Context& c);
int cmd_okr_edit(Context& c);
int cmd_okr_checkin(Context& c);
int cmd_push(Context& c);
int cmd_check_config(Context& c);
int cmd_wait(Context& c);
int cmd_reload(Context& c);
int cmd_backup(Context& c);
int cmd_restore(Context& c);
int cmd_slo(Context& c);
int cmd_slo_rules(Context& c);
int cmd_cluster(Context& c);

}  // namespace kpid::ctl
