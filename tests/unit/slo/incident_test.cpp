// Synthetic incidents of known size against the SRE workbook's default alerts of a 99.9% SLO
// over 30 days: which alert fires, when (within one evaluation interval of the time worked out
// by hand below), and when it resolves. Traffic is 10 requests/s; the SLO is evaluated every 30
// s; three days of clean history come first (filled into the ledger from the store's rollups).
//
// Burn rate b over a window = error ratio / 0.001. An incident of error ratio r starting at T
// gives, x seconds later (x shorter than the window w), b_w = 1000 * r * x / w.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <optional>

#include "slo_rig.h"

namespace kpid::slo {
namespace {

using namespace test_rig;

constexpr TimestampMs kInterval = 30 * kSecond;

const std::string kSlo = R"toml(
[[slo]]
id = "checkout"
name = "Checkout availability"
owner = "payments"
objective = 99.9
window = "30d"
interval = "30s"
[slo.events]
bad = 'requests_total{code="500"}'
total = 'sum(requests_total)'
)toml";

// Requests as two counters, written every 30 s at a given error ratio.
struct Traffic {
  double ok = 0;
  double errors = 0;
  void add(Rig& rig, TimestampMs t, double error_ratio) {
    errors += 300 * error_ratio;
    ok += 300 * (1 - error_ratio);
    rig.write("requests_total", {{"code", "200"}}, t, ok);
    rig.write("requests_total", {{"code", "500"}}, t, errors);
  }
};

struct Timeline {
  std::optional<TimestampMs> fired;
  std::optional<TimestampMs> resolved;
};

// The rig after three clean days up to kStart, with the tracker's first evaluation at kStart.
struct Incident {
  Incident() : rig(kSlo) {
    for (TimestampMs t = kStart - 3 * kDay + kInterval; t <= kStart; t += kInterval) {
      traffic.add(rig, t, 0);
    }
    REQUIRE(rig.store->maintain().is_ok());  // the 5m and 1h rollups the ledger fills from
    rig.step(kStart);
  }

  // Runs `seconds` of traffic at `error_ratio` from the current time on, 30 s a step.
  void run(TimestampMs seconds, double error_ratio) {
    for (TimestampMs end = now + seconds * kSecond; now < end;) {
      now += kInterval;
      traffic.add(rig, now, error_ratio);
      rig.step(now);
    }
  }

  // Each alert's firing and resolution, in seconds after kStart.
  std::map<std::string, Timeline> timelines() const {
    std::map<std::string, Timeline> out;
    for (const auto& v : rig.alerts("checkout")) {
      const auto& a = v.alert;
      Timeline& t = out[a.name];
      if (a.firing_since != 0) t.fired = (a.firing_since - kStart) / kSecond;
      if (a.resolved_at != 0) t.resolved = (a.resolved_at - kStart) / kSecond;
    }
    return out;
  }

