#include <climits>
#include <cstdlib>
#include <iostream>

#include "kpid/app/app.h"
#include "kpid/core/json.h"
#include "kpid/store/rocksdb_store.h"
#include "kpid/version.h"

namespace kpid::app {

namespace json = boost::json;

std::string usage() {
  return R"(Usage: kpid [OPTIONS]

kpid: a time-series KPI monitoring daemon. Accepts InfluxDB line protocol over HTTP
(/write, /api/v2/write) and TCP, stores samples in RocksDB, and serves a Prometheus
HTTP API subset (/api/v1/query, query_range, series, labels) and /metrics.

Options (flags override the config file):
  --config FILE            TOML config file (see config/kpid.toml)
  --data-dir DIR           where the RocksDB store lives (storage.data_dir)
  --http-listen HOST:PORT  HTTP API address (http.listen); port 0 picks a free one
  --line-listen HOST:PORT  TCP line-protocol address (line.listen); "" disables it
  --log-level LEVEL        trace, debug, info, warn, error, critical or off (log.level)
  --shard I/N              evaluate only the KPIs, SLOs and rule groups whose id hashes to
                           shard I of N ([cluster] shard); every instance loads the same config
  --pid-file FILE          write kpid's process id to FILE once it is ready, for
                           kill -HUP `cat FILE`; removed when kpid exits
  --check-config           validate the config and flags; exit 0, or print every error
                           and exit 1
  --json                   with --check-config: print the result as one JSON object
  --restore BACKUP_DIR     restore the latest backup in BACKUP_DIR (or --backup-id N)
                           into the data dir (--data-dir, or the config's), which must be
                           empty or missing, and exit; kpid must not be running on it
  --backup-id N            with --restore: the backup to restore (kpictl backup --list)
  --hash-token             read a token on stdin, print its SHA-256 for [[auth.token]]
                           sha256 or a tokens file, and exit
  --version                print the version and exit
  --help                   print this help and exit

Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the config file, as
POST /-/reload (kpictl reload) does.
)";
}

namespace {

json::array errors_json(const std::vector<config::ConfigError>& errors) {
  json::array out;
  for (const auto& e : errors) {
    out.push_back(json::object{{"file", e.file},
                               {"line", e.line},
                               {"column", e.column},
                               {"key", e.key},
                               {"message", e.message},
                               {"text", e.to_string()}});
  }
  return out;
}

}  // namespace

int restore(const CommandLine& command_line, std::ostream& out, std::ostream& err) {
  std::string data_dir;
  if (command_line.overrides.data_dir) {
    data_dir = *command_line.overrides.data_dir;
  } else {
    const auto loaded = load_and_check(command_line);
    if (!loaded.errors.empty()) {
      for (const auto& e : loaded.errors) err << e.to_string() << "\n";
      return 1;
    }
    data_dir = loaded.config.storage.data_dir;
  }
  auto restored =
      store::RocksDbStore::restore(command_line.restore_from, data_dir, command_line.backup_id);
  if (!restored) {
    err << "kpid: restore failed: " << restored.status().message() << "\n";
    return 1;
  }
  std::string when;
  append_rfc3339(when, restored->timestamp_s * 1000);
  out << "restored backup " << restored->id << " (taken " << when << ", " << restored->size_bytes
      << " bytes, data format version " << restored->format_version << ") from "
      << command_line.restore_from << " into " << data_dir << "; start kpid on it with --data-dir "
      << data_dir << "\n";
  return 0;
}

int check_config_json(const CommandLine& command_line, std::ostream& out) {
  const auto loaded = load_and_check(command_line);
  out << to_json_text(json::object{{"ok", loaded.errors.empty()},
                                   {"file", command_line.config_path},
                                   {"kpis", loaded.kpis.size()},
                                   {"slos", loaded.slos.size()},
                                   {"alert_rules", loaded.rules.size()},
                                   {"receivers", loaded.receivers.size()},
                                   {"errors", errors_json(loaded.errors)},
                                   {"warnings", errors_json(loaded.warnings)}})
      << "\n";
  return loaded.errors.empty() ? 0 : 1;
}

Result<CommandLine> parse_command_line(const std::vector<std::string>& args) {
  CommandLine cl;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (auto eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      inline_value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    auto value = [&]() -> Result<std::string> {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) return Status::invalid_argument(flag + " needs a value");
      return args[++i];
    };
    auto no_value = [&]() -> Status {
      if (inline_value) return Status::invalid_argument(flag + " takes no value");
      return Status::ok();
    };
    if (flag == "--config") {
      auto v = value();
      if (!v) return v.status();
      cl.config_path = *v;
    } else if (flag == "--pid-file") {
      auto v = value();
      if (!v) return v.status();
      if (v->empty()) return Status::invalid_argument("--pid-file needs a file name");
      cl.pid_file = *v;
    } else if (flag == "--data-dir" || flag == "--http-listen" || flag == "--line-listen" ||
               flag == "--log-level" || flag == "--shard") {
      auto v = value();
      if (!v) return v.status();
      if (flag == "--data-dir") cl.overrides.data_dir = *v;
      if (flag == "--http-listen") cl.overrides.http_listen = *v;
      if (flag == "--line-listen") cl.overrides.line_listen = *v;
      if (flag == "--log-level") cl.overrides.log_level = *v;
      if (flag == "--shard") cl.overrides.shard = *v;
    } else if (flag == "--restore" || flag == "--backup-id") {
      auto v = value();
      if (!v) return v.status();
      if (v->empty()) return Status::invalid_argument(flag + " needs a value");
      if (flag == "--restore") {
        cl.restore_from = *v;
      } else {
        char* end = nullptr;
        const unsigned long id = std::strtoul(v->c_str(), &end, 10);
        if (*end != '\0' || id == 0 || id > UINT32_MAX) {
          return Status::invalid_argument("--backup-id needs a backup number, not " + *v);
        }
        cl.backup_id = static_cast<uint32_t>(id);
      }
    } else if (flag == "--check-config" || flag == "--version" || flag == "--help" ||
               flag == "-h" || flag == "--hash-token" || flag == "--json") {
      if (auto s = no_value(); !s) return s;
      if (flag == "--json") cl.json = true;
      if (flag == "--check-config") cl.check_config = true;
      if (flag == "--hash-token") cl.hash_token = true;
      if (flag == "--version") cl.version = true;
      if (flag == "--help" || flag == "-h") cl.help = true;
    } else {
      return Status::invalid_argument("unknown option " + args[i] + " (see kpid --help)");
    }
  }
  if (cl.backup_id && cl.restore_from.empty()) {
    return Status::invalid_argument("--backup-id goes with --restore");
  }
  if (cl.json && !cl.check_config) {
    return Status::invalid_argument("--json goes with --check-config");
  }
  return cl;
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto cl = parse_command_line(args);
  if (!cl) {
    std::cerr << "kpid: " << cl.status().message() << "\n";
    return 2;
  }
  if (cl->help) {
    std::cout << usage();
    return 0;
  }
  if (cl->version) {
    std::cout << "kpid " << kVersion << "\n";
    return 0;
  }
  if (cl->hash_token) return hash_token(std::cin, std::cout, std::cerr);
  if (!cl->restore_from.empty()) return restore(*cl, std::cout, std::cerr);
  if (cl->check_config) {
    return cl->json ? check_config_json(*cl, std::cout) : check_config(*cl, std::cout, std::cerr);
  }
  return run(*cl);
}

}  // namespace kpid::app
