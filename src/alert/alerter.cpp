#include "kpid/alert/alerter.h"

#include "alerter_keys.h"
#include "kpid/alert/episode.h"
#include "kpid/core/json.h"
#include "kpid/core/text.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

namespace kpid::alert {

namespace json = boost::json;

using keys::event_key;
using keys::kAlertPrefix;
using keys::kAlertSeqKey;
using keys::kEventPrefix;
using keys::kSilencePrefix;
using keys::kSilenceSeqKey;

namespace {

// Rules and open alerts are kept by subject: a KPI id, or "slo:<id>" (KPI ids have no ':').
std::string subject_of(const Rule& r) { return r.slo.empty() ? r.kpi : "slo:" + r.slo; }
std::string subject_of(const Alert& a) {
  if (!a.rule_group.empty()) return "rule:" + a.rule_group + "/" + a.name;
  return a.slo.empty() ? a.kpi : "slo:" + a.slo;
}

// A Prometheus rule's alert: one per label set.
std::string rule_alert_key(const std::string& group, const std::map<std::string, std::string>& l) {
  std::string key = "rule:" + group + "/";
  for (const auto& [k, v] : l) key += k + "=" + v + "\x1f";
  return key;
}

// One open alert per rule: "<kpi>/<condition>" (a KPI has one rule per condition), or
// "slo:<id>/<alertname>".
std::string open_key(const Rule& r) {
  return subject_of(r) + "/" + (r.slo.empty() ? std::string(condition_name(r.condition)) : r.name);
}
std::string open_key(const Alert& a) {
  if (!a.rule_group.empty()) return rule_alert_key(a.rule_group, a.labels);
  return subject_of(a) + "/" + (a.slo.empty() ? std::string(condition_name(a.condition)) : a.name);
}

bool rule_of(const Rule& r, const Alert& a) {
  return r.slo.empty() ? r.condition == a.condition : r.name == a.name;
}

std::string window_text(DurationMs d) { return format_duration(d); }

// The episode grid of a KPI without its own interval (episode.h).
constexpr DurationMs kDefaultEpisodeGrid = 60'000;

// The threshold a condition is about, on the side the value is on.
std::optional<double> threshold_of(Condition c, const kpi::KpiView& view) {
  const auto& d = *view.definition;
  const double v = view.value;
  if ((c == Condition::kCrit || c == Condition::kWarn) && d.band) {
    const kpi::Band& b = *d.band;
    const bool crit = c == Condition::kCrit;
    if (d.direction == kpi::Direction::kInRange) {
      const double low = crit ? b.crit_low : b.warn_low;
      const double high = crit ? b.crit_high : b.warn_high;
      return !std::isnan(v) && v < (low + high) / 2 ? low : high;
    }
    return crit ? b.crit : b.warn;
  }
  if (c == Condition::kAnomalous && view.baseline) {
    const kpi::Baseline& b = view.baseline->range;
    switch (d.direction) {
      case kpi::Direction::kLowerIsBetter: return b.upper;
      case kpi::Direction::kHigherIsBetter: return b.lower;
      case kpi::Direction::kInRange: return !std::isnan(v) && v < b.center ? b.lower : b.upper;
    }
  }
  return std::nullopt;
}

}  // namespace

struct Alerter::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : alerts(prometheus::BuildGauge()
                   .Name("kpid_alerts")
                   .Help("Open alerts by state (pending, firing).")
                   .Register(r)),
        pending(&alerts.Add({{"state", "pending"}})),
        firing(&alerts.Add({{"state", "firing"}})),
        notifications(prometheus::BuildCounter()
                          .Name("kpid_alert_notifications_total")
                          .Help("Notifications queued in the outbox, by event (alert.firing, "
                                "alert.repeat, alert.acknowledged, alert.resolved), one per "
                                "receiver.")
                          .Register(r)),
        suppressed(prometheus::BuildCounter()
                       .Name("kpid_alert_notifications_silenced_total")
                       .Help("Notifications not sent because a silence matched the alert.")
                       .Register(r)
                       .Add({})),
        coalesced(prometheus::BuildCounter()
                      .Name("kpid_alert_evaluations_coalesced_total")
                      .Help("KPI evaluations the alerter skipped because its bounded queue was "
                            "full and a newer evaluation of the same KPI was waiting.")
                      .Register(r)
                      .Add({})) {}

  prometheus::Family<prometheus::Gauge>& alerts;
  prometheus::Gauge* pending;
  prometheus::Gauge* firing;
  prometheus::Family<prometheus::Counter>& notifications;
  prometheus::Counter& suppressed;
  prometheus::Counter& coalesced;
};

Alerter::Alerter(store::StateStore& state, Outbox& outbox, metrics::Metrics* metrics,
                 const Clock& clock, AlerterOptions options)
    : state_(state),
      writer_(state, metrics, "alert"),
      outbox_(outbox),
      clock_(clock),
      options_(std::move(options)) {
  if (metrics != nullptr) metrics_ = std::make_unique<Metrics>(metrics->registry());
  set_external_url(options_.external_url);
  outbox_.set_report([this](const Notification& n, std::string_view outcome,
                            const std::string& detail) { delivery_report(n, outcome, detail); });
}

