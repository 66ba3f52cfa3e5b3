// kpictl's command table, argument parsing, help and dispatch, and what the commands share.
#include "kpid/ctl/cli.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>

#include "command.h"
#include "kpid/core/json.h"
#include "kpid/version.h"

namespace kpid::ctl {

namespace json = boost::json;

namespace {

constexpr const char* kDefaultUrl = "http://127.0.0.1:9470";

struct Command {
  std::string_view name;      // one or two words: "status", "silence add"
  std::string_view synopsis;  // positional arguments
  std::string_view summary;
  size_t min_args = 0;
  size_t max_args = 0;
  std::vector<FlagSpec> flags;
  int (*run)(Context&) = nullptr;
};

const std::vector<FlagSpec>& global_flags() {
  static const std::vector<FlagSpec> flags = {
      {"url", 0, true, "URL", "kpid's address (default $KPID_URL, else http://127.0.0.1:9470)"},
      {"json", 0, false, "", "print the API's JSON instead of tables"},
      {"color", 0, true, "WHEN", "auto (default: on a terminal unless NO_COLOR), always, never"},
      {"no-color", 0, false, "", "same as --color=never"},
      {"timeout", 0, true, "DURATION", "bound on each request (default 10s)"},
      {"ca-file", 0, true, "FILE", "PEM CA bundle trusted for an https --url"},
      {"token-file", 0, true, "FILE", "file holding the bearer token (default $KPID_TOKEN)"},
      {"help", 'h', false, "", "show help"},
  };
  return flags;
}

const FlagSpec kAuthor{"author", 0, true, "NAME", "who does it (default $USER)"};

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"status",
       "",
       "every KPI: status, value, band, time in status, owner, recent trend",
       0,
       0,
       {{"since", 0, true, "DURATION", "trend window (default 6h)"},
        {"owner", 0, true, "OWNER", "only this owner's KPIs"},
        {"fail-on", 0, true, "LEVEL",
         "exit 4 when a KPI is crit (crit), or warn, crit, no_data or unknown (warn)"}},
       cmd_status},
      {"kpi show",
       "ID",
       "one KPI in detail: band, baseline, suggestions, alerts, status history",
       1,
       1,
       {{"since", 0, true, "DURATION", "trend window (default 6h)"},
        {"history", 0, true, "N", "status changes to list (default 10)"}},
       cmd_kpi_show},
      {"alerts",
       "",
       "alerts, newest first (default: pending and firing)",
       0,
       0,
       {{"state", 0, true, "STATE", "pending, firing or resolved"},
        {"kpi", 0, true, "ID", "only this KPI's"},
        {"owner", 0, true, "OWNER", "only this owner's"},
        {"severity", 0, true, "SEVERITY", "only this severity"},
        {"all", 'a', false, "", "include resolved alerts"}},
       cmd_alerts},
      {"ack",
       "ID",
       "acknowledge a firing alert (stops repeats)",
       1,
       1,
       {{"message", 'm', true, "TEXT", "comment"}, kAuthor},
       cmd_ack},
      {"silence add",
       "MATCHER...",
       "silence alerts whose labels match every MATCHER (name=value, name!=value, name=~regex, "
       "name!~regex)",
       1,
       64,
       {{"duration", 'd', true, "DURATION", "how long (default 1h)"},
        {"until", 0, true, "TIME", "end time (RFC 3339 or Unix seconds) instead of --duration"},
        {"start", 0, true, "TIME", "start time (default now)"},
        {"message", 'm', true, "TEXT", "comment"},
        kAuthor},
       cmd_silence_add},
      {"silence list",
       "",
       "silences (default: active and pending)",
       0,
       0,
       {{"all", 'a', false, "", "include expired silences"}},
       cmd_silence_list},
      {"silence rm", "ID...", "expire silences", 1, 64, {}, cmd_silence_rm},
      {"okr list",
       "",
       "OKRs, newest first (default: drafts and active)",
       0,
       0,
       {{"state", 0, true, "STATE", "draft, active, closed or dismissed"},
        {"owner", 0, true, "OWNER", "only this owner's"},
        {"kpi", 0, true, "ID", "only those opened from this KPI"},
        {"all", 'a', false, "", "include closed and dismissed OKRs"}},
       cmd_okr_list},
      {"okr show",
       "ID",
       "one OKR: key results with progress, score, alerts, history",
       1,
       1,
       {{"markdown", 0, false, "", "print it as markdown, to paste into a doc"}},
       cmd_okr_show},
      {"okr accept", "ID", "accept a draft: it becomes active", 1, 1, {kAuthor}, cmd_okr_accept},
      {"okr dismiss",
       "ID",
       "dismiss a draft",
       1,
       1,
       {{"message", 'm', true, "TEXT", "why"}, kAuthor},
       cmd_okr_dismiss},
      {"okr edit",
       "ID",
       "change an OKR's objective, owner, period or key results",
       1,
       1,
       {{"objective", 0, true, "TEXT", "new objective"},
        {"owner", 0, true, "OWNER", "new owner"},
        {"period-end", 0, true, "TIME", "new end of the period"},
        {"target", 0, true, "KR=VALUE", "change a key result's target (repeatable)"},
        {"start-value", 0, true, "KR=VALUE", "change a key result's start (repeatable)"},
        {"describe", 0, true, "KR=TEXT", "change a key result's description (repeatable)"},
        {"remove-kr", 0, true, "KR", "remove a key result (repeatable)"},
        {"add-kr", 0, true, "TEXT",
         "add a manual key result with this description; needs "
         "--add-target"},
        {"add-target", 0, true, "VALUE", "target of the added key result"},
        {"add-start", 0, true, "VALUE", "start of the added key result (default 0)"},
        {"add-direction", 0, true, "DIR", "increase (default) or decrease"},
        {"add-unit", 0, true, "UNIT", "unit of the added key result"},
        kAuthor},
       cmd_okr_edit},
      {"okr checkin",
       "ID KR VALUE",
       "record progress on a manual key result",
       3,
       3,
       {{"message", 'm', true, "TEXT", "note"},
        {"confidence", 0, true, "0..1", "how likely the key result is met"},
        kAuthor},
       cmd_okr_checkin},
      {"query",
       "EXPR",
       "a PromQL selector or expression over a time range",
       1,
       1,
       {{"since", 0, true, "DURATION", "range ending now (default 6h)"},
        {"step", 0, true, "DURATION", "resolution (default: about 60 points)"},
        {"table", 0, false, "", "print every point instead of a sparkline per series"}},
       cmd_query},
      {"push",
       "[FILE|-]",
       "write line protocol from a file or stdin (default stdin)",
       0,
       1,
       {{"precision", 0, true, "P", "timestamp precision: ns (default), us, ms, s"},
        {"batch", 0, true, "LINES", "lines per request (default 5000)"},
        {"progress", 0, false, "", "show the progress bar even when stderr is not a terminal"}},
       cmd_push},
      {"check-config",
       "FILE",
       "validate a kpid config file and its KPI files, locally (runs kpid --check-config)",
       1,
       1,
       {{"data-dir", 0, true, "DIR",
         "data dir whose history checks the bands (default: the config's)"}},
       cmd_check_config},
      {"wait",
       "",
       "wait until kpid is ready (GET /readyz answers 200), for scripts that start it",
       0,
       0,
       {{"timeout", 0, true, "DURATION", "give up after this long, exit 3 (default 1m)"}},
       cmd_wait},
      {"reload",
       "",
       "reload kpid's config file as SIGHUP does (POST /-/reload): what it loaded, or its errors",
       0,
       0,
       {},
       cmd_reload},
      {"backup",
       "[DIR]",
       "take an online backup of kpid's data into DIR (default storage.backup_dir), or list them",
       0,
       1,
       {{"list", 0, false, "", "list the backups in DIR instead of taking one"}},
       cmd_backup},
      {"restore",
       "BACKUP_DIR DATA_DIR",
       "restore a backup into an empty DATA_DIR, locally (runs kpid --restore; kpid need not run)",
       2,
       2,
       {{"id", 0, true, "N", "the backup to restore (default the latest; see backup --list)"}},
       cmd_restore},
      {"slo",
       "[ID]",
       "SLOs: SLI, error budget left, 1h and 6h burn, status; with ID one in detail",
       0,
       1,
       {{"owner", 0, true, "OWNER", "only this owner's SLOs"}},
       cmd_slo},
      {"slo rules",
       "[ID]",
       "Prometheus rules (YAML) equivalent to kpid's burn-rate alerts, for every SLO or one",
       0,
       1,
       {},
       cmd_slo_rules},
      {"cluster",
       "",
       "this kpid's shard ([cluster] shard, --shard) and the KPIs and SLOs it owns",
       0,
       0,
       {{"all", 0, false, "", "every configured KPI and SLO with the shard that owns it"}},
       cmd_cluster},
  };
  return table;
}

