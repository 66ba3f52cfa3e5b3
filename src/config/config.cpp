#include "kpid/config/config.h"

#include <arpa/inet.h>

#include <glob.h>
#include <toml++/toml.h>
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

namespace kpid::config {

namespace {

// Walks one TOML document, filling a Config and collecting every error.
class Loader {
 public:
  Loader(const std::string& file, std::vector<ConfigError>& errors)
      : file_(file), errors_(errors) {}

  void load(const toml::table& root, Config& c) {
    static constexpr std::array kSections = {
        "storage",  "retention", "http", "line", "query",           "log", "include", "kpi",
        "alerting", "receiver",  "okr",  "auth", "shutdown_timeout"};
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
      if (name == "include") {
        load_include(node, c.include);
        continue;
      }
      if (name == "receiver") {
        load_receivers(node, c.receivers);
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
      if (name == "retention") load_retention(*table, c.retention);
      if (name == "http") load_http(*table, c.http);
      if (name == "line") load_line(*table, c.line);
      if (name == "query") load_query(*table, c.query);
      if (name == "log") load_log(*table, c.log);
      if (name == "alerting") load_alerting(*table, c.alerting);
      if (name == "okr") load_okr(*table, c.okr);
      if (name == "auth") load_auth(*table, c.auth);
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

  // An included file holds [[kpi]] tables and nothing else.
  void load_included(const toml::table& root, Config& c) {
    for (const auto& [key, node] : root) {
      if (key.str() != "kpi") {
        error_at(key.source(), std::string(key.str()),
                 "an included file may only hold [[kpi]] tables");
        continue;
      }
      load_kpis(node, c.kpis);
    }
  }

 private:
  void error(const toml::node& node, const std::string& key, std::string message) {
    error_at(node.source(), key, std::move(message));
  }

  void error_at(const toml::source_region& src, const std::string& key, std::string message) {
    errors_.push_back({file_, static_cast<int>(src.begin.line), static_cast<int>(src.begin.column),
                       key, std::move(message)});
  }

  // "; did you mean \"x\"?" when a known name is a likely typo of `name`.
  template <size_t N>
  static std::string suggest(const std::string& name, const std::array<const char*, N>& known) {
    const char* best = nullptr;
    size_t best_distance = 3;  // suggest only close matches
    for (const char* k : known) {
      size_t d = edit_distance(name, k);
      if (d < best_distance) {
        best_distance = d;
        best = k;
      }
    }
    return best ? std::string("; did you mean \"") + best + "\"?" : std::string();
  }

  static size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
        diagonal = up;
      }
    }
    return row[b.size()];
  }

  // Reports keys of `table` that `known` does not list.
  template <size_t N>
  void check_keys(const toml::table& table, const std::string& section,
                  const std::array<const char*, N>& known) {
    for (const auto& [key, node] : table) {
      bool found = false;
      for (const char* k : known) found = found || key.str() == k;
      if (!found) {
        error_at(key.source(), section + "." + std::string(key.str()),
                 "unknown key" + suggest(std::string(key.str()), known));
      }
    }
  }

  void get_string(const toml::table& t, const std::string& section, const char* key,
                  std::string& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    if (auto v = n->value<std::string>(); v && n->is_string()) {
      out = *v;
    } else {
      error(*n, section + "." + key, "expected a string");
    }
  }

  void get_bool(const toml::table& t, const std::string& section, const char* key, bool& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    if (n->is_boolean()) {
      out = *n->value<bool>();
    } else {
      error(*n, section + "." + key, "expected a boolean (true or false)");
    }
  }

