// Rule groups evaluated as Prometheus' rules manager does (rules/group.go, alerting.go,
// recording.go in Prometheus 2.42), on one thread, writing into kpid's store.
#include "kpid/rules/evaluator.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include "kpid/core/stale_marker.h"

namespace kpid::rules {

const char* alert_state_name(AlertState s) {
  switch (s) {
    case AlertState::kInactive: return "inactive";
    case AlertState::kPending: return "pending";
    case AlertState::kFiring: return "firing";
  }
  return "inactive";
}

namespace {

std::string key_of(const std::map<std::string, std::string>& labels) {
  LabelsBuilder b;
  for (const auto& [k, v] : labels) b.add(k, v);
  b.finish();
  return std::string(b.key());
}

// A query result as a vector of (labels, value), as Prometheus' EngineQueryFunc gives rules: a
// scalar becomes one series without labels.
Result<std::vector<std::pair<std::map<std::string, std::string>, double>>> as_vector(
    const query::QueryResult& r) {
  std::vector<std::pair<std::map<std::string, std::string>, double>> out;
  if (r.type == query::ValueType::kScalar) {
    out.push_back({{}, r.scalar});
    return out;
  }
  if (r.type != query::ValueType::kVector) {
    return Status::invalid_argument("rule result is not a vector or scalar");
  }
  for (const auto& s : r.series) {
    if (s.points.empty()) continue;
    std::map<std::string, std::string> labels;
    if (s.labels) {
      for (const auto& l : s.labels->items()) labels[l.name] = l.value;
    }
    out.push_back({std::move(labels), s.points.back().value});
  }
  return out;
}

}  // namespace

struct RuleEvaluator::RuleRuntime {
  std::string name;
  std::set<std::string> previous;           // series keys written at the last evaluation
  std::map<std::string, RuleAlert> active;  // alerting: by label-set key
  bool restored = false;                    // alerting: ALERTS_FOR_STATE read back
  RuleStatus status;
};

struct RuleEvaluator::GroupRuntime {
  RuleGroup group;
  std::vector<RuleRuntime> rules;
  TimestampMs next = 0;  // next evaluation time
  TimestampMs last_evaluation = 0;
  double evaluation_seconds = 0;
};

struct RuleEvaluator::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : evaluations(prometheus::BuildCounter()
                        .Name("kpid_rule_evaluations_total")
                        .Help("Rule evaluations, by rule group.")
                        .Register(r)),
        failures(prometheus::BuildCounter()
                     .Name("kpid_rule_evaluation_failures_total")
                     .Help("Rule evaluations that failed (query error, limit, store), by rule "
                           "group.")
                     .Register(r)),
        duration(prometheus::BuildGauge()
                     .Name("kpid_rule_group_last_duration_seconds")
                     .Help("How long the last evaluation of each rule group took.")
                     .Register(r)),
        missed(prometheus::BuildCounter()
                   .Name("kpid_rule_group_iterations_missed_total")
                   .Help("Evaluation slots a rule group skipped because an evaluation ran late.")
                   .Register(r)) {}
  prometheus::Family<prometheus::Counter>& evaluations;
  prometheus::Family<prometheus::Counter>& failures;
  prometheus::Family<prometheus::Gauge>& duration;
  prometheus::Family<prometheus::Counter>& missed;
};

RuleEvaluator::RuleEvaluator(store::SampleStore& store, store::SampleObserver* observer,
                             QueryFn query, AlertSink* sink, metrics::Metrics* metrics,
                             const Clock& clock, EvaluatorOptions options)
    : store_(store),
      observer_(observer),
      query_(std::move(query)),
      sink_(sink),
      clock_(clock),
      options_(options) {
  if (metrics != nullptr) metrics_ = std::make_unique<Metrics>(metrics->registry());
}

RuleEvaluator::~RuleEvaluator() { stop(); }

DurationMs RuleEvaluator::interval_of(const RuleGroup& g) const {
  const DurationMs d = g.interval > 0 ? g.interval : options_.default_interval;
  return std::max<DurationMs>(d, 1);
}