std::string flag_line(const FlagSpec& f) {
  std::string s = "  ";
  s += f.short_name ? std::string("-") + f.short_name + ", " : "    ";
  s += "--" + std::string(f.name);
  if (f.takes_value) s += " " + std::string(f.value_name);
  if (s.size() < 30)
    s.append(30 - s.size(), ' ');
  else
    s += "  ";
  return s + std::string(f.help) + "\n";
}

std::string overview() {
  std::string s = "kpictl " + std::string(kVersion) +
                  ": command-line client of kpid's HTTP API\n\n"
                  "usage: kpictl COMMAND [ARGS] [FLAGS]\n\ncommands:\n";
  for (const auto& c : commands()) {
    std::string head = "  " + std::string(c.name);
    if (!c.synopsis.empty()) head += " " + std::string(c.synopsis);
    if (head.size() < 30)
      head.append(30 - head.size(), ' ');
    else
      head += "  ";
    s += head + std::string(c.summary) + "\n";
  }
  s += "\nflags for every command:\n";
  for (const auto& f : global_flags()) s += flag_line(f);
  s += "\nexit codes: 0 done; 1 kpid refused the request (not found, conflict, bad input) or a "
       "check failed;\n  2 bad command line; 3 kpid unreachable, timed out or failing; 4 status "
       "--fail-on matched.\n"
       "'kpictl COMMAND --help' shows a command's flags.\n";
  return s;
}

