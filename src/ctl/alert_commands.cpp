// kpictl alerts, ack and silence add|list|rm.
#include <ostream>

#include "command.h"

namespace kpid::ctl {

namespace json = boost::json;

namespace {

// "kpi=checkout", "severity!=info", "kpi=~check.*", "owner!~ops|sre" → {"name","op","value"}.
// The operator is the first of =, !=, =~, !~ after a non-empty name.
Result<json::object> parse_matcher(std::string_view text) {
  size_t at = text.find_first_of("=!");
  if (at == 0 || at == std::string_view::npos) {
    return Status::invalid_argument("matcher \"" + std::string(text) +
                                    "\": expected name=value, name!=value, name=~regex or "
                                    "name!~regex");
  }
  std::string op;
  if (text[at] == '!') {
    if (at + 1 >= text.size() || (text[at + 1] != '=' && text[at + 1] != '~')) {
      return Status::invalid_argument("matcher \"" + std::string(text) +
                                      "\": '!' must be followed by = or ~");
    }
    op = std::string("!") + text[at + 1];
  } else {
    op = at + 1 < text.size() && text[at + 1] == '~' ? "=~" : "=";
  }
  return json::object{{"name", std::string(text.substr(0, at))},
                      {"op", op},
                      {"value", std::string(text.substr(at + op.size()))}};
}

std::string matchers_text(const json::value& silence) {
  std::string out;
  if (const json::value* list = field_of(silence, "matchers"); list && list->is_array()) {
    for (const auto& m : list->get_array()) {
      if (!out.empty()) out += " ";
      out += text_of(m, "name") + text_of(m, "op") + text_of(m, "value");
    }
  }
  return out;
}

}  // namespace

int cmd_alerts(Context& c) {
  const std::string state = c.args.value("state").value_or("");
  if (!state.empty() && state != "pending" && state != "firing" && state != "resolved") {
    return c.usage(Status::invalid_argument(
        "--state: expected pending, firing or resolved, not \"" + state + "\""));
  }
  auto api = c.api();
  if (!api) return c.fail(api.status());
  auto alerts = (*api)->get("/api/v1/alerts?" +
                            query_string({{"state", state},
                                          {"kpi", c.args.value("kpi").value_or("")},
                                          {"owner", c.args.value("owner").value_or("")},
                                          {"severity", c.args.value("severity").value_or("")}}));
  if (!alerts) return c.fail(alerts.status());
  json::array shown;
  if (alerts->is_array()) {
    for (const auto& a : alerts->get_array()) {
      if (state.empty() && !c.args.has("all") && text_of(a, "state") == "resolved") continue;
      shown.push_back(a);
    }
  }
  if (c.json) {
    c.print_json(shown);
    return kExitOk;
  }
  if (shown.empty()) {
    c.out << (state.empty() && !c.args.has("all") ? "no pending or firing alerts\n"
                                                  : "no alerts\n");
    return kExitOk;
  }
  Table table;
  table.column("ID", Table::Align::kRight);
  table.column("STATE");
  table.column("SEVERITY");
  table.column("ALERT");
  table.column("KPI");
  table.column("VALUE", Table::Align::kRight);
  table.column("THRESHOLD", Table::Align::kRight);
  table.column("SINCE", Table::Align::kRight);
  table.column("ACK");
  table.column("SILENCED");
  for (const auto& a : shown) {
    const std::string s = text_of(a, "state");
    const char* since = s == "resolved" ? "resolved_at"
                        : s == "firing" ? "firing_since"
                                        : "pending_since";
    const json::value* ack = field_of(a, "acknowledged");
    const json::value* silenced = field_of(a, "silenced_by");
    std::string silenced_by;
    if (silenced != nullptr && silenced->is_array()) {
      for (const auto& id : silenced->get_array()) {
        if (!silenced_by.empty()) silenced_by += ",";
        if (id.is_string()) silenced_by += std::string(id.get_string());
      }
    }
    table.row({{text_of(a, "id")},
               {s, color_of(s)},
               {text_of(a, "severity"), color_of(text_of(a, "severity"))},
               {text_of(a, "name")},
               {text_of(a, "kpi")},
               {with_unit(number_of(a, "value"), text_of(a, "unit"))},
               {human_number(number_of(a, "threshold"))},
               {age_of(c, a, since)},
               {ack ? text_of(*ack, "author") : "-"},
               {silenced_by.empty() ? "-" : silenced_by}});
  }
  c.out << table.render(c.style);
  return kExitOk;
}

int cmd_ack(Context& c) {
  auto api = c.api();
  if (!api) return c.fail(api.status());
  json::value body =
      json::object{{"author", c.author()}, {"comment", c.args.value("message").value_or("")}};
  auto alert =
      (*api)->call("POST", "/api/v1/alerts/" + url_escape(c.args.positional[0]) + "/ack", &body);
  if (!alert) return c.fail(alert.status());
  if (c.json) {
    c.print_json(*alert);
    return kExitOk;
  }
  c.out << "acknowledged alert " << text_of(*alert, "id") << " (" << text_of(*alert, "name")
        << ", KPI " << text_of(*alert, "kpi") << ") as " << c.author() << "\n";
  return kExitOk;
}

int cmd_silence_add(Context& c) {
  json::array matchers;
  for (const auto& text : c.args.positional) {
    auto m = parse_matcher(text);
    if (!m) return c.usage(m.status());
    matchers.push_back(std::move(*m));
  }
  json::object body{{"matchers", std::move(matchers)},
                    {"author", c.author()},
                    {"comment", c.args.value("message").value_or("")}};
  if (auto until = c.args.value("until")) {
    if (c.args.has("duration")) {
      return c.usage(Status::invalid_argument("give --until or --duration, not both"));
    }
    auto t = parse_time(*until);
    if (!t) return c.usage(Status::invalid_argument("--until: " + t.status().message()));
    body["ends_at"] = rfc3339_value(*t);
  } else {
    auto d = duration_flag(c.args, "duration", 3'600'000);
    if (!d) return c.usage(d.status());
    body["duration"] = format_duration(*d);
  }
  if (auto start = c.args.value("start")) {
    auto t = parse_time(*start);
    if (!t) return c.usage(Status::invalid_argument("--start: " + t.status().message()));
    body["starts_at"] = rfc3339_value(*t);
  }
  auto api = c.api();
  if (!api) return c.fail(api.status());
  json::value request = std::move(body);
  auto silence = (*api)->call("POST", "/api/v1/silences", &request);
  if (!silence) return c.fail(silence.status());
  if (c.json) {
    c.print_json(*silence);
    return kExitOk;
  }
  const auto ends = time_of(*silence, "ends_at");
  c.out << "silence " << text_of(*silence, "id") << " (" << matchers_text(*silence) << ") "
        << text_of(*silence, "state") << " until " << when_of(*silence, "ends_at");
  if (ends) c.out << " (in " << human_age(*ends - c.now) << ")";
  c.out << "\n";
  return kExitOk;
}

int cmd_silence_list(Context& c) {
  auto api = c.api();
  if (!api) return c.fail(api.status());
  auto silences = (*api)->get("/api/v1/silences");
  if (!silences) return c.fail(silences.status());
  json::array shown;
  if (silences->is_array()) {
    for (const auto& s : silences->get_array()) {
      if (!c.args.has("all") && text_of(s, "state") == "expired") continue;
      shown.push_back(s);
    }
  }
  if (c.json) {
    c.print_json(shown);
    return kExitOk;
  }
  if (shown.empty()) {
    c.out << (c.args.has("all") ? "no silences\n" : "no active or pending silences\n");
    return kExitOk;
  }
  Table table;
  table.column("ID", Table::Align::kRight);
  table.column("STATE");
  table.column("MATCHERS");
  table.column("STARTS");
  table.column("ENDS");
  table.column("AUTHOR");
  table.column("COMMENT");
  for (const auto& s : shown) {
    const std::string state = text_of(s, "state");
    table.row({{text_of(s, "id")},
               {state, state == "active" ? Color::kYellow : color_of(state)},
               {matchers_text(s)},
               {when_of(s, "starts_at")},
               {when_of(s, "ends_at")},
               {text_of(s, "author")},
               {text_of(s, "comment")}});
  }
  c.out << table.render(c.style);
  return kExitOk;
}

int cmd_silence_rm(Context& c) {
  auto api = c.api();
  if (!api) return c.fail(api.status());
  int code = kExitOk;
  for (const auto& id : c.args.positional) {
    auto done = (*api)->call("DELETE", "/api/v1/silences/" + url_escape(id), nullptr);
    if (!done) {
      code = std::max(code, c.fail(done.status()));
      continue;
    }
    if (c.json) {
      c.print_json(*done);
    } else {
      c.out << "silence " << id << " expired\n";
    }
  }
  return code;
}

}  // namespace kpid::ctl