Alerter::~Alerter() { stop(); }

void Alerter::set_external_url(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  outbox_.set_source(url);
  std::lock_guard lock(mutex_);
  options_.external_url = std::move(url);
}

Status Alerter::load() {
  std::lock_guard lock(mutex_);
  if (auto s = store::read_sequence(state_, kAlertSeqKey, next_alert_); !s) return s;
  if (auto s = store::read_sequence(state_, kSilenceSeqKey, next_silence_); !s) return s;
  auto s = state_.scan_state(kAlertPrefix, [&](std::string_view key, std::string_view value) {
    auto record = parse_record(value);
    Result<Alert> a = record ? alert_from_json(*record) : Result<Alert>(record.status());
    auto id = a ? parse_id(a->id) : std::nullopt;
    if (!a || !id) {
      spdlog::error("alerts: skipping unreadable record {}: {}", key,
                    a ? "bad id" : a.status().message());
      return true;
    }
    if (a->state != State::kResolved) open_[open_key(*a)] = *id;
    next_alert_ = std::max(next_alert_, *id + 1);
    alerts_.emplace(*id, std::move(*a));
    return true;
  });
  if (!s) return s;
  s = state_.scan_state(kSilencePrefix, [&](std::string_view key, std::string_view value) {
    auto record = parse_record(value);
    Result<Silence> sl = record ? silence_from_json(*record) : Result<Silence>(record.status());
    auto id = sl ? parse_id(sl->id) : std::nullopt;
    if (!sl || !id) {
      spdlog::error("alerts: skipping unreadable silence {}: {}", key,
                    sl ? "bad id" : sl.status().message());
      return true;
    }
    next_silence_ = std::max(next_silence_, *id + 1);
    silences_.emplace(*id, std::move(*sl));
    return true;
  });
  update_gauges();
  return s;
}

void Alerter::set_rules(std::vector<Rule> rules) {
  std::map<std::string, std::vector<Rule>> by_kpi;
  for (auto& r : rules) by_kpi[subject_of(r)].push_back(std::move(r));
  {
    std::unique_lock lock(watched_mutex_);
    watched_.clear();
    for (const auto& [kpi, list] : by_kpi) watched_.insert(kpi);
  }
  std::lock_guard lock(mutex_);
  rules_ = std::move(by_kpi);
  close_orphans(clock_.now_ms());
  update_gauges();
}

void Alerter::close_orphans(TimestampMs now) {
  // An open alert whose rule is gone can never resolve by itself. Should a write fail, the
  // alert stays open and the next tick tries again.
  std::vector<uint64_t> orphaned;
  for (const auto& [key, id] : open_) {
    const Alert& a = alerts_.at(id);
    if (!a.rule_group.empty()) {
      if (rule_groups_ && !rule_groups_->contains(a.rule_group)) orphaned.push_back(id);
      continue;
    }
    auto it = rules_.find(subject_of(a));
    bool kept = it != rules_.end() && std::any_of(it->second.begin(), it->second.end(),
                                                  [&](const Rule& r) { return rule_of(r, a); });
    if (!kept) orphaned.push_back(id);
  }
  for (uint64_t id : orphaned) {
    Alert next = alerts_.at(id);
    const std::string key = open_key(next);
    if (next.state == State::kPending) {
      if (!erase_alert(id)) continue;
      spdlog::info("alert {} ({}): cancelled, its rule was removed", next.id, next.name);
      open_.erase(key);
      continue;
    }
    next.state = State::kResolved;
    next.resolved_at = now;
    next.recovering_since.reset();
    std::vector<AlertEvent> events{
        {now, "resolved", "its rule was removed from the configuration"}};
    const Status written = next.announced ? notify(next, kResolvedEvent, now, std::move(events))
                                          : persist(next, std::move(events));
    if (!written) continue;
    outbox_.forget(next.id);
    open_.erase(key);
    alerts_[id] = std::move(next);
  }
}

void Alerter::start() {
  if (!options_.background || thread_.started()) return;
  thread_.start([this] { run(); });
}

void Alerter::stop(Deadline deadline) {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (!thread_.wait(deadline)) spdlog::warn("alerting: still running at the stop deadline");
  thread_.join();
}

bool Alerter::stopping() {
  std::lock_guard lock(queue_mutex_);
  return stopping_;
}

void Alerter::evaluated(const kpi::KpiView& kpi) {
  if (!kpi.definition) return;
  size_t limit = 0;
  {
    std::shared_lock lock(watched_mutex_);
    if (!watched_.contains(kpi.definition->id)) return;
    limit = std::max<size_t>(1024, 4 * watched_.size());
  }
  {
    std::lock_guard lock(queue_mutex_);
    queue_.push_back(kpi);
    // Bounded: should the alerter fall behind (a stalled disk), only each KPI's newest
    // evaluation is kept.
    if (queue_.size() > limit) {
      std::set<std::string_view> seen;
      std::vector<kpi::KpiView> newest;
      for (auto it = queue_.rbegin(); it != queue_.rend(); ++it) {
        if (seen.insert(it->definition->id).second) newest.push_back(*it);
      }
      std::reverse(newest.begin(), newest.end());
      if (metrics_)
        metrics_->coalesced.Increment(static_cast<double>(queue_.size() - newest.size()));
      queue_ = std::move(newest);
    }
  }
  wake_.notify_one();
}

