#pragma once
// A KPI as its [[kpi]] table writes it: the config parses straight into these structs; the KPI
// module compiles them into Definitions (definition.h), the alert module the [[kpi.alert]]
// rules and the OKR module the [kpi.okr] policy. SourcePos fields say where each value was
// written, for errors found when compiling.

#include <optional>
#include <string>
#include <vector>

#include "kpid/core/source_pos.h"
#include "kpid/core/time.h"

namespace kpid::kpi {

// One selector reduced to a number: over time within a trailing window, then across the series
// it matches. In PromQL terms: across(over_time(selector[window])).
struct TermOptions {
  std::string selector;   // a series selector, e.g. http_requests_total{job="api"}
  std::string over_time;  // avg, min, max, sum, last, rate, increase, quantile
  double quantile = 0.5;  // for over_time = "quantile"
  DurationMs window = 300'000;
  std::string across = "sum";  // sum, avg, min, max
  SourcePos selector_pos;
};

// The KPI's value: any PromQL expression yielding one series or a scalar (`expr`), or the
// shorthand forms: one term, or numerator / denominator (times `scale`, e.g. 100 for percent).
struct ValueOptions {
  std::string expr;  // set: the value is this PromQL expression (no term, no ratio)
  SourcePos expr_pos;
  TermOptions term;  // the numerator of a ratio
  bool ratio = false;
  TermOptions denominator;
  double scale = 1;
};

// Static thresholds; which keys apply depends on the direction (the KPI module checks order).
struct BandOptions {
  std::optional<double> target;
  double warn = 0;
  double crit = 0;
  double warn_low = 0;
  double crit_low = 0;
  double warn_high = 0;
  double crit_high = 0;
  SourcePos pos;  // the [kpi.band] table
};

struct BaselineOptions {
  std::string method = "quantile";  // quantile, stddev, ewma, seasonal
  DurationMs window = 30 * 86'400'000LL;
  double quantile_low = 0.05;  // quantile: the range between these
  double quantile_high = 0.95;
  double k = 2;                         // stddev, ewma, seasonal: center ± k·σ
  double alpha = 0.1;                   // ewma: weight of each new value
  DurationMs min_history = 86'400'000;  // trusted once the history spans this long
  DurationMs refresh = 3'600'000;
};

// A label or annotation of an alert rule: a template such as "{{kpi}} is {{value}}".
struct TemplateOptions {
  std::string name;
  std::string text;
  SourcePos pos;  // the value
};

// One alert rule of a KPI ([[kpi.alert]]): what it fires on and how it is announced.
struct AlertRuleOptions {
  std::string condition;        // crit, warn, anomalous, no_data
  std::string name;             // the alertname; default "<kpi id>_<condition>"
  DurationMs for_duration = 0;  // the `for` key
  DurationMs clear_for = 0;
  double hysteresis = 0;  // in the KPI's unit
  std::string severity;   // critical, error, warning, info; default from the condition
  std::string runbook_url;
  std::optional<DurationMs> repeat_interval;  // default alerting.repeat_interval
  std::vector<TemplateOptions> labels;
  std::vector<TemplateOptions> annotations;
  SourcePos pos;  // the [[kpi.alert]] header
};

// [kpi.okr]: when a breach of the KPI opens an OKR draft, and what the draft says.
struct OkrDraftOptions {
  bool enabled = true;
  DurationMs after = 3'600'000;  // a sustained breach: the alert has fired this long (0: at once)
  std::vector<std::string> severities = {"critical"};  // of the alerts that open drafts
  std::string objective = "Restore {{kpi.name}} to its healthy range";
  std::string key_result = "{{verb}} {{kpi.name}} from {{start}} {{unit}} to {{target}} {{unit}}";
  std::string guardrail = "Keep {{kpi.name}} {{side}} {{threshold}} {{unit}}";
  std::string target = "band";                   // band (its target) or baseline (its center)
  std::vector<std::string> related;              // KPI ids: the guardrail key results (1-4)
  std::string period = "quarter";                // month, quarter, half, year
  DurationMs graduate_after = 7 * 86'400'000LL;  // healthy this long with every KR met: achieved
  SourcePos pos;
  SourcePos objective_pos;
  SourcePos key_result_pos;
  SourcePos guardrail_pos;
  SourcePos related_pos;
};

struct KpiOptions {
  std::string id;
  std::string name;  // defaults to the id
  std::string description;
  std::string owner;
  std::string unit;
  std::string review = "monthly";  // daily, weekly, monthly
  std::string direction;           // higher_is_better, lower_is_better, in_range
  ValueOptions value;
  std::optional<BandOptions> band;
  std::optional<BaselineOptions> baseline;
  DurationMs stale_after = 0;  // no data after this long without a sample; 0: the value window
  DurationMs interval = 0;     // re-evaluated at least this often, samples or not; 0: 5s
  std::vector<AlertRuleOptions> alerts;
  std::optional<OkrDraftOptions> okr;
  SourcePos pos;  // the [[kpi]] header
  // Evaluated on this [[datasource]] instead of local samples ("": local).
  std::string datasource;
  SourcePos datasource_pos;
};

}  // namespace kpid::kpi
