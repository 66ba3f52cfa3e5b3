#pragma once
// The KPI evaluator: keeps every KPI's value, status, baseline and threshold suggestion
// current.
//
// Event-driven: the ingest pipeline hands each stored batch to observe(), which marks the KPIs
// whose selectors match a sample's series (a hash lookup per sample) and wakes the evaluator
// thread; that thread re-evaluates them at once through the query engine, at the current time
// (or at the newest sample's time when it is ahead of the clock, at most 10 s ahead). A timer
// re-evaluates every KPI at least every `interval` (its own, else `reevaluate_interval`), so
// windows move forward and no_data is seen when samples stop; those evaluations come after the
// sample-triggered ones, a slice at a time. Baselines and suggestions are recomputed from the KPI's
// value history (5m or 1h rollups) on a second thread, every baseline refresh and whenever the
// definition changes.
//
// Status: crit or warn from the band; else anomalous when outside a trusted baseline on the bad
// side; else ok; no_data when the value cannot be computed (no samples in the window, a zero
// denominator) or the newest sample is older than stale_after. Every status change is written
// to the state store ("kpi/<id>/status/..."), and so are baseline snapshots and band changes,
// for charts; they survive restarts and reloads. Write, then apply: a status or baseline shows
// only once its record is written; when the write fails the previous one stands (counted in
// kpid_state_write_failures_total{module="kpi"}) and the next evaluation tries again.
//
// KPIs with a `datasource` are not fed by samples: a third thread evaluates them on their
// source at aligned times (evaluate_remote), batched per source; a failed source makes them
// `unknown`, and each round is reported to the listener's source_evaluated().

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kpid/core/deadline.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/core/worker_thread.h"
#include "kpid/datasource/source.h"
#include "kpid/kpi/band.h"
#include "kpid/kpi/definition.h"
#include "kpid/metrics/metrics.h"
#include "kpid/query/engine.h"
#include "kpid/store/sample_store.h"
#include "kpid/store/state_store.h"
#include "kpid/store/state_writer.h"