std::set<std::string> RuleEvaluator::set_groups(std::vector<RuleGroup> groups,
                                                std::function<bool(const std::string&)> owns) {
  std::map<std::string, std::unique_ptr<GroupRuntime>> next;
  std::set<std::string> ids;
  std::lock_guard lock(mutex_);
  for (auto& g : groups) {
    if (owns && !owns(g.id)) continue;
    auto rt = std::make_unique<GroupRuntime>();
    auto old = groups_.find(g.id);
    for (size_t i = 0; i < g.rules.size(); ++i) {
      RuleRuntime r;
      r.name = g.rules[i].name;
      // A rule keeps its state across a reload when it is still the same rule at the same place.
      if (old != groups_.end() && i < old->second->rules.size() &&
          old->second->rules[i].name == r.name) {
        r = std::move(old->second->rules[i]);
      }
      rt->rules.push_back(std::move(r));
    }
    if (old != groups_.end()) {
      rt->next = old->second->next;
      rt->last_evaluation = old->second->last_evaluation;
    }
    rt->group = std::move(g);
    ids.insert(rt->group.id);
    next[rt->group.id] = std::move(rt);
  }
  groups_ = std::move(next);
  wake_.notify_all();
  return ids;
}

void RuleEvaluator::start() {
  if (!options_.background || thread_.started()) return;
  thread_.start([this] { run(); });
}

void RuleEvaluator::stop(Deadline deadline) {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.started() && !thread_.wait(deadline)) {
    spdlog::warn("rules: evaluation still running at the shutdown deadline");
  }
  thread_.join();
}

void RuleEvaluator::run() {
  for (;;) {
    TimestampMs due = INT64_MAX;
    std::string due_group;
    const TimestampMs now = clock_.now_ms();
    {
      std::lock_guard lock(mutex_);
      for (auto& [id, g] : groups_) {
        const DurationMs interval = interval_of(g->group);
        // Slots are multiples of the interval; the first is the next one from now.
        if (g->next == 0) g->next = (now / interval + 1) * interval;
        if (g->next < due) {
          due = g->next;
          due_group = id;
        }
      }
    }
    {
      std::unique_lock lock(wake_mutex_);
      if (stopping_) return;
      if (due > now) {
        const auto wait = std::chrono::milliseconds(
            std::min<TimestampMs>(due == INT64_MAX ? 1000 : due - now, 1000));
        wake_.wait_for(lock, wait, [this] { return stopping_; });
        if (stopping_) return;
        continue;  // re-read: the groups or the time may have changed
      }
    }
    std::lock_guard lock(mutex_);
    auto it = groups_.find(due_group);
    if (it == groups_.end()) continue;
    GroupRuntime& g = *it->second;
    const DurationMs interval = interval_of(g.group);
    const TimestampMs slot = g.next;
    evaluate_group(g, slot);
    // A late evaluation skips the slots it overran, as Prometheus does.
    const TimestampMs after = clock_.now_ms();
    g.next = slot + interval;
    if (g.next <= after) {
      const TimestampMs skip = (after - g.next) / interval + 1;
      if (metrics_) metrics_->missed.Add({{"rule_group", g.group.id}}).Increment(skip);
      g.next += skip * interval;
    }
  }
}

Status RuleEvaluator::run_group(const std::string& group_id, TimestampMs time) {
  std::lock_guard lock(mutex_);
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return Status::not_found("no rule group " + group_id);
  evaluate_group(*it->second, time);
  return Status::ok();
}

void RuleEvaluator::evaluate_group(GroupRuntime& g, TimestampMs time) {
  const auto group_start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < g.group.rules.size(); ++i) {
    const RuleDef& rule = g.group.rules[i];
    RuleRuntime& rt = g.rules[i];
    const auto start = std::chrono::steady_clock::now();
    Status s = rule.alerting ? evaluate_alerting(g.group, i, rule, rt, time)
                             : evaluate_recording(g.group, rule, rt, time);
    rt.status.last_evaluation = time;
    rt.status.evaluation_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rt.status.health = s ? "ok" : "err";
    rt.status.last_error = s ? "" : s.message();
    if (metrics_) {
      metrics_->evaluations.Add({{"rule_group", g.group.id}}).Increment();
      if (!s) metrics_->failures.Add({{"rule_group", g.group.id}}).Increment();
    }
    if (!s) {
      spdlog::warn("rules: group {} rule {} ({}:{}) at {}: {}", g.group.id, rule.name,
                   rule.pos.file, rule.pos.line, time, s.message());
    }
  }
  g.last_evaluation = time;
  g.evaluation_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - group_start).count();
  if (metrics_) metrics_->duration.Add({{"rule_group", g.group.id}}).Set(g.evaluation_seconds);
}

