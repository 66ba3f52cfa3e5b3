#pragma once
// The alerting engine: turns KPI evaluations into alerts and notifications.
//
// The evaluator hands every evaluation to evaluated() (a queue hand-off); the alerter thread
// steps each of the KPI's rules through pending -> firing -> resolved (rule.h), and once a
// second (`tick`) steps every open alert again with the KPI's last evaluation, so `for` and
// clear_for end on time between evaluations. On top: acknowledgements (stop repeats, tell
// PagerDuty and webhooks), silences (no notification while one matches; a firing alert whose
// silence ends is announced then), repeat_interval re-notification, Alertmanager leases.
//
// Every alert, timeline event and silence is in the state store ("alert/", "alertev/",
// "silence/"), written before anything is sent, so a restart neither loses a firing alert nor
// announces it again. Write, then apply: every change (transition, ack, silence, annotation) is
// made on a copy, written, and installed in memory only once the write succeeded; a failed
// write changes nothing and returns unavailable (the API answers 503), and a transition the
// evaluations drive is tried again at the next evaluation or tick.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kpid/alert/alert.h"
#include "kpid/alert/outbox.h"
#include "kpid/alert/rules.h"
#include "kpid/core/deadline.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/core/worker_thread.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/metrics/metrics.h"
#include "kpid/store/state_store.h"
#include "kpid/store/state_writer.h"

namespace kpid::alert {

struct AlerterOptions {
  std::string external_url;  // for links: <external_url>/api/v1/alerts/<id>; see set_external_url
  DurationMs tick = 1'000;
  DurationMs resolved_retention = 7 * 86'400'000LL;  // resolved alerts, expired silences
  bool background = true;  // run the alerter thread (off in tests that call run_once())
};

// "" matches anything.
struct AlertFilter {
  std::string state;  // pending, firing, resolved
  std::string kpi;
  std::string slo;
  std::string owner;
  std::string severity;
  std::optional<bool> acknowledged;  // unset: either
  std::optional<bool> silenced;      // by an active silence now
  std::string rule_group;            // Prometheus rule group id
};

struct AlertView {
  Alert alert;
  std::vector<std::string> silenced_by;  // ids of the active silences that match it
  std::string url;
};

struct AlertDetail {
  AlertView view;
  std::vector<AlertEvent> timeline;  // oldest first
};

// What one evaluation of an SLO says, for its burn-rate rules (the SLO module fills it in).
struct SloObservation {
  std::string slo;  // its id
  std::string name;
  std::string description;
  std::string owner;
  double objective = 0;                       // percent
  double sli = 0;                             // NaN without events
  double budget_remaining = 0;                // fraction
  std::map<DurationMs, double> burn_rates;    // by window; NaN without events in it
  TimestampMs evaluated_at = 0;               // the (interval-aligned) evaluation time; 0: now
  DurationMs interval = 0;                    // the SLO's evaluation interval
  double burn_rate(DurationMs window) const;  // NaN when not given
};

// What one evaluation of a Prometheus alerting rule says (the rules module fills it in): the
// rule's state machine (for, keep_firing_for) runs there; the alerter turns its alerts into
// kpid alerts: pending ones recorded, firing ones announced, inactive or vanished ones resolved
// (pending ones cancelled).
struct RuleAlertObservation {
  std::string group;  // the rule group's id
  std::string rule;   // alertname
  struct Item {
    std::map<std::string, std::string> labels;  // with alertname
    std::map<std::string, std::string> annotations;
    std::string state;  // "pending", "firing", "inactive"
    double value = 0;
    TimestampMs active_at = 0;
  };
  std::vector<Item> alerts;
};

class Alerter final : public kpi::EvaluationListener {
 public:
  // Everything referenced must outlive the alerter. `metrics` may be null.
  Alerter(store::StateStore& state, Outbox& outbox, metrics::Metrics* metrics, const Clock& clock,
          AlerterOptions options);
  ~Alerter();

