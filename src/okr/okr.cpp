#include "kpid/okr/okr.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>

#include <boost/json.hpp>

#include "kpid/core/json.h"
#include "kpid/core/text.h"

namespace kpid::okr {

namespace json = boost::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

json::value number_value(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

template <typename Enum, size_t N>
std::optional<Enum> parse_name(std::string_view text,
                               const std::array<std::string_view, N>& names) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == text) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

constexpr std::array<std::string_view, 4> kStates = {"draft", "active", "closed", "dismissed"};
constexpr std::array<std::string_view, 4> kOutcomes = {"", "achieved", "missed", "abandoned"};
constexpr std::array<std::string_view, 4> kKinds = {"kpi", "guardrail", "manual", "slo"};
constexpr std::array<std::string_view, 4> kDirections = {"increase", "decrease", "stay_above",
                                                         "stay_below"};

std::string date_of(TimestampMs t) {
  std::string s;
  append_rfc3339(s, t);
  return s.substr(0, 10);
}

}  // namespace

std::string_view state_name(OkrState s) { return kStates[static_cast<size_t>(s)]; }
std::optional<OkrState> parse_state(std::string_view t) { return parse_name<OkrState>(t, kStates); }
std::string_view outcome_name(Outcome o) { return kOutcomes[static_cast<size_t>(o)]; }
std::optional<Outcome> parse_outcome(std::string_view t) {
  return parse_name<Outcome>(t, kOutcomes);
}
std::string_view kind_name(KrKind k) { return kKinds[static_cast<size_t>(k)]; }
std::optional<KrKind> parse_kind(std::string_view t) { return parse_name<KrKind>(t, kKinds); }
std::string_view direction_name(KrDirection d) { return kDirections[static_cast<size_t>(d)]; }
std::optional<KrDirection> parse_direction(std::string_view t) {
  return parse_name<KrDirection>(t, kDirections);
}

double progress(const KeyResult& kr) {
  if (!std::isfinite(kr.current)) return 0;
  if (kr.kind == KrKind::kSlo) {
    // The budget counts once it is back at the target, wherever the draft found it.
    if (kr.measure == kMeasureBudgetRemaining) {
      if (kr.current >= kr.target) return 1;
      if (kr.start >= kr.target) return 0;
      return std::clamp((kr.current - kr.start) / (kr.target - kr.start), 0.0, 1.0) + 0.0;
    }
    if (kr.current < kr.target) return 1;
    if (kr.start <= kr.target) return 0;
    return std::min(std::clamp((kr.current - kr.start) / (kr.target - kr.start), 0.0, 1.0), 0.99) +
           0.0;
  }
  switch (kr.direction) {
    case KrDirection::kStayAbove: return kr.current >= kr.target ? 1 : 0;
    case KrDirection::kStayBelow: return kr.current <= kr.target ? 1 : 0;
    case KrDirection::kIncrease:
    case KrDirection::kDecrease: {
      if (kr.target == kr.start) {
        const bool there = kr.direction == KrDirection::kIncrease ? kr.current >= kr.target
                                                                  : kr.current <= kr.target;
        return there ? 1 : 0;
      }
      // + 0.0 turns -0 (no progress yet on a decrease) into 0: JSON would print "-0", which
      // reads back as 0, so a stored notification would not resend byte for byte.
      return std::clamp((kr.current - kr.start) / (kr.target - kr.start), 0.0, 1.0) + 0.0;
    }
  }
  return 0;
}

bool met(const KeyResult& kr) { return progress(kr) >= 1; }

double score(const Okr& okr) {
  if (okr.key_results.empty()) return 0;
  double sum = 0;
  for (const auto& kr : okr.key_results) sum += progress(kr);
  return sum / static_cast<double>(okr.key_results.size());
}

std::string_view grade(double s) {
  const double rounded = std::round(s * 10) / 10;
  if (rounded >= 0.7) return "green";
  if (rounded >= 0.4) return "yellow";
  return "red";
}

Result<Period> period_of(std::string_view kind, TimestampMs at) {
  int months = 0;
  if (kind == "month") months = 1;
  if (kind == "quarter") months = 3;
  if (kind == "half") months = 6;
  if (kind == "year") months = 12;
  if (months == 0) {
    return Status::invalid_argument("unknown period \"" + std::string(kind) +
                                    "\"; expected month, quarter, half or year");
  }
  const auto [start, end] = calendar_period(months, at);
  return Period{start, end};
}