Status RuleEvaluator::evaluate_recording(const RuleGroup& group, const RuleDef& rule,
                                         RuleRuntime& rt, TimestampMs time) {
  auto result = query_(*rule.expr, rule.expr_text, time);
  if (!result) return result.status();
  auto vector = as_vector(*result);
  if (!vector) return vector.status();
  if (group.limit > 0 && static_cast<int64_t>(vector->size()) > group.limit) {
    return Status::invalid_argument("exceeded limit of " + std::to_string(group.limit) + " with " +
                                    std::to_string(vector->size()) + " series");
  }
  std::map<std::string, double> series;
  for (auto& [labels, value] : *vector) {
    labels[std::string(kMetricNameLabel)] = rule.name;
    for (const auto& [k, v] : rule.labels) {
      if (v.empty()) {
        labels.erase(k);
      } else {
        labels[k] = v;
      }
    }
    if (!series.emplace(key_of(labels), value).second) {
      return Status::invalid_argument(
          "vector contains metrics with the same labelset after applying rule labels");
    }
  }
  return write(series, rt.previous, time);
}

Status RuleEvaluator::evaluate_alerting(const RuleGroup& group, size_t index, const RuleDef& rule,
                                        RuleRuntime& rt, TimestampMs time) {
  auto result = query_(*rule.expr, rule.expr_text, time);
  if (!result) return result.status();
  auto vector = as_vector(*result);
  if (!vector) return vector.status();
  std::map<std::string, RuleAlert> current;
  for (auto& [labels, value] : *vector) {
    TemplateData data;
    data.labels = labels;
    data.value = value;
    auto expand = [&](const PromTemplate& t) {
      auto r = t.render(data);
      return r ? *r : "<error expanding template: " + r.status().message() + ">";
    };
    std::map<std::string, std::string> out = labels;
    out.erase(std::string(kMetricNameLabel));
    for (const auto& [k, t] : rule.label_templates) {
      std::string v = expand(t);
      if (v.empty()) {
        out.erase(k);
      } else {
        out[k] = std::move(v);
      }
    }
    out["alertname"] = rule.name;
    RuleAlert a;
    for (const auto& [k, t] : rule.annotation_templates) a.annotations[k] = expand(t);
    a.value = value;
    std::string key = key_of(out);
    a.labels = std::move(out);
    if (!current.emplace(std::move(key), std::move(a)).second) {
      return Status::invalid_argument(
          "vector contains metrics with the same labelset after applying alert labels");
    }
  }
  for (auto& [key, a] : current) {
    auto it = rt.active.find(key);
    if (it != rt.active.end() && it->second.state != AlertState::kInactive) {
      it->second.value = a.value;
      it->second.annotations = std::move(a.annotations);
      continue;
    }
    a.state = AlertState::kPending;
    a.active_at = time;
    rt.active[key] = std::move(a);
  }
  size_t active_pending = 0;
  for (auto it = rt.active.begin(); it != rt.active.end();) {
    RuleAlert& a = it->second;
    if (current.count(it->first) == 0) {
      bool keep_firing = false;
      if (a.state == AlertState::kFiring && rule.keep_firing_for > 0) {
        if (a.keep_firing_since == 0) a.keep_firing_since = time;
        keep_firing = time - a.keep_firing_since < rule.keep_firing_for;
      }
      if (a.state == AlertState::kPending ||
          (a.resolved_at != 0 && time - a.resolved_at > options_.resolved_retention)) {
        it = rt.active.erase(it);
        continue;
      }
      if (a.state != AlertState::kInactive && !keep_firing) {
        a.state = AlertState::kInactive;
        a.resolved_at = time;
      }
      if (!keep_firing) {
        ++it;
        continue;
      }
    } else {
      a.keep_firing_since = 0;
    }
    ++active_pending;
    if (a.state == AlertState::kPending && time - a.active_at >= rule.for_duration) {
      a.state = AlertState::kFiring;
      a.fired_at = time;
    }
    ++it;
  }
  if (group.limit > 0 && static_cast<int64_t>(active_pending) > group.limit) {
    rt.active.clear();
    return Status::invalid_argument("exceeded limit of " + std::to_string(group.limit) + " with " +
                                    std::to_string(active_pending) + " alerts");
  }
  // ALERTS and ALERTS_FOR_STATE: written from the evaluation after the restore on, as
  // Prometheus writes them only once the rule is restored.
  std::map<std::string, double> series;
  if (rt.restored) {
    for (const auto& [key, a] : rt.active) {
      if (a.state == AlertState::kInactive) continue;
      auto labels = a.labels;
      labels[std::string(kMetricNameLabel)] = "ALERTS_FOR_STATE";
      series[key_of(labels)] = static_cast<double>(a.active_at / 1000);
      labels[std::string(kMetricNameLabel)] = "ALERTS";
      labels["alertstate"] = alert_state_name(a.state);
      series[key_of(labels)] = 1;
    }
  }
  Status written = write(series, rt.previous, time);
  if (!rt.restored) {
    restore_for_state(rule, rt, time);
    rt.restored = true;
  }
  rt.status.alerts.clear();
  AlertRuleEvaluation evaluation{group.id, rule.name, index, &rule, time, {}};
  for (const auto& [key, a] : rt.active) {
    if (a.state != AlertState::kInactive) rt.status.alerts.push_back(a);
    evaluation.alerts.push_back(a);
  }
  if (sink_ != nullptr) sink_->rule_evaluated(evaluation);
  return written;
}