namespace kpid::kpi {

struct EvaluatorOptions {
  // Every KPI is re-evaluated at least this often, samples or not.
  DurationMs reevaluate_interval = 5'000;
  // Run the evaluator thread. Off in tests that call run_once() with a fake clock.
  bool background = true;
};

struct StatusChange {
  TimestampMs time = 0;
  Health status = Health::kNoData;
  double value = 0;  // NaN when there was none
};

struct BaselineState {
  Baseline range;
  bool trusted = false;  // the history spans at least min_history
  TimestampMs computed_at = 0;
};

// What the evaluator knows of one KPI.
struct KpiView {
  std::shared_ptr<const Definition> definition;
  double value = 0;              // NaN when there is none
  TimestampMs evaluated_at = 0;  // 0 before the first evaluation
  Health status = Health::kNoData;
  TimestampMs since = 0;                  // when the status last changed (kept across restarts)
  std::optional<BaselineState> baseline;  // only for KPIs with a [kpi.baseline]
  std::optional<Band> suggested;          // once the history spans min_history
  TimestampMs history_start = 0;          // first value of the history (0: none)
  TimestampMs last_sample = 0;            // newest sample seen for its series (0: none)
  // The first sample it ever had (recorded, so kept across restarts); 0 while it never had
  // data: such a KPI shows no_data but raises no no_data alert.
  TimestampMs first_sample = 0;
};

// A KPI over time, for charts: points at each step of [start, end].
struct KpiSeries {
  std::vector<store::Point> value;
  std::vector<store::Point> baseline_lower, baseline_center, baseline_upper;
  // "target", "warn", "crit" (in_range: "target", "warn_low", "crit_low", "warn_high",
  // "crit_high"), as configured at each step.
  std::vector<std::pair<std::string, std::vector<store::Point>>> thresholds;
};

// The KPI's value evaluated every step over [start, end] from 5m rollups (1h when the range
// holds more than 10,000 5-minute steps, or for quantiles), each term's window rounded up to
// whole steps. Points where the value is undefined (no samples, zero denominator) are left out.
// Once `stop` is requested it gives up (unavailable, "cancelled") within one query piece.
Result<std::vector<store::Point>> value_history(const query::Engine& engine, const Definition& kpi,
                                                TimestampMs start, TimestampMs end,
                                                const std::stop_token& stop = {});

// The value at `time` as the evaluator computes it: NaN when undefined.
Result<double> evaluate_value(const query::Engine& engine, const Definition& kpi, TimestampMs time);

// What recomputing a KPI's history found (baseline, suggestion, breach share); computed
// without the evaluator's locks, then applied.
struct HistoryUpdate {
  TimestampMs at = 0;
  std::string error;       // the history could not be read
  bool cancelled = false;  // given up as the evaluator stops: nothing of it is applied
  size_t points = 0;
  TimestampMs history_start = 0;
  std::optional<Band> suggested;
  std::optional<BaselineState> baseline;
  std::optional<double> breach_fraction;  // with a band and enough history
};

// How a [[datasource]] fared in one round of its KPIs' evaluations.
struct SourceObservation {
  std::string name;
  bool up = true;                 // every request of the round succeeded
  TimestampMs failing_since = 0;  // first failure without a success since (0 while up)
  std::string error;              // the failure, when down
};

// Told of every evaluation of every KPI (sample-triggered or by the timer), on the evaluator
// thread: implementations must only hand the view off (the alerting layer sits here).
class EvaluationListener {
 public:
  virtual ~EvaluationListener() = default;
  virtual void evaluated(const KpiView& kpi) = 0;
  // After each round of a data source's KPIs (on the evaluator's remote thread).
  virtual void source_evaluated(const SourceObservation& /*source*/) {}
};

// The value of a KPI from the answers to its query strings (remote_queries): the numerator's
// (or expression's) answer and, for a ratio, the denominator's. NaN when undefined; an error
// when a term yields several series.
Result<double> value_from_answers(const Definition& kpi, const query::QueryResult& numerator,
                                  const query::QueryResult* denominator);
// The PromQL a KPI on a data source asks it: the value expression (or numerator term) and, for a
// ratio, the denominator term; the same strings the local evaluation parses.
std::vector<std::string> remote_queries(const Definition& kpi);

class Evaluator final : public store::SampleObserver {
 public:
  // Everything referenced must outlive the evaluator. `metrics` may be null.
  Evaluator(const store::SampleStore& samples, store::StateStore& state,
            const query::Engine& engine, metrics::Metrics* metrics, const Clock& clock,
            EvaluatorOptions options = {});
  ~Evaluator();

  // Installs a KPI set (at start and on reload). KPIs whose id and value are unchanged keep
  // their state; removed ones stop being evaluated (their records stay in the state store).
  void set_kpis(std::vector<Definition> kpis);

  // The ingest hook: `samples` were just stored. Thread-safe and cheap; never blocks on an
  // evaluation.
  void observe(std::span<const store::Sample> samples) override;

  // Set before the first evaluation (null: none); must outlive the evaluator's threads.
  void set_listener(EvaluationListener* listener) { listener_.store(listener); }

  // The data sources KPIs name (`datasource`); each must outlive the evaluator. KPIs on a
  // source missing here are unknown.
  void set_sources(std::map<std::string, datasource::Source*, std::less<>> sources);
  // Where KPIs on data sources keep their value history (series kpid_kpi_value{kpi="ID"},
  // appended directly, not through ingest): their baselines and suggestions come from it. The
  // history is read from the source with query_range once (5m steps over the baseline window,
  // in pieces under 11,000 points), recorded in the state store ("kpi/<id>/remote_history":
  // the range read), then every evaluation appends its value; a restart reads only the gap
  // since. Null (the default): no history for them.
  void set_history_store(store::SampleStore* store) { history_store_ = store; }

  // One round of the evaluator threads' work, on the calling thread: evaluates the KPIs that
  // had samples or are due, then recomputes the due histories (baselines, suggestions), then
  // evaluates the due KPIs on data sources.
  void run_once();

