#pragma once
// kpid's configuration: a TOML file over built-in defaults, then command-line overrides.
// Loading collects every error (file, line, column, key) instead of stopping at the first.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/alert/options.h"
#include "kpid/auth/options.h"
#include "kpid/cluster/options.h"
#include "kpid/core/host_port.h"
#include "kpid/core/source_pos.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/datasource/options.h"
#include "kpid/forward/options.h"
#include "kpid/ingest/options.h"
#include "kpid/kpi/options.h"
#include "kpid/okr/options.h"
#include "kpid/query/options.h"
#include "kpid/rules/options.h"
#include "kpid/server/options.h"
#include "kpid/slo/options.h"
#include "kpid/store/options.h"

namespace kpid::config {

struct LogConfig {
  std::string level = "info";
};

using kpid::SourcePos;

// The whole configuration: each table parsed into the options struct of the module it
// configures, so the daemon hands each module its own struct as is.
struct Config {
  store::StoreOptions storage;  // [storage], and [retention] in storage.retention
  server::HttpOptions http;
  ingest::LineOptions line;
  ingest::IngestOptions ingest;
  query::QueryOptions query;
  LogConfig log;
  std::vector<std::string> include;   // glob patterns of KPI files, relative to the config file
  std::vector<kpi::KpiOptions> kpis;  // from the config file, then the included files in order
  // [[slo]] tables (config file, then included files), then the OpenSLO documents of `openslo`.
  std::vector<slo::SloOptions> slos;
  std::vector<std::string> openslo;  // glob patterns of OpenSLO v1 YAML files, like `include`
  alert::AlertingOptions alerting;
  std::vector<alert::ReceiverOptions> receivers;
  okr::OkrOptions okr;
  auth::AuthOptions auth;
  // SIGTERM/SIGINT: the whole stop (draining connections, cancelling queries and background
  // work, stopping deliveries, the checkpoint, closing RocksDB) ends within this.
  DurationMs shutdown_timeout = 10'000;
  std::string source;  // the file it came from, "" for defaults only
  // [rules]: Prometheus rule files.
  rules::RulesOptions rules;
  cluster::ClusterOptions cluster;  // [cluster] (and --shard)
  // [[datasource]] tables: remote query APIs KPIs name with `datasource`.
  std::vector<datasource::DatasourceOptions> datasources;
  // [[remote_write]] destinations, in file order.
  std::vector<forward::RemoteWriteOptions> remote_write;
};

// Values given on the command line; they win over the file.
struct Overrides {
  std::optional<std::string> data_dir;
  std::optional<std::string> http_listen;
  std::optional<std::string> line_listen;
  std::optional<std::string> log_level;
  std::optional<std::string> shard;  // --shard i/N: wins over [cluster] shard
};

struct ConfigError {
  std::string file;  // "" or "command line"
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;
  std::string key;  // dotted path, e.g. "http.max_body_bytes"
  std::string message;
  // "FILE:LINE:COL: KEY: message" (parts that are unknown are left out).
  std::string to_string() const;
};

// Orders errors by file, line and column (stable, so one place keeps its order).
void sort_errors(std::vector<ConfigError>& errors);

struct LoadResult {
  Config config;
  std::vector<ConfigError> errors;
  bool ok() const { return errors.empty(); }
};

// Reads and validates the file at `path` (no file when empty: defaults), then applies
// `overrides`. Every problem found is in `errors`; `config` is meaningful only when ok().
LoadResult load_config(const std::string& path, const Overrides& overrides);

// Same as load_config, from text; `source_name` names it in errors.
LoadResult parse_config(std::string_view text, const std::string& source_name,
                        const Overrides& overrides);

// Parses a byte size: a non-negative integer, or a string like "64KiB", "25MiB", "1GiB",
// "10KB", "5MB", "512B".
Result<uint64_t> parse_size(std::string_view text);

// Whether `level` names an spdlog level: trace, debug, info, warn, error, critical, off.
bool is_log_level(std::string_view level);

}  // namespace kpid::config
