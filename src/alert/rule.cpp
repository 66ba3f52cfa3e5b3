#include "kpid/alert/rule.h"

#include <cmath>

namespace kpid::alert {

std::string_view condition_name(Condition c) {
  switch (c) {
    case Condition::kCrit: return "crit";
    case Condition::kWarn: return "warn";
    case Condition::kAnomalous: return "anomalous";
    case Condition::kNoData: return "no_data";
    case Condition::kBurnRate: return "burn_rate";
  }
  return "?";
}

std::optional<Condition> parse_condition(std::string_view text) {
  for (Condition c : {Condition::kCrit, Condition::kWarn, Condition::kAnomalous, Condition::kNoData,
                      Condition::kBurnRate}) {
    if (condition_name(c) == text) return c;
  }
  return std::nullopt;
}

bool breaches(Condition condition, kpi::Health status) {
  switch (condition) {
    case Condition::kCrit: return status == kpi::Health::kCrit;
    case Condition::kWarn: return status == kpi::Health::kWarn || status == kpi::Health::kCrit;
    case Condition::kAnomalous: return status == kpi::Health::kAnomalous;
    case Condition::kNoData: return status == kpi::Health::kNoData;
    case Condition::kBurnRate: return false;  // not about a KPI status
  }
  return false;
}

bool burn_breaches(double long_rate, double short_rate, double factor) {
  return long_rate > factor && short_rate > factor;  // NaN compares false: no events, no breach
}

bool burn_recovered(double long_rate, double short_rate, double factor, double margin) {
  if (burn_breaches(long_rate, short_rate, factor)) return false;
  const double bound = factor - margin;
  return !(long_rate > bound) || !(short_rate > bound);
}

namespace {

// Inside the bound on the bad side of `direction` by `margin`: below `high` for
// lower_is_better, above `low` for higher_is_better, between them for in_range.
bool inside(kpi::Direction direction, double value, double low, double high, double margin) {
  switch (direction) {
    case kpi::Direction::kLowerIsBetter: return value <= high - margin;
    case kpi::Direction::kHigherIsBetter: return value >= low + margin;
    case kpi::Direction::kInRange: return value >= low + margin && value <= high - margin;
  }
  return false;
}

}  // namespace

bool recovered(Condition condition, const Observation& o, double margin) {
  if (breaches(condition, o.status)) return false;
  if (condition == Condition::kNoData) return true;
  if (std::isnan(o.value)) return false;  // no value says nothing about recovery
  switch (condition) {
    case Condition::kCrit:
      if (!o.band) return true;
      return o.direction == kpi::Direction::kInRange
                 ? inside(o.direction, o.value, o.band->crit_low, o.band->crit_high, margin)
                 : inside(o.direction, o.value, o.band->crit, o.band->crit, margin);
    case Condition::kWarn:
      if (!o.band) return true;
      return o.direction == kpi::Direction::kInRange
                 ? inside(o.direction, o.value, o.band->warn_low, o.band->warn_high, margin)
                 : inside(o.direction, o.value, o.band->warn, o.band->warn, margin);
    case Condition::kAnomalous:
      if (!o.baseline) return true;
      return inside(o.direction, o.value, o.baseline->lower, o.baseline->upper, margin);
    case Condition::kNoData:
    case Condition::kBurnRate: return true;
  }
  return false;
}

std::string_view state_name(State s) {
  switch (s) {
    case State::kInactive: return "inactive";
    case State::kPending: return "pending";
    case State::kFiring: return "firing";
    case State::kResolved: return "resolved";
  }
  return "?";
}

Transition step(RuleState& s, const Timing& timing, bool breach, bool is_recovered,
                TimestampMs now) {
  switch (s.state) {
    case State::kInactive:
    case State::kResolved:
      if (!breach) return Transition::kNone;
      s.pending_since = now;
      s.recovering_since.reset();
      if (timing.for_duration > 0) {
        s.state = State::kPending;
        return Transition::kPending;
      }
      s.state = State::kFiring;
      s.firing_since = now;
      return Transition::kFiring;
    case State::kPending:
      if (!breach) {
        s.state = State::kInactive;
        s.pending_since = 0;
        return Transition::kCancelled;
      }
      if (now - s.pending_since < timing.for_duration) return Transition::kNone;
      s.state = State::kFiring;
      s.firing_since = now;
      return Transition::kFiring;
    case State::kFiring:
      if (breach || !is_recovered) {
        s.recovering_since.reset();
        return Transition::kNone;
      }
      if (!s.recovering_since) s.recovering_since = now;
      if (now - *s.recovering_since < timing.clear_for) return Transition::kNone;
      s.state = State::kResolved;
      s.resolved_at = now;
      s.recovering_since.reset();
      return Transition::kResolved;
  }
  return Transition::kNone;
}

}  // namespace kpid::alert
