#pragma once
// The OKR planner: closes the loop from a breaching KPI to an objective that fixes it.
//
// Once a second it looks at the firing alerts. An alert of a KPI with [kpi.okr] whose severity
// is listed, firing for `after`, opens a draft (or, when the KPI already has an open OKR, is
// linked to it): objective and key results from the templates, the first key result moving the
// KPI from its value now to the target, one guardrail per related KPI, owner from the KPI, the
// current period. The alert's annotations get the OKR's link and webhooks an okr.draft_opened
// event. Then it scores every open OKR from the KPIs' live values, and graduates an active one
// once every key result is met and the KPI has been healthy for graduate_after; at the end of
// its period an OKR closes with its final score. Everything is in the state store ("okr/<id>").
//
// SLOs with [slo.okr] take the same path from their tracker's figures (slo_okr.cpp): an
// exhausted budget, or one the 6h burn would exhaust before the window ends, held for `after`,
// opens a draft "Restore <SLO> reliability" with key results on the budget remaining and the 1h
// burn rate (or, while the SLO has an open OKR, links to it); the OKR graduates once the budget
// has stayed healthy for graduate_after.

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>

#include "kpid/alert/alerter.h"
#include "kpid/alert/outbox.h"
#include "kpid/alert/template.h"
#include "kpid/config/config.h"
#include "kpid/core/deadline.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/core/worker_thread.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/metrics/metrics.h"
#include "kpid/okr/okr.h"
#include "kpid/slo/definition.h"
#include "kpid/slo/tracker.h"
#include "kpid/store/state_store.h"
#include "kpid/store/state_writer.h"

namespace kpid::okr {

// A KPI's [kpi.okr], compiled.
struct Policy {
  std::string kpi;
  DurationMs after = 3'600'000;
  std::vector<std::string> severities;
  alert::Template objective;
  alert::Template key_result;
  alert::Template guardrail;
  bool target_baseline = false;  // target = "baseline"
  std::vector<std::string> related;
  std::string period = "quarter";
  DurationMs graduate_after = 7 * 86'400'000LL;
};

struct PolicySetup {
  std::vector<Policy> policies;
  std::vector<config::ConfigError> errors;
  bool ok() const { return errors.empty(); }
};
// Compiles the enabled [kpi.okr] tables: templates against the OKR variables, related KPIs
// that exist (and are not the KPI itself).
PolicySetup compile_policies(const config::Config& config);

// An SLO's [slo.okr], compiled.
struct SloPolicy {
  std::string slo;
  bool on_exhausted = true;  // trigger on an exhausted budget
  bool on_projected = true;  // trigger on a budget the 6h burn exhausts before the window ends
  DurationMs after = 3'600'000;
  alert::Template objective;
  alert::Template guardrail;  // as KPI drafts draw guardrails ([kpi.okr]'s default)
  double budget_target = 25;  // % of the budget
  double burn_target = 1;
  std::vector<std::string> related;
  std::string period = "quarter";
  DurationMs graduate_after = 7 * 86'400'000LL;
};

struct SloPolicySetup {
  std::vector<SloPolicy> policies;
  std::vector<config::ConfigError> errors;
  bool ok() const { return errors.empty(); }
};
// Compiles the enabled [slo.okr] tables of the compiled SLOs: the objective template against
// the SLO variables ({{slo}}, {{slo.name}}, {{owner}}, {{objective}}), related KPIs that exist
// in `config`.
SloPolicySetup compile_slo_policies(const config::Config& config,
                                    const std::vector<slo::Definition>& slos);

struct PlannerOptions {
  int64_t max_open_per_owner = 5;
  DurationMs tick = 1'000;
  bool background = true;  // run the planner thread (off in tests that call run_once())
};

// The id of the OKR draft opened for an alert episode (alert::Alert::episode): "e" and 16 hex
// digits of the episode key, the same on every replica. Drafts of alerts without an episode,
// and SLO drafts, keep decimal ids from the data dir's sequence.
std::string okr_id_of_episode(std::string_view episode);

// "" matches anything.
struct OkrFilter {
  std::string state;
  std::string owner;
  std::string kpi;
  std::string slo;
  std::string period;  // an OKR whose period contains this time (RFC 3339 or Unix seconds)
};

class Planner {
 public:
  // Everything referenced must outlive the planner. `metrics` may be null.
  Planner(store::StateStore& state, const kpi::Evaluator& kpis, alert::Alerter& alerts,
          metrics::Metrics* metrics, const Clock& clock, PlannerOptions options);
  ~Planner();

