#pragma once
// The TOML walker behind load_config: one Loader per file fills a Config and collects every
// error (file, line, column, key) instead of stopping at the first. Its members are defined by
// concern: reader.cpp (typed getters and errors), server_sections.cpp (the document and the
// [storage], [retention], [http], [line], [query] and [log] tables), kpi_sections.cpp ([[kpi]]
// and its tables), team_sections.cpp ([alerting], [[receiver]], [okr] and [auth]).

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "kpid/config/config.h"
#include "kpid/net/client_auth.h"

namespace kpid::config::detail {

// A file's contents, or nullopt when it cannot be read.
std::optional<std::string> read_file(const std::string& path);

// The files `patterns` name: glob(3) patterns relative to the directory of `source_name`, each
// pattern's files in name order. A pattern without wildcards must name an existing file (else
// "<what> PATH does not exist" under `key`); one with wildcards may match nothing.
std::vector<std::string> expand_patterns(const std::string& source_name,
                                         const std::vector<std::string>& patterns,
                                         const std::string& key, const std::string& what,
                                         std::vector<ConfigError>& errors);

// Every `datasource = "NAME"` of a [[kpi]] and an [[slo]] names a [[datasource]]
// (datasource_sections.cpp); errors at the reference.
void check_datasource_refs(Config& c, std::vector<ConfigError>& errors);

class Loader {
 public:
  Loader(const std::string& file, std::vector<ConfigError>& errors)
      : file_(file), errors_(errors) {}

  void load(const toml::table& root, Config& c);

  // An included file holds [[kpi]] tables and nothing else.
  void load_included(const toml::table& root, Config& c);

  // KPI ids seen so far across the main file and its includes: id -> where first defined.
  std::map<std::string, SourcePos>* ids_ = nullptr;
  // The same for SLO ids.
  std::map<std::string, SourcePos>* slo_ids_ = nullptr;

 private:
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