// The command has a flag of its own with this name.
bool shadows(const Command& c, std::string_view name) {
  return std::any_of(c.flags.begin(), c.flags.end(),
                     [&](const FlagSpec& f) { return f.name == name; });
}

std::string command_help(const Command& c) {
  std::string s = "usage: kpictl " + std::string(c.name);
  if (!c.synopsis.empty()) s += " " + std::string(c.synopsis);
  s += " [FLAGS]\n\n" + std::string(c.summary) + "\n";
  if (!c.flags.empty()) {
    s += "\nflags:\n";
    for (const auto& f : c.flags) s += flag_line(f);
  }
  s += "\nflags for every command:\n";
  for (const auto& f : global_flags()) {
    if (!shadows(c, f.name)) s += flag_line(f);
  }
  return s;
}

const FlagSpec* find_flag(std::string_view token, const std::vector<const FlagSpec*>& specs) {
  for (const FlagSpec* f : specs) {
    if (token.size() == 1 ? f->short_name == token[0] : f->name == token) return f;
  }
  return nullptr;
}

bool takes_value_anywhere(std::string_view token) {
  auto check = [&](const FlagSpec& f) {
    return f.takes_value && (token.size() == 1 ? f.short_name == token[0] : f.name == token);
  };
  for (const auto& f : global_flags()) {
    if (check(f)) return true;
  }
  for (const auto& c : commands()) {
    for (const auto& f : c.flags) {
      if (check(f)) return true;
    }
  }
  return false;
}

// Splits "--name=value", "--name" and "-m" into the name and an inline value.
std::pair<std::string_view, std::optional<std::string_view>> split_flag(std::string_view arg) {
  std::string_view body = arg.substr(arg.starts_with("--") ? 2 : 1);
  if (auto eq = body.find('='); eq != std::string_view::npos) {
    return {body.substr(0, eq), body.substr(eq + 1)};
  }
  return {body, std::nullopt};
}

bool is_flag(std::string_view arg) { return arg.size() > 1 && arg[0] == '-' && arg != "--"; }

// The words that are not flags (nor flag values), up to `limit`, in order.
std::vector<std::string> leading_words(const std::vector<std::string>& args, size_t limit) {
  std::vector<std::string> words;
  for (size_t i = 0; i < args.size() && words.size() < limit; ++i) {
    if (args[i] == "--") break;
    if (is_flag(args[i])) {
      auto [name, inline_value] = split_flag(args[i]);
      if (!inline_value && takes_value_anywhere(name)) ++i;
      continue;
    }
    words.push_back(args[i]);
  }
  return words;
}

