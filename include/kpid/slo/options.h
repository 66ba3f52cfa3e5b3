#pragma once
// An SLO as its [[slo]] table (or an OpenSLO v1 document) writes it: the config parses straight
// into these structs; the SLO module compiles them (definition.h). SourcePos fields say where
// each value was written, for errors found when compiling.

#include <optional>
#include <string>
#include <vector>

#include "kpid/core/source_pos.h"
#include "kpid/core/time.h"
#include "kpid/kpi/options.h"

namespace kpid::slo {

// [slo.events]: the SLI as a ratio of events. Each expression is a PromQL instant-vector
// expression whose series are counters (a selector, or an aggregation of counters); kpid takes
// their increase over each window. `good` or `bad` is set, never both.
struct EventsOptions {
  std::string good;
  std::string bad;
  std::string total;
  SourcePos good_pos;
  SourcePos bad_pos;
  SourcePos total_pos;
  SourcePos pos;  // the [slo.events] table
};

// [slo.time_slices]: the SLI as the share of time that was good, slice by slice (each
// evaluation interval one slice): either a KPI in one of the `good` statuses, or a PromQL
// expression (one series or a scalar) compared with a threshold (`op` lt, lte, gt, gte), as
// OpenSLO's threshold metrics are.
struct TimeSlicesOptions {
  std::string kpi;                         // a KPI id
  std::vector<std::string> good = {"ok"};  // KPI statuses that count as good
  std::string expr;                        // instead of kpi: good while `expr op threshold`
  std::string op;
  double threshold = 0;
  std::string no_data = "skip";  // a slice without a status or value: skip, good or bad
  SourcePos kpi_pos;
  SourcePos good_pos;
  SourcePos expr_pos;
  SourcePos pos;
};

// One multi-window burn-rate alert ([[slo.alert]]): fires while the burn rate over both
// `long_window` and `short_window` exceeds `factor`.
struct BurnAlertOptions {
  std::string name;      // the alertname; default "<slo id>_burn_<long>_<short>"
  std::string severity;  // critical, error, warning, info
  DurationMs long_window = 0;
  DurationMs short_window = 0;
  double factor = 0;
  DurationMs for_duration = 0;  // the `for` key
  DurationMs clear_for = 0;
  double hysteresis = 0;  // in burn-rate units: resolved once a window is below factor - this
  std::optional<DurationMs> repeat_interval;  // default alerting.repeat_interval
  std::vector<std::string> receivers;         // names of [[receiver]]s; empty: routed as usual
  std::string runbook_url;
  std::vector<kpi::TemplateOptions> labels;
  std::vector<kpi::TemplateOptions> annotations;
  SourcePos pos;  // the [[slo.alert]] header
};

// [slo.okr]: when an exhausted (or soon exhausted) budget opens an OKR draft, and what it says.
struct SloOkrOptions {
  bool enabled = true;
  // exhausted: remaining <= 0; projected: the 6h burn would exhaust it before the window ends
  // (held for `after`).
  std::vector<std::string> on = {"exhausted", "projected"};
  DurationMs after = 3'600'000;
  std::string objective = "Restore {{slo.name}} reliability";
  double budget_target = 25;  // % of the error budget remaining the first key result aims for
  double burn_target = 1;     // the 1h burn rate the second key result brings it below
  std::vector<std::string> related;              // KPI ids: the guardrail key results (0-3)
  std::string period = "quarter";                // month, quarter, half, year
  DurationMs graduate_after = 7 * 86'400'000LL;  // healthy this long, every KR met: achieved
  SourcePos pos;
  SourcePos objective_pos;
  SourcePos related_pos;
};

struct SloOptions {
  std::string id;
  std::string name;  // defaults to the id
  std::string description;
  std::string owner;
  double objective = 0;  // percent of good events or good time, e.g. 99.9
  // Rolling ("28d", "30d", any duration) or calendar ("month", "quarter").
  std::string window = "28d";
  DurationMs interval = 0;  // evaluated this often; 0: 30s
  std::optional<EventsOptions> events;
  std::optional<TimeSlicesOptions> time_slices;
  // Without any [[slo.alert]]: the SRE workbook's three (page 1h&5m > 14.4, page 6h&30m > 6,
  // ticket 3d&6h > 1), unless default_alerts = false.
  std::vector<BurnAlertOptions> alerts;
  bool default_alerts = true;
  std::optional<SloOkrOptions> okr;
  SourcePos pos;  // the [[slo]] header (or the OpenSLO document)
  SourcePos objective_pos;
  SourcePos window_pos;
  std::string origin = "toml";  // toml or openslo
  // A [[datasource]] whose query API the SLO's expressions are evaluated on; "" for the local
  // store.
  std::string datasource;
  SourcePos datasource_pos;
};

}  // namespace kpid::slo