  Status load();
  void set_policies(std::vector<Policy> policies);
  // The SLO side: the tracker whose figures open and score SLO OKRs (null: none; it must
  // outlive the planner's rounds), and the SLOs' policies (at start and on reload).
  void set_slo_tracker(const slo::Tracker* tracker);
  void set_slo_policies(std::vector<SloPolicy> policies);
  void set_external_url(std::string url);
  void start();
  // Stops the thread: it ends after the round it is in; waits for it, and past `deadline`
  // logs that it is late.
  void stop(Deadline deadline = Deadline::never());
  // One round on the calling thread: open and link drafts, score, graduate, close.
  void run_once();

  // Newest first; invalid_argument for a bad period time.
  Result<std::vector<Okr>> list(const OkrFilter& filter) const;
  Result<Okr> get(std::string_view id) const;
  std::string url_of(std::string_view id) const;

  // Lifecycle, each recorded with its author. not_found, or invalid_argument when the state
  // does not allow it (e.g. accepting a closed OKR). Write, then apply: every change is
  // written first and applied only then; unavailable when the write failed (nothing changed).
  Result<Okr> accept(std::string_view id, const std::string& author);
  Result<Okr> dismiss(std::string_view id, const std::string& author, const std::string& comment);
  // outcome none: achieved when every key result is met, else missed.
  Result<Okr> close(std::string_view id, const std::string& author, Outcome outcome);
  // Edits of an open OKR: {"objective", "owner", "period": {"start", "end"}, "key_results":
  // {"add": [...], "remove": ["kr2"], "change": [{"id": "kr1", "target": 150, ...}]}}.
  Result<Okr> edit(std::string_view id, const std::string& author,
                   const boost::json::object& changes);
  Result<Okr> check_in(std::string_view id, const std::string& author, const std::string& kr,
                       double value, const std::string& note, std::optional<double> confidence);

 private:
  struct Metrics;
  void run();
  void open_or_link(const alert::AlertView& alert, TimestampMs now);
  void score_all(TimestampMs now);
  Okr draft_for(const Policy& policy, const kpi::KpiView& kpi, const alert::Alert& alert,
                TimestampMs now);
  // SLO OKRs (slo_okr.cpp): the trigger of each SLO policy, a draft or a link.
  void consider_slos(TimestampMs now);
  void open_or_link_slo(const SloPolicy& policy, const slo::SloView& view, bool exhausted,
                        TimestampMs now);
  Okr slo_draft_for(const SloPolicy& policy, const slo::SloView& view,
                    const std::vector<alert::Alert>& alerts, bool exhausted, TimestampMs now);
  // A guardrail on a related KPI, as drafts draw them; unset (with a warning) without a band.
  std::optional<KeyResult> guardrail_for(const std::string& related_id, const alert::Template& text,
                                         Okr& okr);
  // An SLO OKR's live figures and health.
  void refresh_slo(Okr& okr, TimestampMs now);
  // The owner's open objectives this period beyond max_open_per_owner: a warning.
  void warn_if_overloaded(Okr& okr) const;
  Status persist(const Okr& okr);
  // Write, then apply: records `next`, then makes it `current` (and publishes its gauges).
  // unavailable when the write failed, `current` unchanged.
  Result<Okr> install(Okr& current, Okr next);
  void refresh(Okr& okr, TimestampMs now);  // live values, health, metrics
  void publish(const Okr& okr);
  Okr* find(std::string_view id);

  store::StateStore& state_;
  store::StateWriter writer_;  // every change: written before it is applied
  const kpi::Evaluator& kpis_;
  alert::Alerter& alerts_;
  const Clock& clock_;
  PlannerOptions options_;
  std::unique_ptr<Metrics> metrics_;

  mutable std::mutex mutex_;
  std::map<std::string, Policy> policies_;  // by KPI id
  const slo::Tracker* slos_ = nullptr;
  std::map<std::string, SloPolicy> slo_policies_;  // by SLO id
  // Per SLO: since when its trigger holds (0: not now), and whether this episode has opened or
  // linked an OKR already. In memory: after a restart an episode still running counts as
  // handled when the SLO has an open OKR.
  struct SloTrigger {
    TimestampMs since = 0;
    bool handled = false;
  };
  std::map<std::string, SloTrigger> slo_triggers_;
  std::map<uint64_t, Okr> okrs_;  // by sequence number: creation order, the store key
  uint64_t next_id_ = 1;          // the next sequence number
  // The sequence number of the OKR with `id` (next_id_ for one not installed yet).
  uint64_t seq_of(std::string_view id) const;
  std::string external_url_;

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  WorkerThread thread_;
};

}  // namespace kpid::okr