  void get_int(const toml::table& t, const std::string& section, const char* key, int64_t min,
               int64_t max, int64_t& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    if (!n->is_integer()) {
      error(*n, section + "." + key, "expected an integer");
      return;
    }
    int64_t v = *n->value<int64_t>();
    if (v < min || v > max) {
      error(*n, section + "." + key,
            "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                std::to_string(v));
      return;
    }
    out = v;
  }

  void get_duration(const toml::table& t, const std::string& section, const char* key,
                    DurationMs min, DurationMs& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    const std::string path = section.empty() ? std::string(key) : section + "." + key;
    if (!n->is_string()) {
      error(*n, path, "expected a duration string such as \"30s\" or \"5m\"");
      return;
    }
    auto d = parse_duration(*n->value<std::string>());
    if (!d) {
      error(*n, path, d.status().message());
      return;
    }
    if (*d < min) {
      error(*n, path, "must be at least " + format_duration(min));
      return;
    }
    out = *d;
  }

  void get_size(const toml::table& t, const std::string& section, const char* key, uint64_t min,
                uint64_t& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    Result<uint64_t> size = Status::invalid_argument(
        "expected a size: an integer number of bytes or a string such as \"64KiB\" or \"25MiB\"");
    if (n->is_integer()) {
      int64_t v = *n->value<int64_t>();
      if (v >= 0) size = static_cast<uint64_t>(v);
    } else if (n->is_string()) {
      size = parse_size(*n->value<std::string>());
    }
    if (!size) {
      error(*n, section + "." + key, size.status().message());
      return;
    }
    if (*size < min) {
      error(*n, section + "." + key, "must be at least " + std::to_string(min) + " bytes");
      return;
    }
    out = *size;
  }

  void get_listen(const toml::table& t, const std::string& section, bool allow_empty,
                  std::string& out) {
    const toml::node* n = t.get("listen");
    if (n == nullptr) return;
    std::string value;
    get_string(t, section, "listen", value);
    if (!n->is_string()) return;
    if (value.empty() && allow_empty) {
      out = value;
      return;
    }
    if (auto hp = parse_host_port(value); !hp) {
      error(*n, section + ".listen", hp.status().message());
      return;
    }
    out = value;
  }

  void load_storage(const toml::table& t, StorageConfig& c) {
    check_keys(
        t, "storage",
        std::array{"data_dir", "sync", "max_series", "max_series_per_metric",
                   "max_labels_per_series", "max_label_name_bytes", "max_label_value_bytes",
                   "checkpoint_interval", "head_max_samples", "min_free_bytes", "backup_dir"});
    get_string(t, "storage", "data_dir", c.data_dir);
    if (const auto* n = t.get("data_dir"); n && n->is_string() && c.data_dir.empty()) {
      error(*n, "storage.data_dir", "must not be empty");
    }
    get_bool(t, "storage", "sync", c.sync);
    get_int(t, "storage", "max_series", 1, int64_t{1} << 32, c.max_series);
    get_int(t, "storage", "max_series_per_metric", 1, int64_t{1} << 32, c.max_series_per_metric);
    get_int(t, "storage", "max_labels_per_series", 1, 1000, c.max_labels_per_series);
    get_int(t, "storage", "max_label_name_bytes", 1, 1 << 20, c.max_label_name_bytes);
    get_int(t, "storage", "max_label_value_bytes", 1, 1 << 20, c.max_label_value_bytes);
    get_duration(t, "storage", "checkpoint_interval", 1000, c.checkpoint_interval);
    get_int(t, "storage", "head_max_samples", 1000, int64_t{1} << 32, c.head_max_samples);
    get_size(t, "storage", "min_free_bytes", 0, c.min_free_bytes);
    get_string(t, "storage", "backup_dir", c.backup_dir);
  }

  void load_retention(const toml::table& t, RetentionConfig& c) {
    check_keys(t, "retention", std::array{"raw", "rollup_5m", "rollup_1h"});
    // Shorter than a chunk window would expire windows that still take samples.
    constexpr DurationMs kMin = 2 * 3'600'000;
    get_duration(t, "retention", "raw", kMin, c.raw);
    get_duration(t, "retention", "rollup_5m", kMin, c.rollup_5m);
    get_duration(t, "retention", "rollup_1h", kMin, c.rollup_1h);
  }

  void load_http(const toml::table& t, HttpConfig& c) {
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

  void load_line(const toml::table& t, LineConfig& c) {
    check_keys(
        t, "line",
        std::array{"listen", "max_line_bytes", "error_log_interval", "max_connections", "tls"});
    get_listen(t, "line", true, c.listen);
    get_size(t, "line", "max_line_bytes", 16, c.max_line_bytes);
    get_duration(t, "line", "error_log_interval", 0, c.error_log_interval);
    get_int(t, "line", "max_connections", 1, 1'000'000, c.max_connections);
    load_tls(t, "line", c.tls);
  }

  // [http.tls] / [line.tls]. Whether the files load and the key matches the certificate is
  // checked where they can be loaded (app::load_all), at the positions kept here.
  void load_tls(const toml::table& parent, const std::string& parent_section, TlsConfig& c) {
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
    get_choice(*t, section, "min_version", std::array{"1.2", "1.3"}, c.min_version);
    // Half a pair would silently serve plain text on a port clients expect to be encrypted.
    if (c.cert_file.empty() != c.key_file.empty()) {
      error(*t, section + (c.cert_file.empty() ? ".cert_file" : ".key_file"),
            std::string("is required with ") + (c.cert_file.empty() ? "key_file" : "cert_file"));
      c.cert_file.clear();
      c.key_file.clear();
    }
  }

  void load_query(const toml::table& t, QueryConfig& c) {
    check_keys(t, "query", std::array{"lookback_delta", "max_points_per_series"});
    get_duration(t, "query", "lookback_delta", 1, c.lookback_delta);
    get_int(t, "query", "max_points_per_series", 1, 10'000'000, c.max_points_per_series);
  }

  void load_log(const toml::table& t, LogConfig& c) {
    check_keys(t, "log", std::array{"level"});
    get_string(t, "log", "level", c.level);
    if (const auto* n = t.get("level"); n && n->is_string() && !is_log_level(c.level)) {
      error(*n, "log.level",
            "unknown level \"" + c.level +
                "\"; expected one of trace, debug, info, warn, error, critical, off");
    }
  }

  // --- KPIs ---------------------------------------------------------------------------------

  void load_include(const toml::node& node, std::vector<std::string>& out) {
    const toml::array* patterns = node.as_array();
    if (patterns == nullptr) {
      error(node, "include", "expected an array of file patterns, e.g. [\"kpis.d/*.toml\"]");
      return;
    }
    for (const auto& p : *patterns) {
      if (!p.is_string() || p.value<std::string>()->empty()) {
        error(p, "include", "expected a non-empty string (a file pattern)");
        continue;
      }
      out.push_back(*p.value<std::string>());
    }
  }

  void load_kpis(const toml::node& node, std::vector<KpiConfig>& out) {
    const toml::array* tables = node.as_array();
    if (tables == nullptr || !tables->is_array_of_tables()) {
      error(node, "kpi", "expected [[kpi]] tables");
      return;
    }
    for (const auto& element : *tables) {
      KpiConfig kpi;
      if (load_kpi(*element.as_table(), out.size() + skipped_kpis_, kpi)) {
        out.push_back(std::move(kpi));
      } else {
        ++skipped_kpis_;
      }
    }
  }

  // An integer or float node as a double.
  static double number_of(const toml::node& n) {
    return n.is_integer() ? static_cast<double>(*n.value<int64_t>()) : *n.value<double>();
  }

  double get_number(const toml::table& t, const std::string& section, const char* key,
                    double fallback, bool* present = nullptr) {
    const toml::node* n = t.get(key);
    if (present != nullptr) *present = false;
    if (n == nullptr) return fallback;
    if (!n->is_number()) {
      error(*n, section + "." + key, "expected a number");
      return fallback;
    }
    double v = number_of(*n);
    if (!std::isfinite(v)) {
      error(*n, section + "." + key, "must be a finite number");
      return fallback;
    }
    if (present != nullptr) *present = true;
    return v;
  }

  // A non-negative number of requests (per second, or at once); 0 turns the limit off.
  void get_rate(const toml::table& t, const std::string& section, const char* key, double& out) {
    bool present = false;
    const double v = get_number(t, section, key, out, &present);
    if (!present) return;
    if (v < 0 || v > 1e9) {
      error(*t.get(key), section + "." + key, "must be between 0 (no limit) and 1e9");
      return;
    }
    out = v;
  }

  // A string that must be one of `allowed` (when present); returns false if it was not.
  template <size_t N>
  bool get_choice(const toml::table& t, const std::string& section, const char* key,
                  const std::array<const char*, N>& allowed, std::string& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return true;
    std::string value;
    get_string(t, section, key, value);
    if (!n->is_string()) return false;
    for (const char* a : allowed) {
      if (value == a) {
        out = value;
        return true;
      }
    }
    std::string list;
    for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    error(*n, section + "." + key,
          "unknown value \"" + value + "\"; expected one of " + list + suggest(value, allowed));
    return false;
  }

  bool require(const toml::table& t, const toml::node& at, const std::string& section,
               const char* key) {
    if (t.contains(key)) return true;
    error(at, section + "." + key, "is required");
    return false;
  }

  SourcePos pos_of(const toml::node& n) const {
    return {file_, static_cast<int>(n.source().begin.line),
            static_cast<int>(n.source().begin.column)};
  }

  bool load_kpi(const toml::table& t, size_t index, KpiConfig& k) {
    const size_t errors_before = errors_.size();
    k.pos = pos_of(t);
    std::string section = "kpi[" + std::to_string(index) + "]";
    if (const toml::node* id = t.get("id"); id != nullptr && id->is_string()) {
      k.id = *id->value<std::string>();
      section = "kpi." + k.id;
      static constexpr std::string_view kIdChars =
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
      if (k.id.empty() || k.id.size() > 128 ||
          k.id.find_first_not_of(kIdChars) != std::string::npos) {
        error(*id, section + ".id",
              "must be 1-128 characters of letters, digits, '_', '.' and '-' (it appears in URLs "
              "and metric labels)");
      } else if (auto [it, fresh] = ids_->emplace(k.id, k.pos); !fresh) {
        error(*id, section + ".id",
              "duplicate KPI id; first defined at " + it->second.file + ":" +
                  std::to_string(it->second.line));
      }
    } else if (id != nullptr) {
      error(*id, section + ".id", "expected a string");
    } else {
      error(t, section + ".id", "is required");
    }
    check_keys(t, section,
               std::array{"id", "name", "description", "owner", "unit", "review", "direction",
                          "value", "band", "baseline", "stale_after", "alert", "okr"});
    get_string(t, section, "name", k.name);
    if (k.name.empty()) k.name = k.id;
    get_string(t, section, "description", k.description);
    get_string(t, section, "owner", k.owner);
    get_string(t, section, "unit", k.unit);
    get_choice(t, section, "review", std::array{"daily", "weekly", "monthly"}, k.review);
    bool direction_ok =
        require(t, t, section, "direction") &&
        get_choice(t, section, "direction",
                   std::array{"higher_is_better", "lower_is_better", "in_range"}, k.direction);
    if (require(t, t, section, "value")) {
      if (const toml::table* v = table_at(t, section, "value")) {
        load_value(*v, section + ".value", k.value);
      }
    }
    if (t.contains("band")) {
      if (const toml::table* b = table_at(t, section, "band"); b && direction_ok) {
        k.band.emplace();
        load_band(*b, section + ".band", k.direction == "in_range", *k.band);
      }
    }
    if (t.contains("baseline")) {
      if (const toml::table* b = table_at(t, section, "baseline")) {
        k.baseline.emplace();
        load_baseline(*b, section + ".baseline", *k.baseline);
      }
    }
    get_duration(t, section, "stale_after", 1000, k.stale_after);
    if (const toml::node* alerts = t.get("alert")) load_alert_rules(*alerts, section, k.alerts);
    if (t.contains("okr")) {
      if (const toml::table* o = table_at(t, section, "okr")) {
        k.okr.emplace();
        load_kpi_okr(*o, section + ".okr", *k.okr);
      }
    }
    return errors_.size() == errors_before;
  }

  // --- Alerts ---------------------------------------------------------------------------------

  static constexpr std::array kSeverities = {"critical", "error", "warning", "info"};
  static constexpr std::array kConditions = {"crit", "warn", "anomalous", "no_data"};

  void load_alert_rules(const toml::node& node, const std::string& kpi_section,
                        std::vector<AlertRuleConfig>& out) {
    const toml::array* tables = node.as_array();
    if (tables == nullptr || !tables->is_array_of_tables()) {
      error(node, kpi_section + ".alert", "expected [[kpi.alert]] tables");
      return;
    }
    for (const auto& element : *tables) {
      const toml::table& t = *element.as_table();
      AlertRuleConfig rule;
      rule.pos = pos_of(t);
      std::string section = kpi_section + ".alert[" + std::to_string(out.size()) + "]";
      check_keys(t, section,
                 std::array{"condition", "name", "for", "clear_for", "hysteresis", "severity",
                            "runbook_url", "repeat_interval", "labels", "annotations"});
      if (require(t, t, section, "condition") &&
          get_choice(t, section, "condition", kConditions, rule.condition)) {
        section = kpi_section + ".alert." + rule.condition;
        for (const auto& other : out) {
          if (other.condition == rule.condition) {
            error(*t.get("condition"), section + ".condition",
                  "a KPI has at most one alert rule per condition; another is at line " +
                      std::to_string(other.pos.line));
          }
        }
      }
      get_string(t, section, "name", rule.name);
      get_duration(t, section, "for", 0, rule.for_duration);
      get_duration(t, section, "clear_for", 0, rule.clear_for);
      rule.hysteresis = get_number(t, section, "hysteresis", 0);
      if (const toml::node* n = t.get("hysteresis"); n && rule.hysteresis < 0) {
        error(*n, section + ".hysteresis", "must not be negative");
      }
      get_choice(t, section, "severity", kSeverities, rule.severity);
      get_string(t, section, "runbook_url", rule.runbook_url);
      if (t.contains("repeat_interval")) {
        DurationMs repeat = 0;
        get_duration(t, section, "repeat_interval", 60'000, repeat);
        rule.repeat_interval = repeat;
      }
      load_templates(t, section, "labels", rule.labels);
      load_templates(t, section, "annotations", rule.annotations);
      out.push_back(std::move(rule));
    }
  }

  void load_templates(const toml::table& t, const std::string& section, const char* key,
                      std::vector<TemplateConfig>& out) {
    const toml::table* table = table_at(t, section, key);
    if (table == nullptr) return;
    for (const auto& [name, value] : *table) {
      std::string full = section + "." + key + "." + std::string(name.str());
      if (!value.is_string()) {
        error(value, full, "expected a string (a template such as \"{{kpi}} is {{value}}\")");
        continue;
      }
      out.push_back({std::string(name.str()), *value.value<std::string>(), pos_of(value)});
    }
  }

  void load_kpi_okr(const toml::table& t, const std::string& section, KpiOkrConfig& c) {
    c.pos = pos_of(t);
    check_keys(t, section,
               std::array{"enabled", "after", "severities", "objective", "key_result", "guardrail",
                          "target", "related", "period", "graduate_after"});
    get_bool(t, section, "enabled", c.enabled);
    get_duration(t, section, "after", 0, c.after);
    if (t.contains("severities")) {
      c.severities.clear();
      get_strings(t, section, "severities", c.severities);
      for (const auto& s : c.severities) {
        if (std::find(kSeverities.begin(), kSeverities.end(), s) == kSeverities.end()) {
          error(*t.get("severities"), section + ".severities",
                "unknown severity \"" + s + "\"; expected critical, error, warning or info");
        }
      }
    }
    auto text = [&](const char* key, std::string& out, SourcePos& pos) {
      get_string(t, section, key, out);
      if (const toml::node* n = t.get(key)) pos = pos_of(*n);
    };
    text("objective", c.objective, c.objective_pos);
    text("key_result", c.key_result, c.key_result_pos);
    text("guardrail", c.guardrail, c.guardrail_pos);
    get_choice(t, section, "target", std::array{"band", "baseline"}, c.target);
    get_strings(t, section, "related", c.related);
    if (const toml::node* n = t.get("related")) c.related_pos = pos_of(*n);
    if (c.related.empty() || c.related.size() > 4) {
      error(t.contains("related") ? *t.get("related") : static_cast<const toml::node&>(t),
            section + ".related",
            "needs 1 to 4 related KPI ids: their guardrails and the KPI's own key result make "
            "the 2-5 key results of an OKR");
    }
    get_choice(t, section, "period", std::array{"month", "quarter", "half", "year"}, c.period);
    get_duration(t, section, "graduate_after", 0, c.graduate_after);
  }

  void load_okr(const toml::table& t, OkrConfig& c) {
    check_keys(t, "okr", std::array{"max_open_per_owner"});
    get_int(t, "okr", "max_open_per_owner", 1, 1000, c.max_open_per_owner);
  }

  void load_auth(const toml::table& t, AuthConfig& c) {
    check_keys(t, "auth",
               std::array{"token", "tokens_file", "open", "allow_unauthenticated", "audit_log"});
    get_string(t, "auth", "tokens_file", c.tokens_file);
    if (const toml::node* n = t.get("tokens_file")) c.tokens_file_pos = pos_of(*n);
    if (t.contains("open")) {
      c.open.clear();
      get_strings(t, "auth", "open", c.open);
      for (const auto& p : c.open) {
        if (!p.starts_with("/"))
          error(*t.get("open"), "auth.open", "\"" + p + "\" is not a path (starts with /)");
      }
    }
    get_bool(t, "auth", "allow_unauthenticated", c.allow_unauthenticated);
    get_string(t, "auth", "audit_log", c.audit_log);
    const toml::node* tokens = t.get("token");
    if (tokens == nullptr) return;
    const toml::array* tables = tokens->as_array();
    if (tables == nullptr || !tables->is_array_of_tables()) {
      error(*tokens, "auth.token", "expected [[auth.token]] tables");
      return;
    }
    for (const auto& element : *tables) {
      const toml::table& tt = *element.as_table();
      TokenConfig token;
      token.pos = pos_of(tt);
      std::string section = "auth.token[" + std::to_string(c.tokens.size()) + "]";
      check_keys(tt, section, std::array{"name", "roles", "sha256"});
      if (require(tt, tt, section, "name")) {
        get_string(tt, section, "name", token.name);
        if (!token.name.empty()) section = "auth.token." + token.name;
        for (const auto& other : c.tokens) {
          if (!token.name.empty() && other.name == token.name) {
            error(*tt.get("name"), section + ".name",
                  "duplicate token name; first defined at line " + std::to_string(other.pos.line));
          }
        }
      }
      if (require(tt, tt, section, "roles")) {
        get_strings(tt, section, "roles", token.roles);
        if (token.roles.empty())
          error(*tt.get("roles"), section + ".roles", "needs at least one role");
        for (const auto& r : token.roles) {
          if (r != "write" && r != "read" && r != "admin") {
            error(*tt.get("roles"), section + ".roles",
                  "unknown role \"" + r + "\"; expected write, read or admin");
          }
        }
      }
      if (require(tt, tt, section, "sha256")) {
        get_string(tt, section, "sha256", token.sha256);
        const bool hex = token.sha256.size() == 64 &&
                         token.sha256.find_first_not_of("0123456789abcdef") == std::string::npos;
        if (!hex) {
          error(*tt.get("sha256"), section + ".sha256",
                "expected the token's SHA-256 as 64 lowercase hex digits (kpid --hash-token)");
        }
      }
      c.tokens.push_back(std::move(token));
    }
  }

  void load_alerting(const toml::table& t, AlertingConfig& c) {
    check_keys(t, "alerting",
               std::array{"external_url", "repeat_interval", "notification_max_age",
                          "retry_initial", "retry_max", "resolved_retention"});
    get_string(t, "alerting", "external_url", c.external_url);
    if (const toml::node* n = t.get("external_url")) c.external_url_pos = pos_of(*n);
    get_duration(t, "alerting", "repeat_interval", 60'000, c.repeat_interval);
    get_duration(t, "alerting", "notification_max_age", 60'000, c.notification_max_age);
    get_duration(t, "alerting", "retry_initial", 10, c.retry_initial);
    get_duration(t, "alerting", "retry_max", 10, c.retry_max);
    if (c.retry_max < c.retry_initial) {
      error(t.contains("retry_max") ? *t.get("retry_max") : static_cast<const toml::node&>(t),
            "alerting.retry_max", "must not be below alerting.retry_initial");
    }
    get_duration(t, "alerting", "resolved_retention", 60'000, c.resolved_retention);
  }

  void get_strings(const toml::table& t, const std::string& section, const char* key,
                   std::vector<std::string>& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    const toml::array* a = n->as_array();
    if (a == nullptr) {
      error(*n, section + "." + key, "expected an array of strings");
      return;
    }
    for (const auto& e : *a) {
      if (!e.is_string()) {
        error(e, section + "." + key, "expected an array of strings");
        continue;
      }
      out.push_back(*e.value<std::string>());
    }
  }

  void load_receivers(const toml::node& node, std::vector<ReceiverConfig>& out) {
    const toml::array* tables = node.as_array();
    if (tables == nullptr || !tables->is_array_of_tables()) {
      error(node, "receiver", "expected [[receiver]] tables");
      return;
    }
    for (const auto& element : *tables) {
      const toml::table& t = *element.as_table();
      ReceiverConfig r;
      r.pos = pos_of(t);
      std::string section = "receiver[" + std::to_string(out.size()) + "]";
      if (require(t, t, section, "name")) {
        get_string(t, section, "name", r.name);
        if (!r.name.empty()) section = "receiver." + r.name;
        const toml::node& at = *t.get("name");
        if (at.is_string() && r.name.empty()) error(at, section + ".name", "must not be empty");
        for (const auto& other : out) {
          if (!r.name.empty() && other.name == r.name) {
            error(
                at, section + ".name",
                "duplicate receiver name; first defined at line " + std::to_string(other.pos.line));
          }
        }
      }
      check_keys(t, section,
                 std::array{"name", "type", "url", "severities", "owners", "timeout", "ca_file",
                            "routing_key", "secret", "resend_interval"});
      if (require(t, t, section, "type")) {
        get_choice(t, section, "type", std::array{"alertmanager", "pagerduty", "webhook"}, r.type);
      }
      get_string(t, section, "url", r.url);
      if (const toml::node* n = t.get("url")) r.url_pos = pos_of(*n);
      if (r.url.empty() && (r.type == "alertmanager" || r.type == "webhook")) {
        error(t.contains("url") ? *t.get("url") : static_cast<const toml::node&>(t),
              section + ".url", "is required for type = \"" + r.type + "\"");
      }
      get_strings(t, section, "severities", r.severities);
      for (const auto& s : r.severities) {
        if (std::find(kSeverities.begin(), kSeverities.end(), s) == kSeverities.end()) {
          error(*t.get("severities"), section + ".severities",
                "unknown severity \"" + s + "\"; expected critical, error, warning or info");
        }
      }
      get_strings(t, section, "owners", r.owners);
      get_duration(t, section, "timeout", 100, r.timeout);
      get_string(t, section, "ca_file", r.ca_file);
      // Keys that only one type uses are refused on the others: they would have no effect.
      auto only_for = [&](const char* key, const char* type) {
        if (const toml::node* n = t.get(key); n && !r.type.empty() && r.type != type) {
          error(*n, section + "." + key, std::string("applies only to type = \"") + type + "\"");
          return false;
        }
        return true;
      };
      if (only_for("routing_key", "pagerduty"))
        get_string(t, section, "routing_key", r.routing_key);
      if (r.type == "pagerduty" && r.routing_key.empty()) {
        error(t.contains("routing_key") ? *t.get("routing_key") : static_cast<const toml::node&>(t),
              section + ".routing_key", "is required for type = \"pagerduty\"");
      }
      if (only_for("secret", "webhook")) get_string(t, section, "secret", r.secret);
      if (only_for("resend_interval", "alertmanager")) {
        get_duration(t, section, "resend_interval", 1'000, r.resend_interval);
      }
      out.push_back(std::move(r));
    }
  }

  const toml::table* table_at(const toml::table& t, const std::string& section, const char* key) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return nullptr;
    if (const toml::table* table = n->as_table()) return table;
    error(*n, section + "." + key, "expected a table ([" + section + "." + key + "])");
    return nullptr;
  }

  void load_value(const toml::table& t, const std::string& section, KpiValueConfig& v) {
    if (t.contains("numerator") || t.contains("denominator")) {
      v.ratio = true;
      check_keys(t, section, std::array{"numerator", "denominator", "scale"});
      if (require(t, t, section, "numerator")) {
        if (const toml::table* n = table_at(t, section, "numerator")) {
          load_term(*n, section + ".numerator", v.term);
        }
      }
      if (require(t, t, section, "denominator")) {
        if (const toml::table* d = table_at(t, section, "denominator")) {
          load_term(*d, section + ".denominator", v.denominator);
        }
      }
      v.scale = get_number(t, section, "scale", 1);
      if (const toml::node* n = t.get("scale"); n && v.scale == 0) {
        error(*n, section + ".scale", "must not be 0");
      }
      return;
    }
    if (t.contains("scale")) {
      error(*t.get("scale"), section + ".scale",
            "applies only to a ratio (value.numerator and value.denominator)");
    }
    load_term(t, section, v.term);
  }

  void load_term(const toml::table& t, const std::string& section, KpiTermConfig& term) {
    check_keys(t, section, std::array{"selector", "over_time", "quantile", "window", "across"});
    if (require(t, t, section, "selector")) {
      get_string(t, section, "selector", term.selector);
      term.selector_pos = pos_of(*t.get("selector"));
      if (t.get("selector")->is_string() && term.selector.empty()) {
        error(*t.get("selector"), section + ".selector", "must not be empty");
      }
    }
    if (require(t, t, section, "over_time")) {
      get_choice(t, section, "over_time",
                 std::array{"avg", "min", "max", "sum", "last", "rate", "increase", "quantile"},
                 term.over_time);
    }
    if (term.over_time == "quantile") {
      if (require(t, t, section, "quantile")) {
        term.quantile = get_number(t, section, "quantile", 0.5);
        if (term.quantile < 0 || term.quantile > 1) {
          error(*t.get("quantile"), section + ".quantile", "must be between 0 and 1");
        }
      }
    } else if (const toml::node* q = t.get("quantile")) {
      error(*q, section + ".quantile", "applies only to over_time = \"quantile\"");
    }
    get_duration(t, section, "window", 1000, term.window);
    get_choice(t, section, "across", std::array{"sum", "avg", "min", "max"}, term.across);
  }

  void load_band(const toml::table& t, const std::string& section, bool in_range,
                 KpiBandConfig& b) {
    b.pos = pos_of(t);
    bool present = false;
    double target = get_number(t, section, "target", 0, &present);
    if (present) b.target = target;
    if (in_range) {
      check_keys(t, section,
                 std::array{"target", "warn_low", "crit_low", "warn_high", "crit_high"});
      for (const char* key : {"warn_low", "crit_low", "warn_high", "crit_high"}) {
        if (!t.contains(key)) {
          error(t, section + "." + key, "is required for direction = \"in_range\"");
        }
      }
      b.warn_low = get_number(t, section, "warn_low", 0);
      b.crit_low = get_number(t, section, "crit_low", 0);
      b.warn_high = get_number(t, section, "warn_high", 0);
      b.crit_high = get_number(t, section, "crit_high", 0);
    } else {
      check_keys(t, section, std::array{"target", "warn", "crit"});
      for (const char* key : {"warn", "crit"}) {
        if (!t.contains(key)) error(t, section + "." + key, "is required");
      }
      b.warn = get_number(t, section, "warn", 0);
      b.crit = get_number(t, section, "crit", 0);
    }
  }

  void load_baseline(const toml::table& t, const std::string& section, KpiBaselineConfig& b) {
    check_keys(t, section,
               std::array{"method", "window", "quantiles", "k", "alpha", "min_history", "refresh"});
    get_choice(t, section, "method", std::array{"quantile", "stddev", "ewma", "seasonal"},
               b.method);
    constexpr DurationMs kHour = 3'600'000;
    constexpr DurationMs kDay = 24 * kHour;
    get_duration(t, section, "window", kHour, b.window);
    if (const toml::node* n = t.get("window"); n && b.window > 366 * kDay) {
      error(*n, section + ".window", "must be at most 366d");
    }
    if (const toml::node* n = t.get("window"); b.method == "seasonal" && b.window < 14 * kDay) {
      error(n ? *n : static_cast<const toml::node&>(t), section + ".window",
            "method = \"seasonal\" needs a window of at least 2 weeks (\"14d\")");
    }
    if (const toml::node* n = t.get("quantiles")) {
      const toml::array* q = n->as_array();
      if (b.method != "quantile") {
        error(*n, section + ".quantiles", "applies only to method = \"quantile\"");
      } else if (q == nullptr || q->size() != 2 || !(*q)[0].is_number() || !(*q)[1].is_number()) {
        error(*n, section + ".quantiles", "expected two numbers, e.g. [0.05, 0.95]");
      } else {
        b.quantile_low = number_of((*q)[0]);
        b.quantile_high = number_of((*q)[1]);
        if (!(b.quantile_low >= 0 && b.quantile_low < b.quantile_high && b.quantile_high <= 1)) {
          error(*n, section + ".quantiles", "expected 0 <= low < high <= 1");
        }
      }
    }
    if (const toml::node* n = t.get("k")) {
      b.k = get_number(t, section, "k", b.k);
      if (b.method == "quantile") {
        error(*n, section + ".k", "applies only to methods stddev, ewma and seasonal");
      } else if (!(b.k > 0)) {
        error(*n, section + ".k", "must be above 0");
      }
    }
    if (const toml::node* n = t.get("alpha")) {
      b.alpha = get_number(t, section, "alpha", b.alpha);
      if (b.method != "ewma") {
        error(*n, section + ".alpha", "applies only to method = \"ewma\"");
      } else if (!(b.alpha > 0 && b.alpha <= 1)) {
        error(*n, section + ".alpha", "must be above 0 and at most 1");
      }
    }
    get_duration(t, section, "min_history", 0, b.min_history);
    if (const toml::node* n = t.get("min_history"); n && b.min_history > b.window) {
      error(*n, section + ".min_history", "must not exceed the baseline window");
    }
    get_duration(t, section, "refresh", 60'000, b.refresh);
  }

 public:
  // KPI ids seen so far across the main file and its includes: id -> where first defined.
  std::map<std::string, SourcePos>* ids_ = nullptr;

 private:
  size_t skipped_kpis_ = 0;

  const std::string& file_;
  std::vector<ConfigError>& errors_;
  bool shutdown_timeout_set_ = false;  // the top-level key was given
};

void apply_overrides(const Overrides& o, Config& c, std::vector<ConfigError>& errors) {
  auto cli_error = [&](const char* flag, std::string message) {
    errors.push_back({"command line", 0, 0, flag, std::move(message)});
  };
  if (o.data_dir) {
    if (o.data_dir->empty()) cli_error("--data-dir", "must not be empty");
    c.storage.data_dir = *o.data_dir;
  }
  if (o.http_listen) {
    if (auto hp = parse_host_port(*o.http_listen); !hp) {
      cli_error("--http-listen", hp.status().message());
    }
    c.http.listen = *o.http_listen;
  }
  if (o.line_listen) {
    if (auto hp = parse_host_port(*o.line_listen); !o.line_listen->empty() && !hp) {
      cli_error("--line-listen", hp.status().message());
    }
    c.line.listen = *o.line_listen;
  }
  if (o.log_level) {
    if (!is_log_level(*o.log_level)) {
      cli_error("--log-level", "unknown level \"" + *o.log_level +
                                   "\"; expected one of trace, debug, info, warn, error, "
                                   "critical, off");
    }
    c.log.level = *o.log_level;
  }
}

}  // namespace

std::string backup_dir_of(const StorageConfig& c) {
  if (!c.backup_dir.empty()) return c.backup_dir;
  std::filesystem::path data = std::filesystem::absolute(c.data_dir).lexically_normal();
  if (data.filename().empty()) data = data.parent_path();  // a trailing '/'
  return (data.parent_path() / "kpid-backups").string();
}

std::string ConfigError::to_string() const {
  std::string out;
  if (!file.empty()) {
    out += file;
    if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
    out += ": ";
  }
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

void sort_errors(std::vector<ConfigError>& errors) {
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
  });
}

namespace {

std::optional<toml::table> parse_toml(std::string_view text, const std::string& source_name,
                                      std::vector<ConfigError>& errors) {
  try {
    return toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    errors.push_back({source_name, static_cast<int>(src.begin.line),
                      static_cast<int>(src.begin.column), "",
                      "TOML syntax error: " + std::string(e.description())});
    return std::nullopt;
  }
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Loads the KPI files the config includes: each pattern is a glob(3) pattern, relative to the
// directory of the config file; its files load in name order. A pattern without wildcards
// must name an existing file; one with wildcards may match nothing (an empty kpis.d/).
void load_includes(const std::string& source_name, Config& config,
                   std::map<std::string, SourcePos>& ids, std::vector<ConfigError>& errors) {
  namespace fs = std::filesystem;
  fs::path base = source_name.empty() ? fs::path(".") : fs::path(source_name).parent_path();
  for (const auto& pattern : config.include) {
    fs::path full = fs::path(pattern).is_absolute() ? fs::path(pattern) : base / pattern;
    glob_t matches{};
    int rc = glob(full.c_str(), 0, nullptr, &matches);
    std::vector<std::string> files(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
    globfree(&matches);
    bool wildcard = pattern.find_first_of("*?[") != std::string::npos;
    if (rc == GLOB_NOMATCH && !wildcard) {
      errors.push_back(
          {source_name, 0, 0, "include", "included file " + full.string() + " does not exist"});
      continue;
    }
    if (rc != 0 && rc != GLOB_NOMATCH) {
      errors.push_back({source_name, 0, 0, "include", "cannot list " + full.string()});
      continue;
    }
    for (const auto& file : files) {
      auto text = read_file(file);
      if (!text) {
        errors.push_back({file, 0, 0, "", "cannot open included file"});
        continue;
      }
      auto root = parse_toml(*text, file, errors);
      if (!root) continue;
      Loader loader(file, errors);
      loader.ids_ = &ids;
      loader.load_included(*root, config);
    }
  }
}

}  // namespace

LoadResult parse_config(std::string_view text, const std::string& source_name,
                        const Overrides& overrides) {
  LoadResult result;
  result.config.source = source_name;
  std::map<std::string, SourcePos> ids;
  if (auto root = parse_toml(text, source_name, result.errors)) {
    Loader loader(source_name, result.errors);
    loader.ids_ = &ids;
    loader.load(*root, result.config);
    load_includes(source_name, result.config, ids, result.errors);
  }
  sort_errors(result.errors);
  apply_overrides(overrides, result.config, result.errors);
  return result;
}

LoadResult load_config(const std::string& path, const Overrides& overrides) {
  if (path.empty()) return parse_config("", "", overrides);
  auto text = read_file(path);
  if (!text) {
    LoadResult result;
    result.errors.push_back({path, 0, 0, "", "cannot open config file"});
    return result;
  }
  return parse_config(*text, path, overrides);
}

Result<HostPort> parse_host_port(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Status::invalid_argument("invalid listen address \"" + std::string(text) + "\": " + why +
                                    " (expected HOST:PORT, e.g. 127.0.0.1:9470)");
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("missing port");
  std::string host(text.substr(0, colon));
  std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    in6_addr addr6{};
    if (inet_pton(AF_INET6, host.c_str(), &addr6) != 1) return bad("not an IPv6 address");
  } else if (host != "localhost") {
    in_addr addr4{};
    if (inet_pton(AF_INET, host.c_str(), &addr4) != 1) {
      return bad("host must be an IP address or localhost");
    }
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return bad("port must be a number from 0 to 65535");
  }
  return HostPort{host, static_cast<uint16_t>(port)};
}

Result<uint64_t> parse_size(std::string_view text) {
  auto bad = [&] {
    return Status::invalid_argument("invalid size \"" + std::string(text) +
                                    "\": expected a number with an optional unit B, KB, MB, GB, "
                                    "KiB, MiB or GiB, e.g. \"25MiB\"");
  };
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end == text.data()) return bad();
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  struct Unit {
    std::string_view name;
    uint64_t factor;
  };
  static constexpr Unit kUnits[] = {{"", 1},
                                    {"B", 1},
                                    {"KB", 1000},
                                    {"MB", 1000000},
                                    {"GB", 1000000000},
                                    {"KiB", 1ull << 10},
                                    {"MiB", 1ull << 20},
                                    {"GiB", 1ull << 30}};
  for (const auto& u : kUnits) {
    if (unit == u.name) {
      if (number > UINT64_MAX / u.factor) return bad();
      return number * u.factor;
    }
  }
  return bad();
}

bool is_log_level(std::string_view level) {
  static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                 "error", "critical", "off"};
  for (auto l : kLevels) {
    if (level == l) return true;
  }
  return false;
}

}  // namespace kpid::config