  // kpid's address for links (AlerterOptions::external_url), once the HTTP port is known.
  void set_external_url(std::string url);

  // Reads alerts and silences from the state store; call before start() and set_rules().
  Status load();
  // Installs the rules (at start and on reload). Open alerts of rules that are gone resolve.
  void set_rules(std::vector<Rule> rules);
  void start();
  // Stops the thread: it ends after the step it is in (one alert's write, one KPI's
  // evaluation); waits for it, and past `deadline` logs that it is late.
  void stop(Deadline deadline = Deadline::never());

  // A KPI evaluation. An `unknown` one (its data source failed) holds every alert of the KPI as
  // it is: no pending, firing, resolve or repeat until a known status comes.
  void evaluated(const kpi::KpiView& kpi) override;
  // A data source's round, for its datasource_down rule (a queue hand-off; any thread).
  void source_evaluated(const kpi::SourceObservation& source) override;
  // An SLO's evaluation, for its burn-rate rules (a queue hand-off; any thread).
  void slo_evaluated(SloObservation slo);
  // The Prometheus rule groups whose alerts stay open (others' resolve, as a removed rule's);
  // call with set_rules (at start and on reload).
  void set_rule_groups(std::set<std::string> ids);
  // A Prometheus alerting rule's evaluation (a queue hand-off; any thread).
  void rule_alerts_evaluated(RuleAlertObservation observation);
  // Processes queued evaluations and one tick on the calling thread (tests).
  void run_once();

  // Newest first.
  std::vector<AlertView> list(const AlertFilter& filter) const;
  // `id`: the alert's id or its episode key (what links use).
  Result<AlertDetail> get(std::string_view id) const;
  // not_found; invalid_argument when it is resolved or already acknowledged. By id or episode.
  Result<AlertView> acknowledge(std::string_view id, std::string author, std::string comment);

  std::vector<Silence> silences() const;  // newest first
  // Sets the id and created_at; starts_at 0 means now. invalid_argument when it ends before it
  // starts or has already ended.
  Result<Silence> add_silence(Silence silence);
  // Ends it now (it stays listed as expired); not_found when unknown.
  Result<Silence> expire_silence(std::string_view id);

  // Sets an annotation of an open alert (e.g. the link of the OKR it led to), recorded in its
  // timeline; Alertmanager gets it with the next lease renewal. not_found when unknown.
  Status annotate(std::string_view id, const std::string& name, const std::string& value);
  // Queues an event about the alert for its receivers (okr.draft_opened with the OKR), in one
  // write with `with` (the OKR's records), which is written even for an unknown alert.
  Status notify_about(std::string_view id, std::string_view event, const boost::json::object& okr,
                      const Outbox::Records& with = {});

  // Appends a line to an alert's timeline (any thread).
  Status record_event(const std::string& alert_id, std::string kind, std::string detail);

