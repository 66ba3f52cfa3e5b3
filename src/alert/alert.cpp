#include "kpid/alert/alert.h"

#include <cmath>
#include <limits>

#include <boost/json.hpp>

#include "kpid/core/json.h"

namespace kpid::alert {

namespace json = boost::json;

namespace {

json::value number_value(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

json::object string_map(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

}  // namespace

std::string_view Silence::state(TimestampMs now) const {
  if (now < starts_at) return "pending";
  return now < ends_at ? "active" : "expired";
}

bool Silence::matches(const Alert& alert) const {
  for (const auto& m : matchers) {
    auto it = alert.labels.find(m.name());
    if (!m.matches(it == alert.labels.end() ? std::string_view() : std::string_view(it->second))) {
      return false;
    }
  }
  return !matchers.empty();
}

json::object to_json(const Alert& a) {
  json::object o;
  o["id"] = a.id;
  o["kpi"] = a.kpi;
  o["kpi_name"] = a.kpi_name;
  if (!a.slo.empty()) o["slo"] = a.slo;
  if (!a.receivers.empty()) {
    json::array names;
    for (const auto& n : a.receivers) names.push_back(json::string(n));
    o["receivers"] = std::move(names);
  }
  o["condition"] = condition_name(a.condition);
  o["name"] = a.name;
  o["severity"] = a.severity;
  o["owner"] = a.owner;
  o["unit"] = a.unit;
  o["runbook_url"] = a.runbook_url;
  o["state"] = state_name(a.state);
  o["pending_since"] = rfc3339_value(a.pending_since);
  o["firing_since"] = rfc3339_value(a.firing_since);
  o["resolved_at"] = rfc3339_value(a.resolved_at);
  o["recovering_since"] = a.recovering_since ? rfc3339_value(*a.recovering_since) : nullptr;
  o["value"] = number_value(a.value);
  o["threshold"] = a.threshold ? number_value(*a.threshold) : nullptr;
  o["labels"] = string_map(a.labels);
  o["annotations"] = string_map(a.annotations);
  if (a.acknowledged) {
    o["acknowledged"] = json::object{{"author", a.acknowledged->author},
                                     {"at", rfc3339_value(a.acknowledged->at)},
                                     {"comment", a.acknowledged->comment}};
  } else {
    o["acknowledged"] = nullptr;
  }
  o["announced"] = a.announced;
  o["notified"] = a.notified;
  o["notification"] = a.notification.empty() ? json::value(nullptr) : json::value(a.notification);
  o["last_notified"] = rfc3339_value(a.last_notified);
  if (!a.rule_group.empty()) o["rule_group"] = a.rule_group;
  if (!a.episode.empty()) {
    o["episode"] = a.episode;
    o["episode_start"] = rfc3339_value(a.episode_start);
    o["repeat"] = a.repeat;
  }
  return o;
}

Result<Alert> alert_from_json(const json::object& o) {
  JsonReader r(o);
  Alert a;
  a.id = r.str("id");
  a.kpi = r.str("kpi");
  a.kpi_name = r.str("kpi_name", false);
  a.slo = r.str("slo", false);
  a.rule_group = r.str("rule_group", false);
  if (const json::value* v = o.if_contains("receivers"); v && v->is_array()) {
    for (const auto& n : v->get_array()) {
      if (n.is_string()) a.receivers.emplace_back(n.get_string());
    }
  }
  auto condition = parse_condition(r.str("condition"));
  if (!condition) r.fail("condition", "unknown condition");
  a.condition = condition.value_or(Condition::kCrit);
  a.name = r.str("name");
  a.severity = r.str("severity");
  a.owner = r.str("owner", false);
  a.unit = r.str("unit", false);
  a.runbook_url = r.str("runbook_url", false);
  const std::string state = r.str("state");
  if (state == "pending") {
    a.state = State::kPending;
  } else if (state == "firing") {
    a.state = State::kFiring;
  } else if (state == "resolved") {
    a.state = State::kResolved;
  } else {
    r.fail("state", "unknown state \"" + state + "\"");
  }
  a.pending_since = r.time("pending_since");
  a.firing_since = r.time("firing_since");
  a.resolved_at = r.time("resolved_at");
  if (const json::value* v = o.if_contains("recovering_since"); v && !v->is_null()) {
    a.recovering_since = r.time("recovering_since");
  }
  a.value = r.number("value").value_or(std::numeric_limits<double>::quiet_NaN());
  a.threshold = r.number("threshold");
  a.labels = r.string_map("labels");
  a.annotations = r.string_map("annotations");
  if (const json::value* v = o.if_contains("acknowledged"); v && v->is_object()) {
    JsonReader ack(v->get_object());
    a.acknowledged = Acknowledgement{ack.str("author"), ack.time("at"), ack.str("comment", false)};
    if (auto s = ack.status(); !s) r.fail("acknowledged", s.message());
  }
  a.notified = r.boolean("notified");
  // Records from before "announced" existed: "notified" meant announced then.
  a.announced = o.contains("announced") ? r.boolean("announced") : a.notified;
  if (const json::value* v = o.if_contains("notification"); v && v->is_string()) {
    a.notification = std::string(v->get_string());
  }
  a.last_notified = r.time("last_notified");
  if (const json::value* v = o.if_contains("episode"); v && v->is_string()) {
    a.episode = std::string(v->get_string());
    a.episode_start = r.time("episode_start");
    if (const json::value* n = o.if_contains("repeat"); n && n->is_number()) {
      a.repeat = n->to_number<uint32_t>();
    }
  }
  if (auto s = r.status(); !s) return s;
  return a;
}

json::object to_json(const AlertEvent& e) {
  return json::object{{"time", rfc3339_value(e.time)}, {"kind", e.kind}, {"detail", e.detail}};
}

Result<AlertEvent> event_from_json(const json::object& o) {
  JsonReader r(o);
  AlertEvent e{r.time("time"), r.str("kind"), r.str("detail", false)};
  if (auto s = r.status(); !s) return s;
  return e;
}

json::object to_json(const Silence& s, TimestampMs now) {
  json::array matchers;
  for (const auto& m : s.matchers) {
    const char* op = m.type() == MatchType::kEqual        ? "="
                     : m.type() == MatchType::kNotEqual   ? "!="
                     : m.type() == MatchType::kRegexMatch ? "=~"
                                                          : "!~";
    matchers.push_back(json::object{{"name", m.name()}, {"value", m.value()}, {"op", op}});
  }
  return json::object{{"id", s.id},
                      {"matchers", std::move(matchers)},
                      {"starts_at", rfc3339_value(s.starts_at)},
                      {"ends_at", rfc3339_value(s.ends_at)},
                      {"created_at", rfc3339_value(s.created_at)},
                      {"author", s.author},
                      {"comment", s.comment},
                      {"state", s.state(now)}};
}

Result<Silence> silence_from_json(const json::object& o) {
  JsonReader r(o);
  Silence s;
  s.id = r.str("id", false);
  s.author = r.str("author");
  s.comment = r.str("comment");
  s.starts_at = r.time("starts_at");
  s.ends_at = r.time("ends_at");
  s.created_at = r.time("created_at");
  if (auto st = r.status(); !st) return st;
  const json::value* list = o.if_contains("matchers");
  if (list == nullptr || !list->is_array() || list->get_array().empty()) {
    return Status::invalid_argument(
        "matchers: expected a non-empty array of {\"name\", \"value\", \"op\"} objects");
  }
  size_t index = 0;
  for (const auto& item : list->get_array()) {
    const std::string where = "matchers[" + std::to_string(index++) + "]";
    if (!item.is_object()) return Status::invalid_argument(where + ": expected an object");
    JsonReader m(item.get_object());
    std::string name = m.str("name");
    std::string value = m.str("value");
    std::string op = m.str("op", false);
    if (auto st = m.status(); !st) return Status::invalid_argument(where + "." + st.message());
    MatchType type;
    if (op.empty() || op == "=") {
      type = MatchType::kEqual;
    } else if (op == "!=") {
      type = MatchType::kNotEqual;
    } else if (op == "=~") {
      type = MatchType::kRegexMatch;
    } else if (op == "!~") {
      type = MatchType::kRegexNoMatch;
    } else {
      return Status::invalid_argument(where + ".op: unknown operator \"" + op +
                                      "\"; expected =, !=, =~ or !~");
    }
    if (name.empty()) return Status::invalid_argument(where + ".name: must not be empty");
    auto matcher = LabelMatcher::create(type, std::move(name), std::move(value));
    if (!matcher) return Status::invalid_argument(where + ": " + matcher.status().message());
    s.matchers.push_back(std::move(*matcher));
  }
  return s;
}

Result<json::object> parse_record(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return Status::invalid_argument("not JSON: " + ec.message());
  if (!v.is_object()) return Status::invalid_argument("expected a JSON object");
  return std::move(v.get_object());
}

}  // namespace kpid::alert
