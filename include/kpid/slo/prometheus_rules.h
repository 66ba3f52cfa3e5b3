#pragma once
// SLOs as Prometheus rules: for teams that alert from Prometheus, the recording and alerting
// rules equivalent to kpid's burn-rate evaluation (`kpictl slo rules`, GET
// /api/v1/slos/rules).

#include <span>
#include <string>

#include "kpid/core/time.h"
#include "kpid/slo/definition.h"

namespace kpid::slo {

// The recording rule holding an SLO's error ratio over `window`, labelled slo="<id>":
// "slo:sli_error:ratio_rate1h".
std::string error_ratio_record_name(DurationMs window);

// A Prometheus rule file (YAML) for `slos`: one group per SLO, "kpid-slo-<id>", evaluated every
// SLO interval (`eval_interval` for an SLO without one), holding
//  - per window its alerts use, `slo:sli_error:ratio_rate<window>{slo="<id>"}`: the share of bad
//    events (or bad time slices) over the window, and
//  - per alert an alerting rule of the same name as kpid's, firing while the error ratio over
//    both windows exceeds factor * (1 - objective / 100), with the alert's `for`,
//    `keep_firing_for` (clear_for) and hysteresis, labels slo, severity and owner.
// A time-slice SLO over a KPI reads kpid's kpid_kpi_status gauge, so Prometheus must scrape
// kpid's /metrics; an SLO without alerts gets a comment instead of a group. The text passes
// `promtool check rules`.
std::string prometheus_rules(std::span<const Definition> slos, DurationMs eval_interval);

}  // namespace kpid::slo
