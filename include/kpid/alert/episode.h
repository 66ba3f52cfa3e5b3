#pragma once
// Episode keys: the name two kpid replicas with the same config and the same incoming data both
// give one alert episode, so receivers deduplicate what both send.
//
// An episode starts where the data says, not where a replica's clock says: at the timestamp of
// the newest sample its KPI had at the evaluation that started it (an SLO: the time of its
// evaluation, which the tracker aligns to the SLO's interval), rounded down to the KPI's
// evaluation interval. Replicas fed the same samples see the breach in the same sample, however
// late each received it; replicas whose first breaching samples differ (a batch split another
// way) still agree when both samples fall in the same interval. What is left: the two first
// breaching samples straddle an interval boundary, or one replica missed data the other had;
// then each names the episode its own way and receivers get both (at-least-once, as before).

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "kpid/alert/alert.h"
#include "kpid/core/time.h"

namespace kpid::alert {

// `data_time` rounded down to a multiple of `grid` (unchanged when grid <= 0).
TimestampMs episode_start(TimestampMs data_time, DurationMs grid);

// 32 lower-case hex digits of SHA-256 over the rule (`rule_key`: "<kpi>/<condition>",
// "slo:<id>/<alertname>"), the alert's labels, the episode start and `nth` (how many earlier
// episodes of the same rule had the same start: a breach that ends and comes back within one
// interval is another episode).
std::string episode_key(std::string_view rule_key, const std::map<std::string, std::string>& labels,
                        TimestampMs start, uint32_t nth);

// The key of one notification about `alert`: "<episode>-<event>", and for a repeat
// "<episode>-alert.repeat-<n>"; "" when the alert has no episode (the outbox then keys it by
// alert id and sequence, as before).
std::string notification_key(const Alert& alert, std::string_view event);

// The number of a repeat notification sent at `now`: the repeat intervals elapsed since the
// alert fired, rounded (so replicas a tick apart agree), and always past the previous repeat.
uint32_t repeat_number(const Alert& alert, DurationMs repeat_interval, TimestampMs now);

}  // namespace kpid::alert
