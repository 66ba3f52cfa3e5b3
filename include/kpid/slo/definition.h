#pragma once
// An SLO as the tracker uses it: the config's [[slo]] table (or OpenSLO document) checked
// (objective range, expressions parsed as counters, the time-slice KPI known) and its burn-rate
// alerts compiled into alert rules, defaults filled in.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kpid/alert/rules.h"
#include "kpid/config/config.h"
#include "kpid/core/time.h"
#include "kpid/kpi/band.h"
#include "kpid/kpi/definition.h"
#include "kpid/slo/options.h"

namespace kpid::slo {

enum class SliKind { kEvents, kTimeSlices };
std::string_view sli_kind_name(SliKind k);  // "events", "time_slices"

// The burn-rate windows every SLO reports, shortest first.
inline constexpr DurationMs kBurnWindows[] = {300'000,    1'800'000,  3'600'000,  7'200'000,
                                              21'600'000, 86'400'000, 259'200'000};

// One multi-window burn-rate alert, compiled.
struct BurnAlert {
  std::string name;  // the alertname
  std::string severity;
  DurationMs long_window = 0;
  DurationMs short_window = 0;
  double factor = 0;
  DurationMs for_duration = 0;
  DurationMs clear_for = 0;
  double hysteresis = 0;
  std::vector<std::string> receivers;
};

// The three alerts of the SRE workbook for an SLO with id `id`: page when the 1h and 5m burn
// rates exceed 14.4 or the 6h and 30m exceed 6 (critical), ticket when the 3d and 6h exceed 1
// (warning).
std::vector<BurnAlert> default_alerts(std::string_view id);

// "<id>_burn_<long>_<short>", e.g. "checkout_availability_burn_1h_5m".
std::string default_alert_name(std::string_view id, DurationMs long_window,
                               DurationMs short_window);

// The selector whose series an events expression counts: the expression itself when it is a
// selector without offset or @, or the one `sum [by|without (...)] (selector)` sums (summing
// counters before taking their increase would see one series' reset as a drop of the sum);
// "" for any other expression.
std::string counted_selector(std::string_view expr);

struct Definition {
  std::string id;
  std::string name;
  std::string description;
  std::string owner;
  double objective = 0;     // percent, (0, 100)
  std::string window_text;  // as written: "28d", "month", "quarter"
  DurationMs window = 0;    // a rolling window's length; 0 for a calendar window
  std::string calendar;     // "month" or "quarter"; "" for a rolling window
  DurationMs interval = 30'000;
  SliKind kind = SliKind::kEvents;
  // Events: PromQL expressions of counters; `good` or `bad` is set, `total` always.
  std::string good;
  std::string bad;
  std::string total;
  // Time slices: a KPI's status, or an expression against a threshold.
  std::string kpi;
  std::vector<kpi::Health> good_statuses;
  std::string slice_expr;
  std::string slice_op;  // lt, lte, gt, gte
  double slice_threshold = 0;
  std::string no_data = "skip";  // skip, good, bad
  std::vector<BurnAlert> alerts;
  std::optional<SloOkrOptions> okr;
  std::string origin = "toml";
  SourcePos pos;
  std::string datasource;  // the [[datasource]] its expressions are queried on; "" local

  // The allowed share of bad events (or bad time): 1 - objective / 100.
  double budget() const { return 1 - objective / 100; }
  // The window holding `now`: (now - window, now] rolling, or the calendar period's
  // [start, end) for month and quarter (UTC).
  struct Span {
    TimestampMs start = 0;
    TimestampMs end = 0;
  };
  Span window_at(TimestampMs now) const;
  // The longest span the tracker must remember: the window (a calendar window: its longest,
  // 92 days) and the longest burn-rate window of its alerts and reports.
  DurationMs longest_window() const;
};

struct CompileResult {
  std::vector<Definition> slos;
  std::vector<alert::Rule> rules;  // the burn-rate alert rules, in SLO order
  std::vector<config::ConfigError> errors;
  bool ok() const { return errors.empty(); }
};

// Checks and compiles every SLO of `config` ([[slo]] tables and imported OpenSLO documents):
// ids unique (also against KPI ids is not required: they live apart), expressions parse as
// instant vectors, a time-slice KPI exists in `kpis`, alert receivers exist, templates parse.
// SLOs with errors are left out.
CompileResult compile(const config::Config& config, const std::vector<kpi::Definition>& kpis);

}  // namespace kpid::slo
