// The alert API, in the Prometheus API envelope ({"status":"success","data":...}):
//   GET  /api/v1/alerts?state=&kpi=&slo=&owner=&severity=&acknowledged=&silenced=   newest first
//   GET  /api/v1/alerts/{id}                           the alert and its timeline
//   POST /api/v1/alerts/{id}/ack                       {"author": ..., "comment": ...}
//   GET  /api/v1/silences, POST /api/v1/silences       {"matchers": [...], "ends_at" or
//                                                       "duration", "starts_at", "author",
//                                                       "comment"}
//   DELETE /api/v1/silences/{id}                       expires it
// Times are RFC 3339. Errors: 400 bad_data (with the field at fault), 404 not_found,
// 409 conflict (acknowledging a resolved or acknowledged alert), 405 with Allow, 503
// unavailable when the change could not be written (nothing changed).
#include <boost/json.hpp>

#include "handlers.h"
#include "kpid/core/json.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

Response success(const Request& request, const json::value& data) {
  return api_success(request, to_json_text(data));
}

Response error_of(const Request& request, const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return api_error(request, http::status::not_found, "not_found", s.message());
    case StatusCode::kInvalidArgument: return api_error(request, s.message());
    case StatusCode::kUnavailable: return state_unavailable(request, s);
    default:
      return api_error(request, http::status::internal_server_error, "internal", s.message());
  }
}

json::object alert_json(const alert::AlertView& v) {
  json::object o = alert::to_json(v.alert);
  o.erase("announced");  // bookkeeping: "notification" says what became of the announcement
  json::array silenced;
  for (const auto& id : v.silenced_by) silenced.push_back(json::string(id));
  o["silenced_by"] = std::move(silenced);
  o["url"] = v.url;
  return o;
}

Result<std::string> string_field(const json::object& o, std::string_view key, bool required) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) return Status::invalid_argument("\"" + std::string(key) + "\" is required");
    return std::string();
  }
  if (!v->is_string()) {
    return Status::invalid_argument("\"" + std::string(key) + "\" must be a string");
  }
  return std::string(v->get_string());
}

Response list_alerts(const Request& request, const alert::Alerter& alerts) {
  Params params(request);
  alert::AlertFilter filter;
  auto get = [&](const char* key) {
    const std::string* v = params.get(key);
    return v ? *v : std::string();
  };
  filter.state = get("state");
  filter.kpi = get("kpi");
  filter.slo = get("slo");
  filter.owner = get("owner");
  filter.severity = get("severity");
  filter.rule_group = get("rule_group");
  if (!filter.state.empty() && filter.state != "pending" && filter.state != "firing" &&
      filter.state != "resolved") {
    return api_error(request, "invalid parameter \"state\": \"" + filter.state +
                                  "\"; expected pending, firing or resolved");
  }
  for (const char* key : {"acknowledged", "silenced"}) {
    const std::string value = get(key);
    if (value.empty()) continue;
    if (value != "true" && value != "false") {
      return api_error(request, "invalid parameter \"" + std::string(key) + "\": \"" + value +
                                    "\"; expected true or false");
    }
    (std::string_view(key) == "acknowledged" ? filter.acknowledged : filter.silenced) =
        value == "true";
  }
  if (!filter.severity.empty() && filter.severity != "critical" && filter.severity != "error" &&
      filter.severity != "warning" && filter.severity != "info") {
    return api_error(request, "invalid parameter \"severity\": \"" + filter.severity +
                                  "\"; expected critical, error, warning or info");
  }
  json::array data;
  for (const auto& v : alerts.list(filter)) data.push_back(alert_json(v));
  return success(request, data);
}

Response acknowledge(const Request& request, alert::Alerter& alerts, std::string_view id) {
  auto body = body_object(request);
  if (!body) return api_error(request, body.status().message());
  auto author = string_field(*body, "author", true);
  if (!author) return api_error(request, author.status().message());
  if (author->empty()) return api_error(request, "\"author\" must not be empty");
  auto comment = string_field(*body, "comment", false);
  if (!comment) return api_error(request, comment.status().message());
  auto acked = alerts.acknowledge(id, *author, *comment);
  if (!acked) {
    if (acked.status().code() == StatusCode::kInvalidArgument) {
      return api_error(request, http::status::conflict, "conflict", acked.status().message());
    }
    return error_of(request, acked.status());
  }
  return success(request, alert_json(*acked));
}

