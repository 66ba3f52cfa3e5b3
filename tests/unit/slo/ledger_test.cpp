#include <catch2/catch.hpp>

#include "kpid/slo/ledger.h"

namespace kpid::slo {
namespace {

constexpr TimestampMs kMinute = 60'000;
constexpr TimestampMs kHour = 60 * kMinute;
constexpr TimestampMs kDay = 24 * kHour;
constexpr TimestampMs kT0 = 1'700'438'400'000;  // a whole day

TEST_CASE("ledger: windows up to 6 hours sum the evaluations exactly") {
  Ledger ledger(60 * kDay);
  ledger.start_live(kT0);
  for (int i = 1; i <= 120; ++i) ledger.add(kT0 + i * 30'000, {9, 10});  // 1 h, every 30 s
  const TimestampMs now = kT0 + kHour;
  CHECK(ledger.sum(now - 5 * kMinute, now).total == 100);
  CHECK(ledger.sum(now - 5 * kMinute, now).good == 90);
  CHECK(ledger.sum(now - kHour, now).total == 1200);
  // Before the live start nothing is known: the window holds what there is.
  CHECK(ledger.sum(now - 6 * kHour, now).total == 1200);
}

TEST_CASE("ledger: a window older than the evaluations is summed from buckets, the first in part") {
  Ledger ledger(60 * kDay);
  // Filled from the store: 5-minute buckets for a day, each 300 events, 3 of them bad.
  for (TimestampMs t = kT0 - kDay + 5 * kMinute; t <= kT0; t += 5 * kMinute) {
    ledger.fill(Ledger::kFiveMinutes, t, {297, 300});
    ledger.fill(Ledger::kHour, t, {297, 300});
  }
  ledger.set_covered(Ledger::kFiveMinutes, kT0 - kDay);
  ledger.set_covered(Ledger::kHour, kT0 - kDay);
  ledger.start_live(kT0);
  ledger.add(kT0 + 30'000, {30, 30});
  const TimestampMs now = kT0 + 30'000;
  // (now - 1h, now]: 11 whole buckets, 9/10 of the one before them, and the live 30 s.
  const Counts c = ledger.sum(now - kHour, now);
  CHECK(c.total == Approx(11 * 300 + 0.9 * 300 + 30));
  CHECK(c.good == Approx(11 * 297 + 0.9 * 297 + 30));
  // The live part alone comes from the evaluations.
  CHECK(ledger.sum(kT0, now).total == 30);
  // History: whole hours from the hourly buckets.
  CHECK(ledger.sum_hourly(kT0 - 2 * kHour, kT0).total == Approx(24 * 300));
}

TEST_CASE("ledger: trimming keeps each resolution's span") {
  Ledger ledger(4 * kDay);
  ledger.start_live(kT0);
  for (TimestampMs t = kT0 + kHour; t <= kT0 + 5 * kDay; t += kHour) ledger.add(t, {1, 1});
  const TimestampMs now = kT0 + 5 * kDay;
  ledger.trim(now);
  // Evaluations for the last 6 h, 5-minute buckets for 3 days, hours for 4 days.
  CHECK(ledger.sum(now - 6 * kHour, now).total == 6);
  CHECK(ledger.sum(now - 3 * kDay, now).total == Approx(72));
  CHECK(ledger.sum(now - 4 * kDay, now).total == Approx(96));
  CHECK(ledger.sum(now - 5 * kDay, now).total == Approx(96));  // older hours are gone
}

}  // namespace
}  // namespace kpid::slo
