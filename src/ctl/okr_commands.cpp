// kpictl okr list|show|accept|dismiss|edit|checkin.
#include <cmath>
#include <ostream>

#include "command.h"

namespace kpid::ctl {

namespace json = boost::json;

namespace {

std::string okr_path(const Context& c, std::string_view action = {}) {
  std::string path = "/api/v1/okrs/" + url_escape(c.args.positional[0]);
  if (!action.empty()) path += "/" + std::string(action);
  return path;
}

std::string score_text(const json::value& okr) {
  auto score = number_of(okr, "score");
  if (!score) return "-";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", *score);
  return buffer;
}

std::string state_text(const json::value& okr) {
  std::string s = text_of(okr, "state");
  if (const std::string outcome = text_of(okr, "outcome"); !outcome.empty()) {
    s += " (" + outcome + ")";
  }
  return s;
}

std::string period_text(const json::value& okr) {
  const json::value* p = field_of(okr, "period");
  if (p == nullptr) return "-";
  auto start = time_of(*p, "start");
  auto end = time_of(*p, "end");
  if (!start || !end) return "-";
  // The end is exclusive; people read the last day.
  return format_time(*start).substr(0, 10) + " .. " + format_time(*end - 1).substr(0, 10);
}

// Prints an OKR after a change, or its JSON.
int print_changed(Context& c, const Result<json::value>& okr, std::string_view what) {
  if (!okr) return c.fail(okr.status());
  if (c.json) {
    c.print_json(*okr);
  } else {
    c.out << "OKR " << text_of(*okr, "id") << " " << what << ": now " << state_text(*okr) << "\n";
  }
  return kExitOk;
}

// "kr2=150" → {"kr2", "150"}.
Result<std::pair<std::string, std::string>> assignment(std::string_view text,
                                                       std::string_view flag) {
  const size_t eq = text.find('=');
  if (eq == 0 || eq == std::string_view::npos) {
    return Status::invalid_argument("--" + std::string(flag) + ": expected KR=VALUE, not \"" +
                                    std::string(text) + "\"");
  }
  return std::pair{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

}  // namespace

int cmd_okr_list(Context& c) {
  const std::string state = c.args.value("state").value_or("");
  if (!state.empty() && state != "draft" && state != "active" && state != "closed" &&
      state != "dismissed") {
    return c.usage(Status::invalid_argument(
        "--state: expected draft, active, closed or dismissed, not \"" + state + "\""));
  }
  auto api = c.api();
  if (!api) return c.fail(api.status());
  auto okrs =
      (*api)->get("/api/v1/okrs?" + query_string({{"state", state},
                                                  {"owner", c.args.value("owner").value_or("")},
                                                  {"kpi", c.args.value("kpi").value_or("")}}));
  if (!okrs) return c.fail(okrs.status());
  json::array shown;
  if (okrs->is_array()) {
    for (const auto& o : okrs->get_array()) {
      const std::string s = text_of(o, "state");
      if (state.empty() && !c.args.has("all") && (s == "closed" || s == "dismissed")) continue;
      shown.push_back(o);
    }
  }
  if (c.json) {
    c.print_json(shown);
    return kExitOk;
  }
  if (shown.empty()) {
    c.out << (state.empty() && !c.args.has("all") ? "no draft or active OKRs\n" : "no OKRs\n");
    return kExitOk;
  }
  Table table;
  table.column("ID", Table::Align::kRight);
  table.column("STATE");
  table.column("SCORE", Table::Align::kRight);
  table.column("OWNER");
  table.column("KPI");
  table.column("PERIOD");
  table.column("OBJECTIVE");
  for (const auto& o : shown) {
    const std::string s = text_of(o, "state");
    table.row({{text_of(o, "id")},
               {state_text(o), color_of(s)},
               {score_text(o), color_of(text_of(o, "grade"))},
               {text_of(o, "owner").empty() ? "-" : text_of(o, "owner")},
               {text_of(o, "kpi")},
               {period_text(o)},
               {text_of(o, "objective")}});
  }
  c.out << table.render(c.style);
  return kExitOk;
}

int cmd_okr_show(Context& c) {
  auto api = c.api();
  if (!api) return c.fail(api.status());
  if (c.args.has("markdown")) {
    auto answer = (*api)->raw("GET", okr_path(c) + "?format=markdown", "", {});
    if (!answer) return c.fail(answer.status());
    if (answer->status != 200) return c.fail(status_of_answer(answer->status, answer->body));
    c.out << answer->body;
    return kExitOk;
  }
  auto okr = (*api)->get(okr_path(c));
  if (!okr) return c.fail(okr.status());
  if (c.json) {
    c.print_json(*okr);
    return kExitOk;
  }
  const json::value& o = *okr;
  c.out << c.style.paint("Objective: " + text_of(o, "objective"), Color::kBold) << "\n\n";
  auto line = [&](std::string_view label, const std::string& value, Color color = Color::kNone) {
    std::string l(label);
    l.resize(10, ' ');
    c.out << "  " << l << c.style.paint(value, color) << "\n";
  };
  line("OKR", text_of(o, "id") + " (from KPI " + text_of(o, "kpi") + ")");
  line("state", state_text(o), color_of(text_of(o, "state")));
  line("owner", text_of(o, "owner").empty() ? "-" : text_of(o, "owner"));
  line("period", period_text(o));
  line("score", score_text(o) + " (" + text_of(o, "grade") + ")", color_of(text_of(o, "grade")));
  std::string alerts;
  if (const json::value* a = field_of(o, "alerts"); a && a->is_array()) {
    for (const auto& id : a->get_array()) {
      if (!alerts.empty()) alerts += ", ";
      if (id.is_string()) alerts += std::string(id.get_string());
    }
  }
  line("alerts", alerts.empty() ? "-" : alerts);
  if (const json::value* w = field_of(o, "warnings"); w && w->is_array()) {
    for (const auto& warning : w->get_array()) {
      if (warning.is_string()) line("warning", std::string(warning.get_string()), Color::kYellow);
    }
  }

  Table krs;
  krs.column("KR");
  krs.column("KIND");
  krs.column("PROGRESS");
  krs.column("START", Table::Align::kRight);
  krs.column("NOW", Table::Align::kRight);
  krs.column("TARGET", Table::Align::kRight);
  krs.column("DESCRIPTION");
  if (const json::value* list = field_of(o, "key_results"); list && list->is_array()) {
    for (const auto& kr : list->get_array()) {
      const double progress = number_of(kr, "progress").value_or(0);
      char percent[16];
      std::snprintf(percent, sizeof percent, "%3.0f%%", std::fabs(progress * 100));
      const bool met = text_of(kr, "met") == "true";
      const std::string unit = text_of(kr, "unit");
      krs.row({{text_of(kr, "id")},
               {text_of(kr, "kind")},
               {progress_bar(progress, 10) + " " + percent, met ? Color::kGreen : Color::kNone},
               {with_unit(number_of(kr, "start"), unit)},
               {with_unit(number_of(kr, "current"), unit)},
               {with_unit(number_of(kr, "target"), unit)},
               {text_of(kr, "description")}});
    }
  }
  c.out << "\n" << krs.render(c.style);
  if (const json::value* h = field_of(o, "history");
      h && h->is_array() && !h->get_array().empty()) {
    Table history;
    history.column("TIME");
    history.column("BY");
    history.column("WHAT");
    for (const auto& e : h->get_array()) {
      history.row({{when_of(e, "at")}, {text_of(e, "author")}, {text_of(e, "what")}});
    }
    c.out << "\nhistory:\n" << history.render(c.style);
  }
  return kExitOk;
}

int cmd_okr_accept(Context& c) {
  auto api = c.api();
  if (!api) return c.fail(api.status());
  json::value body = json::object{{"author", c.author()}};
  return print_changed(c, (*api)->call("POST", okr_path(c, "accept"), &body), "accepted");
}

int cmd_okr_dismiss(Context& c) {
  auto api = c.api();
  if (!api) return c.fail(api.status());
  json::value body =
      json::object{{"author", c.author()}, {"comment", c.args.value("message").value_or("")}};
  return print_changed(c, (*api)->call("POST", okr_path(c, "dismiss"), &body), "dismissed");
}

int cmd_okr_edit(Context& c) {
  json::object body{{"author", c.author()}};
  if (auto v = c.args.value("objective")) body["objective"] = *v;
  if (auto v = c.args.value("owner")) body["owner"] = *v;
  if (auto v = c.args.value("period-end")) {
    auto t = parse_time(*v);
    if (!t) return c.usage(Status::invalid_argument("--period-end: " + t.status().message()));
    body["period"] = json::object{{"end", rfc3339_value(*t)}};
  }
  // Changes per key result, in the order first named.
  std::vector<std::pair<std::string, json::object>> changes;
  auto change_of = [&](const std::string& kr) -> json::object& {
    for (auto& [id, o] : changes) {
      if (id == kr) return o;
    }
    changes.push_back({kr, json::object{{"id", kr}}});
    return changes.back().second;
  };
  for (std::string_view flag : {"target", "start-value"}) {
    for (const auto& text : c.args.values(flag)) {
      auto a = assignment(text, flag);
      if (!a) return c.usage(a.status());
      auto v = number_arg(a->second, "--" + std::string(flag) + " " + a->first);
      if (!v) return c.usage(v.status());
      change_of(a->first)[flag == "target" ? "target" : "start"] = *v;
    }
  }
  for (const auto& text : c.args.values("describe")) {
    auto a = assignment(text, "describe");
    if (!a) return c.usage(a.status());
    change_of(a->first)["description"] = a->second;
  }
  json::object key_results;
  if (!changes.empty()) {
    json::array list;
    for (auto& [id, o] : changes) list.push_back(std::move(o));
    key_results["change"] = std::move(list);
  }
  if (auto removed = c.args.values("remove-kr"); !removed.empty()) {
    json::array list;
    for (const auto& id : removed) list.push_back(json::string(id));
    key_results["remove"] = std::move(list);
  }
  if (auto added = c.args.value("add-kr")) {
    auto target_text = c.args.value("add-target");
    if (!target_text) return c.usage(Status::invalid_argument("--add-kr needs --add-target"));
    auto target = number_arg(*target_text, "--add-target");
    if (!target) return c.usage(target.status());
    json::object kr{{"description", *added},
                    {"kind", "manual"},
                    {"target", *target},
                    {"direction", c.args.value("add-direction").value_or("increase")}};
    if (auto start = c.args.value("add-start")) {
      auto v = number_arg(*start, "--add-start");
      if (!v) return c.usage(v.status());
      kr["start"] = *v;
    }
    if (auto unit = c.args.value("add-unit")) kr["unit"] = *unit;
    key_results["add"] = json::array{std::move(kr)};
  } else if (c.args.has("add-target") || c.args.has("add-start") || c.args.has("add-direction") ||
             c.args.has("add-unit")) {
    return c.usage(
        Status::invalid_argument("--add-target, --add-start, --add-direction and "
                                 "--add-unit go with --add-kr"));
  }
  if (!key_results.empty()) body["key_results"] = std::move(key_results);
  if (body.size() == 1) {
    return c.usage(Status::invalid_argument(
        "nothing to change: give --objective, --owner, --period-end, --target, --start-value, "
        "--describe, --remove-kr or --add-kr"));
  }
  auto api = c.api();
  if (!api) return c.fail(api.status());
  json::value request = std::move(body);
  return print_changed(c, (*api)->call("PATCH", okr_path(c), &request), "changed");
}

int cmd_okr_checkin(Context& c) {
  auto value = number_arg(c.args.positional[2], "VALUE");
  if (!value) return c.usage(value.status());
  json::object body{{"author", c.author()},
                    {"kr", c.args.positional[1]},
                    {"value", *value},
                    {"note", c.args.value("message").value_or("")}};
  if (auto conf = c.args.value("confidence")) {
    auto v = number_arg(*conf, "--confidence");
    if (!v) return c.usage(v.status());
    body["confidence"] = *v;
  }
  auto api = c.api();
  if (!api) return c.fail(api.status());
  json::value request = std::move(body);
  auto okr = (*api)->call("POST", okr_path(c, "checkins"), &request);
  if (!okr) return c.fail(okr.status());
  if (c.json) {
    c.print_json(*okr);
    return kExitOk;
  }
  c.out << "checked in " << c.args.positional[1] << " = " << human_number(*value) << " on OKR "
        << text_of(*okr, "id") << ": score now " << score_text(*okr) << " ("
        << text_of(*okr, "grade") << ")\n";
  return kExitOk;
}

}  // namespace kpid::ctl