 private:
  struct Metrics;
  void run();
  bool stopping();
  // What a rule's subject (a KPI or an SLO) says at one evaluation.
  struct Subject {
    std::string name;
    std::string owner;
    std::string unit;
    double value = 0;  // NaN: none
    std::optional<double> threshold;
    bool breach = false;
    bool recovered = false;
    std::string describe;  // for the timeline: "crit, value 3", "burn rate 15 over 1h, ..."
    std::function<std::string(std::string_view)> variable;  // template variables
    // What an episode starting now starts at (episode.h): the data's time, on this grid.
    TimestampMs data_time = 0;
    DurationMs grid = 0;
  };
  // Names a new alert's episode (after its labels are rendered) from the subject's data time.
  void name_episode(Alert& alert, const std::string& rule_key, const Subject& subject) const;
  void process(const kpi::KpiView& view, TimestampMs now);
  void process(const SloObservation& slo, TimestampMs now);
  void process(const RuleAlertObservation& rule, TimestampMs now);
  void process(const kpi::SourceObservation& source, TimestampMs now);
  void step_source(const Rule& rule, const kpi::SourceObservation& source, TimestampMs now);
  void tick(TimestampMs now);
  void step_rule(const Rule& rule, const kpi::KpiView& view, TimestampMs now);
  void step_burn(const Rule& rule, const SloObservation& slo, TimestampMs now);
  // The pending -> firing -> resolved step of one rule, its writes and notifications.
  void step_subject(const Rule& rule, const Subject& subject, TimestampMs now);
  // Queues `event` and records `alert` (a copy the caller installs once this returns ok) with
  // `events` (the change the event announces), its "queued" line and `extra` in one write: a
  // crash cannot keep the change and lose its notification. Sets the copy's announcement
  // fields (announced, notification, last_notified) for firing and repeat events.
  Status notify(Alert& alert, std::string_view event, TimestampMs now,
                std::vector<AlertEvent> events = {}, const Outbox::Records& extra = {});
  // Records the alert with `events` and `extra` in one write.
  Status persist(const Alert& alert, std::vector<AlertEvent> events,
                 const Outbox::Records& extra = {});
  Outbox::Records records(const Alert& alert, const std::vector<AlertEvent>& events);
  // Deletes the alert and its timeline from the store, then from memory.
  Status erase_alert(uint64_t id);
  // Resolves (or cancels) open alerts whose rule is gone.
  void close_orphans(TimestampMs now);
  // The outbox's word on a notification: its timeline line, and for a firing or repeat event
  // the alert's notified/notification fields.
  void delivery_report(const Notification& n, std::string_view outcome, const std::string& detail);
  std::vector<std::string> silenced_by(const Alert& alert, TimestampMs now) const;
  void render(Alert& alert, const Rule& rule, const Subject& subject) const;
  AlertView view_of(const Alert& alert, TimestampMs now) const;
  boost::json::object snapshot(const Alert& alert, TimestampMs now) const;
  std::string url_of(const Alert& alert) const;
  // The key in alerts_ of the alert with `id_text`: its decimal id or its episode key.
  std::optional<uint64_t> find_alert(std::string_view id_text) const;
  void update_gauges();

  store::StateStore& state_;
  store::StateWriter writer_;  // every change: written before it is applied
  Outbox& outbox_;
  const Clock& clock_;
  AlerterOptions options_;
  std::unique_ptr<Metrics> metrics_;

  mutable std::mutex mutex_;                        // everything below except the queue
  std::map<std::string, std::vector<Rule>> rules_;  // by KPI id
  std::map<uint64_t, Alert> alerts_;                // by id
  std::map<std::string, uint64_t> open_;            // "<kpi>/<condition>" -> pending/firing alert
  std::map<std::string, kpi::KpiView> last_view_;   // by KPI id
  std::map<std::string, SloObservation> last_slo_;  // by SLO id
  std::map<std::string, kpi::SourceObservation> last_source_;  // by data source name
  std::map<uint64_t, Silence> silences_;
  uint64_t next_alert_ = 1;
  uint64_t next_silence_ = 1;
  std::atomic<uint32_t> event_seq_{0};

  std::shared_mutex watched_mutex_;
  std::set<std::string, std::less<>> watched_;  // KPI ids with rules

  std::mutex queue_mutex_;
  std::condition_variable wake_;
  std::vector<kpi::KpiView> queue_;
  std::vector<SloObservation> slo_queue_;
  std::vector<RuleAlertObservation> rule_queue_;
  // Under mutex_; unset until set_rule_groups (at start, set_rules comes first: the rule
  // groups' alerts loaded from the store must not resolve before their groups are known).
  std::optional<std::set<std::string>> rule_groups_;
  std::vector<kpi::SourceObservation> source_queue_;
  bool stopping_ = false;
  WorkerThread thread_;
};

}  // namespace kpid::alert