Result<Args> parse_args(const std::vector<std::string>& args, const Command& command,
                        size_t command_words) {
  // A command's own flag wins over a global one of the same name (wait --timeout).
  std::vector<const FlagSpec*> specs;
  for (const auto& f : command.flags) specs.push_back(&f);
  for (const auto& f : global_flags()) specs.push_back(&f);
  Args parsed;
  size_t skipped = 0;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!flags_done && arg == "--") {
      flags_done = true;
      continue;
    }
    if (flags_done || !is_flag(arg)) {
      if (skipped < command_words) {
        ++skipped;
      } else {
        parsed.positional.push_back(arg);
      }
      continue;
    }
    auto [name, inline_value] = split_flag(arg);
    const FlagSpec* spec = find_flag(name, specs);
    if (spec == nullptr) {
      return Status::invalid_argument("unknown flag " + arg + " for '" + std::string(command.name) +
                                      "'");
    }
    std::string value;
    if (spec->takes_value) {
      if (inline_value) {
        value = std::string(*inline_value);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return Status::invalid_argument("flag --" + std::string(spec->name) + " needs a value (" +
                                        std::string(spec->value_name) + ")");
      }
    } else if (inline_value) {
      return Status::invalid_argument("flag --" + std::string(spec->name) + " takes no value");
    }
    parsed.flags[std::string(spec->name)].push_back(std::move(value));
  }
  return parsed;
}

}  // namespace