Response add_silence(const Request& request, alert::Alerter& alerts, const Clock& clock) {
  auto body = body_object(request);
  if (!body) return api_error(request, body.status().message());
  json::object& o = *body;
  // "duration" is a convenience for ends_at = starts_at + duration.
  if (const json::value* d = o.if_contains("duration")) {
    if (o.contains("ends_at"))
      return api_error(request, "give \"ends_at\" or \"duration\", not both");
    if (!d->is_string()) return api_error(request, "\"duration\" must be a string such as \"2h\"");
    auto duration = parse_duration(d->get_string());
    if (!duration) return api_error(request, "\"duration\": " + duration.status().message());
    TimestampMs start = clock.now_ms();
    if (const json::value* s = o.if_contains("starts_at"); s && s->is_string()) {
      auto parsed = parse_time(s->get_string());
      if (!parsed) return api_error(request, "starts_at: " + parsed.status().message());
      start = *parsed;
    }
    std::string ends;
    append_rfc3339(ends, start + *duration);
    o["ends_at"] = ends;
  } else if (!o.contains("ends_at")) {
    return api_error(request, "\"ends_at\" (or \"duration\") is required");
  }
  o.erase("id");
  auto silence = alert::silence_from_json(o);
  if (!silence) return api_error(request, silence.status().message());
  if (silence->author.empty()) return api_error(request, "\"author\" must not be empty");
  auto added = alerts.add_silence(std::move(*silence));
  if (!added) return error_of(request, added.status());
  return success(request, alert::to_json(*added, clock.now_ms()));
}

}  // namespace

Response handle_alert_api(const Request& request, std::string_view rest, alert::Alerter& alerts) {
  // rest: "", "/ID" or "/ID/ack"
  const bool get = request.method() == http::verb::get || request.method() == http::verb::head;
  if (rest.empty() || rest == "/") {
    if (!get) return method_not_allowed(request, "GET, HEAD");
    return list_alerts(request, alerts);
  }
  std::string_view id = rest.substr(1);
  if (id.ends_with("/ack")) {
    if (request.method() != http::verb::post) return method_not_allowed(request, "POST");
    return acknowledge(request, alerts, id.substr(0, id.size() - 4));
  }
  if (id.find('/') != std::string_view::npos) {
    return api_error(request, http::status::not_found, "not_found",
                     "no such endpoint: " + std::string(request_path(request)));
  }
  if (!get) return method_not_allowed(request, "GET, HEAD");
  auto detail = alerts.get(id);
  if (!detail) return error_of(request, detail.status());
  json::object o = alert_json(detail->view);
  json::array timeline;
  for (const auto& e : detail->timeline) timeline.push_back(alert::to_json(e));
  o["timeline"] = std::move(timeline);
  return success(request, o);
}

Response handle_silence_api(const Request& request, std::string_view rest, alert::Alerter& alerts,
                            const Clock& clock) {
  if (rest.empty() || rest == "/") {
    if (request.method() == http::verb::post) return add_silence(request, alerts, clock);
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      return method_not_allowed(request, "GET, HEAD, POST");
    }
    const TimestampMs now = clock.now_ms();
    json::array data;
    for (const auto& s : alerts.silences()) data.push_back(alert::to_json(s, now));
    return success(request, data);
  }
  std::string_view id = rest.substr(1);
  if (id.find('/') != std::string_view::npos) {
    return api_error(request, http::status::not_found, "not_found",
                     "no such endpoint: " + std::string(request_path(request)));
  }
  if (request.method() != http::verb::delete_) return method_not_allowed(request, "DELETE");
  auto expired = alerts.expire_silence(id);
  if (!expired) return error_of(request, expired.status());
  return success(request, alert::to_json(*expired, clock.now_ms()));
}

}  // namespace kpid::server::detail
