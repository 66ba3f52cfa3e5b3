#pragma once
// kpid's configuration: a TOML file over built-in defaults, then command-line overrides.
// Loading collects every error (file, line, column, key) instead of stopping at the first.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/core/time.h"

namespace kpid::config {

struct StorageConfig {
  std::string data_dir = "./data";
  bool sync = false;  // fsync the WAL on every write batch (survives power loss)
  // Cardinality guard: new series past these are refused; existing series keep working.
  int64_t max_series = 1'000'000;
  int64_t max_labels_per_series = 30;
  int64_t max_label_name_bytes = 256;
  int64_t max_label_value_bytes = 4096;
  // Heads are written to chunks this often, or sooner once they hold head_max_samples.
  DurationMs checkpoint_interval = 60'000;
  int64_t head_max_samples = 4'000'000;
};

struct RetentionConfig {
  DurationMs raw = 30 * 86'400'000LL;
  DurationMs rollup_5m = 400 * 86'400'000LL;
  DurationMs rollup_1h = 5 * 365 * 86'400'000LL;
};

struct HttpConfig {
  std::string listen = "127.0.0.1:9470";
  int threads = 2;
  uint64_t max_body_bytes = 25ull << 20;
  DurationMs request_timeout = 30'000;
  DurationMs idle_timeout = 120'000;
  DurationMs shutdown_timeout = 10'000;
};

struct LineConfig {
  std::string listen = "127.0.0.1:9471";  // "" disables the TCP listener
  uint64_t max_line_bytes = 64ull << 10;
  DurationMs error_log_interval = 10'000;
};

struct QueryConfig {
  DurationMs lookback_delta = 300'000;
  int64_t max_points_per_series = 11'000;
};

struct LogConfig {
  std::string level = "info";
};

struct Config {
  StorageConfig storage;
  RetentionConfig retention;
  HttpConfig http;
  LineConfig line;
  QueryConfig query;
  LogConfig log;
  std::string source;  // the file it came from, "" for defaults only
};

// Values given on the command line; they win over the file.
struct Overrides {
  std::optional<std::string> data_dir;
  std::optional<std::string> http_listen;
  std::optional<std::string> line_listen;
  std::optional<std::string> log_level;
};

struct ConfigError {
  std::string file;  // "" or "command line"
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;
  std::string key;   // dotted path, e.g. "http.max_body_bytes"
  std::string message;
  // "FILE:LINE:COL: KEY: message" (parts that are unknown are left out).
  std::string to_string() const;
};

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

// A listen address split into host and port. Host is an IPv4/IPv6 literal or "localhost".
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
// Parses "HOST:PORT" or "[IPv6]:PORT"; errors say what is wrong.
Result<HostPort> parse_host_port(std::string_view text);

// Parses a byte size: a non-negative integer, or a string like "64KiB", "25MiB", "1GiB",
// "10KB", "5MB", "512B".
Result<uint64_t> parse_size(std::string_view text);

// Whether `level` names an spdlog level: trace, debug, info, warn, error, critical, off.
bool is_log_level(std::string_view level);

}  // namespace kpid::config
