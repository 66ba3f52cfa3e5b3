// /api/v1/format_query and /api/v1/parse_query: a query's canonical (pretty) text and its syntax
// tree, answered as Prometheus answers them.
#include <string>
#include <string_view>

#include "handlers.h"
#include "kpid/query/promql.h"

namespace kpid::server::detail {

namespace {

// A JSON string as Prometheus' encoder writes it: append_json_string's, with <, > and & and
// U+2028/U+2029 escaped as Go escapes them (none of these occurs in an escape sequence).
std::string go_json_string(std::string_view s) {
  std::string plain;
  append_json_string(plain, s);
  std::string out;
  out.reserve(plain.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    const char c = plain[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xe2' && i + 2 < plain.size() && plain[i + 1] == '\x80' &&
               (plain[i + 2] == '\xa8' || plain[i + 2] == '\xa9')) {
      out += plain[i + 2] == '\xa8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<query::ExprPtr> parse_query_param(const Params& params) {
  // A missing query is an empty one, as Go's FormValue has it: "no expression found".
  const std::string* q = params.get("query");
  return query::parse_promql(q != nullptr ? std::string_view(*q) : std::string_view());
}

}  // namespace

Response handle_format_query(const Request& request, const Params& params) {
  auto expr = parse_query_param(params);
  if (!expr) {
    return api_error(request, "invalid parameter \"query\": " + expr.status().message());
  }
  return api_success(request, go_json_string(query::pretty_expr(**expr)));
}

Response handle_parse_query(const Request& request, const Params& params) {
  auto expr = parse_query_param(params);
  if (!expr) {
    return api_error(request, "invalid parameter \"query\": " + expr.status().message());
  }
  return api_success(request, query::expr_tree_json(**expr));
}

}  // namespace kpid::server::detail