void Alerter::slo_evaluated(SloObservation slo) {
  {
    std::shared_lock lock(watched_mutex_);
    if (!watched_.contains("slo:" + slo.slo)) return;
  }
  {
    std::lock_guard lock(queue_mutex_);
    // SLOs are evaluated every few seconds at most: one waiting observation per SLO is enough.
    auto it = std::find_if(slo_queue_.begin(), slo_queue_.end(),
                           [&](const SloObservation& o) { return o.slo == slo.slo; });
    if (it != slo_queue_.end()) {
      *it = std::move(slo);
    } else {
      slo_queue_.push_back(std::move(slo));
    }
  }
  wake_.notify_one();
}

void Alerter::source_evaluated(const kpi::SourceObservation& source) {
  {
    std::shared_lock lock(watched_mutex_);
    if (!watched_.contains(std::string(kDatasourceSubjectPrefix) + source.name)) return;
  }
  {
    std::lock_guard lock(queue_mutex_);
    auto it = std::find_if(source_queue_.begin(), source_queue_.end(),
                           [&](const kpi::SourceObservation& o) { return o.name == source.name; });
    if (it != source_queue_.end()) {
      *it = source;
    } else {
      source_queue_.push_back(source);
    }
  }
  wake_.notify_one();
}

void Alerter::process(const kpi::SourceObservation& source, TimestampMs now) {
  std::lock_guard lock(mutex_);
  auto it = rules_.find(std::string(kDatasourceSubjectPrefix) + source.name);
  if (it == rules_.end()) return;
  last_source_[source.name] = source;
  for (const Rule& rule : it->second) step_source(rule, source, now);
  update_gauges();
}

void Alerter::step_source(const Rule& rule, const kpi::SourceObservation& source, TimestampMs now) {
  Subject s;
  s.name = "data source " + source.name;
  s.value = source.up ? 1 : 0;
  s.breach = !source.up;
  s.recovered = source.up;
  s.describe = source.up ? "up" : "failing: " + source.error;
  s.variable = [&](std::string_view name) -> std::string {
    if (name == "datasource") return source.name;
    if (name == "error") return source.error;
    if (name == "since") {
      std::string text;
      if (source.failing_since != 0) append_rfc3339(text, source.failing_since);
      return text;
    }
    if (name == "severity") return rule.severity;
    return "";
  };
  step_subject(rule, s, now);
}

void Alerter::run() {
  TimestampMs next_tick = 0;
  std::vector<kpi::KpiView> batch;
  std::vector<SloObservation> slo_batch;
  std::vector<RuleAlertObservation> rule_batch;
  std::vector<kpi::SourceObservation> source_batch;
  while (true) {
    {
      std::unique_lock lock(queue_mutex_);
      const TimestampMs now = clock_.now_ms();
      if (queue_.empty() && slo_queue_.empty() && rule_queue_.empty() && source_queue_.empty() &&
          !stopping_ && now < next_tick) {
        wake_.wait_for(lock, std::chrono::milliseconds(next_tick - now));
      }
      if (stopping_) return;
      batch.swap(queue_);
      slo_batch.swap(slo_queue_);
      rule_batch.swap(rule_queue_);
      source_batch.swap(source_queue_);
    }
    const TimestampMs now = clock_.now_ms();
    for (const auto& rule : rule_batch) {
      if (stopping()) return;
      process(rule, now);
    }
    rule_batch.clear();
    for (const auto& view : batch) {
      // What is left of the batch is dropped: the next start evaluates every KPI afresh.
      if (stopping()) return;
      process(view, now);
    }
    for (const auto& slo : slo_batch) {
      if (stopping()) return;
      process(slo, now);
    }
    for (const auto& source : source_batch) {
      if (stopping()) return;
      process(source, now);
    }
    batch.clear();
    slo_batch.clear();
    source_batch.clear();
    if (now >= next_tick) {
      tick(now);
      next_tick = now + options_.tick;
    }
  }
}

void Alerter::run_once() {
  std::vector<kpi::KpiView> batch;
  std::vector<SloObservation> slo_batch;
  std::vector<RuleAlertObservation> rule_batch;
  std::vector<kpi::SourceObservation> source_batch;
  {
    std::lock_guard lock(queue_mutex_);
    batch.swap(queue_);
    slo_batch.swap(slo_queue_);
    rule_batch.swap(rule_queue_);
    source_batch.swap(source_queue_);
  }
  const TimestampMs now = clock_.now_ms();
  for (const auto& rule : rule_batch) process(rule, now);
  for (const auto& view : batch) process(view, now);
  for (const auto& slo : slo_batch) process(slo, now);
  for (const auto& source : source_batch) process(source, now);
  tick(now);
}

