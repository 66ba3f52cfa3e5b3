#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "kpid/alert/rule.h"
#include "kpid/alert/template.h"

using namespace kpid;
using namespace kpid::alert;
using kpi::Direction;
using kpi::Health;

namespace {

constexpr TimestampMs kMinute = 60'000;

kpi::Band lower_band() {  // lower_is_better: warn 200, crit 500
  kpi::Band b;
  b.warn = 200;
  b.crit = 500;
  return b;
}

Observation observe(double value, Direction direction = Direction::kLowerIsBetter,
                    std::optional<kpi::Band> band = lower_band()) {
  Observation o;
  o.value = value;
  o.direction = direction;
  o.band = band;
  o.status = band ? kpi::classify(direction, *band, value) : Health::kOk;
  return o;
}

// Feeds one value per minute through a crit rule; returns the transitions other than kNone.
std::vector<Transition> run(const std::vector<double>& values, const Timing& timing,
                            double margin) {
  RuleState state;
  std::vector<Transition> out;
  TimestampMs t = 1'700'000'000'000;
  for (double v : values) {
    const Observation o = observe(v);
    const Transition tr = step(state, timing, breaches(Condition::kCrit, o.status),
                               recovered(Condition::kCrit, o, margin), t);
    if (tr != Transition::kNone) out.push_back(tr);
    t += kMinute;
  }
  return out;
}

}  // namespace

TEST_CASE("alert: conditions and the statuses that breach them") {
  CHECK(breaches(Condition::kCrit, Health::kCrit));
  CHECK_FALSE(breaches(Condition::kCrit, Health::kWarn));
  CHECK(breaches(Condition::kWarn, Health::kWarn));
  CHECK(breaches(Condition::kWarn, Health::kCrit));  // worse still breaches warn
  CHECK_FALSE(breaches(Condition::kWarn, Health::kAnomalous));
  CHECK(breaches(Condition::kAnomalous, Health::kAnomalous));
  CHECK(breaches(Condition::kNoData, Health::kNoData));
  CHECK_FALSE(breaches(Condition::kNoData, Health::kOk));
  for (Condition c :
       {Condition::kCrit, Condition::kWarn, Condition::kAnomalous, Condition::kNoData}) {
    CHECK(parse_condition(condition_name(c)) == c);
  }
  CHECK_FALSE(parse_condition("critical").has_value());
}

TEST_CASE("alert: recovery needs the value back inside by the hysteresis margin") {
  // lower_is_better, crit 500, margin 50: recovered at or below 450.
  CHECK_FALSE(recovered(Condition::kCrit, observe(600), 50));  // breaching
  CHECK_FALSE(recovered(Condition::kCrit, observe(480), 50));  // inside, not by the margin
  CHECK(recovered(Condition::kCrit, observe(450), 50));
  CHECK(recovered(Condition::kCrit, observe(480), 0));
  // warn 200: recovered at or below 180 with margin 20.
  CHECK_FALSE(recovered(Condition::kWarn, observe(190), 20));
  CHECK(recovered(Condition::kWarn, observe(180), 20));

  // higher_is_better, warn 99, crit 95: crit recovered at or above 96 with margin 1.
  kpi::Band up;
  up.warn = 99;
  up.crit = 95;
  CHECK_FALSE(recovered(Condition::kCrit, observe(95.5, Direction::kHigherIsBetter, up), 1));
  CHECK(recovered(Condition::kCrit, observe(96, Direction::kHigherIsBetter, up), 1));

  // in_range: crit outside 10..90, margin 5: recovered within 15..85.
  kpi::Band range;
  range.crit_low = 10;
  range.warn_low = 20;
  range.warn_high = 80;
  range.crit_high = 90;
  CHECK(recovered(Condition::kCrit, observe(50, Direction::kInRange, range), 5));
  CHECK_FALSE(recovered(Condition::kCrit, observe(12, Direction::kInRange, range), 5));
  CHECK_FALSE(recovered(Condition::kCrit, observe(88, Direction::kInRange, range), 5));
  CHECK(recovered(Condition::kCrit, observe(85, Direction::kInRange, range), 5));

  // anomalous: inside the baseline by the margin, on either side for in_range.
  Observation a;
  a.status = Health::kOk;
  a.direction = Direction::kLowerIsBetter;
  a.baseline = kpi::Baseline{100, 150, 200};
  a.value = 195;
  CHECK_FALSE(recovered(Condition::kAnomalous, a, 10));
  a.value = 190;
  CHECK(recovered(Condition::kAnomalous, a, 10));

  // no_data recovers with any value; no value says nothing about the others.
  Observation none;
  none.status = Health::kNoData;
  none.value = std::nan("");
  CHECK_FALSE(recovered(Condition::kNoData, none, 0));
  CHECK_FALSE(recovered(Condition::kCrit, none, 0));
  CHECK(recovered(Condition::kNoData, observe(100), 0));
}

