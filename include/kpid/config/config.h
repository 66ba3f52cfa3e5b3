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
  int64_t max_series_per_metric = 100'000;
  int64_t max_labels_per_series = 30;
  int64_t max_label_name_bytes = 256;
  int64_t max_label_value_bytes = 4096;
  // Heads are written to chunks this often, or sooner once they hold head_max_samples.
  DurationMs checkpoint_interval = 60'000;
  int64_t head_max_samples = 4'000'000;
  // Writes are refused while the data dir's filesystem has less free space than this.
  uint64_t min_free_bytes = 100ull << 20;
  // Where backups go (POST /api/v1/admin/backup without a dir, and the backup taken before a
  // format upgrade); empty: kpid-backups beside the data dir.
  std::string backup_dir;
};

// storage.backup_dir, or kpid-backups beside the data dir when it is not set.
std::string backup_dir_of(const StorageConfig& c);

struct RetentionConfig {
  DurationMs raw = 30 * 86'400'000LL;
  DurationMs rollup_5m = 400 * 86'400'000LL;
  DurationMs rollup_1h = 5 * 365 * 86'400'000LL;
};

// Where a value was written, for errors found after loading (e.g. a band the KPI module
// rejects). line 0 when unknown.
struct SourcePos {
  std::string file;
  int line = 0;
  int column = 0;
};

// [http.tls] / [line.tls]: TLS is on for the listener when cert_file and key_file are set.
struct TlsConfig {
  std::string cert_file;            // PEM: the certificate, then any intermediates
  std::string key_file;             // PEM private key, unencrypted
  std::string min_version = "1.2";  // "1.2" or "1.3"
  SourcePos cert_file_pos;
  SourcePos key_file_pos;
  bool enabled() const { return !cert_file.empty(); }
};

struct HttpConfig {
  std::string listen = "127.0.0.1:9470";
  int threads = 2;
  uint64_t max_body_bytes = 25ull << 20;
  DurationMs request_timeout = 30'000;
  DurationMs idle_timeout = 120'000;
  int64_t max_connections = 1024;  // live connections; more are closed as soon as accepted
  double rate_limit = 0;           // requests per second per client address; 0: no limit
  double rate_limit_burst = 0;     // requests a client may make at once; 0: rate_limit
  TlsConfig tls;
};

struct LineConfig {
  std::string listen = "127.0.0.1:9471";  // "" disables the TCP listener
  uint64_t max_line_bytes = 64ull << 10;
  DurationMs error_log_interval = 10'000;
  int64_t max_connections = 1024;
  TlsConfig tls;
};

struct QueryConfig {
  DurationMs lookback_delta = 300'000;
  int64_t max_points_per_series = 11'000;
};

struct LogConfig {
  std::string level = "info";
};

// One selector reduced to a number: over time within a trailing window, then across the series
// it matches. In PromQL terms: across(over_time(selector[window])).
struct KpiTermConfig {
  std::string selector;   // a series selector, e.g. http_requests_total{job="api"}
  std::string over_time;  // avg, min, max, sum, last, rate, increase, quantile
  double quantile = 0.5;  // for over_time = "quantile"
  DurationMs window = 300'000;
  std::string across = "sum";  // sum, avg, min, max
  SourcePos selector_pos;
};

// The KPI's value: one term, or numerator / denominator (times `scale`, e.g. 100 for percent).
struct KpiValueConfig {
  KpiTermConfig term;  // the numerator of a ratio
  bool ratio = false;
  KpiTermConfig denominator;
  double scale = 1;
};

// Static thresholds; which keys apply depends on the direction (the KPI module checks order).
struct KpiBandConfig {
  std::optional<double> target;
  double warn = 0;
  double crit = 0;
  double warn_low = 0;
  double crit_low = 0;
  double warn_high = 0;
  double crit_high = 0;
  SourcePos pos;  // the [kpi.band] table
};

struct KpiBaselineConfig {
  std::string method = "quantile";  // quantile, stddev, ewma, seasonal
  DurationMs window = 30 * 86'400'000LL;
  double quantile_low = 0.05;  // quantile: the range between these
  double quantile_high = 0.95;
  double k = 2;                         // stddev, ewma, seasonal: center ± k·σ
  double alpha = 0.1;                   // ewma: weight of each new value
  DurationMs min_history = 86'400'000;  // trusted once the history spans this long
  DurationMs refresh = 3'600'000;
};

// A label or annotation of an alert rule: a template such as "{{kpi}} is {{value}}".
struct TemplateConfig {
  std::string name;
  std::string text;
  SourcePos pos;  // the value
};

// One alert rule of a KPI ([[kpi.alert]]): what it fires on and how it is announced.
struct AlertRuleConfig {
  std::string condition;        // crit, warn, anomalous, no_data
  std::string name;             // the alertname; default "<kpi id>_<condition>"
  DurationMs for_duration = 0;  // the `for` key
  DurationMs clear_for = 0;
  double hysteresis = 0;  // in the KPI's unit
  std::string severity;   // critical, error, warning, info; default from the condition
  std::string runbook_url;
  std::optional<DurationMs> repeat_interval;  // default alerting.repeat_interval
  std::vector<TemplateConfig> labels;
  std::vector<TemplateConfig> annotations;
  SourcePos pos;  // the [[kpi.alert]] header
};

