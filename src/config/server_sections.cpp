// The document's top level and the daemon's own tables: [storage], [retention], [http], [line]
// (with their [*.tls]), [ingest], [query] and [log].
#include "loader.h"

#include "kpid/core/labels.h"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace kpid::config::detail {

void Loader::load(const toml::table& root, Config& c) {
  static constexpr std::array kSections = {
      "storage",  "retention", "http",       "line",
      "ingest",   "query",     "log",        "include",
      "kpi",      "slo",       "openslo",    "alerting",
      "receiver", "okr",       "auth",       "shutdown_timeout",
      "rules",    "cluster",   "datasource", "remote_write"};
  for (const auto& [key, node] : root) {
    std::string name(key.str());
    bool known = false;
    for (const char* s : kSections) known = known || name == s;
    if (!known) {
      error_at(key.source(), name, "unknown section or key" + suggest(name, kSections));
      continue;
    }
    if (name == "kpi") {
      load_kpis(node, c.kpis);
      continue;
    }
    if (name == "slo") {
      load_slos(node, c.slos);
      continue;
    }
    if (name == "include") {
      load_include(node, "include", c.include);
      continue;
    }
    if (name == "openslo") {
      load_include(node, "openslo", c.openslo);
      continue;
    }
    if (name == "receiver") {
      load_receivers(node, c.receivers);
      continue;
    }
    if (name == "datasource") {
      load_datasources(node, c.datasources);
      continue;
    }
    if (name == "remote_write") {
      load_remote_writes(node, c.remote_write);
      continue;
    }
    if (name == "shutdown_timeout") {
      get_duration(root, "", "shutdown_timeout", 100, c.shutdown_timeout);
      shutdown_timeout_set_ = true;
      continue;
    }
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      error(node, name, "expected a table ([" + name + "])");
      continue;
    }
    if (name == "storage") load_storage(*table, c.storage);
    if (name == "retention") load_retention(*table, c.storage.retention);
    if (name == "http") load_http(*table, c.http);
    if (name == "line") load_line(*table, c.line);
    if (name == "ingest") load_ingest(*table, c.ingest);
    if (name == "query") load_query(*table, c.query);
    if (name == "log") load_log(*table, c.log);
    if (name == "alerting") load_alerting(*table, c.alerting);
    if (name == "okr") load_okr(*table, c.okr);
    if (name == "auth") load_auth(*table, c.auth);
    if (name == "rules") load_rules(*table, c.rules);
    if (name == "cluster") load_cluster(*table, c.cluster);
  }
  // http.shutdown_timeout is the key's older name, from when it bounded only HTTP draining.
  if (const toml::node* older = root.at_path("http.shutdown_timeout").node()) {
    if (shutdown_timeout_set_) {
      error(*older, "http.shutdown_timeout",
            "give shutdown_timeout once: the top-level key replaces this older name");
    } else if (const toml::table* http = root["http"].as_table()) {
      get_duration(*http, "http", "shutdown_timeout", 100, c.shutdown_timeout);
    }
  }
}

// An included file holds [[kpi]] and [[slo]] tables and nothing else.
void Loader::load_included(const toml::table& root, Config& c) {
  for (const auto& [key, node] : root) {
    if (key.str() == "kpi") {
      load_kpis(node, c.kpis);
    } else if (key.str() == "slo") {
      load_slos(node, c.slos);
    } else {
      error_at(key.source(), std::string(key.str()),
               "an included file may only hold [[kpi]] and [[slo]] tables");
    }
  }
}

