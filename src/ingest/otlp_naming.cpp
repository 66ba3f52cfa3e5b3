// OTLP names -> Prometheus names, as Prometheus' OTLP translation makes them with its default
// settings (see README "OpenTelemetry (OTLP/HTTP)"): metric names with unit and type suffixes,
// label names from attribute keys.
#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kpid/ingest/otlp.h"

namespace kpid::ingest {

namespace {

bool metric_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':';
}
bool label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim_space(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// UCUM units -> the words Prometheus' OTLP translation appends.
std::string_view unit_word(std::string_view unit) {
  static constexpr std::pair<std::string_view, std::string_view> kUnits[] = {{"d", "days"},
                                                                             {"h", "hours"},
                                                                             {"min", "minutes"},
                                                                             {"s", "seconds"},
                                                                             {"ms", "milliseconds"},
                                                                             {"us", "microseconds"},
                                                                             {"ns", "nanoseconds"},
                                                                             {"By", "bytes"},
                                                                             {"KiBy", "kibibytes"},
                                                                             {"MiBy", "mebibytes"},
                                                                             {"GiBy", "gibibytes"},
                                                                             {"TiBy", "tibibytes"},
                                                                             {"KBy", "kilobytes"},
                                                                             {"MBy", "megabytes"},
                                                                             {"GBy", "gigabytes"},
                                                                             {"TBy", "terabytes"},
                                                                             {"m", "meters"},
                                                                             {"V", "volts"},
                                                                             {"A", "amperes"},
                                                                             {"J", "joules"},
                                                                             {"W", "watts"},
                                                                             {"g", "grams"},
                                                                             {"Cel", "celsius"},
                                                                             {"Hz", "hertz"},
                                                                             {"1", ""},
                                                                             {"%", "percent"}};
  for (const auto& [from, to] : kUnits) {
    if (from == unit) return to;
  }
  return unit;
}

std::string_view per_unit_word(std::string_view unit) {
  static constexpr std::pair<std::string_view, std::string_view> kPer[] = {
      {"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
      {"w", "week"},   {"mo", "month"}, {"y", "year"}};
  for (const auto& [from, to] : kPer) {
    if (from == unit) return to;
  }
  return unit;
}

// Every character outside [a-zA-Z0-9:] becomes '_', runs of '_' become one, leading '_' go.
std::string clean_unit(std::string_view unit) {
  std::string out;
  for (char c : unit) {
    const char d = metric_char(c) ? c : '_';
    if (d == '_' && (out.empty() || out.back() == '_')) continue;
    out.push_back(d);
  }
  return out;
}

// The main and "per" parts of a unit ("By/s" -> "bytes", "per_second"); annotations in braces
// ("{request}") add nothing.
std::pair<std::string, std::string> unit_suffixes(std::string_view unit) {
  std::string main;
  std::string per;
  const size_t slash = unit.find('/');
  const std::string_view first = trim_space(unit.substr(0, slash));
  if (!first.empty() && first.find_first_of("{}") == std::string_view::npos) {
    main = unit_word(first);
  }
  if (slash != std::string_view::npos && slash + 1 < unit.size()) {
    const std::string_view second = trim_space(unit.substr(slash + 1));
    if (!second.empty() && second.find_first_of("{}") == std::string_view::npos) {
      const std::string_view word = per_unit_word(second);
      if (!word.empty()) per = "per_" + std::string(word);
    }
  }
  return {clean_unit(main), clean_unit(per)};
}

}  // namespace

std::string otlp_metric_name(std::string_view name, std::string_view unit, char kind) {
  std::vector<std::string_view> tokens;
  for (size_t i = 0; i < name.size();) {
    while (i < name.size() && !metric_char(name[i])) ++i;
    const size_t start = i;
    while (i < name.size() && metric_char(name[i])) ++i;
    if (i > start) tokens.push_back(name.substr(start, i - start));
  }
  auto [main, per] = unit_suffixes(unit);
  auto has = [&](std::string_view word) {
    return std::find(tokens.begin(), tokens.end(), word) != tokens.end();
  };
  if (has(main)) main.clear();
  if (per == "per_") {
    per.clear();
  } else {
    while (!per.empty() && per.back() == '_') per.pop_back();
    if (has(per)) per.clear();
  }
  if (!per.empty()) {
    while (!main.empty() && main.back() == '_') main.pop_back();
  }
  if (!main.empty()) tokens.push_back(main);
  if (!per.empty()) tokens.push_back(per);
  auto move_to_end = [&](std::string_view word) {
    std::erase(tokens, word);
    tokens.push_back(word);
  };
  if (kind == 'c') move_to_end("total");
  if (unit == "1" && kind == 'g') move_to_end("ratio");
  std::string out;
  for (std::string_view t : tokens) {
    if (!out.empty()) out.push_back('_');
    out.append(t);
  }
  if (!out.empty() && is_digit(out.front())) out.insert(out.begin(), '_');
  return out;
}

std::string otlp_label_name(std::string_view attribute) {
  if (attribute.empty()) return {};
  const bool reserved =
      attribute.size() >= 4 && attribute.starts_with("__") && attribute.ends_with("__");
  if (reserved) attribute = attribute.substr(2, attribute.size() - 4);
  std::string out;
  bool underscore = false;
  for (char c : attribute) {
    if (label_char(c)) {
      out.push_back(c);
      underscore = false;
    } else if (!underscore) {
      out.push_back('_');
      underscore = true;
    }
  }
  if (reserved) out = "__" + out + "__";
  if (out.empty()) return {};
  if (is_digit(out.front())) out.insert(0, "key_");
  if (out.find_first_not_of('_') == std::string::npos) return {};
  return out;
}

std::string otlp_unit(std::string_view unit) {
  auto [main, per] = unit_suffixes(unit);
  std::string out = !main.empty() && !per.empty() ? main + "_" + per : main.empty() ? per : main;
  if (!out.empty() && out.front() == '_') out.erase(out.begin());
  if (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

}  // namespace kpid::ingest
