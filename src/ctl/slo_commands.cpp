// kpictl slo, slo ID and slo rules: SLOs with their error budgets and burn rates, and the
// Prometheus rules equivalent to kpid's burn-rate alerts.
#include <cmath>
#include <cstdio>
#include <ostream>

#include "command.h"

namespace kpid::ctl {

namespace json = boost::json;

namespace {

// The windows the API reports burn rates for, shortest first.
constexpr const char* kBurnWindows[] = {"5m", "30m", "1h", "2h", "6h", "1d", "3d"};

std::string fixed(std::optional<double> v, int decimals, std::string_view suffix = "") {
  if (!v || !std::isfinite(*v)) return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, *v);
  return std::string(buffer) + std::string(suffix);
}

std::optional<double> percent_of(std::optional<double> fraction) {
  if (!fraction) return std::nullopt;
  return *fraction * 100;
}

std::optional<double> burn_of(const json::value& slo, std::string_view window) {
  const json::value* rates = field_of(slo, "burn_rates");
  return rates ? number_of(*rates, window) : std::nullopt;
}

Color slo_color(std::string_view status) {
  if (status == "exhausted") return Color::kRed;
  return color_of(status);
}

// The color of a burn rate: above 1 the budget runs out before the window ends.
Color burn_color(std::optional<double> burn) {
  if (!burn || !std::isfinite(*burn)) return Color::kNone;
  if (*burn >= 14.4) return Color::kRed;
  if (*burn > 1) return Color::kYellow;
  return Color::kNone;
}

std::string window_text(const json::value& slo) {
  std::string w = text_of(slo, "window");
  if (text_of(slo, "calendar") == "true") w += " (calendar)";
  return w;
}

std::string query_text(const json::value& slo) {
  const json::value* q = field_of(slo, "query");
  if (q == nullptr) return "-";
  if (text_of(slo, "sli_type") == "time_slices" && !text_of(*q, "kpi").empty()) {
    std::string good;
    if (const json::value* g = field_of(*q, "good"); g && g->is_array()) {
      for (const auto& s : g->get_array()) {
        if (!s.is_string()) continue;
        if (!good.empty()) good += ", ";
        good += std::string(s.get_string());
      }
    }
    return "KPI " + text_of(*q, "kpi") + " while " + good + " (no data: " + text_of(*q, "no_data") +
           ")";
  }
  std::string out;
  for (std::string_view key : {"good", "bad", "total", "expr"}) {
    const std::string v = text_of(*q, key);
    if (v.empty()) continue;
    if (!out.empty()) out += "\n             ";
    out += std::string(key) + ": " + v;
  }
  return out.empty() ? "-" : out;
}

int show(Context& c, const std::string& id) {
  auto api = c.api();
  if (!api) return c.fail(api.status());
  auto answer = (*api)->get("/api/v1/slos/" + url_escape(id));
  if (!answer) return c.fail(answer.status());
  if (c.json) {
    c.print_json(*answer);
    return kExitOk;
  }
  const json::value& s = *answer;
  const std::string status = text_of(s, "status");
  c.out << c.style.paint("SLO " + text_of(s, "id") + ": " + text_of(s, "name"), Color::kBold)
        << "\n\n";
  auto line = [&](std::string_view label, const std::string& value, Color color = Color::kNone) {
    std::string l(label);
    l.resize(13, ' ');
    c.out << "  " << l << c.style.paint(value, color) << "\n";
  };
  if (!text_of(s, "description").empty()) line("description", text_of(s, "description"));
  line("owner", text_of(s, "owner").empty() ? "-" : text_of(s, "owner"));
  line("status", status, slo_color(status));
  line("objective", human_number(number_of(s, "objective")) + "% over " + window_text(s));
  line("window", when_of(s, "window_start") + " to " + when_of(s, "window_end"));
  line("sli", text_of(s, "sli_type") + ", every " + text_of(s, "interval"));
  line("query", query_text(s));
  line("evaluated", when_of(s, "evaluated_at"));
  line("sli now", fixed(number_of(s, "sli"), 3, "%") + " (" + human_number(number_of(s, "good")) +
                      " good of " + human_number(number_of(s, "total")) + ")");
  if (const json::value* b = field_of(s, "budget")) {
    const auto remaining = number_of(*b, "remaining");
    line("budget",
         fixed(percent_of(remaining), 1, "% remaining") + " (" +
             human_number(number_of(*b, "consumed")) + " of " +
             human_number(number_of(*b, "total")) + " consumed)",
         remaining && *remaining <= 0 ? Color::kRed : Color::kNone);
  }
  if (const json::value* e = field_of(s, "exhaustion")) {
    auto at = [&](std::string_view key) {
      auto seconds = number_of(*e, key);
      return seconds ? "in " + human_age(static_cast<DurationMs>(*seconds * 1000)) : "-";
    };
    line("exhausted", at("1h") + " at the 1h burn rate, " + at("6h") + " at the 6h");
  }
  if (!text_of(s, "error").empty()) line("error", text_of(s, "error"), Color::kRed);

  c.out << "\n";
  Table burns;
  for (const char* w : kBurnWindows) burns.column(std::string("BURN ") + w, Table::Align::kRight);
  std::vector<Table::Cell> cells;
  for (const char* w : kBurnWindows) {
    const auto burn = burn_of(s, w);
    cells.push_back({fixed(burn, 2), burn_color(burn)});
  }
  burns.row(std::move(cells));
  c.out << burns.render(c.style);

  Table alerts;
  alerts.column("ALERT");
  alerts.column("SEVERITY");
  alerts.column("WINDOWS");
  alerts.column("FACTOR", Table::Align::kRight);
  alerts.column("FOR", Table::Align::kRight);
  if (const json::value* list = field_of(s, "alerts"); list && list->is_array()) {
    for (const auto& a : list->get_array()) {
      const std::string severity = text_of(a, "severity");
      alerts.row({{text_of(a, "name")},
                  {severity, color_of(severity)},
                  {text_of(a, "long_window") + " & " + text_of(a, "short_window")},
                  {human_number(number_of(a, "factor"))},
                  {text_of(a, "for")}});
    }
  }
  if (!alerts.empty()) c.out << "\n" << alerts.render(c.style);
  return kExitOk;
}

}  // namespace

