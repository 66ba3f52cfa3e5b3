#pragma once
// The SLO tracker: keeps every SLO's SLI, error budget and burn rates current.
//
// Every `interval` (per SLO, aligned to it) it evaluates the SLO's counter expressions once
// through the query engine at that time and adds each series' increase since the previous
// evaluation (counter resets handled as Prometheus' increase does) to the SLO's ledger (ledger.h):
// per-evaluation entries for the last 6 hours, 5-minute buckets for 3 days and hourly buckets
// for twice the window. Windows are sums over the ledger, so a 30-day SLO costs no more per
// evaluation than a 5-minute KPI. A time-slice SLO adds the time since the previous evaluation
// to good or bad by its KPI's status. At start and on reload the 5-minute and hourly buckets are
// filled from the store: increase() per bucket over the rollups, or the
// KPI's recorded status changes.
//
// An SLO with `datasource` sends those queries (the live counter reads and the history read once
// at its first evaluation) to that source's query API instead (RemoteQueries). An evaluation whose
// query fails changes nothing: no ledger entry, the counters keep their last values (so the next
// successful one adds the increase across the gap), the listener is not told (burn-rate alerts
// hold) and the view keeps its figures with the error.
//
// Each evaluation's figures go to the listener (the alerter's burn-rate rules) and to the
// kpid_slo_* gauges.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "kpid/alert/alerter.h"
#include "kpid/core/deadline.h"
#include "kpid/core/time.h"
#include "kpid/core/worker_thread.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/metrics/metrics.h"
#include "kpid/query/engine.h"
#include "kpid/slo/definition.h"
#include "kpid/slo/ledger.h"
#include "kpid/store/sample_store.h"

namespace kpid::slo {

struct TrackerOptions {
  bool background = true;  // run the tracker thread (off in tests that call run_once())
};

// A remote query API SLOs with `datasource` are evaluated on: a datasource::Source in kpid, a
// fake in tests. Both answer as the local engine does.
struct RemoteQueries {
  std::function<Result<query::QueryResult>(std::string_view expr, TimestampMs time)> instant;
  std::function<Result<query::QueryResult>(std::string_view expr, TimestampMs start,
                                           TimestampMs end, DurationMs step)>
      range;
};

// What the tracker knows of one SLO.
struct SloView {
  std::shared_ptr<const Definition> definition;
  TimestampMs evaluated_at = 0;  // 0 before the first evaluation
  TimestampMs window_start = 0;
  TimestampMs window_end = 0;   // rolling: evaluated_at
  Counts window;                // over the window
  double sli = 0;               // good / total over the window; NaN without events
  double budget_total = 0;      // bad events (seconds) the window allows: budget() * total
  double budget_consumed = 0;   // bad events (seconds) in the window
  double budget_remaining = 0;  // fraction of the budget left, 1 - consumed / total; may be < 0
  // Burn rate (error ratio / budget) over each of kBurnWindows, and each alert's windows; NaN
  // without events in the window.
  std::map<DurationMs, double> burn_rates;
  // Time until the budget is spent at the 1h and 6h burn rates; unset when not burning.
  std::optional<DurationMs> exhaustion_1h;
  std::optional<DurationMs> exhaustion_6h;
  std::string error;                          // the last evaluation's query error, "" when none
  double burn_rate(DurationMs window) const;  // NaN when unknown
  bool exhausted() const { return evaluated_at != 0 && window.total > 0 && budget_remaining <= 0; }
};

// One point of an SLO's history: its figures as they were at `time` (hourly).
struct HistoryPoint {
  TimestampMs time = 0;
  double sli = 0;               // NaN without events
  double budget_remaining = 0;  // NaN without events
  double burn_rate_1h = 0;
  double burn_rate_6h = 0;
};

// Told of every evaluation of every SLO, on the tracker thread: implementations must only hand
// the view off.
class SloListener {
 public:
  virtual ~SloListener() = default;
  virtual void evaluated(const SloView& slo) = 0;
};

// Hands every SLO evaluation to the alerter's burn-rate rules.
class AlerterBridge final : public SloListener {
 public:
  explicit AlerterBridge(alert::Alerter& alerter) : alerter_(alerter) {}
  void evaluated(const SloView& slo) override;

 private:
  alert::Alerter& alerter_;
};

class Tracker {
 public:
  // Everything referenced must outlive the tracker. `kpis` serves time-slice SLIs; `metrics`
  // may be null.
  Tracker(const query::Engine& engine, const kpi::Evaluator& kpis, metrics::Metrics* metrics,
          const Clock& clock, TrackerOptions options = {});
  ~Tracker();

  // Installs an SLO set (at start and on reload). Every ledger is filled afresh from the store
  // at the next evaluation, so history written since (a backfill) counts after a reload.
  void set_slos(std::vector<Definition> slos);
  void set_listener(SloListener* listener) { listener_.store(listener); }
  // The remote query APIs by [[datasource]] name. An SLO naming one not given here fails every
  // evaluation with an error saying so.
  void set_sources(std::map<std::string, RemoteQueries, std::less<>> sources);
  void start();
  void stop(Deadline deadline = Deadline::never());
  // Evaluates the SLOs that are due at the clock's time (filling ledgers first), on the calling
  // thread.
  void run_once();

  std::vector<SloView> list() const;  // in configuration order
  std::optional<SloView> get(std::string_view id) const;
  // Hourly points over the SLO's window up to now; not_found for an unknown id.
  Result<std::vector<HistoryPoint>> history(std::string_view id) const;

  struct Slot;

 private:
  void run();
  void evaluate(Slot& slot, TimestampMs now);
  void backfill(Slot& slot, TimestampMs now);
  void publish(const SloView& view);
  // The SLO's query at t (or over [start, end]): on its data source, else the local engine.
  Result<query::QueryResult> instant(const Definition& d, const std::string& q,
                                     TimestampMs t) const;
  Result<query::QueryResult> range(const Definition& d, const std::string& q, TimestampMs start,
                                   TimestampMs end, DurationMs step) const;
  std::vector<std::shared_ptr<Slot>> slots() const;

  const query::Engine& engine_;
  const kpi::Evaluator& kpis_;
  const Clock& clock_;
  TrackerOptions options_;
  struct Metrics;
  std::unique_ptr<Metrics> metrics_;
  std::atomic<SloListener*> listener_{nullptr};
  std::map<std::string, RemoteQueries, std::less<>> sources_;  // under round_mutex_

  mutable std::mutex mutex_;  // slots_ and each slot's view
  std::vector<std::shared_ptr<Slot>> slots_;
  std::mutex round_mutex_;  // one round at a time
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::stop_source stop_source_;
  WorkerThread thread_;
};

}  // namespace kpid::slo
