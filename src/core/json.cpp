#include "kpid/core/json.h"

#include <cmath>

#include <boost/json.hpp>

#include "kpid/core/time.h"

namespace kpid {

void append_json_text(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: out.append("null"); return;
    case boost::json::kind::bool_: out.append(v.get_bool() ? "true" : "false"); return;
    case boost::json::kind::int64: out.append(std::to_string(v.get_int64())); return;
    case boost::json::kind::uint64: out.append(std::to_string(v.get_uint64())); return;
    case boost::json::kind::double_:
      if (std::isfinite(v.get_double())) {
        append_prom_float(out, v.get_double());
      } else {
        out.append("null");
      }
      return;
    case boost::json::kind::string: out.append(boost::json::serialize(v)); return;
    case boost::json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        append_json_text(out, item);
      }
      out.push_back(']');
      return;
    }
    case boost::json::kind::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, item] : v.get_object()) {
        if (!first) out.push_back(',');
        first = false;
        out.append(boost::json::serialize(boost::json::string_view(key)));
        out.push_back(':');
        append_json_text(out, item);
      }
      out.push_back('}');
      return;
    }
  }
}

boost::json::value rfc3339_value(TimestampMs t) {
  if (t == 0) return nullptr;
  std::string s;
  append_rfc3339(s, t);
  return boost::json::string(s);
}

std::string JsonReader::str(std::string_view key, bool required) {
  const boost::json::value* v = o_.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) fail(key, "is required");
    return {};
  }
  if (!v->is_string()) {
    fail(key, "expected a string");
    return {};
  }
  return std::string(v->get_string());
}

TimestampMs JsonReader::time(std::string_view key) {
  const boost::json::value* v = o_.if_contains(key);
  if (v == nullptr || v->is_null()) return 0;
  if (!v->is_string()) {
    fail(key, "expected an RFC 3339 time");
    return 0;
  }
  auto t = parse_time(v->get_string());
  if (!t) {
    fail(key, t.status().message());
    return 0;
  }
  return *t;
}

std::optional<double> JsonReader::number(std::string_view key) {
  const boost::json::value* v = o_.if_contains(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_number()) {
    fail(key, "expected a number");
    return std::nullopt;
  }
  return v->to_number<double>();
}

bool JsonReader::boolean(std::string_view key) {
  const boost::json::value* v = o_.if_contains(key);
  if (v == nullptr || v->is_null()) return false;
  if (!v->is_bool()) {
    fail(key, "expected true or false");
    return false;
  }
  return v->get_bool();
}

std::map<std::string, std::string> JsonReader::string_map(std::string_view key) {
  std::map<std::string, std::string> out;
  const boost::json::value* v = o_.if_contains(key);
  if (v == nullptr || v->is_null()) return out;
  if (!v->is_object()) {
    fail(key, "expected an object of strings");
    return out;
  }
  for (const auto& [k, value] : v->get_object()) {
    if (!value.is_string()) {
      fail(std::string(key) + "." + std::string(k), "expected a string");
      continue;
    }
    out[std::string(k)] = std::string(value.get_string());
  }
  return out;
}

std::vector<std::string> JsonReader::strings(std::string_view key) {
  std::vector<std::string> out;
  const boost::json::value* v = o_.if_contains(key);
  if (v == nullptr || v->is_null()) return out;
  if (!v->is_array()) {
    fail(key, "expected an array of strings");
    return out;
  }
  for (const auto& item : v->get_array()) {
    if (!item.is_string()) {
      fail(key, "expected an array of strings");
      continue;
    }
    out.emplace_back(item.get_string());
  }
  return out;
}

std::vector<boost::json::object> JsonReader::objects(std::string_view key) {
  std::vector<boost::json::object> out;
  const boost::json::value* v = o_.if_contains(key);
  if (v == nullptr || v->is_null()) return out;
  if (!v->is_array()) {
    fail(key, "expected an array of objects");
    return out;
  }
  for (const auto& item : v->get_array()) {
    if (!item.is_object()) {
      fail(key, "expected an array of objects");
      continue;
    }
    out.push_back(item.get_object());
  }
  return out;
}

void JsonReader::fail(std::string_view key, std::string message) {
  if (error_.empty()) error_ = std::string(key) + ": " + message;
}

Status JsonReader::status() const {
  return error_.empty() ? Status::ok() : Status::invalid_argument(error_);
}

std::string to_json_text(const boost::json::value& value) {
  std::string out;
  append_json_text(out, value);
  return out;
}

}  // namespace kpid
