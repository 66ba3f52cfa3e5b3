// What InfluxDB 1.x clients send besides writes: GET|HEAD /ping at start (Telegraf, the influx
// CLI and client libraries check the version header), and the handshake statements of /query
// (SHOW DATABASES, CREATE DATABASE). kpid keeps one namespace: databases are accepted and
// listed as empty, and any other InfluxQL is refused with a 400 that says kpid speaks PromQL.
#include <algorithm>
#include <cctype>

#include "handlers.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

namespace {

// InfluxDB 1.x's /query answer: {"results":[{"statement_id":0,...}]}.
Response influx_results(const Request& request, std::string_view statement_result) {
  std::string body = R"({"results":[{"statement_id":0)";
  body.append(statement_result);
  body.append("}]}");
  return make_response(request, http::status::ok, std::move(body), "application/json");
}

std::string upper_words(std::string_view q) {
  std::string out;
  bool space = false;
  for (char c : q) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  while (!out.empty() && out.back() == ';') out.pop_back();
  return out;
}

}  // namespace

Response handle_influx_ping(const Request& request) {
  Params params(request);
  const std::string* verbose = params.get("verbose");
  Response r = verbose != nullptr && *verbose == "true"
                   ? make_response(request, http::status::ok,
                                   std::string(R"({"version":")") + kInfluxVersion + "\"}",
                                   "application/json")
                   : make_response(request, http::status::no_content, "", "");
  r.set("X-Influxdb-Version", kInfluxVersion);
  r.set("X-Influxdb-Build", "OSS");
  return r;
}

Response handle_influx_query(const Request& request) {
  if (request.method() != http::verb::get && request.method() != http::verb::post) {
    auto r = json_error(request, http::status::method_not_allowed, "use GET or POST for /query");
    r.set(http::field::allow, "GET, POST");
    return r;
  }
  Params params(request);
  const std::string* q = params.get("q");
  if (q == nullptr || q->empty()) {
    return json_error(request, http::status::bad_request, "missing required parameter \"q\"");
  }
  const std::string statement = upper_words(*q);
  if (statement == "SHOW DATABASES") {
    return influx_results(request, R"(,"series":[{"name":"databases","columns":["name"]}])");
  }
  if (statement.starts_with("CREATE DATABASE ") && statement.find(';') == std::string::npos) {
    return influx_results(request, "");
  }
  return json_error(request, http::status::bad_request,
                    "kpid answers only the InfluxQL statements clients send at start (SHOW "
                    "DATABASES, CREATE DATABASE); query kpid with PromQL at /api/v1/query, not "
                    "\"" +
                        *q + "\"");
}

}  // namespace kpid::server::detail
