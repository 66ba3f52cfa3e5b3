#include "kpid/slo/ledger.h"

#include <algorithm>

namespace kpid::slo {

Ledger::Ledger(DurationMs hour_span) {
  five_.width = kFiveMinutes;
  five_.span = kFiveSpan;
  hour_.width = kHour;
  hour_.span = std::max(hour_span, kFiveSpan);
}

int64_t Ledger::Tier::index(TimestampMs t) const {
  // (k*w, (k+1)*w] -> k, for negative times too.
  const TimestampMs shifted = t - 1;
  return shifted >= 0 ? shifted / width : -((-shifted + width - 1) / width);
}

void Ledger::Tier::add(TimestampMs t, Counts c) {
  const int64_t k = index(t);
  if (buckets.empty()) {
    buckets.push_back({});
    first = k;
  }
  while (k < first) {
    buckets.push_front({});
    --first;
  }
  while (k >= first + static_cast<int64_t>(buckets.size())) buckets.push_back({});
  buckets[static_cast<size_t>(k - first)] += c;
}

Counts Ledger::Tier::sum(TimestampMs from, TimestampMs to, bool live_end) const {
  Counts out;
  if (buckets.empty() || to <= from) return out;
  const int64_t lo = std::max(index(from + 1), first);
  const int64_t hi = std::min(index(to), first + static_cast<int64_t>(buckets.size()) - 1);
  for (int64_t k = lo; k <= hi; ++k) {
    const TimestampMs start = k * width;
    const TimestampMs end = start + width;
    // The part of the bucket inside (from, to]; the bucket still filling (live_end) holds data
    // only up to `to`, so its right side counts whole.
    const TimestampMs left = std::max(start, from);
    const TimestampMs right = (live_end && k == hi) ? end : std::min(end, to);
    const double share = static_cast<double>(right - left) / static_cast<double>(width);
    const Counts& c = buckets[static_cast<size_t>(k - first)];
    out.good += c.good * share;
    out.total += c.total * share;
  }
  return out;
}

void Ledger::Tier::trim(TimestampMs now) {
  // Buckets that end at or before now - span are past keeping.
  const int64_t oldest = index(now - span + 1);
  bool dropped = false;
  while (!buckets.empty() && first < oldest) {
    buckets.pop_front();
    ++first;
    dropped = true;
  }
  if (dropped) covered_from = std::max(covered_from, first * width);
}

void Ledger::start_live(TimestampMs t) {
  fine_.clear();
  fine_from_ = t;
  five_.covered_from = std::min(five_.covered_from, t);
  hour_.covered_from = std::min(hour_.covered_from, t);
  latest_ = std::max(latest_, t);
}

void Ledger::add(TimestampMs t, Counts c) {
  fine_.push_back({t, c});
  five_.add(t, c);
  hour_.add(t, c);
  latest_ = std::max(latest_, t);
}

void Ledger::fill(DurationMs resolution, TimestampMs t, Counts c) {
  (resolution == kHour ? hour_ : five_).add(t, c);
}

void Ledger::set_covered(DurationMs resolution, TimestampMs from) {
  Tier& tier = resolution == kHour ? hour_ : five_;
  tier.covered_from = std::min(tier.covered_from, from);
}

Counts Ledger::sum(TimestampMs from, TimestampMs to) const {
  const bool live_end = to >= latest_;
  if (fine_from_ <= from) {
    Counts out;
    // Entries are in time order: the newest are at the back.
    for (auto it = fine_.rbegin(); it != fine_.rend() && it->time > from; ++it) {
      if (it->time <= to) out += it->counts;
    }
    return out;
  }
  if (five_.covered_from <= from) return five_.sum(from, to, live_end);
  return hour_.sum(from, to, live_end);
}

Counts Ledger::sum_hourly(TimestampMs from, TimestampMs to) const {
  return hour_.sum(from, to, false);
}

void Ledger::trim(TimestampMs now) {
  while (!fine_.empty() && fine_.front().time <= now - kFineSpan) {
    fine_from_ = std::max(fine_from_, fine_.front().time);
    fine_.pop_front();
  }
  five_.trim(now);
  hour_.trim(now);
}

}  // namespace kpid::slo