void RuleEvaluator::restore_for_state(const RuleDef& rule, RuleRuntime& rt, TimestampMs time) {
  // Short `for`s are not restored: waiting the grace period would delay them more than `for`.
  if (rule.for_duration < options_.for_grace_period) return;
  for (auto& [key, a] : rt.active) {
    if (a.state == AlertState::kInactive) continue;
    std::vector<LabelMatcher> matchers;
    auto labels = a.labels;
    labels[std::string(kMetricNameLabel)] = "ALERTS_FOR_STATE";
    for (const auto& [k, v] : labels) {
      auto m = LabelMatcher::create(MatchType::kEqual, k, v);
      if (m) matchers.push_back(std::move(*m));
    }
    std::vector<store::Point> points;
    for (const auto& ref : store_.select(matchers)) {
      if (ref.labels == nullptr || ref.labels->size() != labels.size()) continue;
      std::vector<store::Point> p;
      if (store_.read(ref.id, time - options_.for_outage_tolerance, time - 1, p)) {
        points.insert(points.end(), p.begin(), p.end());
      }
    }
    while (!points.empty() && is_stale_marker(points.back().value)) points.pop_back();
    if (points.empty()) continue;
    const TimestampMs down_at = points.back().timestamp;
    TimestampMs active_at = static_cast<TimestampMs>(points.back().value) * 1000;
    const DurationMs remaining = rule.for_duration - (down_at - active_at);
    if (remaining <= 0) {
      // It was firing: it fires again at the next evaluation that finds it.
    } else if (remaining < options_.for_grace_period) {
      active_at = time + options_.for_grace_period - rule.for_duration;
    } else {
      active_at += time - down_at;
    }
    a.active_at = active_at;
    std::string text;
    for (const auto& [k, v] : a.labels) text += (text.empty() ? "" : ", ") + k + "=" + v;
    spdlog::info("rules: restored alert {{{}}} active since {} ms", text, active_at);
  }
}

Status RuleEvaluator::write(const std::map<std::string, double>& series,
                            std::set<std::string>& previous, TimestampMs time) {
  std::vector<store::Sample> samples;
  samples.reserve(series.size() + previous.size());
  std::set<std::string> now;
  for (const auto& [key, value] : series) {
    auto id = store_.resolve(key);
    if (!id) return id.status();
    samples.push_back({*id, time, value});
    now.insert(key);
  }
  // A series the rule no longer produces ends now, as Prometheus marks it stale.
  for (const auto& key : previous) {
    if (now.count(key) != 0) continue;
    auto id = store_.resolve(key);
    if (!id) return id.status();
    samples.push_back({*id, time, kStaleNaN});
  }
  if (!samples.empty()) {
    if (auto s = store_.append(samples); !s) return s;
    if (observer_ != nullptr) observer_->observe(samples);
    if (forward_) {
      if (auto s = forward_(samples); !s) {
        spdlog::error("rules: queueing {} samples for remote write: {}", samples.size(),
                      s.message());
      }
    }
  }
  previous = std::move(now);
  return Status::ok();
}

std::vector<GroupStatus> RuleEvaluator::status() const {
  std::lock_guard lock(mutex_);
  std::vector<GroupStatus> out;
  for (const auto& [id, g] : groups_) {
    GroupStatus s;
    s.definition = g->group;
    s.interval = interval_of(g->group);
    s.last_evaluation = g->last_evaluation;
    s.evaluation_seconds = g->evaluation_seconds;
    for (const auto& r : g->rules) s.rules.push_back(r.status);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace kpid::rules