void Loader::load_storage(const toml::table& t, store::StoreOptions& c) {
  check_keys(t, "storage",
             std::array{"data_dir", "sync", "max_series", "max_series_per_metric",
                        "max_labels_per_series", "max_label_name_bytes", "max_label_value_bytes",
                        "checkpoint_interval", "head_max_samples", "min_free_bytes", "block_cache",
                        "backup_dir", "memory_limit"});
  get_string(t, "storage", "data_dir", c.data_dir);
  if (const auto* n = t.get("data_dir"); n && n->is_string() && c.data_dir.empty()) {
    error(*n, "storage.data_dir", "must not be empty");
  }
  get_bool(t, "storage", "sync", c.sync);
  store::SeriesLimits& limits = c.limits;
  get_count(t, "storage", "max_series", 1, int64_t{1} << 32, limits.max_series);
  get_count(t, "storage", "max_series_per_metric", 1, int64_t{1} << 32,
            limits.max_series_per_metric);
  get_count(t, "storage", "max_labels_per_series", 1, 1000, limits.max_labels_per_series);
  get_count(t, "storage", "max_label_name_bytes", 1, 1 << 20, limits.max_label_name_bytes);
  get_count(t, "storage", "max_label_value_bytes", 1, 1 << 20, limits.max_label_value_bytes);
  get_duration(t, "storage", "checkpoint_interval", 1000, c.checkpoint_interval);
  get_count(t, "storage", "head_max_samples", 1000, int64_t{1} << 32, c.head_max_samples);
  get_size(t, "storage", "min_free_bytes", 0, c.min_free_bytes);
  get_size(t, "storage", "block_cache", 1 << 20, c.block_cache_bytes);
  get_string(t, "storage", "backup_dir", c.backup_dir);
  get_size(t, "storage", "memory_limit", 0, c.memory_limit_bytes);
}

void Loader::load_retention(const toml::table& t, store::RetentionPolicy& c) {
  check_keys(t, "retention", std::array{"raw", "rollup_5m", "rollup_1h"});
  // Shorter than a chunk window would expire windows that still take samples.
  constexpr DurationMs kMin = 2 * 3'600'000;
  get_duration(t, "retention", "raw", kMin, c.raw);
  get_duration(t, "retention", "rollup_5m", kMin, c.rollup_5m);
  get_duration(t, "retention", "rollup_1h", kMin, c.rollup_1h);
}

void Loader::load_http(const toml::table& t, server::HttpOptions& c) {
  check_keys(
      t, "http",
      std::array{"listen", "threads", "max_body_bytes", "request_timeout", "idle_timeout",
                 "shutdown_timeout", "max_connections", "rate_limit", "rate_limit_burst", "tls"});
  get_listen(t, "http", false, c.listen);
  int64_t threads = c.threads;
  get_int(t, "http", "threads", 1, 256, threads);
  c.threads = static_cast<int>(threads);
  get_size(t, "http", "max_body_bytes", 1, c.max_body_bytes);
  get_duration(t, "http", "request_timeout", 1, c.request_timeout);
  get_duration(t, "http", "idle_timeout", 1, c.idle_timeout);
  get_int(t, "http", "max_connections", 1, 1'000'000, c.max_connections);
  get_rate(t, "http", "rate_limit", c.rate_limit);
  get_rate(t, "http", "rate_limit_burst", c.rate_limit_burst);
  load_tls(t, "http", c.tls);
}

void Loader::load_line(const toml::table& t, ingest::LineOptions& c) {
  check_keys(
      t, "line",
      std::array{"listen", "max_line_bytes", "error_log_interval", "max_connections", "tls"});
  get_listen(t, "line", true, c.listen);
  get_size(t, "line", "max_line_bytes", 16, c.max_line_bytes);
  get_duration(t, "line", "error_log_interval", 0, c.error_log_interval);
  get_int(t, "line", "max_connections", 1, 1'000'000, c.max_connections);
  load_tls(t, "line", c.tls);
}