void Alerter::process(const kpi::KpiView& view, TimestampMs now) {
  std::lock_guard lock(mutex_);
  const std::string& id = view.definition->id;
  auto it = rules_.find(id);
  if (it == rules_.end()) return;
  last_view_[id] = view;
  for (const Rule& rule : it->second) step_rule(rule, view, now);
  update_gauges();
}

void Alerter::process(const SloObservation& slo, TimestampMs now) {
  std::lock_guard lock(mutex_);
  const std::string subject = "slo:" + slo.slo;
  auto it = rules_.find(subject);
  if (it == rules_.end()) return;
  last_slo_[slo.slo] = slo;
  for (const Rule& rule : it->second) step_burn(rule, slo, now);
  update_gauges();
}

void Alerter::step_burn(const Rule& rule, const SloObservation& slo, TimestampMs now) {
  const double long_rate = slo.burn_rate(rule.long_window);
  const double short_rate = slo.burn_rate(rule.short_window);
  Subject s;
  s.name = slo.name;
  s.owner = slo.owner;
  s.value = long_rate;
  s.threshold = rule.factor;
  s.breach = burn_breaches(long_rate, short_rate, rule.factor);
  s.recovered = burn_recovered(long_rate, short_rate, rule.factor, rule.hysteresis);
  s.data_time = slo.evaluated_at > 0 ? slo.evaluated_at : now;
  s.grid = slo.interval;
  s.describe = "burn rate " + format_number(long_rate) + " over " + window_text(rule.long_window) +
               ", " + format_number(short_rate) + " over " + window_text(rule.short_window) +
               " (factor " + format_number(rule.factor) + ")";
  s.variable = [&](std::string_view name) -> std::string {
    if (name == "slo") return slo.slo;
    if (name == "slo.name") return slo.name;
    if (name == "slo.description") return slo.description;
    if (name == "owner") return slo.owner;
    if (name == "objective") return format_number(slo.objective);
    if (name == "sli") return format_number(slo.sli);
    if (name == "value" || name == "burn_rate") return format_number(long_rate);
    if (name == "burn_rate.short") return format_number(short_rate);
    if (name == "threshold" || name == "factor") return format_number(rule.factor);
    if (name == "long_window") return window_text(rule.long_window);
    if (name == "short_window") return window_text(rule.short_window);
    if (name == "budget_remaining") return format_number(slo.budget_remaining * 100);
    if (name == "severity") return rule.severity;
    if (name == "condition") return std::string(condition_name(rule.condition));
    return "";
  };
  step_subject(rule, s, now);
}

double SloObservation::burn_rate(DurationMs window) const {
  auto it = burn_rates.find(window);
  return it == burn_rates.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
}

void Alerter::step_rule(const Rule& rule, const kpi::KpiView& view, TimestampMs now) {
  // Its data source failed: nothing is known, so every alert of it holds as it is.
  if (view.status == kpi::Health::kUnknown) return;
  const kpi::Definition& d = *view.definition;
  Observation obs;
  obs.status = view.status;
  obs.value = view.value;
  obs.direction = d.direction;
  obs.band = d.band;
  if (view.baseline && view.baseline->trusted) obs.baseline = view.baseline->range;
  // A KPI that never had data is not missing any: no_data pages only about data that stopped.
  const bool never_had_data = rule.condition == Condition::kNoData && view.first_sample == 0;
  Subject s;
  s.name = d.name;
  s.owner = d.owner;
  s.unit = d.unit;
  s.value = view.value;
  s.threshold = threshold_of(rule.condition, view);
  s.breach = breaches(rule.condition, view.status) && !never_had_data;
  s.recovered = recovered(rule.condition, obs, rule.hysteresis) || never_had_data;
  // The newest sample's time: the same on replicas fed the same data, whenever it arrived.
  s.data_time = view.last_sample > 0 ? view.last_sample : view.evaluated_at;
  s.grid = d.interval.value_or(kDefaultEpisodeGrid);
  s.describe = std::string(kpi::health_name(view.status)) + ", value " +
               (std::isnan(view.value) ? "no value" : format_number(view.value));
  s.variable = [&](std::string_view name) -> std::string {
    if (name == "kpi") return d.id;
    if (name == "kpi.name") return d.name;
    if (name == "kpi.description") return d.description;
    if (name == "owner") return d.owner;
    if (name == "unit") return d.unit;
    if (name == "value") return format_number(view.value);
    if (name == "threshold") return s.threshold ? format_number(*s.threshold) : "";
    if (name == "target") return d.band && d.band->target ? format_number(*d.band->target) : "";
    if (name == "severity") return rule.severity;
    if (name == "condition") return std::string(condition_name(rule.condition));
    if (name == "status") return std::string(kpi::health_name(view.status));
    if (name.starts_with("baseline.")) {
      if (!view.baseline) return "";
      const kpi::Baseline& b = view.baseline->range;
      if (name == "baseline.lower") return format_number(b.lower);
      if (name == "baseline.center") return format_number(b.center);
      return format_number(b.upper);
    }
    return "";
  };
  step_subject(rule, s, now);
}

