// [[datasource]] tables and the `datasource = "NAME"` references of [[kpi]] and [[slo]] tables.

#include <array>
#include <cctype>

#include "loader.h"

namespace kpid::config::detail {

namespace {

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (unsigned char c : name) {
    if (std::isalnum(c) == 0 && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

}  // namespace

void Loader::load_datasources(const toml::node& node,
                              std::vector<datasource::DatasourceOptions>& out) {
  const toml::array* tables = node.as_array();
  if (tables == nullptr || !tables->is_array_of_tables()) {
    error(node, "datasource", "expected [[datasource]] tables");
    return;
  }
  static constexpr std::array kOwnKeys = {"name",       "url",     "timeout", "max_concurrency",
                                          "batch_size", "down_for"};
  std::array<const char*, kOwnKeys.size() + kClientAuthKeys.size()> keys{};
  std::copy(kOwnKeys.begin(), kOwnKeys.end(), keys.begin());
  std::copy(kClientAuthKeys.begin(), kClientAuthKeys.end(), keys.begin() + kOwnKeys.size());
  for (const auto& element : *tables) {
    const toml::table& t = *element.as_table();
    datasource::DatasourceOptions d;
    d.pos = pos_of(t);
    std::string section = "datasource[" + std::to_string(out.size()) + "]";
    if (require(t, t, section, "name")) {
      get_string(t, section, "name", d.name);
      const toml::node& at = *t.get("name");
      if (at.is_string() && !valid_name(d.name)) {
        error(at, section + ".name",
              "must be 1-128 letters, digits, '_', '.' or '-' (got \"" + d.name + "\")");
      } else if (at.is_string()) {
        section = "datasource." + d.name;
        for (const auto& other : out) {
          if (other.name == d.name) {
            error(at, section + ".name",
                  "duplicate datasource name; first defined at " + other.pos.file + ":" +
                      std::to_string(other.pos.line));
          }
        }
      }
    }
    check_keys(t, section, keys);
    if (require(t, t, section, "url")) {
      get_string(t, section, "url", d.url);
      if (const toml::node& at = *t.get("url"); at.is_string()) {
        if (!d.url.starts_with("http://") && !d.url.starts_with("https://")) {
          error(at, section + ".url", "must be an http:// or https:// URL (got \"" + d.url + "\")");
        } else if (d.url.find('?') != std::string::npos) {
          error(at, section + ".url",
                "must be the API's base without a query string (kpid appends /api/v1/query)");
        }
      }
    }
    get_duration(t, section, "timeout", 100, d.timeout);
    get_count(t, section, "max_concurrency", 1, 256, d.max_concurrency);
    get_count(t, section, "batch_size", 1, 10'000, d.batch_size);
    get_duration(t, section, "down_for", 0, d.down_for);
    load_client_auth(t, section, d.auth);
    out.push_back(std::move(d));
  }
}

void check_datasource_refs(Config& c, std::vector<ConfigError>& errors) {
  auto known = [&](const std::string& name) {
    return std::any_of(c.datasources.begin(), c.datasources.end(),
                       [&](const auto& d) { return d.name == name; });
  };
  for (const auto& k : c.kpis) {
    if (k.datasource.empty() || known(k.datasource)) continue;
    errors.push_back(
        {k.datasource_pos.file, k.datasource_pos.line, k.datasource_pos.column,
         "kpi." + k.id + ".datasource",
         "unknown datasource \"" + k.datasource + "\" (no [[datasource]] has that name)"});
  }
  for (const auto& s : c.slos) {
    if (s.datasource.empty() || known(s.datasource)) continue;
    errors.push_back(
        {s.datasource_pos.file, s.datasource_pos.line, s.datasource_pos.column,
         "slo." + s.id + ".datasource",
         "unknown datasource \"" + s.datasource + "\" (no [[datasource]] has that name)"});
  }
}

}  // namespace kpid::config::detail