void Loader::load_ingest(const toml::table& t, ingest::IngestOptions& c) {
  check_keys(t, "ingest", std::array{"native_histogram_max_buckets", "db_label"});
  get_int(t, "ingest", "native_histogram_max_buckets", 2, 10'000, c.native_histogram_max_buckets);
  get_string(t, "ingest", "db_label", c.db_label);
  if (const toml::node* n = t.get("db_label");
      n != nullptr && !c.db_label.empty() && !is_label_name(c.db_label)) {
    error(*n, "ingest.db_label",
          "\"" + c.db_label +
              "\" is not a label name (letters, digits and _, not starting with a digit)");
  } else if (n != nullptr && c.db_label.starts_with("__")) {
    error(*n, "ingest.db_label", "names starting with __ are reserved");
  }
}

// [http.tls] / [line.tls]. Whether the files load and the key matches the certificate is
// checked where they can be loaded (app::load_all), at the positions kept here.
void Loader::load_tls(const toml::table& parent, const std::string& parent_section,
                      net::TlsOptions& c) {
  const toml::table* t = table_at(parent, parent_section, "tls");
  if (t == nullptr) return;
  const std::string section = parent_section + ".tls";
  check_keys(*t, section, std::array{"cert_file", "key_file", "min_version"});
  for (auto [key, out, pos] : {std::tuple{"cert_file", &c.cert_file, &c.cert_file_pos},
                               std::tuple{"key_file", &c.key_file, &c.key_file_pos}}) {
    const toml::node* n = t->get(key);
    if (n == nullptr) continue;
    get_string(*t, section, key, *out);
    *pos = pos_of(*n);
    if (n->is_string() && out->empty()) error(*n, section + "." + key, "must not be empty");
    // Relative to the config file, like include and auth.tokens_file.
    if (std::filesystem::path path(*out); !out->empty() && path.is_relative()) {
      *out = (std::filesystem::path(file_).parent_path() / path).string();
    }
  }
  std::string min_version = c.min_version == net::TlsVersion::kTls13 ? "1.3" : "1.2";
  get_choice(*t, section, "min_version", std::array{"1.2", "1.3"}, min_version);
  c.min_version = min_version == "1.3" ? net::TlsVersion::kTls13 : net::TlsVersion::kTls12;
  // Half a pair would silently serve plain text on a port clients expect to be encrypted.
  if (c.cert_file.empty() != c.key_file.empty()) {
    error(*t, section + (c.cert_file.empty() ? ".cert_file" : ".key_file"),
          std::string("is required with ") + (c.cert_file.empty() ? "key_file" : "cert_file"));
    c.cert_file.clear();
    c.key_file.clear();
  }
}

void Loader::load_query(const toml::table& t, query::QueryOptions& c) {
  check_keys(
      t, "query",
      std::array{"lookback_delta", "max_points_per_series", "timeout", "max_samples",
                 "max_concurrency", "max_queued", "worker_priority", "default_subquery_step"});
  get_duration(t, "query", "lookback_delta", 1, c.lookback_delta);
  get_int(t, "query", "max_points_per_series", 1, 10'000'000, c.max_points_per_series);
  get_duration(t, "query", "timeout", 1, c.timeout);
  get_count(t, "query", "max_samples", 1, int64_t{1} << 40, c.max_samples);
  get_int(t, "query", "max_concurrency", 0, 1024, c.max_concurrency);
  get_int(t, "query", "max_queued", 0, 100'000, c.max_queued);
  get_duration(t, "query", "default_subquery_step", 1, c.default_subquery_step);
  constexpr std::array kPriorities{"idle", "low", "normal"};
  std::string priority = kPriorities[static_cast<size_t>(c.worker_priority)];
  get_choice(t, "query", "worker_priority", kPriorities, priority);
  c.worker_priority = priority == "low"      ? query::WorkerPriority::kLow
                      : priority == "normal" ? query::WorkerPriority::kNormal
                                             : query::WorkerPriority::kIdle;
}

void Loader::load_log(const toml::table& t, LogConfig& c) {
  check_keys(t, "log", std::array{"level"});
  get_string(t, "log", "level", c.level);
  if (const auto* n = t.get("level"); n && n->is_string() && !is_log_level(c.level)) {
    error(*n, "log.level",
          "unknown level \"" + c.level +
              "\"; expected one of trace, debug, info, warn, error, critical, off");
  }
}

}  // namespace kpid::config::detail