void Alerter::step_subject(const Rule& rule, const Subject& subject, TimestampMs now) {
  const bool breach = subject.breach;
  const bool is_recovered = subject.recovered;
  const std::string key = open_key(rule);
  auto open = open_.find(key);
  const Alert* alert = open == open_.end() ? nullptr : &alerts_.at(open->second);
  RuleState rs;
  if (alert != nullptr) {
    rs.state = alert->state;
    rs.pending_since = alert->pending_since;
    rs.firing_since = alert->firing_since;
    rs.recovering_since = alert->recovering_since;
  }
  const Transition t = step(rs, rule.timing, breach, is_recovered, now);
  const bool creating = alert == nullptr;
  if (creating && t != Transition::kPending && t != Transition::kFiring) return;
  const std::string value_text =
      std::isnan(subject.value) ? "no value" : format_number(subject.value);

  // Write, then apply: the change is made on a copy, written, and installed only once the
  // write succeeded; otherwise nothing changes and the next evaluation or tick tries again.
  const uint64_t id = creating ? next_alert_ : open->second;
  Alert next;
  Outbox::Records extra;
  if (creating) {
    next.id = std::to_string(id);
    next.kpi = rule.kpi;
    next.kpi_name = subject.name;
    next.slo = rule.slo;
    next.receivers = rule.receivers;
    next.condition = rule.condition;
    next.name = rule.name;
    next.severity = rule.severity;
    next.owner = subject.owner;
    next.unit = subject.unit;
    next.runbook_url = rule.runbook_url;
    next.state = State::kPending;
    next.pending_since = rs.pending_since;
    // The id sequence in the same write: an id is never handed out twice.
    extra.emplace_back(std::string(kAlertSeqKey), std::to_string(id + 1));
  } else {
    next = *alert;
  }

  Status written;
  switch (t) {
    case Transition::kNone:
      if (next.recovering_since == rs.recovering_since) return;
      next.recovering_since = rs.recovering_since;
      written = persist(next, {}, extra);
      break;
    case Transition::kPending:
      next.value = subject.value;
      next.threshold = subject.threshold;
      render(next, rule, subject);
      if (creating) name_episode(next, key, subject);
      written = persist(next, {{now, "pending", subject.describe}}, extra);
      if (written) spdlog::info("alert {} ({}): pending, value {}", next.id, next.name, value_text);
      break;
    case Transition::kCancelled:
      if (!erase_alert(id)) return;
      spdlog::info("alert {} ({}): cancelled before firing", next.id, next.name);
      open_.erase(key);
      return;
    case Transition::kFiring: {
      next.state = State::kFiring;
      next.pending_since = rs.pending_since;
      next.firing_since = rs.firing_since;
      next.recovering_since.reset();
      next.value = subject.value;
      next.threshold = subject.threshold;
      render(next, rule, subject);
      if (creating) name_episode(next, key, subject);
      std::vector<AlertEvent> events;
      if (rs.pending_since == now && rule.timing.for_duration == 0) {
        events.push_back({now, "pending", subject.describe});
      }
      events.push_back({now, "firing",
                        next.annotations.count("summary") ? next.annotations.at("summary")
                                                          : "value " + value_text});
      written = notify(next, kFiringEvent, now, std::move(events), extra);
      if (written) spdlog::warn("alert {} ({}): firing, value {}", next.id, next.name, value_text);
      break;
    }
    case Transition::kResolved: {
      next.state = State::kResolved;
      next.resolved_at = now;
      next.recovering_since.reset();
      next.value = subject.value;
      std::vector<AlertEvent> events{{now, "resolved", subject.describe}};
      // Only receivers that heard it fire hear it end.
      written = next.announced ? notify(next, kResolvedEvent, now, std::move(events))
                               : persist(next, std::move(events));
      if (written)
        spdlog::info("alert {} ({}): resolved, value {}", next.id, next.name, value_text);
      break;
    }
  }
  if (!written) return;
  if (creating) {
    next_alert_ = id + 1;
    open_[key] = id;
  }
  if (t == Transition::kResolved) {
    outbox_.forget(next.id);
    open_.erase(key);
  }
  alerts_[id] = std::move(next);
}

void Alerter::name_episode(Alert& alert, const std::string& rule_key,
                           const Subject& subject) const {
  alert.episode_start = episode_start(subject.data_time, subject.grid);
  // Earlier episodes of this rule that started in the same interval: replicas that saw the same
  // ones count the same.
  uint32_t nth = 0;
  for (const auto& [id, a] : alerts_) {
    if (!a.episode.empty() && a.episode_start == alert.episode_start && open_key(a) == rule_key) {
      ++nth;
    }
  }
  alert.episode = episode_key(rule_key, alert.labels, alert.episode_start, nth);
}