  Rig rig;
  Traffic traffic;
  TimestampMs now = kStart;
};

// Within one evaluation interval of the time worked out by hand.
void check_near(std::optional<TimestampMs> seconds, double expected) {
  REQUIRE(seconds.has_value());
  INFO("at " << *seconds << " s, expected " << expected << " s");
  CHECK(std::abs(static_cast<double>(*seconds) - expected) <= 30);
}

TEST_CASE("slo incident: a total outage pages at once and resolves once the short window clears") {
  Incident incident;
  // Before: nothing burning, the whole budget left.
  CHECK(incident.rig.view("checkout").budget_remaining == Approx(1));
  incident.run(10 * 60, 1.0);  // 10 minutes of errors only
  incident.run(40 * 60, 0.0);
  auto t = incident.timelines();
  // 1h and 5m over 14.4: 1000 x / 3600 > 14.4 from x = 51.84 s (5m: from 4.32 s).
  check_near(t["checkout_burn_1h_5m"].fired, 51.84);
  // 6h and 30m over 6: 1000 x / 21600 > 6 from x = 129.6 s.
  check_near(t["checkout_burn_6h_30m"].fired, 129.6);
  // 3d and 6h over 1: 1000 x / 259200 > 1 from x = 259.2 s.
  check_near(t["checkout_burn_3d_6h"].fired, 259.2);
  // After the outage (600 s of errors) the 5m burn is 1000 (300 - y) / 300, at most 14.4 from
  // y = 295.68 s: resolved at 600 + 295.68 s.
  check_near(t["checkout_burn_1h_5m"].resolved, 895.68);
  // The 30m burn is 1000 (600 - (y - 1200)) / 1800, at most 6 from y = 1789.2 s.
  check_near(t["checkout_burn_6h_30m"].resolved, 2389.2);
  // The 6h burn stays over 1 for hours: the ticket is still open.
  CHECK_FALSE(t["checkout_burn_3d_6h"].resolved.has_value());
  // 6000 bad of 25.92 M requests over 30 days spend 6000 / 25920 of the budget.
  const SloView v = incident.rig.view("checkout");
  CHECK(v.budget_consumed == Approx(6000).epsilon(0.001));
  CHECK(v.budget_remaining == Approx(1 - 6000.0 / (0.001 * v.window.total)).epsilon(1e-6));
}

TEST_CASE("slo incident: 2.2% of the budget in an hour pages once, no ticket") {
  Incident incident;
  // 2.2% of a 30-day budget in 1 h is a burn rate of 0.022 * 720 = 15.84 (error ratio 1.584%).
  incident.run(3600, 0.01584);
  incident.run(3600, 0.0);
  auto t = incident.timelines();
  // 15.84 x / 3600 > 14.4 from x = 3272.7 s.
  check_near(t["checkout_burn_1h_5m"].fired, 3272.7);
  // The 5m burn falls from 15.84 as 15.84 (300 - y) / 300: at most 14.4 from y = 27.3 s.
  check_near(t["checkout_burn_1h_5m"].resolved, 3627.3);
  // 6h burn at most 15.84 / 6 = 2.64: no slow page; the 3d burn at most 15.84 / 72 = 0.22: no
  // ticket.
  CHECK_FALSE(t.contains("checkout_burn_6h_30m"));
  CHECK_FALSE(t.contains("checkout_burn_3d_6h"));
}

TEST_CASE("slo incident: a slow leak of 10% of the budget in three days opens a ticket only") {
  Incident incident;
  // Burn rate 1.7 (error ratio 0.17%): the 3d burn 1.7 x / 259200 passes 1 at x = 152470.6 s,
  // when 10% of the 30-day budget has gone in the leak.
  incident.run(43 * 3600, 0.0017);
  auto t = incident.timelines();
  check_near(t["checkout_burn_3d_6h"].fired, 152470.6);
  CHECK_FALSE(t.contains("checkout_burn_1h_5m"));
  CHECK_FALSE(t.contains("checkout_burn_6h_30m"));
  const SloView v = incident.rig.view("checkout");
  CHECK(v.burn_rate(259'200'000) > 1);
  // Fixed: the 6h burn 1.7 (21600 - y) / 21600 is at most 1 from y = 8894.1 s.
  incident.run(3 * 3600, 0.0);
  t = incident.timelines();
  check_near(t["checkout_burn_3d_6h"].resolved, 43 * 3600 + 8894.1);
}

TEST_CASE("slo incident: a 30-second blip pages nobody") {
  Incident incident;
  incident.run(30 * 60, 0.0);
  incident.run(30, 1.0);  // one evaluation interval of errors only: 300 bad requests
  incident.run(2 * 3600, 0.0);
  // 1h burn 300 / 36000 / 0.001 = 8.3 (under 14.4); 6h burn 1.4 (under 6); 3d burn 0.12.
  CHECK(incident.timelines().empty());
  const SloView v = incident.rig.view("checkout");
  CHECK(v.budget_consumed == Approx(300).epsilon(0.001));
}

}  // namespace
}  // namespace kpid::slo
