#pragma once
// The life of one alert rule on one KPI, as pure functions: whether a KPI observation breaches
// the rule's condition, whether it counts as recovered (back inside by the hysteresis margin),
// and the pending -> firing -> resolved state machine with `for` and `clear_for`. Delivery,
// acknowledgement, silences and persistence come on top.

#include <optional>
#include <string_view>

#include "kpid/core/time.h"
#include "kpid/kpi/band.h"

namespace kpid::alert {

// What a rule alerts on: a KPI's status, or (kBurnRate) an SLO's error budget burning too fast
// over two windows at once.
enum class Condition { kCrit, kWarn, kAnomalous, kNoData, kBurnRate };
// "crit", "warn", "anomalous", "no_data", "burn_rate"
std::string_view condition_name(Condition c);
std::optional<Condition> parse_condition(std::string_view text);

// Whether a KPI status breaches the condition: crit on crit; warn on warn or crit (a value
// that got worse still breaches warn); anomalous and no_data on themselves.
bool breaches(Condition condition, kpi::Health status);

// A burn-rate rule: breaches while the burn rates over both its windows exceed `factor` (a NaN
// rate, a window without events, does not); recovered once either is at or below
// factor - margin, so a rate hovering just under the factor keeps a firing alert firing.
bool burn_breaches(double long_rate, double short_rate, double factor);
bool burn_recovered(double long_rate, double short_rate, double factor, double margin);

// What the KPI looked like at an evaluation.
struct Observation {
  kpi::Health status = kpi::Health::kNoData;
  double value = 0;  // NaN when it had none
  kpi::Direction direction = kpi::Direction::kLowerIsBetter;
  std::optional<kpi::Band> band;
  std::optional<kpi::Baseline> baseline;  // only a trusted one
};

// Whether the observation is back inside the condition's bound by at least `margin` (in the
// KPI's unit): for crit on a lower_is_better KPI, value <= crit - margin; for in_range, inside
// [crit_low + margin, crit_high - margin]; for anomalous, inside the baseline by the margin;
// for no_data, any status but no_data. A value hovering between the threshold and the margin is
// neither breaching nor recovered, so a firing alert does not resolve on it. Without the band
// or baseline the condition needs, recovered means "not breaching".
bool recovered(Condition condition, const Observation& observation, double margin);

enum class State { kInactive, kPending, kFiring, kResolved };
std::string_view state_name(State s);  // "inactive", "pending", "firing", "resolved"

struct Timing {
  DurationMs for_duration = 0;  // the condition must hold this long before firing (0: at once)
  DurationMs clear_for = 0;     // recovered this long before resolving (0: at once)
};

// One rule's state on one KPI.
struct RuleState {
  State state = State::kInactive;
  TimestampMs pending_since = 0;  // when the condition began to hold
  TimestampMs firing_since = 0;
  // While firing: since when it has been recovered without interruption; empty if it is not.
  std::optional<TimestampMs> recovering_since;
  TimestampMs resolved_at = 0;
};

enum class Transition {
  kNone,
  kPending,    // the condition started to hold
  kCancelled,  // it stopped before `for` elapsed: back to inactive, nothing was announced
  kFiring,
  kResolved,
};

// Advances `state` by one evaluation at `now` (times must not go backwards) and says what
// changed. inactive/resolved -> pending on a breach (firing at once when `for` is 0);
// pending -> firing once the condition has held `for`, or -> inactive when it stops; firing ->
// resolved once recovered without interruption for `clear_for` (a breach, or a value inside the
// hysteresis margin, restarts that clock).
Transition step(RuleState& state, const Timing& timing, bool breach, bool is_recovered,
                TimestampMs now);

}  // namespace kpid::alert