Status Alerter::erase_alert(uint64_t id) {
  std::vector<std::string> erase{std::string(kAlertPrefix) + padded_id(id)};
  const std::string prefix = std::string(kEventPrefix) + padded_id(id) + "/";
  auto scanned = state_.scan_state(prefix, [&](std::string_view k, std::string_view) {
    erase.emplace_back(k);
    return true;
  });
  if (!scanned) return writer_.check("alert " + std::to_string(id) + ": removing it", scanned);
  if (auto s = writer_.write("alert " + std::to_string(id) + ": removing it", {}, erase); !s) {
    return s;
  }
  alerts_.erase(id);
  return Status::ok();
}

void Alerter::render(Alert& alert, const Rule& rule, const Subject& subject) const {
  alert.labels.clear();
  alert.labels["alertname"] = rule.name;
  const bool source = rule.kpi.starts_with(kDatasourceSubjectPrefix);
  if (source) {
    alert.labels["datasource"] = rule.kpi.substr(kDatasourceSubjectPrefix.size());
  } else if (rule.slo.empty()) {
    alert.labels["kpi"] = rule.kpi;
  } else {
    alert.labels["slo"] = rule.slo;
  }
  if (!source) alert.labels["condition"] = std::string(condition_name(rule.condition));
  alert.labels["severity"] = rule.severity;
  if (!subject.owner.empty()) alert.labels["owner"] = subject.owner;
  for (const auto& [name, t] : rule.labels) alert.labels[name] = t.render(subject.variable);
  alert.annotations.clear();
  for (const auto& [name, t] : rule.annotations) {
    std::string text = t.render(subject.variable);
    if (!text.empty()) alert.annotations[name] = std::move(text);
  }
}

std::vector<std::string> Alerter::silenced_by(const Alert& alert, TimestampMs now) const {
  std::vector<std::string> ids;
  for (const auto& [id, s] : silences_) {
    if (s.active(now) && s.matches(alert)) ids.push_back(s.id);
  }
  return ids;
}

Status Alerter::notify(Alert& alert, std::string_view event, TimestampMs now,
                       std::vector<AlertEvent> events, const Outbox::Records& extra) {
  const bool announcing = event == kFiringEvent || event == kRepeatEvent;
  if (announcing) {
    if (auto silenced = silenced_by(alert, now); !silenced.empty()) {
      std::string list;
      for (const auto& id : silenced) list += (list.empty() ? "" : ", ") + id;
      events.push_back({now, "silenced", std::string(event) + " not sent: silence " + list});
      if (!alert.announced) alert.notification = "silenced";
      auto s = persist(alert, std::move(events), extra);
      if (s && metrics_) metrics_->suppressed.Increment();
      return s;
    }
    alert.announced = true;
    alert.last_notified = now;
  }
  // The alert as it will be once the event is queued, its timeline line and the notifications
  // in one write.
  const std::vector<std::string> names = outbox_.routes(event, alert);
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  if (announcing) alert.notification = names.empty() ? "no_receiver" : "queued";
  events.push_back(
      {now, "queued",
       std::string(event) + (names.empty() ? " (no receiver routes it)" : " for " + list)});
  Outbox::Records with = records(alert, events);
  with.insert(with.end(), extra.begin(), extra.end());
  auto queued = outbox_.enqueue(event, alert, snapshot(alert, now), {}, with);
  if (!queued)
    return writer_.check("alert " + alert.id + ": " + std::string(event), queued.status());
  if (metrics_ && !queued->empty()) {
    metrics_->notifications.Add({{"event", std::string(event)}})
        .Increment(static_cast<double>(queued->size()));
  }
  return Status::ok();
}

Outbox::Records Alerter::records(const Alert& alert, const std::vector<AlertEvent>& events) {
  Outbox::Records puts;
  puts.emplace_back(std::string(kAlertPrefix) + padded_id(*parse_id(alert.id)),
                    to_json_text(to_json(alert)));
  for (const auto& e : events) {
    puts.emplace_back(event_key(alert.id, e.time, event_seq_++), to_json_text(to_json(e)));
  }
  return puts;
}

Status Alerter::persist(const Alert& alert, std::vector<AlertEvent> events,
                        const Outbox::Records& extra) {
  Outbox::Records puts = records(alert, events);
  puts.insert(puts.end(), extra.begin(), extra.end());
  const std::string what =
      "alert " + alert.id + ": " +
      (events.empty() ? std::string(state_name(alert.state)) : events.back().kind);
  return writer_.write(what, puts);
}

Status Alerter::record_event(const std::string& alert_id, std::string kind, std::string detail) {
  AlertEvent e{clock_.now_ms(), std::move(kind), std::move(detail)};
  const std::pair<std::string, std::string> puts[] = {
      {event_key(alert_id, e.time, event_seq_++), to_json_text(to_json(e))}};
  return writer_.write("alert " + alert_id + ": " + e.kind, puts);
}

