// Loader's typed getters: each reads one key, checks its type and range, and reports what is
// wrong at the key's file, line and column.
#include "loader.h"

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

void Loader::error(const toml::node& node, const std::string& key, std::string message) {
  error_at(node.source(), key, std::move(message));
}

void Loader::error_at(const toml::source_region& src, const std::string& key, std::string message) {
  errors_.push_back({file_, static_cast<int>(src.begin.line), static_cast<int>(src.begin.column),
                     key, std::move(message)});
}

size_t Loader::edit_distance(std::string_view a, std::string_view b) {
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

void Loader::get_string(const toml::table& t, const std::string& section, const char* key,
                        std::string& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return;
  if (auto v = n->value<std::string>(); v && n->is_string()) {
    out = *v;
  } else {
    error(*n, section + "." + key, "expected a string");
  }
}

void Loader::get_bool(const toml::table& t, const std::string& section, const char* key,
                      bool& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return;
  if (n->is_boolean()) {
    out = *n->value<bool>();
  } else {
    error(*n, section + "." + key, "expected a boolean (true or false)");
  }
}

void Loader::get_int(const toml::table& t, const std::string& section, const char* key, int64_t min,
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

void Loader::get_duration(const toml::table& t, const std::string& section, const char* key,
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

void Loader::get_size(const toml::table& t, const std::string& section, const char* key,
                      uint64_t min, uint64_t& out) {
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

void Loader::get_listen(const toml::table& t, const std::string& section, bool allow_empty,
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

double Loader::number_of(const toml::node& n) {
  return n.is_integer() ? static_cast<double>(*n.value<int64_t>()) : *n.value<double>();
}

double Loader::get_number(const toml::table& t, const std::string& section, const char* key,
                          double fallback, bool* present) {
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
void Loader::get_rate(const toml::table& t, const std::string& section, const char* key,
                      double& out) {
  bool present = false;
  const double v = get_number(t, section, key, out, &present);
  if (!present) return;
  if (v < 0 || v > 1e9) {
    error(*t.get(key), section + "." + key, "must be between 0 (no limit) and 1e9");
    return;
  }
  out = v;
}

bool Loader::require(const toml::table& t, const toml::node& at, const std::string& section,
                     const char* key) {
  if (t.contains(key)) return true;
  error(at, section + "." + key, "is required");
  return false;
}

SourcePos Loader::pos_of(const toml::node& n) const {
  return {file_, static_cast<int>(n.source().begin.line),
          static_cast<int>(n.source().begin.column)};
}

void Loader::get_strings(const toml::table& t, const std::string& section, const char* key,
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

const toml::table* Loader::table_at(const toml::table& t, const std::string& section,
                                    const char* key) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return nullptr;
  if (const toml::table* table = n->as_table()) return table;
  error(*n, section + "." + key, "expected a table ([" + section + "." + key + "])");
  return nullptr;
}

}  // namespace kpid::config::detail
