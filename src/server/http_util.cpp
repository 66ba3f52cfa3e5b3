#include "http_util.h"

#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>

#include "kpid/core/utf8.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace kpid::server::detail {

namespace http = boost::beast::http;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 &&
               hex_value(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = utf8_sequence_length(s, i);
      if (n == 0) {
        out.append("\xef\xbf\xbd");
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out.append(buf);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

Params::Params(const Request& request, bool query_only) {
  // As Go's Request.ParseForm, which Prometheus reads parameters with: a form body's values
  // come before the URL's, so get() prefers the body and all() lists the body's first.
  if (!query_only && (request.method() == http::verb::post || request.method() == http::verb::put ||
                      request.method() == http::verb::patch)) {
    std::string_view type = request[http::field::content_type];
    type = type.substr(0, type.find(';'));
    while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
    if (boost::beast::iequals(type, "application/x-www-form-urlencoded")) parse(request.body());
  }
  std::string_view target = request.target();
  if (auto q = target.find('?'); q != std::string_view::npos) parse(target.substr(q + 1));
}

void Params::parse(std::string_view text) {
  while (!text.empty()) {
    size_t amp = text.find('&');
    std::string_view pair = text.substr(0, amp);
    text.remove_prefix(amp == std::string_view::npos ? text.size() : amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key = url_decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
    items_.emplace_back(std::move(key), std::move(value));
  }
}

const std::string* Params::get(std::string_view key) const {
  for (const auto& [k, v] : items_) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::vector<std::string> Params::all(std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : items_) {
    if (k == key) out.push_back(v);
  }
  return out;
}

std::string_view request_path(const Request& request) {
  std::string_view target = request.target();
  return target.substr(0, target.find('?'));
}

Response make_response(const Request& request, http::status status, std::string body,
                       std::string_view content_type) {
  Response response{status, request.version()};
  response.set(http::field::server, "kpid");
  if (!content_type.empty()) response.set(http::field::content_type, content_type);
  response.body() = std::move(body);
  return response;
}

Response json_response(const Request& request, http::status status, std::string body) {
  return make_response(request, status, std::move(body), "application/json");
}

Response json_error(const Request& request, http::status status, std::string_view message) {
  std::string body = "{\"error\":";
  append_json_string(body, message);
  body.push_back('}');
  return json_response(request, status, std::move(body));
}

Response api_error(const Request& request, std::string_view message) {
  return api_error(request, http::status::bad_request, "bad_data", message);
}

Response api_error(const Request& request, http::status status, std::string_view error_type,
                   std::string_view message) {
  std::string body = R"({"status":"error","errorType":)";
  append_json_string(body, error_type);
  body.append(R"(,"error":)");
  append_json_string(body, message);
  body.push_back('}');
  return json_response(request, status, std::move(body));
}

Response state_unavailable(const Request& request, const Status& status) {
  auto r = api_error(request, http::status::service_unavailable, "unavailable", status.message());
  r.set(http::field::retry_after, "5");
  return r;
}

Response method_not_allowed(const Request& request, std::string_view allow) {
  auto r = api_error(request, http::status::method_not_allowed, "method_not_allowed",
                     "use " + std::string(allow) + " for " + std::string(request_path(request)));
  r.set(http::field::allow, allow);
  return r;
}

Result<boost::json::object> body_object(const Request& request) {
  if (request.body().empty()) return boost::json::object{};
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(request.body(), ec);
  if (ec) return Status::invalid_argument("request body is not valid JSON: " + ec.message());
  if (!v.is_object()) return Status::invalid_argument("request body must be a JSON object");
  return std::move(v.get_object());
}

Response api_success(const Request& request, std::string_view data) {
  std::string body = R"({"status":"success","data":)";
  body.append(data);
  body.push_back('}');
  return json_response(request, http::status::ok, std::move(body));
}

Response api_success(const Request& request, std::string_view data,
                     const std::vector<std::string>& warnings) {
  if (warnings.empty()) return api_success(request, data);
  std::string body = R"({"status":"success","data":)";
  body.append(data);
  body.append(R"(,"warnings":[)");
  for (size_t i = 0; i < warnings.size(); ++i) {
    if (i > 0) body.push_back(',');
    append_json_string(body, warnings[i]);
  }
  body.append("]}");
  return json_response(request, http::status::ok, std::move(body));
}

Response prom_method_not_allowed(const Request& request, std::string_view allow) {
  auto r = make_response(request, http::status::method_not_allowed, "Method Not Allowed\n",
                         "text/plain; charset=utf-8");
  r.set(http::field::allow, allow);
  return r;
}

Result<int64_t> parse_go_int(std::string_view text) {
  auto fail = [&](std::string_view why) {
    std::string message = "strconv.Atoi: parsing ";
    append_json_string(message, text);
    message += ": ";
    message += why;
    return Status::invalid_argument(message);
  };
  std::string_view digits = text;
  const bool negative = !digits.empty() && digits.front() == '-';
  if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) digits.remove_prefix(1);
  if (digits.empty()) return fail("invalid syntax");
  uint64_t magnitude = 0;
  bool overflow = false;
  for (char c : digits) {
    if (c < '0' || c > '9') return fail("invalid syntax");
    if (magnitude > (std::numeric_limits<uint64_t>::max() - 9) / 10) {
      overflow = true;
    } else {
      magnitude = magnitude * 10 + static_cast<uint64_t>(c - '0');
    }
  }
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (overflow || magnitude > kMax + (negative ? 1 : 0)) return fail("value out of range");
  if (negative)
    return magnitude == kMax + 1 ? std::numeric_limits<int64_t>::min()
                                 : -static_cast<int64_t>(magnitude);
  return static_cast<int64_t>(magnitude);
}

Result<TimestampMs> time_param(const Params& params, std::string_view name, TimestampMs fallback) {
  const std::string* text = params.get(name);
  if (text == nullptr || text->empty()) return fallback;
  auto t = parse_time(*text);
  if (!t) {
    return Status::invalid_argument("invalid parameter \"" + std::string(name) +
                                    "\": " + t.status().message());
  }
  return t;
}

// JSON built by hand for the KPI and SLO APIs.
void append_number(std::string& out, double v) {
  if (std::isfinite(v)) {
    append_prom_float(out, v);
  } else {
    out.append("null");
  }
}

void append_time(std::string& out, TimestampMs t) {
  if (t == 0) {
    out.append("null");
    return;
  }
  out.push_back('"');
  append_rfc3339(out, t);
  out.push_back('"');
}

void append_field(std::string& out, std::string_view name) {
  if (out.back() != '{') out.push_back(',');
  append_json_string(out, name);
  out.push_back(':');
}

void append_string_field(std::string& out, std::string_view name, std::string_view value) {
  append_field(out, name);
  append_json_string(out, value);
}

void append_points(std::string& out, const std::vector<store::Point>& points) {
  out.push_back('[');
  for (size_t i = 0; i < points.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('[');
    append_unix_seconds(out, points[i].timestamp);
    out.push_back(',');
    append_number(out, points[i].value);
    out.push_back(']');
  }
  out.push_back(']');
}

}  // namespace kpid::server::detail