void Alerter::delivery_report(const Notification& n, std::string_view outcome,
                              const std::string& detail) {
  std::lock_guard lock(mutex_);
  const std::string line = n.event + " " + detail;
  auto id = parse_id(n.alert_id);
  auto it = id ? alerts_.find(*id) : alerts_.end();
  const bool announcement = n.event == kFiringEvent || n.event == kRepeatEvent;
  if (it != alerts_.end() && announcement) {
    // What became of the announcement, with its timeline line in one write.
    Alert next = it->second;
    if (outcome == "delivered") {
      next.notified = true;
      next.notification = "delivered";
    } else if (outcome == "expired" && next.notification == "queued") {
      next.notification = "expired";
    }
    if (next.notified != it->second.notified || next.notification != it->second.notification) {
      if (persist(next, {{clock_.now_ms(), std::string(outcome), line}})) {
        it->second = std::move(next);
      }
      return;
    }
  }
  // Only a timeline line: a failure is logged and counted by the writer.
  (void)record_event(n.alert_id, std::string(outcome), line);
}

void Alerter::tick(TimestampMs now) {
  std::lock_guard lock(mutex_);
  // `for` and clear_for run out between evaluations too.
  std::vector<Alert> open;
  for (const auto& [key, id] : open_) open.push_back(alerts_.at(id));
  for (const Alert& a : open) {
    auto rules = rules_.find(subject_of(a));
    if (rules == rules_.end()) continue;
    for (const Rule& rule : rules->second) {
      if (!rule_of(rule, a)) continue;
      if (a.kpi.starts_with(kDatasourceSubjectPrefix)) {
        auto source = last_source_.find(a.kpi.substr(kDatasourceSubjectPrefix.size()));
        if (source != last_source_.end()) step_source(rule, source->second, now);
      } else if (a.slo.empty()) {
        if (auto view = last_view_.find(a.kpi); view != last_view_.end()) {
          step_rule(rule, view->second, now);
        }
      } else if (auto slo = last_slo_.find(a.slo); slo != last_slo_.end()) {
        step_burn(rule, slo->second, now);
      }
    }
  }
  close_orphans(now);
  for (const auto& [key, id] : open_) {
    Alert& a = alerts_.at(id);
    if (a.state != State::kFiring) continue;
    // Write, then apply: each announcement is made on a copy, installed once written.
    auto announce = [&](std::string_view event) {
      Alert next = a;
      if (notify(next, event, now)) a = std::move(next);
    };
    if (!a.announced) {
      // Silenced when it fired; announce it once no silence matches.
      if (silenced_by(a, now).empty()) announce(kFiringEvent);
      continue;
    }
    if (!silenced_by(a, now).empty()) continue;
    outbox_.refresh_leases(a, snapshot(a, now));
    const Rule* rule = nullptr;
    if (auto r = rules_.find(subject_of(a)); r != rules_.end()) {
      for (const Rule& candidate : r->second) {
        if (rule_of(candidate, a)) rule = &candidate;
      }
    }
    // While its KPI is unknown (the data source failed) a firing alert holds: no repeats.
    const auto held = last_view_.find(a.kpi);
    if (held != last_view_.end() && held->second.status == kpi::Health::kUnknown) continue;
    if (rule != nullptr && !a.acknowledged && now - a.last_notified >= rule->repeat_interval) {
      // Numbered from the firing, so each replica's repeat has the same key.
      Alert next = a;
      next.repeat = repeat_number(a, rule->repeat_interval, now);
      if (notify(next, kRepeatEvent, now)) a = std::move(next);
    }
  }
  // Forget what is past keeping.
  std::vector<uint64_t> expired;
  for (const auto& [id, a] : alerts_) {
    if (a.state == State::kResolved && now - a.resolved_at > options_.resolved_retention) {
      expired.push_back(id);
    }
  }
  // A failed removal (logged and counted) is tried again at the next tick.
  for (uint64_t id : expired) (void)erase_alert(id);
  std::vector<std::string> erase;
  std::vector<uint64_t> old_silences;
  for (const auto& [id, s] : silences_) {
    if (now - s.ends_at > options_.resolved_retention) {
      erase.push_back(std::string(kSilencePrefix) + padded_id(id));
      old_silences.push_back(id);
    }
  }
  if (!erase.empty() && writer_.write("removing expired silences", {}, erase)) {
    for (uint64_t id : old_silences) silences_.erase(id);
  }
  update_gauges();
}

void Alerter::update_gauges() {
  if (!metrics_) return;
  size_t pending = 0;
  size_t firing = 0;
  for (const auto& [key, id] : open_) {
    (alerts_.at(id).state == State::kFiring ? firing : pending)++;
  }
  metrics_->pending->Set(static_cast<double>(pending));
  metrics_->firing->Set(static_cast<double>(firing));
}

std::string Alerter::url_of(const Alert& alert) const {
  // By episode when it has one: the same link from every HA replica.
  return options_.external_url + "/api/v1/alerts/" +
         (alert.episode.empty() ? alert.id : alert.episode);
}

json::object Alerter::snapshot(const Alert& alert, TimestampMs now) const {
  json::object o = to_json(alert);
  // Bookkeeping of kpid's own, not news for a receiver.
  o.erase("announced");
  o.erase("notified");
  o.erase("notification");
  o.erase("last_notified");
  o.erase("recovering_since");
  o["url"] = url_of(alert);
  json::array silenced;
  for (const auto& id : silenced_by(alert, now)) silenced.push_back(json::string(id));
  o["silenced_by"] = std::move(silenced);
  return o;
}