json::object to_json(const KeyResult& kr) {
  json::object o;
  o["id"] = kr.id;
  o["kind"] = kind_name(kr.kind);
  if (!kr.kpi.empty()) o["kpi"] = kr.kpi;
  if (!kr.slo.empty()) o["slo"] = kr.slo;
  if (!kr.measure.empty()) o["measure"] = kr.measure;
  o["description"] = kr.description;
  o["start"] = number_value(kr.start);
  o["target"] = number_value(kr.target);
  o["unit"] = kr.unit;
  o["direction"] = direction_name(kr.direction);
  o["current"] = number_value(kr.current);
  o["progress"] = progress(kr);
  o["met"] = met(kr);
  json::array checkins;
  for (const auto& c : kr.checkins) {
    json::object ci{
        {"at", rfc3339_value(c.at)}, {"author", c.author}, {"value", c.value}, {"note", c.note}};
    ci["confidence"] = c.confidence ? json::value(*c.confidence) : json::value(nullptr);
    checkins.push_back(std::move(ci));
  }
  o["checkins"] = std::move(checkins);
  return o;
}

json::object to_json(const Okr& okr) {
  json::object o;
  o["id"] = okr.id;
  o["kpi"] = okr.kpi;
  if (!okr.slo.empty()) o["slo"] = okr.slo;
  o["state"] = state_name(okr.state);
  o["outcome"] =
      okr.outcome == Outcome::kNone ? json::value(nullptr) : json::value(outcome_name(okr.outcome));
  o["objective"] = okr.objective;
  json::array krs;
  for (const auto& kr : okr.key_results) krs.push_back(to_json(kr));
  o["key_results"] = std::move(krs);
  const double s = score(okr);
  o["score"] = s;
  o["grade"] = grade(s);
  o["owner"] = okr.owner;
  o["period"] = json::object{{"start", rfc3339_value(okr.period_start)},
                             {"end", rfc3339_value(okr.period_end)}};
  json::array alerts;
  for (const auto& a : okr.alerts) alerts.push_back(json::string(a));
  o["alerts"] = std::move(alerts);
  o["created_at"] = rfc3339_value(okr.created_at);
  o["accepted_at"] = rfc3339_value(okr.accepted_at);
  o["closed_at"] = rfc3339_value(okr.closed_at);
  o["healthy_since"] = rfc3339_value(okr.healthy_since);
  json::array warnings;
  for (const auto& w : okr.warnings) warnings.push_back(json::string(w));
  o["warnings"] = std::move(warnings);
  json::array history;
  for (const auto& c : okr.history) {
    history.push_back(
        json::object{{"at", rfc3339_value(c.at)}, {"author", c.author}, {"what", c.what}});
  }
  o["history"] = std::move(history);
  o["next_kr"] = okr.next_kr;
  return o;
}

namespace {

Result<KeyResult> stored_key_result(const json::object& o) {
  JsonReader r(o);
  KeyResult kr;
  kr.id = r.str("id");
  auto kind = parse_kind(r.str("kind"));
  if (!kind) r.fail("kind", "unknown kind");
  kr.kind = kind.value_or(KrKind::kManual);
  kr.kpi = r.str("kpi", false);
  kr.slo = r.str("slo", false);
  kr.measure = r.str("measure", false);
  kr.description = r.str("description", false);
  kr.start = r.number("start").value_or(kNaN);
  kr.target = r.number("target").value_or(kNaN);
  kr.unit = r.str("unit", false);
  auto direction = parse_direction(r.str("direction"));
  if (!direction) r.fail("direction", "unknown direction");
  kr.direction = direction.value_or(KrDirection::kDecrease);
  kr.current = r.number("current").value_or(kNaN);
  for (const auto& item : r.objects("checkins")) {
    JsonReader c(item);
    CheckIn ci{c.time("at"), c.str("author", false), c.number("value").value_or(kNaN),
               c.str("note", false), c.number("confidence")};
    if (auto s = c.status(); !s) r.fail("checkins", s.message());
    kr.checkins.push_back(std::move(ci));
  }
  if (auto s = r.status(); !s) return s;
  return kr;
}

}  // namespace

Result<Okr> okr_from_json(const json::object& o) {
  JsonReader r(o);
  Okr okr;
  okr.id = r.str("id");
  okr.kpi = r.str("kpi");
  okr.slo = r.str("slo", false);
  auto state = parse_state(r.str("state"));
  if (!state) r.fail("state", "unknown state");
  okr.state = state.value_or(OkrState::kDraft);
  auto outcome = parse_outcome(r.str("outcome", false));
  if (!outcome) r.fail("outcome", "unknown outcome");
  okr.outcome = outcome.value_or(Outcome::kNone);
  okr.objective = r.str("objective");
  for (const auto& item : r.objects("key_results")) {
    auto kr = stored_key_result(item);
    if (!kr) {
      r.fail("key_results", kr.status().message());
      continue;
    }
    okr.key_results.push_back(std::move(*kr));
  }
  okr.owner = r.str("owner", false);
  if (const json::value* p = o.if_contains("period"); p && p->is_object()) {
    JsonReader period(p->get_object());
    okr.period_start = period.time("start");
    okr.period_end = period.time("end");
    if (auto s = period.status(); !s) r.fail("period", s.message());
  }
  okr.alerts = r.strings("alerts");
  okr.created_at = r.time("created_at");
  okr.accepted_at = r.time("accepted_at");
  okr.closed_at = r.time("closed_at");
  okr.healthy_since = r.time("healthy_since");
  okr.warnings = r.strings("warnings");
  for (const auto& item : r.objects("history")) {
    JsonReader c(item);
    okr.history.push_back({c.time("at"), c.str("author", false), c.str("what", false)});
  }
  okr.next_kr = static_cast<uint32_t>(r.number("next_kr").value_or(1));
  if (auto s = r.status(); !s) return s;
  return okr;
}

