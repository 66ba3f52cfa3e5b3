#pragma once
// OKRs as records: an Objective with 2-5 Key Results, opened as a draft when a KPI breaches,
// then accepted (active) and closed, or dismissed. Pure data, scoring and text forms; the
// planner that opens, scores and graduates them comes on top (planner.h).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "kpid/core/status.h"
#include "kpid/core/time.h"

namespace kpid::okr {

enum class OkrState { kDraft, kActive, kClosed, kDismissed };
std::string_view state_name(OkrState s);  // draft, active, closed, dismissed
std::optional<OkrState> parse_state(std::string_view text);

enum class Outcome { kNone, kAchieved, kMissed, kAbandoned };
std::string_view outcome_name(Outcome o);  // "", achieved, missed, abandoned
std::optional<Outcome> parse_outcome(std::string_view text);

// What a key result measures: a KPI moved toward a target, a KPI kept on the right side of a
// threshold while the team works on the first (a guardrail), a number people check in, or one
// of an SLO's figures (its `measure`).
enum class KrKind { kKpi, kGuardrail, kManual, kSlo };
std::string_view kind_name(KrKind k);  // kpi, guardrail, manual, slo
std::optional<KrKind> parse_kind(std::string_view text);

// increase / decrease: move from start to target; stay_above / stay_below: hold the target
// (guardrails).
enum class KrDirection { kIncrease, kDecrease, kStayAbove, kStayBelow };
std::string_view direction_name(KrDirection d);
std::optional<KrDirection> parse_direction(std::string_view text);

struct CheckIn {
  TimestampMs at = 0;
  std::string author;
  double value = 0;
  std::string note;
  std::optional<double> confidence;  // 0-1
};

// The SLO figures a key result of kind slo measures: the error budget remaining, in % of the
// budget (may be negative), moved up to the target; the 1h burn rate, brought below the target.
inline constexpr std::string_view kMeasureBudgetRemaining = "budget_remaining";
inline constexpr std::string_view kMeasureBurnRate1h = "burn_rate_1h";

struct KeyResult {
  std::string id;  // "kr1", "kr2", ... unique within the OKR
  KrKind kind = KrKind::kKpi;
  std::string kpi;      // kpi and guardrail kinds
  std::string slo;      // slo kind: the SLO's id
  std::string measure;  // slo kind: kMeasureBudgetRemaining or kMeasureBurnRate1h
  std::string description;
  double start = 0;
  double target = 0;
  std::string unit;
  KrDirection direction = KrDirection::kDecrease;
  double current = 0;  // NaN when unknown: the KPI's live value, or the last check-in
  std::vector<CheckIn> checkins;
};

// Progress of a key result, 0-1: (current - start) / (target - start), clamped, for increase
// and decrease (the same formula serves both); 1 while a guardrail holds and 0 when broken.
// 0 when current is unknown; 1 when start already equals target and current is there. An SLO's
// budget is there once current >= target; its burn rate only once current < target (strictly:
// a burn rate of exactly the target still spends the budget), just short of 1 before.
double progress(const KeyResult& kr);
// Whether it is met: progress 1 (a guardrail: held).
bool met(const KeyResult& kr);

struct Change {
  TimestampMs at = 0;
  std::string author;  // "kpid" for its own changes
  std::string what;
};

struct Okr {
  std::string id;
  std::string kpi;  // "" for an OKR about an SLO
  std::string slo;  // the SLO it is about; "" for a KPI's OKR
  OkrState state = OkrState::kDraft;
  Outcome outcome = Outcome::kNone;
  std::string objective;
  std::vector<KeyResult> key_results;
  std::string owner;
  TimestampMs period_start = 0;
  TimestampMs period_end = 0;       // due
  std::vector<std::string> alerts;  // ids of the alerts that led to it
  TimestampMs created_at = 0;
  TimestampMs accepted_at = 0;
  TimestampMs closed_at = 0;
  // The KPI ok (an SLO: its budget and 1h burn rate at their targets) since (0: not now); for
  // graduation.
  TimestampMs healthy_since = 0;
  std::vector<std::string> warnings;
  std::vector<Change> history;
  uint32_t next_kr = 1;  // for ids of key results added later

  bool open() const { return state == OkrState::kDraft || state == OkrState::kActive; }
};

// The mean progress of the key results (0 without any).
double score(const Okr& okr);
// The common convention: 0.7-1.0 green, 0.4-0.6 yellow, 0-0.3 red (scores between the bands
// round to one decimal first).
std::string_view grade(double score);

// The period a date falls in: "month", "quarter", "half" or "year" (UTC calendar).
struct Period {
  TimestampMs start = 0;
  TimestampMs end = 0;
};
Result<Period> period_of(std::string_view kind, TimestampMs at);

boost::json::object to_json(const Okr& okr);  // with score, grade and progress per KR
Result<Okr> okr_from_json(const boost::json::object& o);
boost::json::object to_json(const KeyResult& kr);
// A key result as given to the API (add): description, target and direction required; kind
// manual unless a kpi is named (then kpi); start default 0.
Result<KeyResult> key_result_from_json(const boost::json::object& o);

// For pasting into a planning document.
std::string to_markdown(const Okr& okr, std::string_view url);

}  // namespace kpid::okr
