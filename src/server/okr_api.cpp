// The OKR API, in the Prometheus API envelope ({"status":"success","data":...}):
//   GET   /api/v1/okrs?state=&owner=&kpi=&slo=&period=   newest first
//   GET   /api/v1/okrs/{id}                          JSON, or ?format=markdown
//   PATCH /api/v1/okrs/{id}                          {"author", "objective", "owner", "period",
//                                                     "key_results": {"add", "remove", "change"}}
//   POST  /api/v1/okrs/{id}/accept|dismiss|close     {"author", "comment" (dismiss),
//                                                     "outcome" (close)}
//   POST  /api/v1/okrs/{id}/checkins                 {"author", "kr", "value", "note",
//                                                     "confidence"}
// Errors: 400 bad_data naming the field, 404 not_found, 409 conflict (the state does not
// allow it), 405 with Allow, 503 unavailable when the change could not be written (nothing
// changed).
#include <boost/json.hpp>

#include "handlers.h"
#include "kpid/core/json.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

json::object okr_json(const okr::Okr& o, const okr::Planner& okrs) {
  json::object j = okr::to_json(o);
  j.erase("next_kr");
  j["url"] = okrs.url_of(o.id);
  return j;
}

Response error_of(const Request& request, const Status& s, bool conflict_on_invalid = false) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return api_error(request, http::status::not_found, "not_found", s.message());
    case StatusCode::kInvalidArgument:
      if (conflict_on_invalid) {
        return api_error(request, http::status::conflict, "conflict", s.message());
      }
      return api_error(request, s.message());
    case StatusCode::kUnavailable: return state_unavailable(request, s);
    default:
      return api_error(request, http::status::internal_server_error, "internal", s.message());
  }
}

Response one(const Request& request, const Result<okr::Okr>& r, const okr::Planner& okrs,
             bool conflict_on_invalid) {
  if (!r) return error_of(request, r.status(), conflict_on_invalid);
  return api_success(request, to_json_text(okr_json(*r, okrs)));
}

// Who makes a change: every change is recorded with its author.
Result<std::string> author(const json::object& body) {
  JsonReader r(body);
  std::string name = r.str("author");
  if (auto s = r.status(); !s) return s;
  if (name.empty()) return Status::invalid_argument("author: must not be empty");
  return name;
}

Response action(const Request& request, okr::Planner& okrs, std::string_view id,
                std::string_view verb) {
  if (request.method() != http::verb::post) return method_not_allowed(request, "POST");
  auto body = body_object(request);
  if (!body) return api_error(request, body.status().message());
  auto author_of = author(*body);
  if (!author_of) return api_error(request, author_of.status().message());
  const std::string& author = *author_of;
  JsonReader r(*body);
  if (verb == "accept") return one(request, okrs.accept(id, author), okrs, true);
  if (verb == "dismiss") {
    const std::string comment = r.str("comment", false);
    if (auto s = r.status(); !s) return api_error(request, s.message());
    return one(request, okrs.dismiss(id, author, comment), okrs, true);
  }
  if (verb == "close") {
    const std::string text = r.str("outcome", false);
    if (auto s = r.status(); !s) return api_error(request, s.message());
    auto outcome = okr::parse_outcome(text);
    if (!outcome) {
      return api_error(request, "outcome: unknown \"" + text +
                                    "\"; expected achieved, missed or abandoned (or none: "
                                    "achieved when every key result is met)");
    }
    return one(request, okrs.close(id, author, *outcome), okrs, true);
  }
  // checkins
  const std::string kr = r.str("kr");
  const std::optional<double> value = r.number("value");
  const std::string note = r.str("note", false);
  const std::optional<double> confidence = r.number("confidence");
  if (auto s = r.status(); !s) return api_error(request, s.message());
  if (!value) return api_error(request, "value: is required");
  auto result = okrs.check_in(id, author, kr, *value, note, confidence);
  if (!result && result.status().message().find("OKR ") == 0) {
    return error_of(request, result.status(), true);  // its state does not allow it
  }
  return one(request, result, okrs, false);
}

}  // namespace

Response handle_okr_api(const Request& request, std::string_view rest, okr::Planner& okrs) {
  const bool get = request.method() == http::verb::get || request.method() == http::verb::head;
  if (rest.empty() || rest == "/") {
    if (!get) return method_not_allowed(request, "GET, HEAD");
    Params params(request);
    okr::OkrFilter filter;
    auto param = [&](const char* key) {
      const std::string* v = params.get(key);
      return v ? *v : std::string();
    };
    filter.state = param("state");
    filter.owner = param("owner");
    filter.kpi = param("kpi");
    filter.slo = param("slo");
    filter.period = param("period");
    if (!filter.state.empty() && !okr::parse_state(filter.state)) {
      return api_error(request, "invalid parameter \"state\": \"" + filter.state +
                                    "\"; expected draft, active, closed or dismissed");
    }
    auto list = okrs.list(filter);
    if (!list) return api_error(request, "invalid parameter \"" + list.status().message());
    json::array data;
    for (const auto& o : *list) data.push_back(okr_json(o, okrs));
    return api_success(request, to_json_text(data));
  }
  std::string_view id = rest.substr(1);
  if (auto slash = id.find('/'); slash != std::string_view::npos) {
    const std::string_view verb = id.substr(slash + 1);
    id = id.substr(0, slash);
    if (verb == "accept" || verb == "dismiss" || verb == "close" || verb == "checkins") {
      return action(request, okrs, id, verb);
    }
    return api_error(request, http::status::not_found, "not_found",
                     "no such endpoint: " + std::string(request_path(request)));
  }
  if (request.method() == http::verb::patch) {
    auto body = body_object(request);
    if (!body) return api_error(request, body.status().message());
    auto author_of = author(*body);
    if (!author_of) return api_error(request, author_of.status().message());
    auto edited = okrs.edit(id, *author_of, *body);
    if (!edited && edited.status().message().find("OKR ") == 0) {
      return error_of(request, edited.status(), true);
    }
    return one(request, edited, okrs, false);
  }
  if (!get) return method_not_allowed(request, "GET, HEAD, PATCH");
  auto found = okrs.get(id);
  if (!found) return error_of(request, found.status());
  Params params(request);
  if (const std::string* format = params.get("format")) {
    if (*format == "markdown") {
      return make_response(request, http::status::ok, okr::to_markdown(*found, okrs.url_of(id)),
                           "text/markdown; charset=utf-8");
    }
    if (*format != "json") {
      return api_error(
          request, "invalid parameter \"format\": \"" + *format + "\"; expected json or markdown");
    }
  }
  return api_success(request, to_json_text(okr_json(*found, okrs)));
}

}  // namespace kpid::server::detail
