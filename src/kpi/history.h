#pragma once
// Computing a KPI's value from its terms, over time, and what its history says (baseline,
// threshold suggestion, breach share). Internal to the kpi module: the evaluator's building
// blocks (evaluate_value and value_history in kpid/kpi/evaluator.h are the public ones).

#include <limits>
#include <stop_token>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/kpi/definition.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/query/engine.h"

namespace kpid::kpi::detail {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// What a KPI without a [kpi.baseline] uses for its history (threshold suggestions only).
inline BaselineSpec history_spec(const Definition& d) {
  return d.baseline ? *d.baseline : BaselineSpec{};
}

Result<query::ExprPtr> term_expr(const Term& term, DurationMs window);
// The value's expression ([kpi.value] expr) or its numerator term's.
Result<query::ExprPtr> value_expr(const Definition& d);

// The KPI's value at `time` from its compiled terms (`den` null unless a ratio): NaN when
// undefined.
Result<double> value_of(const query::Engine& engine, const Definition& d, const query::Expr& num,
                        const query::Expr* den, TimestampMs time);

// The KPI's value at first, first + step, ... <= last, each term's window replaced by the given
// one; steps where it is undefined (no samples, zero denominator) are left out.
Result<std::vector<store::Point>> value_points(const query::Engine& engine, const Definition& d,
                                               DurationMs num_window, DurationMs den_window,
                                               TimestampMs first, TimestampMs last, DurationMs step,
                                               const std::stop_token& stop = {});

// When a KPI's history is next due for recomputation after one at `now`.
TimestampMs next_refresh_after(const Definition& d, TimestampMs now);

// A KPI's value history over its baseline (or default) window, and what follows from it.
// Abandoned (update.cancelled) once `stop` is requested.
HistoryUpdate compute_history(const query::Engine& engine, const Definition& d, TimestampMs now,
                              const std::stop_token& stop = {});

}  // namespace kpid::kpi::detail
