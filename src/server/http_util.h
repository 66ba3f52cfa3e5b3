#pragma once
// Small helpers shared by the route handlers: JSON text building, URL parameters, responses.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/server/http_server.h"
#include "kpid/store/sample_store.h"

namespace kpid::server::detail {

// Appends `s` as a JSON string literal (quoted, escaped; invalid UTF-8 is replaced by U+FFFD).
void append_json_string(std::string& out, std::string_view s);

// Decoded parameters from a query string and, for form POSTs, the body. Keys may repeat.
class Params {
 public:
  // Parses the target's query string, plus the body when the request is an
  // application/x-www-form-urlencoded POST, PUT or PATCH (unless `query_only`: a write's body
  // is data). As Go's ParseForm (Prometheus' parameters): the body's values come first.
  explicit Params(const Request& request, bool query_only = false);
  // The first value of `key`, or nullptr.
  const std::string* get(std::string_view key) const;
  // Every value of `key`, in order.
  std::vector<std::string> all(std::string_view key) const;

 private:
  void parse(std::string_view text);
  std::vector<std::pair<std::string, std::string>> items_;
};

// The target's path without the query string.
std::string_view request_path(const Request& request);

Response make_response(const Request& request, boost::beast::http::status status, std::string body,
                       std::string_view content_type);
Response json_response(const Request& request, boost::beast::http::status status, std::string body);
// The Prometheus API envelope: {"status":"error","errorType":"bad_data","error":...} (400),
// and {"status":"success","data":<data>} (200).
Response api_error(const Request& request, std::string_view message);
// The same envelope with another status and errorType (e.g. 404 "not_found", 409 "conflict").
Response api_error(const Request& request, boost::beast::http::status status,
                   std::string_view error_type, std::string_view message);
Response api_success(const Request& request, std::string_view data);
// The success envelope with Prometheus' "warnings" list when `warnings` is not empty.
Response api_success(const Request& request, std::string_view data,
                     const std::vector<std::string>& warnings);

// Prometheus' own 405, from its router: "Method Not Allowed" in plain text, with Allow. Grafana
// falls back from POST to GET on it, so kpid answers it exactly where Prometheus does.
Response prom_method_not_allowed(const Request& request, std::string_view allow);

// Parses a whole decimal int64 as Go's strconv.Atoi does (optional sign, digits only); on
// failure the message is Atoi's ("strconv.Atoi: parsing \"x\": invalid syntax" or "value out
// of range").
Result<int64_t> parse_go_int(std::string_view text);
// A state change that could not be written (Status unavailable from a module's write, then
// apply): 503 "unavailable" with the reason and Retry-After; nothing was changed.
Response state_unavailable(const Request& request, const Status& status);

// Reads an optional time parameter (RFC 3339 or Unix seconds); `fallback` when absent.
Result<TimestampMs> time_param(const Params& params, std::string_view name, TimestampMs fallback);

// 405 in the API envelope, with Allow.
Response method_not_allowed(const Request& request, std::string_view allow);

// The request body as a JSON object (an empty body is an empty object); invalid_argument says
// what is wrong.
Result<boost::json::object> body_object(const Request& request);

// {"error": message}
Response json_error(const Request& request, boost::beast::http::status status,
                    std::string_view message);

// JSON text built by hand (the KPI and SLO APIs): a number (null when not finite), a time as
// an RFC 3339 string (null for 0), `,"name":` (no comma right after '{'), a string field, and
// chart points as [[unix seconds, value], ...].
void append_number(std::string& out, double v);
void append_time(std::string& out, TimestampMs t);
void append_field(std::string& out, std::string_view name);
void append_string_field(std::string& out, std::string_view name, std::string_view value);
void append_points(std::string& out, const std::vector<store::Point>& points);

}  // namespace kpid::server::detail