Result<KeyResult> key_result_from_json(const json::object& o) {
  JsonReader r(o);
  KeyResult kr;
  kr.description = r.str("description");
  kr.kpi = r.str("kpi", false);
  kr.slo = r.str("slo", false);
  kr.measure = r.str("measure", false);
  kr.kind = !kr.slo.empty() ? KrKind::kSlo : kr.kpi.empty() ? KrKind::kManual : KrKind::kKpi;
  if (const std::string kind = r.str("kind", false); !kind.empty()) {
    auto parsed = parse_kind(kind);
    if (!parsed) {
      r.fail("kind", "unknown kind \"" + kind + "\"; expected kpi, guardrail, manual or slo");
    }
    kr.kind = parsed.value_or(kr.kind);
  }
  if (kr.kind == KrKind::kSlo) {
    if (kr.slo.empty()) r.fail("slo", "is required for kind \"slo\"");
    if (kr.measure != kMeasureBudgetRemaining && kr.measure != kMeasureBurnRate1h) {
      r.fail("measure",
             "unknown measure \"" + kr.measure + "\"; expected budget_remaining or burn_rate_1h");
    }
  } else if (kr.kind != KrKind::kManual && kr.kpi.empty()) {
    r.fail("kpi", "is required for kind \"" + std::string(kind_name(kr.kind)) + "\"");
  }
  auto target = r.number("target");
  if (!target) r.fail("target", "is required");
  kr.target = target.value_or(kNaN);
  kr.start = r.number("start").value_or(0);
  kr.unit = r.str("unit", false);
  const std::string direction = r.str("direction");
  auto parsed = parse_direction(direction);
  if (!direction.empty() && !parsed) {
    r.fail("direction", "unknown direction \"" + direction +
                            "\"; expected increase, decrease, stay_above or stay_below");
  }
  // An SLO's budget goes up, its burn rate down.
  const KrDirection natural = kr.kind == KrKind::kSlo && kr.measure == kMeasureBudgetRemaining
                                  ? KrDirection::kIncrease
                                  : KrDirection::kDecrease;
  kr.direction = parsed.value_or(natural);
  kr.current = kr.kind == KrKind::kManual ? kr.start : kNaN;
  if (auto s = r.status(); !s) return s;
  return kr;
}

std::string to_markdown(const Okr& okr, std::string_view url) {
  const double s = score(okr);
  std::string md = "## Objective: " + okr.objective + "\n\n";
  md += "- **Owner:** " + (okr.owner.empty() ? std::string("(none)") : okr.owner) + "\n";
  md += "- **Period:** " + date_of(okr.period_start) + " to " + date_of(okr.period_end - 1) + "\n";
  md += "- **State:** " + std::string(state_name(okr.state));
  if (okr.outcome != Outcome::kNone) md += " (" + std::string(outcome_name(okr.outcome)) + ")";
  md += "\n- **Score:** " + format_number(std::round(s * 100) / 100) + " (" +
        std::string(grade(s)) + ")\n";
  md += okr.slo.empty() ? "- **From KPI:** `" + okr.kpi + "`" : "- **From SLO:** `" + okr.slo + "`";
  if (!okr.alerts.empty()) {
    md += ", alerts";
    for (const auto& a : okr.alerts) md += " " + a;
  }
  md += "\n";
  if (!url.empty()) md += "- **In kpid:** " + std::string(url) + "\n";
  md +=
      "\n| # | Key result | Start | Target | Current | Progress |\n|---|---|---:|---:|---:|---:|\n";
  int n = 0;
  for (const auto& kr : okr.key_results) {
    std::string description = kr.description;
    std::replace(description.begin(), description.end(), '|', '/');
    if (kr.kind == KrKind::kGuardrail) description += " *(guardrail)*";
    const std::string unit = kr.unit.empty() ? "" : " " + kr.unit;
    md += "| " + std::to_string(++n) + " | " + description + " | " + format_number(kr.start) +
          unit + " | " + format_number(kr.target) + unit + " | " + format_number(kr.current) +
          unit + " | " + std::to_string(static_cast<int>(std::round(progress(kr) * 100))) + "% |\n";
  }
  return md;
}

}  // namespace kpid::okr