TEST_CASE("alert: pending, firing and resolved follow for and clear_for") {
  const Timing timing{3 * kMinute, 2 * kMinute};
  // Breach for 2 minutes only: pending, then cancelled, never firing.
  CHECK(run({600, 600, 100}, timing, 0) ==
        std::vector<Transition>{Transition::kPending, Transition::kCancelled});
  // Breach for 4 minutes: pending at 0, firing at 3 (held `for`), resolved 2 minutes after
  // it recovered.
  CHECK(run({600, 600, 600, 600, 100, 100, 100, 100}, timing, 0) ==
        std::vector<Transition>{Transition::kPending, Transition::kFiring, Transition::kResolved});
  // A breach in the middle of recovery restarts clear_for.
  RuleState s;
  const TimestampMs t0 = 1'700'000'000'000;
  CHECK(step(s, {0, 2 * kMinute}, true, false, t0) == Transition::kFiring);  // for 0: at once
  CHECK(s.firing_since == t0);
  CHECK(step(s, {0, 2 * kMinute}, false, true, t0 + kMinute) == Transition::kNone);
  CHECK(step(s, {0, 2 * kMinute}, true, false, t0 + 2 * kMinute) == Transition::kNone);
  CHECK(step(s, {0, 2 * kMinute}, false, true, t0 + 3 * kMinute) == Transition::kNone);
  CHECK(step(s, {0, 2 * kMinute}, false, true, t0 + 4 * kMinute) == Transition::kNone);
  CHECK(step(s, {0, 2 * kMinute}, false, true, t0 + 5 * kMinute) == Transition::kResolved);
  CHECK(s.resolved_at == t0 + 5 * kMinute);
  CHECK(state_name(s.state) == "resolved");
  // A new breach after resolving starts over.
  CHECK(step(s, {kMinute, 0}, true, false, t0 + 6 * kMinute) == Transition::kPending);
}

TEST_CASE("alert: a value flapping around the threshold gives one alert with hysteresis") {
  // Hovering around crit (500): 510, 490, 505, 495, ... for an hour, then settling at 300.
  std::vector<double> values;
  for (int i = 0; i < 60; ++i) values.push_back(i % 2 == 0 ? 510 : 490);
  for (int i = 0; i < 10; ++i) values.push_back(300);

  // Without hysteresis nor clear_for: an alert per flap.
  const auto flappy = run(values, {0, 0}, 0);
  CHECK(std::count(flappy.begin(), flappy.end(), Transition::kFiring) == 30);
  // A 50 margin and 5 minutes of recovery: one firing, one resolve at the end.
  const auto calm = run(values, {0, 5 * kMinute}, 50);
  CHECK(calm == std::vector<Transition>{Transition::kFiring, Transition::kResolved});
  // clear_for alone is not enough when the dips go well inside: 490 with no margin counts
  // as recovered, but never for 5 minutes in a row.
  const auto clear_only = run(values, {0, 5 * kMinute}, 0);
  CHECK(clear_only == std::vector<Transition>{Transition::kFiring, Transition::kResolved});
}

TEST_CASE("alert: templates replace known variables and reject the rest at parse time") {
  constexpr std::array<std::string_view, 4> known = {"kpi", "value", "threshold", "baseline.lower"};
  auto t = Template::parse(
      "{{kpi}} is {{ value }} (threshold {{threshold}}, low {{baseline.lower}})", known);
  REQUIRE(t.is_ok());
  auto text = t->render([](std::string_view name) -> std::string {
    if (name == "kpi") return "checkout_latency";
    if (name == "value") return "870";
    if (name == "threshold") return "500";
    return "120";
  });
  CHECK(text == "checkout_latency is 870 (threshold 500, low 120)");
  CHECK(Template::parse("no variables", known)->render([](std::string_view) {
    return std::string("x");
  }) == "no variables");

  auto unknown = Template::parse("{{kpi}} {{ownr}}", known);
  REQUIRE_FALSE(unknown.is_ok());
  CHECK(unknown.status().message().find("unknown variable \"{{ownr}}\" at offset 8") !=
        std::string::npos);
  CHECK(Template::parse("{{kpi", known).status().message().find("unclosed") != std::string::npos);
  CHECK(Template::parse("a {{ }} b", known).status().message().find("empty") != std::string::npos);
}