// [kpi.okr]: when a breach of the KPI opens an OKR draft, and what the draft says.
struct KpiOkrConfig {
  bool enabled = true;
  DurationMs after = 3'600'000;  // a sustained breach: the alert has fired this long (0: at once)
  std::vector<std::string> severities = {"critical"};  // of the alerts that open drafts
  std::string objective = "Restore {{kpi.name}} to its healthy range";
  std::string key_result = "{{verb}} {{kpi.name}} from {{start}} {{unit}} to {{target}} {{unit}}";
  std::string guardrail = "Keep {{kpi.name}} {{side}} {{threshold}} {{unit}}";
  std::string target = "band";                   // band (its target) or baseline (its center)
  std::vector<std::string> related;              // KPI ids: the guardrail key results (1-4)
  std::string period = "quarter";                // month, quarter, half, year
  DurationMs graduate_after = 7 * 86'400'000LL;  // healthy this long with every KR met: achieved
  SourcePos pos;
  SourcePos objective_pos;
  SourcePos key_result_pos;
  SourcePos guardrail_pos;
  SourcePos related_pos;
};

struct KpiConfig {
  std::string id;
  std::string name;  // defaults to the id
  std::string description;
  std::string owner;
  std::string unit;
  std::string review = "monthly";  // daily, weekly, monthly
  std::string direction;           // higher_is_better, lower_is_better, in_range
  KpiValueConfig value;
  std::optional<KpiBandConfig> band;
  std::optional<KpiBaselineConfig> baseline;
  DurationMs stale_after = 0;  // no data after this long without a sample; 0: the value window
  std::vector<AlertRuleConfig> alerts;
  std::optional<KpiOkrConfig> okr;
  SourcePos pos;  // the [[kpi]] header
};

// [alerting]: how alerts are announced and how long their records are kept.
struct AlertingConfig {
  // kpid's address as people reach it, for links in notifications; "" = http://<http.listen>.
  std::string external_url;
  DurationMs repeat_interval = 4 * 3'600'000;  // a firing, unacknowledged alert is re-notified
  DurationMs notification_max_age = 24 * 3'600'000;  // an undelivered notification is dropped
  DurationMs retry_initial = 1'000;                  // first retry delay; doubles per failure
  DurationMs retry_max = 5 * 60'000;                 // longest retry delay
  DurationMs resolved_retention = 7 * 86'400'000LL;  // resolved alerts, expired silences
  SourcePos external_url_pos;
};

// [[auth.token]]: a bearer token, kept only as the SHA-256 of its text.
struct TokenConfig {
  std::string name;
  std::vector<std::string> roles;  // write, read, admin
  std::string sha256;              // 64 hex digits
  SourcePos pos;
};

// [auth]: who may use the API (see include/kpid/auth/auth.h).
struct AuthConfig {
  std::vector<TokenConfig> tokens;
  std::string tokens_file;  // more tokens, "NAME ROLES SHA256" lines; re-read on SIGHUP
  SourcePos tokens_file_pos;
  // Paths answered without a token (the dashboard's page and files always are).
  std::vector<std::string> open = {"/healthz", "/readyz", "/metrics"};
  // Listen beyond loopback with no token configured (and TCP line protocol, which carries
  // none); refused unless true.
  bool allow_unauthenticated = false;
  std::string audit_log;  // admin actions, JSON lines; "" = <data_dir>/audit.log
};

// [okr]
struct OkrConfig {
  int64_t max_open_per_owner = 5;  // more open objectives in one period: a warning on the draft
};

// [[receiver]]: where notifications go, and which alerts (by severity and owner).
struct ReceiverConfig {
  std::string name;
  std::string type;  // alertmanager, pagerduty, webhook
  std::string url;   // alertmanager: its base URL; webhook: the full URL; pagerduty: optional
  std::vector<std::string> severities;  // empty: all
  std::vector<std::string> owners;      // empty: all
  DurationMs timeout = 10'000;
  std::string ca_file;                  // PEM bundle for https; "" = the system's
  std::string routing_key;              // pagerduty
  std::string secret;                   // webhook: HMAC-SHA256 key for X-Kpid-Signature
  DurationMs resend_interval = 60'000;  // alertmanager: re-sent this often while firing
  SourcePos pos;
  SourcePos url_pos;
};

struct Config {
  StorageConfig storage;
  RetentionConfig retention;
  HttpConfig http;
  LineConfig line;
  QueryConfig query;
  LogConfig log;
  std::vector<std::string> include;  // glob patterns of KPI files, relative to the config file
  std::vector<KpiConfig> kpis;       // from the config file, then the included files in order
  AlertingConfig alerting;
  std::vector<ReceiverConfig> receivers;
  OkrConfig okr;
  AuthConfig auth;
  // SIGTERM/SIGINT: the whole stop (draining connections, cancelling queries and background
  // work, stopping deliveries, the checkpoint, closing RocksDB) ends within this.
  DurationMs shutdown_timeout = 10'000;
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