void Alerter::set_rule_groups(std::set<std::string> ids) {
  std::lock_guard lock(mutex_);
  rule_groups_ = std::move(ids);
}

void Alerter::rule_alerts_evaluated(RuleAlertObservation observation) {
  {
    std::lock_guard lock(queue_mutex_);
    // One waiting evaluation per rule is enough: the newest says everything.
    auto it = std::find_if(rule_queue_.begin(), rule_queue_.end(), [&](const auto& o) {
      return o.group == observation.group && o.rule == observation.rule;
    });
    if (it != rule_queue_.end()) {
      *it = std::move(observation);
    } else {
      rule_queue_.push_back(std::move(observation));
    }
  }
  wake_.notify_one();
}

// Prometheus' state machine has run in the rules module; this mirrors its alerts as kpid
// alerts. A firing alert stays firing while the rule reports it pending again (after a restart
// whose `for` was not restored), so a restart neither resolves nor re-announces it.
void Alerter::process(const RuleAlertObservation& obs, TimestampMs now) {
  std::lock_guard lock(mutex_);
  if (!rule_groups_ || !rule_groups_->contains(obs.group)) return;
  std::set<std::string> seen;
  for (const auto& item : obs.alerts) {
    const std::string key = rule_alert_key(obs.group, item.labels);
    seen.insert(key);
    auto open = open_.find(key);
    const Alert* alert = open == open_.end() ? nullptr : &alerts_.at(open->second);
    const bool creating = alert == nullptr;
    if (item.state == "inactive") {
      if (creating) continue;
    } else if (!creating && (alert->state == State::kFiring || item.state == "pending")) {
      continue;  // no change to record
    }
    const uint64_t id = creating ? next_alert_ : open->second;
    Alert next;
    Outbox::Records extra;
    if (creating) {
      next.id = std::to_string(id);
      next.kpi_name = obs.rule;
      next.name = obs.rule;
      next.rule_group = obs.group;
      auto label = [&](const char* n) {
        auto it = item.labels.find(n);
        return it == item.labels.end() ? std::string() : it->second;
      };
      next.severity = label("severity");
      next.owner = label("owner");
      next.runbook_url = item.annotations.count("runbook_url") ? item.annotations.at("runbook_url")
                                                               : std::string();
      next.labels = item.labels;
      next.state = State::kPending;
      next.pending_since = item.active_at;
      extra.emplace_back(std::string(kAlertSeqKey), std::to_string(id + 1));
    } else {
      next = *alert;
    }
    next.annotations = item.annotations;
    next.value = item.value;
    const std::string value_text = format_number(item.value);
    Status written;
    if (item.state == "pending") {
      written = persist(next, {{now, "pending", "value " + value_text}}, extra);
    } else if (item.state == "firing") {
      next.state = State::kFiring;
      next.firing_since = now;
      std::vector<AlertEvent> events;
      if (creating) events.push_back({now, "pending", "value " + value_text});
      events.push_back({now, "firing",
                        next.annotations.count("summary") ? next.annotations.at("summary")
                                                          : "value " + value_text});
      written = notify(next, kFiringEvent, now, std::move(events), extra);
      if (written) spdlog::warn("alert {} ({}): firing, value {}", next.id, next.name, value_text);
    } else if (next.state == State::kPending) {
      if (!erase_alert(id)) continue;
      open_.erase(key);
      continue;
    } else {
      next.state = State::kResolved;
      next.resolved_at = now;
      std::vector<AlertEvent> events{{now, "resolved", "value " + value_text}};
      written = next.announced ? notify(next, kResolvedEvent, now, std::move(events))
                               : persist(next, std::move(events));
    }
    if (!written) continue;
    if (creating) {
      next_alert_ = id + 1;
      open_[key] = id;
    }
    if (next.state == State::kResolved) {
      outbox_.forget(next.id);
      open_.erase(key);
    }
    alerts_[id] = std::move(next);
  }
  // Alerts the rule no longer reports (gone from its result and past keep_firing_for).
  std::vector<std::pair<std::string, uint64_t>> gone;
  for (const auto& [key, id] : open_) {
    const Alert& a = alerts_.at(id);
    if (a.rule_group == obs.group && a.name == obs.rule && !seen.contains(key)) {
      gone.emplace_back(key, id);
    }
  }
  for (const auto& [key, id] : gone) {
    Alert next = alerts_.at(id);
    if (next.state == State::kPending) {
      if (erase_alert(id)) open_.erase(key);
      continue;
    }
    next.state = State::kResolved;
    next.resolved_at = now;
    std::vector<AlertEvent> events{{now, "resolved", "no longer in the rule's result"}};
    const Status written = next.announced ? notify(next, kResolvedEvent, now, std::move(events))
                                          : persist(next, std::move(events));
    if (!written) continue;
    outbox_.forget(next.id);
    open_.erase(key);
    alerts_[id] = std::move(next);
  }
  update_gauges();
}

}  // namespace kpid::alert