std::optional<std::string> Args::value(std::string_view name) const {
  auto it = flags.find(name);
  if (it == flags.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Args::values(std::string_view name) const {
  auto it = flags.find(name);
  return it == flags.end() ? std::vector<std::string>{} : it->second;
}

Result<ApiClient*> Context::api() {
  if (!client) {
    auto opened = ApiClient::open(url, client_options);
    if (!opened) return opened.status();
    client.emplace(std::move(*opened));
  }
  return &*client;
}

std::string Context::author() const {
  if (auto a = args.value("author"); a && !a->empty()) return *a;
  return user.empty() ? "kpictl" : user;
}

int Context::fail(const Status& status) const {
  err << "kpictl: " << status.message() << "\n";
  return exit_code_of(status);
}

int Context::usage(const Status& status) const {
  err << "kpictl: " << status.message() << "\n";
  return kExitUsage;
}

void Context::print_json(const json::value& v) const { out << to_json_text(v) << "\n"; }

const json::value* field_of(const json::value& o, std::string_view key) {
  if (!o.is_object()) return nullptr;
  const json::value* v = o.get_object().if_contains(key);
  return v == nullptr || v->is_null() ? nullptr : v;
}

std::string text_of(const json::value& o, std::string_view key) {
  const json::value* v = field_of(o, key);
  if (v == nullptr) return {};
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_bool()) return v->get_bool() ? "true" : "false";
  if (v->is_number()) return human_number(v->to_number<double>());
  return to_json_text(*v);
}

std::optional<double> number_of(const json::value& o, std::string_view key) {
  const json::value* v = field_of(o, key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->to_number<double>();
}

std::optional<TimestampMs> time_of(const json::value& o, std::string_view key) {
  const json::value* v = field_of(o, key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  auto t = parse_time(v->get_string());
  if (!t) return std::nullopt;
  return *t;
}

std::string age_of(const Context& c, const json::value& o, std::string_view key) {
  auto t = time_of(o, key);
  return t ? human_age(c.now - *t) : "-";
}

std::string format_time(TimestampMs t) {
  std::string text;
  append_rfc3339(text, t);  // 2026-11-22T19:08:57.424Z
  if (text.size() >= 20) text = text.substr(0, 10) + " " + text.substr(11, 8) + "Z";
  return text;
}

std::string when_of(const json::value& o, std::string_view key) {
  auto t = time_of(o, key);
  return t ? format_time(*t) : "-";
}

Result<DurationMs> duration_flag(const Args& args, std::string_view name, DurationMs fallback) {
  auto text = args.value(name);
  if (!text) return fallback;
  auto d = parse_duration(*text);
  if (!d) return Status::invalid_argument("--" + std::string(name) + ": " + d.status().message());
  if (*d <= 0) return Status::invalid_argument("--" + std::string(name) + ": must be positive");
  return *d;
}

Result<double> number_arg(std::string_view text, std::string_view what) {
  std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) {
    return Status::invalid_argument(std::string(what) + ": \"" + s + "\" is not a number");
  }
  return v;
}

int run(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
        std::ostream& err, const Terminal& terminal) {
  const auto words = leading_words(args, 2);
  const bool wants_help = std::any_of(
      args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; });
  if (words.empty() || words[0] == "help") {
    if (words.empty() && !wants_help) {
      if (std::find(args.begin(), args.end(), "--version") != args.end()) {
        out << "kpictl " << kVersion << "\n";
        return kExitOk;
      }
      err << overview();
      return kExitUsage;
    }
    out << overview();
    return kExitOk;
  }
  const Command* command = nullptr;
  size_t command_words = 1;
  for (const auto& c : commands()) {
    if (words.size() >= 2 && c.name == words[0] + " " + words[1]) {
      command = &c;
      command_words = 2;
      break;
    }
  }
  if (command == nullptr) {
    for (const auto& c : commands()) {
      if (c.name == words[0]) command = &c;
    }
  }
  if (command == nullptr) {
    bool group = false;
    for (const auto& c : commands()) group = group || c.name.starts_with(words[0] + " ");
    if (group) {
      err << "kpictl: '" << words[0] << "' needs a subcommand:";
      for (const auto& c : commands()) {
        if (c.name.starts_with(words[0] + " ")) err << " " << c.name.substr(words[0].size() + 1);
      }
      err << "\n";
    } else {
      err << "kpictl: unknown command '" << words[0] << "' (kpictl --help lists them)\n";
    }
    return kExitUsage;
  }
  if (wants_help) {
    out << command_help(*command);
    return kExitOk;
  }
  auto parsed = parse_args(args, *command, command_words);
  if (!parsed) {
    err << "kpictl: " << parsed.status().message() << "\n";
    return kExitUsage;
  }
  if (parsed->positional.size() < command->min_args ||
      parsed->positional.size() > command->max_args) {
    err << "kpictl: usage: kpictl " << command->name << " " << command->synopsis << " (kpictl "
        << command->name << " --help)\n";
    return kExitUsage;
  }

  Context context(*parsed, in, out, err);
  context.json = parsed->has("json");
  context.stderr_is_tty = terminal.stderr_is_tty;
  context.terminal = terminal;
  context.user = terminal.user;
  context.now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  context.url =
      parsed->value("url").value_or(terminal.url_env.empty() ? kDefaultUrl : terminal.url_env);
  if (auto url = net::parse_url(context.url); !url) {
    err << "kpictl: --url " << context.url << ": " << url.status().message() << "\n";
    return kExitUsage;
  }
  const std::string color =
      parsed->has("no-color") ? "never" : parsed->value("color").value_or("auto");
  if (color == "always") {
    context.style.color = true;
  } else if (color == "auto") {
    context.style.color = terminal.stdout_is_tty && terminal.no_color.empty();
  } else if (color != "never") {
    err << "kpictl: --color: expected auto, always or never, not \"" << color << "\"\n";
    return kExitUsage;
  }
  // A command with its own --timeout (wait) bounds its requests itself.
  auto timeout = shadows(*command, "timeout") ? Result<DurationMs>(10'000)
                                              : duration_flag(*parsed, "timeout", 10'000);
  if (!timeout) {
    err << "kpictl: " << timeout.status().message() << "\n";
    return kExitUsage;
  }
  context.client_options.timeout = *timeout;
  context.client_options.ca_file = parsed->value("ca-file").value_or("");
  // Tokens come from a file or the environment, never the command line (ps shows it).
  context.client_options.token = terminal.token_env;
  if (auto file = parsed->value("token-file")) {
    std::ifstream in(*file);
    std::string token;
    if (!in || !std::getline(in, token)) {
      err << "kpictl: --token-file " << *file << ": cannot read a token from it\n";
      return kExitUsage;
    }
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    context.client_options.token = token;
  }
  return command->run(context);
}

}  // namespace kpid::ctl
