// kpictl status, kpi show and query: KPIs and series, as tables with sparklines.
#include <cmath>
#include <ostream>

#include "command.h"

namespace kpid::ctl {

namespace json = boost::json;

namespace {

constexpr size_t kTrendWidth = 24;

std::string seconds_param(TimestampMs ms) {
  std::string s;
  append_unix_seconds(s, ms);
  return s;
}

// The breach conditions of a band, the way an on-call reader checks them:
// "warn >500, crit >1000", "warn <3, crit <2", "warn <10 or >90, crit <5 or >95".
std::string band_text(const json::value& kpi) {
  const json::value* band = field_of(kpi, "band");
  if (band == nullptr) return "-";
  const std::string direction = text_of(kpi, "direction");
  std::string out;
  for (std::string_view level : {"warn", "crit"}) {
    std::string when;
    if (direction == "in_range") {
      when = breach_condition(number_of(*band, std::string(level) + "_low"),
                              number_of(*band, std::string(level) + "_high"));
    } else if (direction == "higher_is_better") {
      when = breach_condition(number_of(*band, level), std::nullopt);
    } else {
      when = breach_condition(std::nullopt, number_of(*band, level));
    }
    if (when.empty()) continue;
    if (!out.empty()) out += ", ";
    out += std::string(level) + " " + when;
  }
  return out.empty() ? "-" : out;
}

// The KPI's value over the window as a sparkline of about kTrendWidth cells, with gaps.
Result<std::string> trend(Context& c, ApiClient& api, const std::string& id, DurationMs window) {
  const DurationMs step = std::max<DurationMs>(window / static_cast<DurationMs>(kTrendWidth), 1000);
  auto series = api.get("/api/v1/kpis/" + url_escape(id) + "/series?" +
                        query_string({{"start", seconds_param(c.now - window)},
                                      {"end", seconds_param(c.now)},
                                      {"step", std::to_string(step / 1000) + "s"}}));
  if (!series) return series.status();
  // Place each point in its step so missing steps stay blank.
  std::vector<double> cells(kTrendWidth + 1, NAN);
  const json::value* points = field_of(*series, "value");
  if (points != nullptr && points->is_array()) {
    for (const auto& p : points->get_array()) {
      if (!p.is_array() || p.get_array().size() != 2 || !p.get_array()[1].is_number()) continue;
      const double t = p.get_array()[0].to_number<double>() * 1000;
      const auto index = static_cast<int64_t>(
          std::lround((t - static_cast<double>(c.now - window)) / static_cast<double>(step)));
      if (index >= 0 && index < static_cast<int64_t>(cells.size())) {
        cells[static_cast<size_t>(index)] = p.get_array()[1].to_number<double>();
      }
    }
  }
  return sparkline(cells, cells.size());
}

int level_of(std::string_view status) {
  if (status == "crit") return 3;
  if (status == "warn" || status == "no_data" || status == "unknown") return 2;
  return 0;
}

}  // namespace

int cmd_status(Context& c) {
  auto window = duration_flag(c.args, "since", 6 * 3'600'000);
  if (!window) return c.usage(window.status());
  int fail_level = 0;
  if (auto f = c.args.value("fail-on")) {
    if (*f == "crit")
      fail_level = 3;
    else if (*f == "warn")
      fail_level = 2;
    else
      return c.usage(
          Status::invalid_argument("--fail-on: expected warn or crit, not \"" + *f + "\""));
  }
  auto api = c.api();
  if (!api) return c.fail(api.status());
  auto kpis = (*api)->get("/api/v1/kpis");
  if (!kpis) return c.fail(kpis.status());
  json::array selected;
  const std::string owner = c.args.value("owner").value_or("");
  if (kpis->is_array()) {
    for (const auto& k : kpis->get_array()) {
      if (owner.empty() || text_of(k, "owner") == owner) selected.push_back(k);
    }
  }
  bool failing = false;
  for (const auto& k : selected)
    failing = failing || (fail_level > 0 && level_of(text_of(k, "status")) >= fail_level);
  const int done = failing ? kExitThreshold : kExitOk;
  if (c.json) {
    c.print_json(selected);
    return done;
  }
  if (selected.empty()) {
    c.out << (owner.empty() ? "no KPIs configured\n" : "no KPIs owned by " + owner + "\n");
    return done;
  }
  Table table;
  table.column("KPI");
  table.column("STATUS");
  table.column("VALUE", Table::Align::kRight);
  table.column("BAND");
  table.column("FOR", Table::Align::kRight);
  table.column("OWNER");
  table.column("LAST " + human_age(*window));
  std::map<std::string, int> counts;
  for (const auto& k : selected) {
    const std::string id = text_of(k, "id");
    const std::string status = text_of(k, "status");
    ++counts[status];
    auto spark = trend(c, **api, id, *window);
    if (!spark) return c.fail(spark.status());
    table.row({{id},
               {status, color_of(status)},
               {with_unit(number_of(k, "value"), text_of(k, "unit"))},
               {band_text(k)},
               {age_of(c, k, "since")},
               {text_of(k, "owner").empty() ? "-" : text_of(k, "owner")},
               {*spark}});
  }
  c.out << table.render(c.style);
  std::string summary =
      std::to_string(selected.size()) + " KPI" + (selected.size() == 1 ? "" : "s") + ":";
  bool first = true;
  for (std::string_view s : {"crit", "warn", "anomalous", "no_data", "unknown", "ok"}) {
    auto it = counts.find(std::string(s));
    if (it == counts.end()) continue;
    summary += std::string(first ? " " : ", ") +
               c.style.paint(std::to_string(it->second) + " " + std::string(s), color_of(s));
    first = false;
  }
  c.out << "\n" << summary << "\n";
  auto firing = (*api)->get("/api/v1/alerts?state=firing");
  if (firing && firing->is_array() && !firing->get_array().empty()) {
    const size_t n = firing->get_array().size();
    c.out << c.style.paint(std::to_string(n) + " alert" + (n == 1 ? "" : "s") + " firing",
                           Color::kRed)
          << " (kpictl alerts)\n";
  }
  auto drafts = (*api)->get("/api/v1/okrs?state=draft");
  if (drafts && drafts->is_array() && !drafts->get_array().empty()) {
    const size_t n = drafts->get_array().size();
    c.out << c.style.paint(std::to_string(n) + " OKR draft" + (n == 1 ? "" : "s") + " to review",
                           Color::kYellow)
          << " (kpictl okr list)\n";
  }
  return done;
}

int cmd_kpi_show(Context& c) {
  auto window = duration_flag(c.args, "since", 6 * 3'600'000);
  if (!window) return c.usage(window.status());
  size_t history_count = 10;
  if (auto h = c.args.value("history")) {
    auto n = number_arg(*h, "--history");
    if (!n || *n < 0)
      return c.usage(n ? Status::invalid_argument("--history: must be 0 or more") : n.status());
    history_count = static_cast<size_t>(*n);
  }
  const std::string& id = c.args.positional[0];
  auto api = c.api();
  if (!api) return c.fail(api.status());
  auto kpi = (*api)->get("/api/v1/kpis/" + url_escape(id) +
                         "?history=" + std::to_string(std::max<size_t>(history_count, 1)));
  if (!kpi) return c.fail(kpi.status());
  auto alerts = (*api)->get("/api/v1/alerts?" + query_string({{"kpi", id}}));
  if (!alerts) return c.fail(alerts.status());
  if (c.json) {
    json::object o = kpi->is_object() ? kpi->get_object() : json::object{};
    o["alerts"] = *alerts;
    c.print_json(o);
    return kExitOk;
  }
  const json::value& k = *kpi;
  const std::string status = text_of(k, "status");
  const std::string unit = text_of(k, "unit");
  c.out << c.style.paint(text_of(k, "name"), Color::kBold) << " (" << id << ")  "
        << c.style.paint(status, color_of(status)) << " for " << age_of(c, k, "since") << "\n\n";
  auto line = [&](std::string_view label, const std::string& value) {
    std::string l(label);
    l.resize(12, ' ');
    c.out << "  " << l << value << "\n";
  };
  line("value", with_unit(number_of(k, "value"), unit) + "  (evaluated " +
                    age_of(c, k, "evaluated_at") + " ago, last sample " +
                    age_of(c, k, "last_sample") + " ago)");
  line("owner", text_of(k, "owner").empty() ? "-" : text_of(k, "owner"));
  if (!text_of(k, "description").empty()) line("description", text_of(k, "description"));
  line("direction", text_of(k, "direction"));
  std::string band = band_text(k);
  if (const auto* b = field_of(k, "band"); b && number_of(*b, "target")) {
    band = "target " + human_number(number_of(*b, "target")) + ", " + band;
  }
  line("band", band);
  if (const json::value* b = field_of(k, "baseline")) {
    line("baseline", human_number(number_of(*b, "lower")) + " .. " +
                         human_number(number_of(*b, "upper")) + " (center " +
                         human_number(number_of(*b, "center")) + "; " + text_of(*b, "method") +
                         " over " + text_of(*b, "window") + ", " +
                         (text_of(*b, "trusted") == "true" ? "trusted" : "not trusted yet") + ")");
  }
  if (const json::value* s = field_of(k, "suggested")) {
    json::object shaped{{"direction", text_of(k, "direction")}, {"band", *s}};
    line("suggested", band_text(shaped));
  }
  line("review", text_of(k, "review"));
  line("query", text_of(k, "query"));
  auto spark = trend(c, **api, id, *window);
  if (!spark) return c.fail(spark.status());
  line("last " + human_age(*window), spark->empty() ? "(no values)" : *spark);

  size_t open = 0;
  Table alert_table;
  alert_table.column("ALERT");
  alert_table.column("STATE");
  alert_table.column("SEVERITY");
  alert_table.column("SINCE", Table::Align::kRight);
  alert_table.column("ACK");
  if (alerts->is_array()) {
    for (const auto& a : alerts->get_array()) {
      const std::string state = text_of(a, "state");
      if (state == "resolved") continue;
      ++open;
      const json::value* ack = field_of(a, "acknowledged");
      alert_table.row({{text_of(a, "id") + " " + text_of(a, "name")},
                       {state, color_of(state)},
                       {text_of(a, "severity"), color_of(text_of(a, "severity"))},
                       {age_of(c, a, state == "firing" ? "firing_since" : "pending_since")},
                       {ack ? text_of(*ack, "author") : "-"}});
    }
  }
  c.out << "\n";
  if (open == 0) {
    c.out << "no pending or firing alerts\n";
  } else {
    c.out << alert_table.render(c.style);
  }
  if (history_count > 0) {
    Table history;
    history.column("TIME");
    history.column("STATUS");
    history.column("VALUE", Table::Align::kRight);
    if (const json::value* h = field_of(k, "history"); h && h->is_array()) {
      const auto& list = h->get_array();
      const size_t from = list.size() > history_count ? list.size() - history_count : 0;
      for (size_t i = list.size(); i > from; --i) {
        const auto& e = list[i - 1];
        const std::string s = text_of(e, "status");
        history.row(
            {{when_of(e, "time")}, {s, color_of(s)}, {with_unit(number_of(e, "value"), unit)}});
      }
    }
    c.out << "\nstatus changes, newest first:\n" << history.render(c.style);
  }
  return kExitOk;
}

int cmd_query(Context& c) {
  auto window = duration_flag(c.args, "since", 6 * 3'600'000);
  if (!window) return c.usage(window.status());
  auto step = duration_flag(c.args, "step", std::max<DurationMs>(*window / 60, 1000));
  if (!step) return c.usage(step.status());
  auto api = c.api();
  if (!api) return c.fail(api.status());
  auto data =
      (*api)->get("/api/v1/query_range?" + query_string({{"query", c.args.positional[0]},
                                                         {"start", seconds_param(c.now - *window)},
                                                         {"end", seconds_param(c.now)},
                                                         {"step", format_duration(*step)}}));
  if (!data) return c.fail(data.status());
  if (c.json) {
    c.print_json(*data);
    return kExitOk;
  }
  const json::value* result = field_of(*data, "result");
  if (result == nullptr || !result->is_array() || result->get_array().empty()) {
    c.out << "no data for " << c.args.positional[0] << " in the last " << human_age(*window)
          << "\n";
    return kExitOk;
  }
  auto series_name = [](const json::value& s) {
    std::string name;
    std::string labels;
    if (const json::value* m = field_of(s, "metric"); m && m->is_object()) {
      for (const auto& [key, value] : m->get_object()) {
        const std::string v = value.is_string() ? std::string(value.get_string()) : "";
        if (key == "__name__") {
          name = v;
          continue;
        }
        if (!labels.empty()) labels += ",";
        labels += std::string(key) + "=\"" + v + "\"";
      }
    }
    if (!labels.empty() || name.empty()) name += "{" + labels + "}";
    return name;
  };
  auto parsed_values = [](const json::value& s) {
    std::vector<std::pair<double, double>> points;  // seconds, value
    if (const json::value* v = field_of(s, "values"); v && v->is_array()) {
      for (const auto& p : v->get_array()) {
        if (!p.is_array() || p.get_array().size() != 2) continue;
        const auto& pair = p.get_array();
        const double t = pair[0].is_number() ? pair[0].to_number<double>() : NAN;
        const double value =
            pair[1].is_string() ? std::strtod(pair[1].get_string().c_str(), nullptr) : NAN;
        points.emplace_back(t, value);
      }
    }
    return points;
  };
  if (c.args.has("table")) {
    Table table;
    table.column("SERIES");
    table.column("TIME");
    table.column("VALUE", Table::Align::kRight);
    for (const auto& s : result->get_array()) {
      const std::string name = series_name(s);
      for (const auto& [t, v] : parsed_values(s)) {
        table.row({{name},
                   {format_time(static_cast<TimestampMs>(std::llround(t * 1000)))},
                   {human_number(v)}});
      }
    }
    c.out << table.render(c.style);
    return kExitOk;
  }
  Table table;
  table.column("SERIES");
  table.column("LAST", Table::Align::kRight);
  table.column("MIN", Table::Align::kRight);
  table.column("MAX", Table::Align::kRight);
  table.column("LAST " + human_age(*window));
  const auto cells = static_cast<size_t>(*window / *step) + 1;
  for (const auto& s : result->get_array()) {
    std::vector<double> row(cells, NAN);
    std::optional<double> last, lo, hi;
    for (const auto& [t, v] : parsed_values(s)) {
      const auto index = static_cast<int64_t>(std::lround(
          (t * 1000 - static_cast<double>(c.now - *window)) / static_cast<double>(*step)));
      if (index >= 0 && index < static_cast<int64_t>(cells)) row[static_cast<size_t>(index)] = v;
      if (!std::isfinite(v)) continue;
      last = v;
      lo = lo ? std::min(*lo, v) : v;
      hi = hi ? std::max(*hi, v) : v;
    }
    table.row({{series_name(s)},
               {human_number(last)},
               {human_number(lo)},
               {human_number(hi)},
               {sparkline(row, 60)}});
  }
  c.out << table.render(c.style);
  return kExitOk;
}

}  // namespace kpid::ctl