int cmd_slo(Context& c) {
  if (!c.args.positional.empty()) return show(c, c.args.positional[0]);
  auto api = c.api();
  if (!api) return c.fail(api.status());
  auto answer = (*api)->get("/api/v1/slos");
  if (!answer) return c.fail(answer.status());
  const auto owner = c.args.value("owner");
  json::array shown;
  if (answer->is_array()) {
    for (const auto& s : answer->get_array()) {
      if (owner && text_of(s, "owner") != *owner) continue;
      shown.push_back(s);
    }
  }
  if (c.json) {
    c.print_json(shown);
    return kExitOk;
  }
  if (shown.empty()) {
    c.out << (owner ? "no SLOs of owner " + *owner : std::string("no SLOs configured")) << "\n";
    return kExitOk;
  }
  Table table;
  table.column("SLO");
  table.column("OBJECTIVE", Table::Align::kRight);
  table.column("WINDOW");
  table.column("SLI", Table::Align::kRight);
  table.column("BUDGET LEFT", Table::Align::kRight);
  table.column("BURN 1H", Table::Align::kRight);
  table.column("BURN 6H", Table::Align::kRight);
  table.column("STATUS");
  for (const auto& s : shown) {
    const std::string status = text_of(s, "status");
    std::optional<double> remaining;
    if (const json::value* b = field_of(s, "budget")) remaining = number_of(*b, "remaining");
    const auto burn_1h = burn_of(s, "1h");
    const auto burn_6h = burn_of(s, "6h");
    table.row({{text_of(s, "id")},
               {human_number(number_of(s, "objective")) + "%"},
               {window_text(s)},
               {fixed(number_of(s, "sli"), 3, "%")},
               {fixed(percent_of(remaining), 1, "%"),
                remaining && *remaining <= 0 ? Color::kRed : Color::kNone},
               {fixed(burn_1h, 2), burn_color(burn_1h)},
               {fixed(burn_6h, 2), burn_color(burn_6h)},
               {status, slo_color(status)}});
  }
  c.out << table.render(c.style);
  return kExitOk;
}

int cmd_slo_rules(Context& c) {
  auto api = c.api();
  if (!api) return c.fail(api.status());
  const std::string path = c.args.positional.empty()
                               ? std::string("/api/v1/slos/rules")
                               : "/api/v1/slos/" + url_escape(c.args.positional[0]) + "/rules";
  auto answer = (*api)->raw("GET", path, "", {});
  if (!answer) return c.fail(answer.status());
  if (answer->status != 200) return c.fail(status_of_answer(answer->status, answer->body));
  c.out << answer->body;
  return kExitOk;
}

}  // namespace kpid::ctl