  // KPIs on data sources: those due (their interval has moved on to a new aligned time
  // t = floor(now / interval) * interval) are evaluated at t, every due KPI of one source
  // together (Source::instant_many); a failed source makes them unknown. Called by the remote
  // thread every 250 ms.
  void evaluate_remote();

  // Every KPI, in configuration order.
  std::vector<KpiView> list() const;
  std::optional<KpiView> get(std::string_view id) const;
  // Status changes of `id`, oldest first, at most the newest `limit`.
  Result<std::vector<StatusChange>> history(std::string_view id, size_t limit) const;
  // not_found for an unknown id; invalid_argument from the engine's range checks.
  Result<KpiSeries> series(std::string_view id, TimestampMs start, TimestampMs end,
                           DurationMs step) const;

  // Stops the threads (also done by the destructor): evaluation rounds and baseline
  // computations in flight are abandoned at their next check (between KPIs, between query
  // pieces of a history), so nothing half-computed is applied and the last recorded baseline
  // stands. Waits for the threads; past `deadline` it logs what it still waits for.
  void stop(Deadline deadline = Deadline::never());

  struct Slot;

 private:
  struct Round {
    std::chrono::steady_clock::duration sample_work{};  // evaluating KPIs with new samples
    bool more_due = false;                              // timer work left for the next round
  };
  void run();          // the evaluation thread
  void run_refresh();  // the history thread
  // Evaluates KPIs with new samples, then those due by the timer (`sliced`: at most a slice
  // of those per round).
  Round evaluate_round(bool sliced);
  void refresh_due();
  std::vector<std::shared_ptr<Slot>> slots() const;
  void evaluate(Slot& slot, TimestampMs now);
  void apply_history(Slot& slot, const HistoryUpdate& update);
  Status record_band(const Slot& slot, TimestampMs now);
  bool record_first_sample(Slot& slot, TimestampMs time);
  TimestampMs load_first_sample(const std::string& id) const;
  void publish(Slot& slot);
  // Status, records, view and listener for a value computed at `now` (`unknown`: the data
  // source failed). Under round_mutex_.
  void conclude(Slot& slot, TimestampMs now, double value, TimestampMs last_sample, bool unknown);
  void run_remote();  // the remote thread
  // Reads a KPI's history from its source into history_store_ (what it has not read yet).
  Status backfill_remote(Slot& slot, TimestampMs now);
  void match_series(std::span<const store::SeriesId> ids);
  DurationMs interval_of(const Definition& d) const {
    return d.interval.value_or(options_.reevaluate_interval);
  }

  const store::SampleStore& samples_;
  store::StateStore& state_;
  store::StateWriter writer_;  // every record: written before it is applied
  const query::Engine& engine_;
  const Clock& clock_;
  EvaluatorOptions options_;
  struct Metrics;
  std::unique_ptr<Metrics> metrics_;

  // Slots, the series -> slot index map and the candidate index; observe() holds it shared.
  mutable std::shared_mutex index_mutex_;
  std::vector<std::shared_ptr<Slot>> slots_;
  std::unordered_map<store::SeriesId, std::vector<uint32_t>> watching_;
  // For matching a new series against few KPIs: slots by one equality matcher of each term
  // ("name\0value"), and the slots with a term that has none (checked against every series).
  std::unordered_map<std::string, std::vector<uint32_t>> candidates_;
  std::vector<uint32_t> unindexed_;
  uint64_t generation_ = 0;  // bumped by set_kpis

  std::mutex round_mutex_;  // one evaluation round (or KPI set swap) at a time
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::condition_variable refresh_wake_;
  std::condition_variable remote_wake_;
  std::atomic<bool> pending_{false};
  std::atomic<EvaluationListener*> listener_{nullptr};
  bool refresh_pending_ = false;  // under wake_mutex_
  bool stopping_ = false;
  std::stop_source stop_source_;  // requested by stop(): cancels work in flight
  WorkerThread thread_;
  WorkerThread refresh_thread_;
  std::mutex sources_mutex_;
  std::map<std::string, datasource::Source*, std::less<>> sources_;
  store::SampleStore* history_store_ = nullptr;
  WorkerThread remote_thread_;
};

}  // namespace kpid::kpi
