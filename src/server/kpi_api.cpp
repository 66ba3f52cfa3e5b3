// The KPI API: GET /api/v1/kpis, /api/v1/kpis/{id} and /api/v1/kpis/{id}/series, in the
// Prometheus API envelope ({"status":"success","data":...}). Times in KPI objects are RFC 3339;
// chart points are [unix seconds, value] pairs; a missing value is null.
#include <charconv>
#include <cmath>

#include "handlers.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

namespace {

void append_band(std::string& out, kpi::Direction direction, const kpi::Band& band) {
  out.push_back('{');
  if (band.target) {
    append_field(out, "target");
    append_number(out, *band.target);
  }
  auto number = [&](const char* name, double v) {
    append_field(out, name);
    append_number(out, v);
  };
  if (direction == kpi::Direction::kInRange) {
    number("warn_low", band.warn_low);
    number("crit_low", band.crit_low);
    number("warn_high", band.warn_high);
    number("crit_high", band.crit_high);
  } else {
    number("warn", band.warn);
    number("crit", band.crit);
  }
  out.push_back('}');
}

void append_kpi(std::string& out, const kpi::KpiView& v) {
  const kpi::Definition& d = *v.definition;
  out.push_back('{');
  append_string_field(out, "id", d.id);
  append_string_field(out, "name", d.name);
  append_string_field(out, "description", d.description);
  append_string_field(out, "owner", d.owner);
  append_string_field(out, "unit", d.unit);
  append_string_field(out, "review", d.review);
  append_string_field(out, "direction", kpi::direction_name(d.direction));
  append_string_field(out, "query", d.promql());
  append_field(out, "value");
  append_number(out, v.value);
  append_string_field(out, "status", kpi::health_name(v.status));
  append_field(out, "since");
  append_time(out, v.since);
  append_field(out, "evaluated_at");
  append_time(out, v.evaluated_at);
  append_field(out, "last_sample");
  append_time(out, v.last_sample);
  append_field(out, "first_sample");
  append_time(out, v.first_sample);
  append_field(out, "band");
  if (d.band) {
    append_band(out, d.direction, *d.band);
  } else {
    out.append("null");
  }
  append_field(out, "baseline");
  if (d.baseline) {
    out.push_back('{');
    const bool computed = v.baseline.has_value();
    for (auto [name, value] : {std::pair{"lower", computed ? v.baseline->range.lower : NAN},
                               std::pair{"center", computed ? v.baseline->range.center : NAN},
                               std::pair{"upper", computed ? v.baseline->range.upper : NAN}}) {
      append_field(out, name);
      append_number(out, value);
    }
    append_string_field(out, "method", kpi::baseline_method_name(d.baseline->method));
    append_string_field(out, "window", format_duration(d.baseline->window));
    append_field(out, "trusted");
    out.append(computed && v.baseline->trusted ? "true" : "false");
    append_field(out, "computed_at");
    append_time(out, computed ? v.baseline->computed_at : 0);
    out.push_back('}');
  } else {
    out.append("null");
  }
  out.push_back('}');
}

Response not_found(const Request& request, std::string_view id) {
  return api_error(request, http::status::not_found, "not_found",
                   "no KPI with id \"" + std::string(id) + "\"");
}

Response detail(const Request& request, const kpi::Evaluator& kpis, std::string_view id) {
  auto view = kpis.get(id);
  if (!view) return not_found(request, id);
  Params params(request);
  size_t limit = 100;
  if (const std::string* text = params.get("history")) {
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), limit);
    if (ec != std::errc() || end != text->data() + text->size() || limit > 100'000) {
      return api_error(request,
                       "invalid parameter \"history\": expected the number of status "
                       "changes to return, 0 to 100000");
    }
  }
  auto history = kpis.history(id, limit);
  if (!history) {
    return json_error(request, http::status::internal_server_error, history.status().message());
  }
  std::string data;
  append_kpi(data, *view);
  data.pop_back();  // reopen the object
  append_field(data, "stale_after");
  append_json_string(data, format_duration(view->definition->stale_after));
  append_field(data, "history_start");
  append_time(data, view->history_start);
  append_field(data, "suggested");
  if (view->suggested) {
    append_band(data, view->definition->direction, *view->suggested);
  } else {
    data.append("null");
  }
  append_field(data, "history");
  data.push_back('[');
  for (size_t i = 0; i < history->size(); ++i) {
    const auto& change = (*history)[i];
    if (i > 0) data.push_back(',');
    data.push_back('{');
    append_field(data, "time");
    append_time(data, change.time);
    append_string_field(data, "status", kpi::health_name(change.status));
    append_field(data, "value");
    append_number(data, change.value);
    data.push_back('}');
  }
  data.append("]}");
  return api_success(request, data);
}

