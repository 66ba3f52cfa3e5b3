// The SLO API: GET /api/v1/slos and /api/v1/slos/{id} (with hourly history for charts), in the
// Prometheus API envelope. Times are RFC 3339; chart points are [unix seconds, value] pairs; a
// missing value is null.
#include <cmath>

#include "handlers.h"
#include "kpid/alert/rule.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

namespace {

// ok, warning or critical by the burn-rate conditions that hold now (whatever `for` says),
// exhausted once the budget is spent, no_data without events in the window; unknown while its
// data source fails (the figures are the last ones it gave).
std::string_view status_of(const slo::SloView& v) {
  if (!v.error.empty() && !v.definition->datasource.empty()) return "unknown";
  if (v.evaluated_at == 0 || !(v.window.total > 0)) return "no_data";
  if (v.budget_remaining <= 0) return "exhausted";
  std::string_view status = "ok";
  for (const auto& a : v.definition->alerts) {
    if (!alert::burn_breaches(v.burn_rate(a.long_window), v.burn_rate(a.short_window), a.factor)) {
      continue;
    }
    if (a.severity == "critical") return "critical";
    status = "warning";
  }
  return status;
}

void append_slo(std::string& out, const slo::SloView& v) {
  const slo::Definition& d = *v.definition;
  out.push_back('{');
  append_string_field(out, "id", d.id);
  append_string_field(out, "name", d.name);
  append_string_field(out, "description", d.description);
  append_string_field(out, "owner", d.owner);
  append_field(out, "objective");
  append_number(out, d.objective);
  append_string_field(out, "window", d.window_text);
  append_string_field(out, "datasource", d.datasource);
  append_field(out, "calendar");
  out.append(d.calendar.empty() ? "false" : "true");
  append_field(out, "window_start");
  append_time(out, v.window_start);
  append_field(out, "window_end");
  append_time(out, v.window_end);
  append_string_field(out, "interval", format_duration(d.interval));
  append_string_field(out, "sli_type", slo::sli_kind_name(d.kind));
  append_string_field(out, "origin", d.origin);
  append_field(out, "query");
  out.push_back('{');
  if (d.kind == slo::SliKind::kEvents) {
    append_string_field(out, d.good.empty() ? "bad" : "good", d.good.empty() ? d.bad : d.good);
    append_string_field(out, "total", d.total);
  } else if (!d.kpi.empty()) {
    append_string_field(out, "kpi", d.kpi);
    append_field(out, "good");
    out.push_back('[');
    for (size_t i = 0; i < d.good_statuses.size(); ++i) {
      if (i > 0) out.push_back(',');
      append_json_string(out, kpi::health_name(d.good_statuses[i]));
    }
    out.push_back(']');
    append_string_field(out, "no_data", d.no_data);
  } else {
    append_string_field(out, "expr", d.slice_expr);
    append_string_field(out, "op", d.slice_op);
    append_field(out, "threshold");
    append_number(out, d.slice_threshold);
    append_string_field(out, "no_data", d.no_data);
  }
  out.push_back('}');
  append_field(out, "evaluated_at");
  append_time(out, v.evaluated_at);
  append_field(out, "sli");
  append_number(out, v.sli * 100);
  append_field(out, "good");
  append_number(out, v.window.good);
  append_field(out, "total");
  append_number(out, v.window.total);
  append_field(out, "budget");
  out.push_back('{');
  append_field(out, "total");
  append_number(out, v.budget_total);
  append_field(out, "consumed");
  append_number(out, v.budget_consumed);
  append_field(out, "remaining");
  append_number(out, v.budget_remaining);
  out.push_back('}');
  append_field(out, "burn_rates");
  out.push_back('{');
  for (DurationMs w : slo::kBurnWindows) {
    append_field(out, format_duration(w));
    append_number(out, v.burn_rate(w));
  }
  out.push_back('}');
  append_field(out, "exhaustion");
  out.push_back('{');
  for (auto [name, e] : {std::pair{"1h", v.exhaustion_1h}, std::pair{"6h", v.exhaustion_6h}}) {
    append_field(out, name);
    append_number(out, e ? static_cast<double>(*e) / 1000 : NAN);
  }
  out.push_back('}');
  append_string_field(out, "status", status_of(v));
  append_field(out, "alerts");
  out.push_back('[');
  for (size_t i = 0; i < d.alerts.size(); ++i) {
    const auto& a = d.alerts[i];
    if (i > 0) out.push_back(',');
    out.push_back('{');
    append_string_field(out, "name", a.name);
    append_string_field(out, "severity", a.severity);
    append_string_field(out, "long_window", format_duration(a.long_window));
    append_string_field(out, "short_window", format_duration(a.short_window));
    append_field(out, "factor");
    append_number(out, a.factor);
    append_string_field(out, "for", format_duration(a.for_duration));
    out.push_back('}');
  }
  out.push_back(']');
  append_string_field(out, "error", v.error);
  out.push_back('}');
}

Response detail(const Request& request, const slo::Tracker& slos, std::string_view id) {
  auto view = slos.get(id);
  auto history = slos.history(id);
  if (!view || !history) {
    return api_error(request, http::status::not_found, "not_found",
                     "no SLO with id \"" + std::string(id) + "\"");
  }
  std::string data;
  append_slo(data, *view);
  data.pop_back();  // reopen the object
  append_field(data, "history");
  data.push_back('{');
  auto series = [&](const char* name, double slo::HistoryPoint::*field, double scale) {
    std::vector<store::Point> points;
    points.reserve(history->size());
    for (const auto& p : *history) {
      if (!std::isnan(p.*field)) points.push_back({p.time, p.*field * scale});
    }
    append_field(data, name);
    append_points(data, points);
  };
  series("budget_remaining", &slo::HistoryPoint::budget_remaining, 1);
  series("sli", &slo::HistoryPoint::sli, 100);
  series("burn_rate_1h", &slo::HistoryPoint::burn_rate_1h, 1);
  series("burn_rate_6h", &slo::HistoryPoint::burn_rate_6h, 1);
  data.append("}}");
  return api_success(request, data);
}

}  // namespace

Response handle_slo_api(const Request& request, std::string_view rest, const slo::Tracker& slos) {
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    auto r = json_error(request, http::status::method_not_allowed, "use GET for the SLO API");
    r.set(http::field::allow, "GET, HEAD");
    return r;
  }
  if (rest.empty() || rest == "/") {
    std::string data = "[";
    for (const auto& view : slos.list()) {
      if (data.size() > 1) data.push_back(',');
      append_slo(data, view);
    }
    data.push_back(']');
    return api_success(request, data);
  }
  std::string_view id = rest.substr(1);
  if (id.find('/') != std::string_view::npos) {
    return make_response(request, http::status::not_found,
                         "404 page not found: " + std::string(request_path(request)) + "\n",
                         "text/plain; charset=utf-8");
  }
  return detail(request, slos, id);
}

}  // namespace kpid::server::detail
