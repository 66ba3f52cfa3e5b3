#pragma once
// An SLO's ledger: good and total events (or seconds) over time, at three resolutions, so that
// any window from 5 minutes to the SLO's whole window is a short sum:
//   - one entry per evaluation for the last 6 hours (exact windows up to 6h),
//   - 5-minute buckets for the last 3 days,
//   - hourly buckets for `hour_span` (twice the SLO's window, for the history chart).
// Bucket k of width w holds what happened in (k*w, (k+1)*w], left-open like PromQL ranges.
// Each resolution covers time from some moment on (the first live evaluation, or how far back
// it was filled from the store); a window is summed at the finest resolution that covers it,
// the bucket at its start counted in proportion to the part inside the window.

#include <deque>
#include <limits>

#include "kpid/core/time.h"

namespace kpid::slo {

// Good and total over a span: events, or seconds for time slices.
struct Counts {
  double good = 0;
  double total = 0;
  Counts& operator+=(const Counts& o) {
    good += o.good;
    total += o.total;
    return *this;
  }
};

class Ledger {
 public:
  static constexpr DurationMs kFineSpan = 6 * 3'600'000;
  static constexpr DurationMs kFiveMinutes = 300'000;
  static constexpr DurationMs kFiveSpan = 3 * 86'400'000;
  static constexpr DurationMs kHour = 3'600'000;

  explicit Ledger(DurationMs hour_span);

  // Live evaluations start at `t`: entries added later cover (t, ...].
  void start_live(TimestampMs t);
  // Adds what happened in (previous evaluation, t] at every resolution; t never goes back.
  void add(TimestampMs t, Counts c);
  // Filling from the store: adds `c` to the `resolution` (5m or 1h) bucket holding `t` only,
  // and records that this resolution covers time from `covered_from` on.
  void fill(DurationMs resolution, TimestampMs t, Counts c);
  void set_covered(DurationMs resolution, TimestampMs from);
  // Good and total in (from, to], `to` being the latest evaluation (or later).
  Counts sum(TimestampMs from, TimestampMs to) const;
  // Good and total in (from, to] from the hourly buckets alone, for history points; `to` a
  // whole hour.
  Counts sum_hourly(TimestampMs from, TimestampMs to) const;
  // Drops what is older than each resolution's span before `now`.
  void trim(TimestampMs now);

  TimestampMs latest() const { return latest_; }
  // Since when the coarsest resolution holds data (max: nothing yet).
  TimestampMs hourly_covered_from() const { return hour_.covered_from; }

 private:
  struct Entry {
    TimestampMs time;
    Counts counts;
  };
  struct Tier {
    DurationMs width = 0;
    DurationMs span = 0;
    std::deque<Counts> buckets;
    int64_t first = 0;  // the index of buckets.front()
    TimestampMs covered_from = std::numeric_limits<TimestampMs>::max();
    int64_t index(TimestampMs t) const;
    void add(TimestampMs t, Counts c);
    Counts sum(TimestampMs from, TimestampMs to, bool live_end) const;
    void trim(TimestampMs now);
  };
  std::deque<Entry> fine_;
  TimestampMs fine_from_ = std::numeric_limits<TimestampMs>::max();
  Tier five_;
  Tier hour_;
  TimestampMs latest_ = 0;
};

}  // namespace kpid::slo
