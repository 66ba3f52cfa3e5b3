#pragma once
// JSON text for kpid's API and records: Boost.JSON's serializer writes doubles in exponent form
// ("3E2"); this one writes them as people and other tools expect ("300", "0.25"), with
// non-finite numbers as null.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "kpid/core/status.h"
#include "kpid/core/time.h"

namespace kpid {

std::string to_json_text(const boost::json::value& value);
void append_json_text(std::string& out, const boost::json::value& value);

// A time as kpid's JSON carries it: an RFC 3339 string, null for 0 (never happened).
boost::json::value rfc3339_value(TimestampMs t);

// Reads fields of a JSON object (a record or a request body), keeping the first problem with
// the field's name ("author: is required", "at: expected an RFC 3339 time").
class JsonReader {
 public:
  explicit JsonReader(const boost::json::object& o) : o_(o) {}

  // Absent or null: "" (an error when required).
  std::string str(std::string_view key, bool required = true);
  // RFC 3339 or Unix seconds in a string; absent or null: 0.
  TimestampMs time(std::string_view key);
  std::optional<double> number(std::string_view key);
  bool boolean(std::string_view key);  // absent: false
  std::map<std::string, std::string> string_map(std::string_view key);
  std::vector<std::string> strings(std::string_view key);
  std::vector<boost::json::object> objects(std::string_view key);

  void fail(std::string_view key, std::string message);
  // invalid_argument with the first problem, or ok.
  Status status() const;

 private:
  const boost::json::object& o_;
  std::string error_;
};

}  // namespace kpid
