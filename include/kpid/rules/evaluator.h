#pragma once
// Evaluates Prometheus rule groups (rule_file.h) as Prometheus does: each group on its own
// schedule, at timestamps aligned to its interval, its rules in order, so a rule sees the
// output an earlier recording rule of the same evaluation wrote.
//   - Recording rules: the result's series get __name__ = record plus the rule's labels and are
//     written into the store at the evaluation timestamp, then handed to the observer (the KPI
//     evaluator), as an ingested batch is. Series a rule stops producing get a stale marker.
//     More series than the group's `limit` fail the rule for that evaluation: nothing written.
//   - Alerting rules: one alert per output series, identity = rule + label set (series labels
//     without __name__, the rule's labels expanded, alertname). inactive -> pending -> firing
//     after `for`; a firing alert whose condition stops stays firing for keep_firing_for, then
//     resolves. ALERTS{alertname, alertstate, ...} = 1 and ALERTS_FOR_STATE{alertname, ...} =
//     active-since (Unix seconds) are written every evaluation. After a restart, the first
//     evaluation of a rule whose `for` is at least for_grace_period restores active-since of
//     its alerts from ALERTS_FOR_STATE in the local store (for_outage_tolerance back), as
//     Prometheus' RestoreForState does. Every evaluation's alerts go to the AlertSink.
// Thread-safe; one background thread evaluates every group.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "kpid/core/deadline.h"
#include "kpid/core/labels.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/core/worker_thread.h"
#include "kpid/metrics/metrics.h"
#include "kpid/query/engine.h"
#include "kpid/rules/rule_file.h"
#include "kpid/store/sample_store.h"

namespace kpid::rules {

// Evaluates a rule's expression at a time: the local query::Engine takes the parsed `expr`, a
// remote datasource the rule's `text` as written in its file.
using QueryFn = std::function<Result<query::QueryResult>(const query::Expr& expr,
                                                         std::string_view text, TimestampMs)>;

enum class AlertState { kInactive, kPending, kFiring };
const char* alert_state_name(AlertState s);  // "inactive", "pending", "firing"

// One alert of an alerting rule at one evaluation.
struct RuleAlert {
  std::map<std::string, std::string> labels;  // with alertname
  std::map<std::string, std::string> annotations;
  AlertState state = AlertState::kPending;
  double value = 0;
  TimestampMs active_at = 0;
  TimestampMs fired_at = 0;     // 0 until firing
  TimestampMs resolved_at = 0;  // set when it became inactive
  TimestampMs keep_firing_since = 0;
};

// What one evaluation of an alerting rule said: every alert it holds, including those that
// resolved at this evaluation (state inactive).
struct AlertRuleEvaluation {
  std::string group_id;
  std::string rule;  // alert name
  size_t rule_index = 0;
  const RuleDef* definition = nullptr;  // valid during the call
  TimestampMs time = 0;
  std::vector<RuleAlert> alerts;
};

// Receives alerting rules' evaluations (kpid's alerter). Called on the evaluator's thread.
class AlertSink {
 public:
  virtual ~AlertSink() = default;
  virtual void rule_evaluated(const AlertRuleEvaluation& evaluation) = 0;
};

// A rule's health, as /api/v1/rules reports it.
struct RuleStatus {
  std::string health = "unknown";  // "ok", "err", "unknown"
  std::string last_error;
  TimestampMs last_evaluation = 0;
  double evaluation_seconds = 0;
  std::vector<RuleAlert> alerts;  // alerting rules: pending and firing ones
};

struct GroupStatus {
  RuleGroup definition;
  DurationMs interval = 0;
  TimestampMs last_evaluation = 0;
  double evaluation_seconds = 0;
  std::vector<RuleStatus> rules;
};

struct EvaluatorOptions {
  DurationMs default_interval = 60'000;  // [rules] evaluation_interval
  DurationMs for_outage_tolerance = 3'600'000;
  DurationMs for_grace_period = 600'000;
  DurationMs resolved_retention = 15 * 60'000;  // resolved alerts kept for the sink and API
  bool background = true;                       // run the thread (off in tests: run_group)
};

class RuleEvaluator {
 public:
  // `query` evaluates rule expressions (restores read ALERTS_FOR_STATE from `store`).
  // `observer`, `sink` and `metrics` may be null. Everything referenced must outlive the
  // evaluator.
  RuleEvaluator(store::SampleStore& store, store::SampleObserver* observer, QueryFn query,
                AlertSink* sink, metrics::Metrics* metrics, const Clock& clock,
                EvaluatorOptions options);
  ~RuleEvaluator();

  // Installs the groups `owns` accepts (all when null; the shard predicate), by id: state of
  // groups and rules that remain (same id, same rule name and index) is kept; call before
  // start() and on reload. Returns the ids of the groups installed.
  std::set<std::string> set_groups(std::vector<RuleGroup> groups,
                                   std::function<bool(const std::string& group_id)> owns = nullptr);
  // Where written samples also go (remote write out, send = "rules": recording-rule results
  // and the ALERTS / ALERTS_FOR_STATE series), after the store and the observer. Call before
  // start(); an error is logged, the samples are stored all the same.
  void set_forward(std::function<Status(std::span<const store::Sample>)> forward) {
    forward_ = std::move(forward);
  }
  void start();
  void stop(Deadline deadline = Deadline::never());

  // Evaluates one group at `time` on the calling thread (tests; the thread does the same).
  Status run_group(const std::string& group_id, TimestampMs time);

  // The installed groups with each rule's last outcome.
  std::vector<GroupStatus> status() const;

 private:
  struct RuleRuntime;
  struct GroupRuntime;
  struct Metrics;
  void run();
  void evaluate_group(GroupRuntime& group, TimestampMs time);
  Status evaluate_recording(const RuleGroup& group, const RuleDef& rule, RuleRuntime& rt,
                            TimestampMs time);
  Status evaluate_alerting(const RuleGroup& group, size_t index, const RuleDef& rule,
                           RuleRuntime& rt, TimestampMs time);
  void restore_for_state(const RuleDef& rule, RuleRuntime& rt, TimestampMs time);
  // Writes samples for `series` (canonical label keys) at `time` and stale markers for the
  // series `previous` had and `series` has not; then tells the observer.
  Status write(const std::map<std::string, double>& series, std::set<std::string>& previous,
               TimestampMs time);
  DurationMs interval_of(const RuleGroup& g) const;

  store::SampleStore& store_;
  store::SampleObserver* observer_;
  QueryFn query_;
  AlertSink* sink_;
  std::function<Status(std::span<const store::Sample>)> forward_;
  const Clock& clock_;
  EvaluatorOptions options_;
  std::unique_ptr<Metrics> metrics_;

  mutable std::mutex mutex_;  // groups_ (the thread holds it while evaluating a group)
  std::map<std::string, std::unique_ptr<GroupRuntime>> groups_;

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  WorkerThread thread_;
};

}  // namespace kpid::rules