Response series(const Request& request, const kpi::Evaluator& kpis, std::string_view id,
                const Clock& clock) {
  Params params(request);
  auto end = time_param(params, "end", clock.now_ms());
  if (!end) return api_error(request, end.status().message());
  auto start = time_param(params, "start", *end - 6 * 3'600'000);
  if (!start) return api_error(request, start.status().message());
  // About 250 points by default, at least a minute apart.
  DurationMs step = std::max<DurationMs>(60'000, (*end - *start) / 250 / 1000 * 1000);
  if (const std::string* text = params.get("step")) {
    auto parsed = parse_step(*text);
    if (!parsed) {
      return api_error(request, "invalid parameter \"step\": " + parsed.status().message());
    }
    step = *parsed;
  }
  auto result = kpis.series(id, *start, *end, step);
  if (!result) {
    if (result.status().code() == StatusCode::kNotFound) return not_found(request, id);
    if (result.status().code() == StatusCode::kInvalidArgument) {
      return api_error(request, result.status().message());
    }
    return json_error(request, http::status::internal_server_error, result.status().message());
  }
  std::string data = "{";
  append_string_field(data, "id", id);
  append_field(data, "start");
  append_unix_seconds(data, *start);
  append_field(data, "end");
  append_unix_seconds(data, *end);
  append_field(data, "step");
  append_prom_float(data, static_cast<double>(step) / 1000);
  append_field(data, "value");
  append_points(data, result->value);
  append_field(data, "baseline");
  data.push_back('{');
  append_field(data, "lower");
  append_points(data, result->baseline_lower);
  append_field(data, "center");
  append_points(data, result->baseline_center);
  append_field(data, "upper");
  append_points(data, result->baseline_upper);
  data.push_back('}');
  append_field(data, "thresholds");
  data.push_back('{');
  for (const auto& [name, points] : result->thresholds) {
    append_field(data, name);
    append_points(data, points);
  }
  data.append("}}");
  return api_success(request, data);
}

}  // namespace

Response handle_kpi_api(const Request& request, std::string_view rest, const kpi::Evaluator& kpis,
                        const Clock& clock) {
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    auto r = json_error(request, http::status::method_not_allowed, "use GET for the KPI API");
    r.set(http::field::allow, "GET, HEAD");
    return r;
  }
  // rest: "", "/ID" or "/ID/series"
  if (rest.empty() || rest == "/") {
    std::string data = "[";
    for (const auto& view : kpis.list()) {
      if (data.size() > 1) data.push_back(',');
      append_kpi(data, view);
    }
    data.push_back(']');
    return api_success(request, data);
  }
  std::string_view id = rest.substr(1);
  if (id.ends_with("/series")) {
    return series(request, kpis, id.substr(0, id.size() - 7), clock);
  }
  if (id.find('/') != std::string_view::npos) {
    return make_response(request, http::status::not_found,
                         "404 page not found: " + std::string(request_path(request)) + "\n",
                         "text/plain; charset=utf-8");
  }
  return detail(request, kpis, id);
}

}  // namespace kpid::server::detail
