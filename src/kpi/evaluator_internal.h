#pragma once
// The evaluator's per-KPI slot and its Prometheus families: shared by the evaluator's source
// files (lifecycle and rounds, reads, metrics). Internal to the kpi module.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "kpid/kpi/evaluator.h"

namespace kpid::kpi {

struct Evaluator::Slot {
  std::shared_ptr<const Definition> definition;
  query::ExprPtr numerator;
  query::ExprPtr denominator;
  std::atomic<bool> dirty{true};
  std::atomic<TimestampMs> last_sample{0};
  // Evaluator-thread state (under round_mutex_).
  bool last_sample_known = false;
  bool has_record = false;       // a status change is already recorded for this id
  TimestampMs first_sample = 0;  // recorded time of the first sample ever seen (0: none yet)
  uint32_t sequence = 0;
  TimestampMs last_evaluation = std::numeric_limits<TimestampMs>::min();
  // On a data source: the aligned time it was last evaluated at (evaluate_remote).
  TimestampMs remote_at = std::numeric_limits<TimestampMs>::min();
  // Its kpid_kpi_value series, once its history from the source is in the store (values are
  // appended only then, so they come after the history read).
  std::atomic<bool> history_ready{false};
  std::atomic<store::SeriesId> history_series{0};
  TimestampMs next_refresh = 0;
  bool breach_checked = false;
  bool stale_status_possible = false;  // its status is not no_data yet
  std::optional<Baseline> recorded_baseline;
  // What readers see, under `mutex`.
  mutable std::mutex mutex;
  KpiView view;
  // Its gauges (owned by the families).
  prometheus::Gauge* value_gauge = nullptr;
  prometheus::Gauge* status_gauges[6] = {};
  prometheus::Gauge* baseline_gauges[3] = {};
  std::vector<prometheus::Gauge*> threshold_gauges;
};

struct Evaluator::Metrics {
  explicit Metrics(prometheus::Registry& r);

  prometheus::Family<prometheus::Gauge>& value;
  prometheus::Family<prometheus::Gauge>& baseline;
  prometheus::Family<prometheus::Gauge>& threshold;
  prometheus::Family<prometheus::Gauge>& status;
  prometheus::Family<prometheus::Counter>& evaluations;
  prometheus::Counter* by_sample;
  prometheus::Counter* by_timer;
  prometheus::Counter* by_baseline;

  // Registers the slot's gauges (value, status, thresholds).
  void add(Slot& s);
  // Sets (and first registers) the slot's baseline gauges.
  void set_baseline(Slot& s, const Baseline& b);
  // Removes every gauge of the slot.
  void remove(Slot& s);
};

}  // namespace kpid::kpi