  // An integer key into a field of another integer type, within [min, max].
  template <typename T>
  void get_count(const toml::table& t, const std::string& section, const char* key, int64_t min,
                 int64_t max, T& out) {
    auto value = static_cast<int64_t>(out);
    get_int(t, section, key, min, max, value);
    out = static_cast<T>(value);
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

  static constexpr std::array kSeverities = {"critical", "error", "warning", "info"};
  static constexpr std::array kConditions = {"crit", "warn", "anomalous", "no_data"};

  void error(const toml::node& node, const std::string& key, std::string message);

  void error_at(const toml::source_region& src, const std::string& key, std::string message);

  static size_t edit_distance(std::string_view a, std::string_view b);

  void get_string(const toml::table& t, const std::string& section, const char* key,
                  std::string& out);

  void get_bool(const toml::table& t, const std::string& section, const char* key, bool& out);

  void get_int(const toml::table& t, const std::string& section, const char* key, int64_t min,
               int64_t max, int64_t& out);

  void get_duration(const toml::table& t, const std::string& section, const char* key,
                    DurationMs min, DurationMs& out);

  void get_size(const toml::table& t, const std::string& section, const char* key, uint64_t min,
                uint64_t& out);

  void get_listen(const toml::table& t, const std::string& section, bool allow_empty,
                  std::string& out);

  static double number_of(const toml::node& n);

  double get_number(const toml::table& t, const std::string& section, const char* key,
                    double fallback, bool* present = nullptr);

  // A non-negative number of requests (per second, or at once); 0 turns the limit off.
  void get_rate(const toml::table& t, const std::string& section, const char* key, double& out);

  bool require(const toml::table& t, const toml::node& at, const std::string& section,
               const char* key);

  SourcePos pos_of(const toml::node& n) const;

  void get_strings(const toml::table& t, const std::string& section, const char* key,
                   std::vector<std::string>& out);

  const toml::table* table_at(const toml::table& t, const std::string& section, const char* key);

  void load_storage(const toml::table& t, store::StoreOptions& c);

  void load_retention(const toml::table& t, store::RetentionPolicy& c);

  void load_http(const toml::table& t, server::HttpOptions& c);

  void load_line(const toml::table& t, ingest::LineOptions& c);
  void load_ingest(const toml::table& t, ingest::IngestOptions& c);

  // [http.tls] / [line.tls]. Whether the files load and the key matches the certificate is
  // checked where they can be loaded (app::load_all), at the positions kept here.
  void load_tls(const toml::table& parent, const std::string& parent_section, net::TlsOptions& c);

  void load_query(const toml::table& t, query::QueryOptions& c);

  void load_log(const toml::table& t, LogConfig& c);

  void load_include(const toml::node& node, const std::string& key, std::vector<std::string>& out);

  // [[slo]] tables (slo_sections.cpp).
  void load_slos(const toml::node& node, std::vector<slo::SloOptions>& out);
  bool load_slo(const toml::table& t, size_t index, slo::SloOptions& s);
  void load_burn_alerts(const toml::node& node, const std::string& slo_section,
                        std::vector<slo::BurnAlertOptions>& out);
  void load_slo_okr(const toml::table& t, const std::string& section, slo::SloOkrOptions& c);

  // The `id` of a [[kpi]] or [[slo]] table (`table` "kpi" or "slo", `what` "KPI" or "SLO"):
  // 1-128 letters, digits, '_', '.' and '-', unique in `ids` (where it is recorded at `pos`).
  // Returns the table's section name for errors: "kpi.<id>", or "kpi[<index>]" without an id.
  std::string load_id(const toml::table& t, const std::string& table, size_t index,
                      const char* what, std::map<std::string, SourcePos>& ids, const SourcePos& pos,
                      std::string& id);

  void load_kpis(const toml::node& node, std::vector<kpi::KpiOptions>& out);

  bool load_kpi(const toml::table& t, size_t index, kpi::KpiOptions& k);

  void load_alert_rules(const toml::node& node, const std::string& kpi_section,
                        std::vector<kpi::AlertRuleOptions>& out);

  void load_templates(const toml::table& t, const std::string& section, const char* key,
                      std::vector<kpi::TemplateOptions>& out);

  void load_kpi_okr(const toml::table& t, const std::string& section, kpi::OkrDraftOptions& c);

  void load_value(const toml::table& t, const std::string& section, kpi::ValueOptions& v);

  void load_term(const toml::table& t, const std::string& section, kpi::TermOptions& term);

  void load_band(const toml::table& t, const std::string& section, bool in_range,
                 kpi::BandOptions& b);

  void load_baseline(const toml::table& t, const std::string& section, kpi::BaselineOptions& b);

  void load_okr(const toml::table& t, okr::OkrOptions& c);

  void load_auth(const toml::table& t, auth::AuthOptions& c);

  void load_alerting(const toml::table& t, alert::AlertingOptions& c);

  void load_receivers(const toml::node& node, std::vector<alert::ReceiverOptions>& out);

  // The keys of a server kpid calls (client_sections.cpp): bearer_token, bearer_token_file,
  // [basic_auth], [headers] and [tls], for the section's check_keys list.
  static constexpr std::array kClientAuthKeys = {"bearer_token", "bearer_token_file", "basic_auth",
                                                 "headers", "tls"};
  void load_client_auth(const toml::table& t, const std::string& section,
                        net::ClientAuthOptions& c);
  // [cluster] (cluster_sections.cpp).
  void load_cluster(const toml::table& t, cluster::ClusterOptions& c);

  // A path relative to the config file's directory (as include and auth.tokens_file are).
  std::string config_relative(const std::string& path) const;

  // [rules] (rules_sections.cpp): the patterns, expanded into paths; the files themselves are
  // loaded by the rules module (they need the PromQL parser).
  void load_rules(const toml::table& t, rules::RulesOptions& c);
  // [[datasource]] tables (datasource_sections.cpp).
  void load_datasources(const toml::node& node, std::vector<datasource::DatasourceOptions>& out);
  // [[remote_write]] tables (remote_write_sections.cpp).
  void load_remote_writes(const toml::node& node, std::vector<forward::RemoteWriteOptions>& out);

  size_t skipped_kpis_ = 0;
  size_t skipped_slos_ = 0;
  const std::string& file_;
  std::vector<ConfigError>& errors_;
  bool shutdown_timeout_set_ = false;  // the top-level key was given
};

}  // namespace kpid::config::detail
