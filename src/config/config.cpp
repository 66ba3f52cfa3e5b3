#include "kpid/config/config.h"

#include "loader.h"

#include "kpid/config/openslo.h"

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
  if (o.shard) {
    if (auto shard = parse_shard(*o.shard); !shard) {
      cli_error("--shard", shard.status().message());
    } else {
      c.cluster.shard = *shard;
      c.cluster.shard_pos = SourcePos{"command line", 0, 0};
    }
  }
}

}  // namespace

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

// Loads the KPI and SLO files the config includes, in name order.
void load_includes(const std::string& source_name, Config& config,
                   std::map<std::string, SourcePos>& ids, std::map<std::string, SourcePos>& slo_ids,
                   std::vector<ConfigError>& errors) {
  for (const auto& file :
       detail::expand_patterns(source_name, config.include, "include", "included file", errors)) {
    auto text = detail::read_file(file);
    if (!text) {
      errors.push_back({file, 0, 0, "", "cannot open included file"});
      continue;
    }
    auto root = parse_toml(*text, file, errors);
    if (!root) continue;
    detail::Loader loader(file, errors);
    loader.ids_ = &ids;
    loader.slo_ids_ = &slo_ids;
    loader.load_included(*root, config);
  }
}

}  // namespace

namespace detail {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> expand_patterns(const std::string& source_name,
                                         const std::vector<std::string>& patterns,
                                         const std::string& key, const std::string& what,
                                         std::vector<ConfigError>& errors) {
  namespace fs = std::filesystem;
  const fs::path base = source_name.empty() ? fs::path(".") : fs::path(source_name).parent_path();
  std::vector<std::string> out;
  for (const auto& pattern : patterns) {
    const fs::path full = fs::path(pattern).is_absolute() ? fs::path(pattern) : base / pattern;
    glob_t matches{};
    const int rc = glob(full.c_str(), 0, nullptr, &matches);
    std::vector<std::string> files(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
    globfree(&matches);
    const bool wildcard = pattern.find_first_of("*?[") != std::string::npos;
    if (rc == GLOB_NOMATCH && !wildcard) {
      errors.push_back({source_name, 0, 0, key, what + " " + full.string() + " does not exist"});
      continue;
    }
    if (rc != 0 && rc != GLOB_NOMATCH) {
      errors.push_back({source_name, 0, 0, key, "cannot list " + full.string()});
      continue;
    }
    out.insert(out.end(), files.begin(), files.end());
  }
  return out;
}

}  // namespace detail

LoadResult parse_config(std::string_view text, const std::string& source_name,
                        const Overrides& overrides) {
  LoadResult result;
  result.config.source = source_name;
  std::map<std::string, SourcePos> ids;
  std::map<std::string, SourcePos> slo_ids;
  if (auto root = parse_toml(text, source_name, result.errors)) {
    detail::Loader loader(source_name, result.errors);
    loader.ids_ = &ids;
    loader.slo_ids_ = &slo_ids;
    loader.load(*root, result.config);
    load_includes(source_name, result.config, ids, slo_ids, result.errors);
    load_openslo(source_name, result.config, slo_ids, result.errors);
    detail::check_datasource_refs(result.config, result.errors);
  }
  sort_errors(result.errors);
  apply_overrides(overrides, result.config, result.errors);
  return result;
}

LoadResult load_config(const std::string& path, const Overrides& overrides) {
  if (path.empty()) return parse_config("", "", overrides);
  auto text = detail::read_file(path);
  if (!text) {
    LoadResult result;
    result.errors.push_back({path, 0, 0, "", "cannot open config file"});
    return result;
  }
  return parse_config(*text, path, overrides);
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
