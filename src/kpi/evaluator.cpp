#include "kpid/kpi/evaluator.h"

#include "kpid/core/stale_marker.h"
#include "kpid/core/text.h"

#include "evaluator_internal.h"
#include "history.h"
#include "records.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <thread>

namespace kpid::kpi {

namespace {

using detail::history_spec;
using detail::kNaN;
using records::append_number;
using records::encode_band;
using records::first_sample_key;
using records::key_prefix;
using records::parse_health;
using records::time_of_key;

// A sample stamped ahead of kpid's clock (a client's clock running a little fast) counts at
// once: the KPI is evaluated at that sample's time, up to this far ahead of now.
constexpr DurationMs kFutureTolerance = 10'000;
// How much timer-driven evaluation one round does before it lets new samples' KPIs go first.
constexpr auto kTimerSlice = std::chrono::milliseconds(1);

// The selector of a KPI's own value series (KPIs on data sources keep their history there).
std::string remote_history_selector(std::string_view id) {
  std::string out = "kpid_kpi_value{kpi=\"";
  for (char c : id) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"}";
}

}  // namespace

Evaluator::Evaluator(const store::SampleStore& samples, store::StateStore& state,
                     const query::Engine& engine, metrics::Metrics* metrics, const Clock& clock,
                     EvaluatorOptions options)
    : samples_(samples),
      state_(state),
      writer_(state, metrics, "kpi"),
      engine_(engine),
      clock_(clock),
      options_(options) {
  if (metrics != nullptr) metrics_ = std::make_unique<Metrics>(metrics->registry());
  if (options_.background) {
    thread_.start([this] { run(); });
    refresh_thread_.start([this] { run_refresh(); });
    remote_thread_.start([this] { run_remote(); });
  }
}

Evaluator::~Evaluator() {
  stop();
  std::lock_guard round(round_mutex_);
  if (metrics_) {
    for (auto& s : slots_) metrics_->remove(*s);
  }
}

void Evaluator::stop(Deadline deadline) {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
    stop_source_.request_stop();
  }
  wake_.notify_all();
  refresh_wake_.notify_all();
  remote_wake_.notify_all();
  // Late only while one query piece (a round's KPI, a slice of a history) finishes: nothing
  // is left to cancel then, it ends by itself.
  if (!thread_.wait(deadline)) spdlog::warn("kpi evaluation: still running at the stop deadline");
  if (!refresh_thread_.wait(deadline)) {
    spdlog::warn("kpi history computation: still running at the stop deadline");
  }
  if (!remote_thread_.wait(deadline)) {
    spdlog::warn("kpi evaluation on data sources: still running at the stop deadline");
  }
  thread_.join();
  refresh_thread_.join();
  remote_thread_.join();
}

std::vector<std::shared_ptr<Evaluator::Slot>> Evaluator::slots() const {
  std::shared_lock lock(index_mutex_);
  return slots_;
}

void Evaluator::set_kpis(std::vector<Definition> kpis) {
  std::lock_guard round(round_mutex_);
  const TimestampMs now = clock_.now_ms();
  std::map<std::string, std::shared_ptr<Slot>, std::less<>> old;
  for (auto& s : slots()) old.emplace(s->definition->id, s);

  std::vector<std::shared_ptr<Slot>> next;
  for (auto& d : kpis) {
    auto slot = std::make_shared<Slot>();
    slot->definition = std::make_shared<const Definition>(std::move(d));
    const Definition& def = *slot->definition;
    // compile() has parsed these already; a failure here is a broken invariant.
    slot->numerator = std::move(detail::value_expr(def)).value();
    if (def.denominator) {
      slot->denominator =
          std::move(detail::term_expr(*def.denominator, def.denominator->window)).value();
    }
    slot->view.definition = slot->definition;
    slot->view.value = kNaN;
    auto it = old.find(def.id);
    if (it != old.end()) {
      Slot& was = *it->second;
      std::lock_guard lock(was.mutex);
      slot->has_record = was.has_record;
      slot->sequence = was.sequence;
      slot->first_sample = was.first_sample;
      slot->view.status = was.view.status;
      slot->view.since = was.view.since;
      if (was.definition->same_value(def)) {
        slot->view = was.view;
        slot->view.definition = slot->definition;
        if (!slot->definition->baseline) slot->view.baseline.reset();
        slot->last_sample.store(was.last_sample.load());
        slot->last_sample_known = was.last_sample_known;
        slot->recorded_baseline = was.recorded_baseline;
        slot->history_ready.store(was.history_ready.load());
        slot->history_series.store(was.history_series.load());
        const bool same_history = history_spec(*was.definition) == history_spec(def) &&
                                  was.definition->direction == def.direction;
        // Every reload recomputes the history (refresh 0): history may have arrived since, e.g.
        // a backfill, and an operator reloads to have it read.
        slot->next_refresh = 0;
        slot->breach_checked = same_history && was.definition->band == def.band;
      }
    } else {
      // A KPI new to this process: its last recorded status (from before a restart) stands
      // until the first evaluation says otherwise.
      auto status = state_.scan_state_reverse(
          key_prefix(def.id, "status"), [&](std::string_view key, std::string_view value) {
            size_t space = value.find(' ');
            if (auto h = parse_health(value.substr(0, space))) {
              slot->view.status = *h;
              slot->view.since = time_of_key(key, key_prefix(def.id, "status").size());
              slot->has_record = true;
            }
            return false;
          });
      if (!status)
        spdlog::error("kpi {}: reading its status history: {}", def.id, status.message());
      slot->first_sample = load_first_sample(def.id);
    }
    slot->view.first_sample = slot->first_sample;
    // The band as configured, for charts: a failure is logged and counted by the writer; the
    // configuration applies all the same (it is the operator's, not a state change).
    (void)record_band(*slot, now);
    next.push_back(std::move(slot));
  }

  if (metrics_) {
    for (auto& s : old) metrics_->remove(*s.second);
    for (auto& s : next) metrics_->add(*s);
  }
  // The candidate index: each term under one equality matcher with a non-empty value (one
  // on a label other than __name__ when it has one: more selective).
  std::unordered_map<std::string, std::vector<uint32_t>> candidates;
  std::vector<uint32_t> unindexed;
  for (uint32_t i = 0; i < next.size(); ++i) {
    const Definition& d = *next[i]->definition;
    if (!d.datasource.empty()) continue;  // fed by its source, never by local samples
    for (const auto& selector : d.selectors) {
      const LabelMatcher* key = nullptr;
      for (const auto& m : selector) {
        if (m.type() != MatchType::kEqual || m.value().empty()) continue;
        if (key == nullptr || key->name() == kMetricNameLabel) key = &m;
      }
      auto& list = key ? candidates[key->name() + '\0' + key->value()] : unindexed;
      if (list.empty() || list.back() != i) list.push_back(i);
    }
  }
  {
    std::unique_lock lock(index_mutex_);
    slots_ = next;
    watching_.clear();
    candidates_ = std::move(candidates);
    unindexed_ = std::move(unindexed);
    ++generation_;
  }
  for (auto& s : next) publish(*s);
  pending_.store(true);
  {
    std::lock_guard lock(wake_mutex_);
    refresh_pending_ = true;
  }
  wake_.notify_all();
  refresh_wake_.notify_all();
}

Status Evaluator::record_band(const Slot& slot, TimestampMs now) {
  const Definition& d = *slot.definition;
  const std::string prefix = key_prefix(d.id, "band");
  std::optional<std::string> last;
  auto s = state_.scan_state_reverse(prefix, [&](std::string_view, std::string_view value) {
    last = std::string(value);
    return false;
  });
  if (!s) return s;
  const std::string encoded = encode_band(d.band);
  if (last == encoded) return Status::ok();
  std::string key = prefix;
  append_big_endian(key, static_cast<uint64_t>(now), 8);
  const std::pair<std::string, std::string> puts[] = {{std::move(key), encoded}};
  return writer_.write("kpi " + d.id + ": band", puts);
}

void Evaluator::observe(std::span<const store::Sample> samples) {
  if (samples.empty()) return;
  // Per-thread scratch: the newest timestamp per touched slot, and samples of unknown series.
  thread_local std::vector<TimestampMs> newest;
  thread_local std::vector<uint32_t> touched;
  thread_local std::vector<store::SeriesId> unknown;
  unknown.clear();
  // A sample stamped far ahead of the clock counts as arriving at most kFutureTolerance ahead,
  // so it cannot hold off staleness until its time comes.
  const TimestampMs latest = clock_.now_ms() + kFutureTolerance;
  for (int pass = 0; pass < 2; ++pass) {
    std::shared_lock lock(index_mutex_);
    if (slots_.empty()) return;
    newest.assign(slots_.size(), std::numeric_limits<TimestampMs>::min());
    touched.clear();
    auto mark = [&](const store::Sample& s, const std::vector<uint32_t>& hits) {
      // A stale marker says the series ended: no data arrived, so it keeps no KPI fresh (and
      // changes no value: range functions skip it).
      if (is_stale_marker(s.value)) return;
      for (uint32_t i : hits) {
        if (newest[i] == std::numeric_limits<TimestampMs>::min()) touched.push_back(i);
        newest[i] = std::max(newest[i], std::min(s.timestamp, latest));
      }
    };
    if (pass == 0) {
      for (const auto& s : samples) {
        auto it = watching_.find(s.series);
        if (it == watching_.end()) {
          unknown.push_back(s.series);
        } else {
          mark(s, it->second);
        }
      }
    } else {
      // Series matched just now; only the samples of those.
      for (const auto& s : samples) {
        if (!std::binary_search(unknown.begin(), unknown.end(), s.series)) continue;
        if (auto it = watching_.find(s.series); it != watching_.end()) mark(s, it->second);
      }
    }
    for (uint32_t i : touched) {
      Slot& slot = *slots_[i];
      TimestampMs seen = slot.last_sample.load(std::memory_order_relaxed);
      while (newest[i] > seen &&
             !slot.last_sample.compare_exchange_weak(seen, newest[i], std::memory_order_relaxed)) {
      }
      if (!slot.dirty.load(std::memory_order_relaxed)) slot.dirty.store(true);
    }
    if (!touched.empty()) {
      pending_.store(true);
      wake_.notify_one();
    }
    lock.unlock();
    if (pass == 1 || unknown.empty()) break;
    std::sort(unknown.begin(), unknown.end());
    unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
    match_series(unknown);
  }
}

void Evaluator::match_series(std::span<const store::SeriesId> ids) {
  // Matching runs under the shared lock, so other writers' observe() go on meanwhile; only
  // storing the results takes the exclusive one (and is skipped if the KPI set changed).
  std::vector<std::pair<store::SeriesId, std::vector<uint32_t>>> found;
  uint64_t generation = 0;
  {
    std::shared_lock lock(index_mutex_);
    generation = generation_;
    std::vector<uint32_t> candidates;
    std::string key;
    for (store::SeriesId id : ids) {
      if (watching_.contains(id)) continue;
      std::vector<uint32_t> hits;
      if (const auto labels = samples_.labels(id)) {
        candidates = unindexed_;
        for (const auto& label : labels->items()) {
          key.assign(label.name).push_back('\0');
          key.append(label.value);
          if (auto it = candidates_.find(key); it != candidates_.end()) {
            candidates.insert(candidates.end(), it->second.begin(), it->second.end());
          }
        }
        std::sort(candidates.begin(), candidates.end());
        candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
        for (uint32_t i : candidates) {
          const Definition& d = *slots_[i]->definition;
          if (std::any_of(d.selectors.begin(), d.selectors.end(),
                          [&](const auto& matchers) { return matches_all(*labels, matchers); })) {
            hits.push_back(i);
          }
        }
      }
      found.emplace_back(id, std::move(hits));
    }
  }
  std::unique_lock lock(index_mutex_);
  if (generation != generation_) return;  // set_kpis cleared the map; the next batch rematches
  for (auto& [id, hits] : found) watching_.emplace(id, std::move(hits));
}

void Evaluator::run() {
  using std::chrono::steady_clock;
  const auto tick =
      std::chrono::milliseconds(std::min<DurationMs>(1000, options_.reevaluate_interval));
  // Sample-triggered evaluation may use a fifth of this thread's time, so that under heavy
  // ingest (many KPIs dirty in every round) it takes at most that much CPU from ingest: a
  // budget that refills at 1/5 of wall time, holding at most kBurst, so occasional long rounds
  // never pause. When it runs out, the thread sleeps until it is back to zero.
  constexpr auto kBurst = std::chrono::milliseconds(20);
  steady_clock::duration budget = kBurst;
  auto last = steady_clock::now();
  for (;;) {
    {
      std::unique_lock lock(wake_mutex_);
      wake_.wait_for(lock, tick, [this] { return stopping_ || pending_.load(); });
      if (stopping_) return;
    }
    const auto now = steady_clock::now();
    budget = std::min<steady_clock::duration>(kBurst, budget + (now - last) / 5);
    last = now;
    pending_.store(false);
    const Round round = evaluate_round(true);
    if (round.more_due) pending_.store(true);
    budget -= round.sample_work;
    if (budget < steady_clock::duration::zero()) {
      std::unique_lock lock(wake_mutex_);
      wake_.wait_for(lock, -budget * 5, [this] { return stopping_; });
      if (stopping_) return;
    }
  }
}

void Evaluator::run_refresh() {
  for (;;) {
    {
      std::unique_lock lock(wake_mutex_);
      refresh_wake_.wait_for(lock, std::chrono::seconds(1),
                             [this] { return stopping_ || refresh_pending_; });
      if (stopping_) return;
      refresh_pending_ = false;
    }
    refresh_due();
  }
}

void Evaluator::run_once() {
  evaluate_round(false);
  refresh_due();
  evaluate_remote();
}

Evaluator::Round Evaluator::evaluate_round(bool sliced) {
  std::lock_guard lock(round_mutex_);
  const auto all = slots();
  const TimestampMs now = clock_.now_ms();
  Round round;
  // KPIs with new samples first: they are what a waiting breach is in.
  const auto started = std::chrono::steady_clock::now();
  const std::stop_token stop = stop_source_.get_token();
  for (const auto& slot : all) {
    if (stop.stop_requested()) return round;
    if (!slot->dirty.exchange(false) || !slot->definition->datasource.empty()) continue;
    evaluate(*slot, now);
    if (metrics_) metrics_->by_sample->Increment();
  }
  const auto timer_started = std::chrono::steady_clock::now();
  round.sample_work = timer_started - started;
  // Then the timer's: windows moving on, and staleness (checked every round, so no_data shows
  // within a second). At most kTimerSlice of them per round; the rest follow at once, after
  // any new samples' KPIs.
  for (const auto& slot : all) {
    if (stop.stop_requested()) return round;
    if (!slot->definition->datasource.empty()) continue;  // evaluate_remote()'s
    const bool went_stale = slot->stale_status_possible &&
                            now - slot->last_sample.load() > slot->definition->stale_after;
    if (!went_stale && now - slot->last_evaluation < interval_of(*slot->definition)) continue;
    if (sliced && std::chrono::steady_clock::now() - timer_started > kTimerSlice) {
      round.more_due = true;
      break;
    }
    evaluate(*slot, now);
    if (metrics_) metrics_->by_timer->Increment();
  }
  return round;
}

void Evaluator::refresh_due() {
  std::vector<std::shared_ptr<Slot>> due;
  TimestampMs now = 0;
  {
    std::lock_guard lock(round_mutex_);
    now = clock_.now_ms();
    for (const auto& slot : slots()) {
      if (now < slot->next_refresh) continue;
      // Without a history store a KPI on a source has no history to compute from.
      if (!slot->definition->datasource.empty() && history_store_ == nullptr) continue;
      slot->next_refresh = detail::next_refresh_after(*slot->definition, now);
      due.push_back(slot);
    }
  }
  // Histories are read without the round lock, so evaluations go on meanwhile.
  for (const auto& slot : due) {
    {
      std::lock_guard lock(wake_mutex_);
      if (stopping_) return;
    }
    HistoryUpdate update;
    if (slot->definition->datasource.empty()) {
      update = detail::compute_history(engine_, *slot->definition, now, stop_source_.get_token());
    } else if (auto s = backfill_remote(*slot, now); !s) {
      update.at = now;
      update.error = s.message();
    } else {
      // The same history computation, over the local series of its values.
      Definition local = *slot->definition;
      local.expr.clear();
      local.denominator.reset();
      local.numerator = Term{};
      local.numerator.selector = remote_history_selector(local.id);
      local.numerator.over_time = "last";
      local.numerator.window = 300'000;
      update = detail::compute_history(engine_, local, now, stop_source_.get_token());
    }
    if (update.cancelled) {
      spdlog::info(
          "kpi {}: history computation abandoned as kpid stops (the last recorded "
          "baseline stands)",
          slot->definition->id);
      return;
    }
    std::lock_guard lock(round_mutex_);
    // A reload meanwhile replaced the slot: the update still holds for its successor when that
    // measures the same value over the same history.
    std::shared_ptr<Slot> target;
    for (const auto& current : slots()) {
      if (current == slot ||
          (current->definition->id == slot->definition->id &&
           current->definition->same_value(*slot->definition) &&
           history_spec(*current->definition) == history_spec(*slot->definition) &&
           current->definition->direction == slot->definition->direction)) {
        target = current;
        break;
      }
    }
    if (!target) continue;
    apply_history(*target, update);
    if (!target->definition->datasource.empty()) {
      publish(*target);  // its next round on the source classifies against the new baseline
      if (metrics_) metrics_->by_baseline->Increment();
      continue;
    }
    evaluate(*target, clock_.now_ms());
    if (metrics_) metrics_->by_baseline->Increment();
  }
}

void Evaluator::evaluate(Slot& slot, TimestampMs now) {
  const Definition& d = *slot.definition;
  slot.last_evaluation = now;
  if (!slot.last_sample_known) {
    // Newest sample already stored within stale_after (before this process saw any).
    TimestampMs newest = 0;
    std::vector<store::Point> points;
    for (const auto& selector : d.selectors) {
      for (const auto& ref : samples_.select(selector)) {
        points.clear();
        if (!samples_.read(ref.id, now - d.stale_after, now, points)) continue;
        // A stale marker is no data (see observe()).
        std::erase_if(points, [](const store::Point& p) { return is_stale_marker(p.value); });
        if (!points.empty()) newest = std::max(newest, points.back().timestamp);
      }
    }
    TimestampMs seen = slot.last_sample.load();
    while (newest > seen && !slot.last_sample.compare_exchange_weak(seen, newest)) {
    }
    slot.last_sample_known = true;
  }

  const TimestampMs newest = slot.last_sample.load();
  // observe() records no sample later than kFutureTolerance ahead.
  const TimestampMs at = std::max(newest, now);
  auto evaluated = detail::value_of(engine_, d, *slot.numerator, slot.denominator.get(), at);
  if (!evaluated) {
    spdlog::warn("kpi {}: evaluation failed: {}", d.id, evaluated.status().message());
  }
  const double value = evaluated ? *evaluated : kNaN;
  conclude(slot, now, value, slot.last_sample.load(), false);
}

void Evaluator::conclude(Slot& slot, TimestampMs now, double value, TimestampMs last_sample,
                         bool unknown) {
  const Definition& d = *slot.definition;
  slot.last_evaluation = now;
  const bool stale = last_sample == 0 || now - last_sample > d.stale_after;
  Health health = unknown ? Health::kUnknown : Health::kNoData;
  if (!unknown && !std::isnan(value) && !stale) {
    health = d.band ? classify(d.direction, *d.band, value) : Health::kOk;
    std::lock_guard lock(slot.mutex);
    if (health == Health::kOk && slot.view.baseline && slot.view.baseline->trusted &&
        is_anomalous(d.direction, slot.view.baseline->range, value)) {
      health = Health::kAnomalous;
    }
  }

  // The first sample ever seen is recorded once: only a KPI that has had data can page about
  // its absence (a fresh install must not page about data that was never sent).
  // A failed write is tried again in the next round (due at once for the timer).
  bool retry = false;
  if (slot.first_sample == 0 && last_sample != 0) {
    if (record_first_sample(slot, last_sample)) {
      slot.first_sample = last_sample;
    } else {
      retry = true;
    }
  }

  bool changed = false;
  {
    std::lock_guard lock(slot.mutex);
    changed = health != slot.view.status || !slot.has_record;
  }
  // Write, then apply: a status change is recorded before anyone sees it. When the write
  // fails the previous status stands (the next evaluation tries again).
  if (changed) {
    std::string key = key_prefix(d.id, "status");
    append_big_endian(key, static_cast<uint64_t>(now), 8);
    append_big_endian(key, slot.sequence, 4);
    std::string record(health_name(health));
    append_number(record, value);
    const std::pair<std::string, std::string> puts[] = {{std::move(key), std::move(record)}};
    if (writer_.write("kpi " + d.id + ": status " + std::string(health_name(health)), puts)) {
      ++slot.sequence;
      slot.has_record = true;
      spdlog::info("kpi {}: {} (value {})", d.id, health_name(health), value);
    } else {
      changed = false;  // the view keeps its recorded status
      retry = true;
    }
  }
  if (retry) {
    slot.last_evaluation = now - interval_of(d);
    slot.remote_at = std::numeric_limits<TimestampMs>::min();
  }
  {
    std::lock_guard lock(slot.mutex);
    slot.view.value = value;
    slot.view.evaluated_at = now;
    slot.view.last_sample = last_sample;
    slot.view.first_sample = slot.first_sample;
    if (changed) {
      slot.view.status = health;
      slot.view.since = now;
    }
    slot.stale_status_possible = slot.view.status != Health::kNoData;
  }
  publish(slot);
  if (EvaluationListener* listener = listener_.load()) {
    KpiView view;
    {
      std::lock_guard lock(slot.mutex);
      view = slot.view;
    }
    listener->evaluated(view);
  }
}

// --- KPIs on data sources ---------------------------------------------------------------------

void Evaluator::set_sources(std::map<std::string, datasource::Source*, std::less<>> sources) {
  std::lock_guard lock(sources_mutex_);
  sources_ = std::move(sources);
}

void Evaluator::run_remote() {
  for (;;) {
    {
      std::unique_lock lock(wake_mutex_);
      remote_wake_.wait_for(lock, std::chrono::milliseconds(250), [this] { return stopping_; });
      if (stopping_) return;
    }
    evaluate_remote();
  }
}

void Evaluator::evaluate_remote() {
  // Due KPIs by source and aligned time: each group is one Source::instant_many.
  struct Group {
    datasource::Source* source = nullptr;
    std::string name;
    TimestampMs at = 0;
    std::vector<std::shared_ptr<Slot>> slots;
  };
  std::map<std::pair<std::string, TimestampMs>, Group> groups;
  {
    std::lock_guard round(round_mutex_);
    const TimestampMs now = clock_.now_ms();
    std::lock_guard lock(sources_mutex_);
    for (const auto& slot : slots()) {
      const Definition& d = *slot->definition;
      if (d.datasource.empty()) continue;
      const DurationMs interval = interval_of(d);
      const TimestampMs at =
          (now >= 0 ? now / interval : (now - interval + 1) / interval) * interval;
      if (at <= slot->remote_at) continue;
      slot->remote_at = at;
      Group& g = groups[{d.datasource, at}];
      g.name = d.datasource;
      g.at = at;
      auto it = sources_.find(d.datasource);
      g.source = it == sources_.end() ? nullptr : it->second;
      g.slots.push_back(slot);
    }
  }
  if (groups.empty()) return;
  // Sources are asked in parallel, so a slow or failing one does not hold up the others.
  std::vector<Group*> list;
  for (auto& [key, g] : groups) list.push_back(&g);
  std::vector<std::thread> threads;
  auto run_group = [this](Group& g) {
    std::vector<std::string> queries;
    std::vector<std::pair<size_t, size_t>> span_of;  // each slot's queries: first, count
    for (const auto& slot : g.slots) {
      auto q = remote_queries(*slot->definition);
      span_of.emplace_back(queries.size(), q.size());
      queries.insert(queries.end(), q.begin(), q.end());
    }
    Result<std::vector<query::QueryResult>> answers =
        g.source == nullptr ? Result<std::vector<query::QueryResult>>(
                                  Status::not_found("datasource " + g.name + " is not configured"))
                            : g.source->instant_many(queries, g.at);
    if (stop_source_.get_token().stop_requested()) return;
    std::lock_guard round(round_mutex_);
    const auto current = slots();
    for (size_t i = 0; i < g.slots.size(); ++i) {
      Slot& slot = *g.slots[i];
      // A reload meanwhile dropped it: nothing of it is applied.
      if (std::find(current.begin(), current.end(), g.slots[i]) == current.end()) continue;
      if (!answers) {
        conclude(slot, g.at, kNaN, slot.last_sample.load(), true);
        continue;
      }
      const auto [first, count] = span_of[i];
      auto value = value_from_answers(*slot.definition, (*answers)[first],
                                      count > 1 ? &(*answers)[first + 1] : nullptr);
      if (!value) {
        spdlog::warn("kpi {}: evaluation failed: {}", slot.definition->id,
                     value.status().message());
      }
      const double v = value ? *value : kNaN;
      // The source had data for it at `at`: that is its newest sample as far as kpid knows.
      if (!std::isnan(v)) {
        TimestampMs seen = slot.last_sample.load();
        while (g.at > seen && !slot.last_sample.compare_exchange_weak(seen, g.at)) {
        }
      }
      conclude(slot, g.at, v, slot.last_sample.load(), false);
      if (metrics_) metrics_->by_timer->Increment();
      if (history_store_ != nullptr && slot.history_ready.load() && std::isfinite(v)) {
        const store::Sample sample{slot.history_series.load(), g.at, v};
        if (auto s = history_store_->append(std::span(&sample, 1)); !s) {
          spdlog::warn("kpi {}: storing its value: {}", slot.definition->id, s.message());
        }
      }
    }
    if (EvaluationListener* listener = listener_.load()) {
      SourceObservation o;
      o.name = g.name;
      o.up = answers.is_ok();
      if (!o.up) {
        o.error = answers.status().message();
        o.failing_since = g.source != nullptr && g.source->failing_since() != 0
                              ? g.source->failing_since()
                              : g.at;
      }
      listener->source_evaluated(o);
    }
  };
  for (size_t i = 1; i < list.size(); ++i) {
    threads.emplace_back([&run_group, g = list[i]] { run_group(*g); });
  }
  run_group(*list[0]);
  for (auto& t : threads) t.join();
}

Status Evaluator::backfill_remote(Slot& slot, TimestampMs now) {
  // Read once per process: from then on every evaluation appends its value.
  if (slot.history_ready.load()) return Status::ok();
  const Definition& d = *slot.definition;
  datasource::Source* source = nullptr;
  {
    std::lock_guard lock(sources_mutex_);
    if (auto it = sources_.find(d.datasource); it != sources_.end()) source = it->second;
  }
  if (source == nullptr)
    return Status::not_found("datasource " + d.datasource + " is not configured");
  if (slot.history_series.load() == 0) {
    auto labels = Labels::from({{std::string(kMetricNameLabel), "kpid_kpi_value"}, {"kpi", d.id}});
    if (!labels) return labels.status();
    auto id = history_store_->resolve(labels->encode());
    if (!id) return id.status();
    slot.history_series.store(*id);
  }
  constexpr DurationMs kStep = 300'000;
  constexpr int64_t kPiece = 10'000;  // steps per query_range: under Prometheus' 11,000 points
  const std::string key = key_prefix(d.id, "remote_history");
  // The range read so far: "FROM TO" (ms).
  TimestampMs from = 0, to = 0;
  if (auto stored = state_.get_state(key); !stored) {
    return stored.status();
  } else if (*stored) {
    std::sscanf((*stored)->c_str(), "%" SCNd64 " %" SCNd64, &from, &to);
  }
  const TimestampMs end = now / kStep * kStep;
  TimestampMs start = (now - history_spec(d).window) / kStep * kStep;
  // Read already up to `to`: only the gap since (a restart); nothing when `to` is this step.
  if (to != 0) start = std::max(start, to + kStep);
  if (start <= end) {
    const std::string query = d.promql();
    for (TimestampMs piece = start; piece <= end; piece += kPiece * kStep) {
      if (stop_source_.get_token().stop_requested()) return Status::unavailable("cancelled");
      const TimestampMs last = std::min(end, piece + (kPiece - 1) * kStep);
      auto result = source->range(query, piece, last, kStep);
      if (!result) return result.status();
      if (result->series.size() > 1) {
        return Status::invalid_argument("its value yielded " +
                                        std::to_string(result->series.size()) + " series");
      }
      std::vector<store::Sample> samples;
      if (!result->series.empty()) {
        for (const auto& p : result->series.front().points) {
          // A zero denominator is no data, as in the evaluation.
          if (std::isfinite(p.value))
            samples.push_back({slot.history_series.load(), p.timestamp, p.value});
        }
      }
      if (!samples.empty()) {
        if (auto s = history_store_->append(samples); !s) return s;
      }
    }
    // Write, then apply: the record follows the samples it describes.
    const std::string record =
        std::to_string(from == 0 ? start : std::min(from, start)) + " " + std::to_string(end);
    const std::pair<std::string, std::string> puts[] = {{key, record}};
    if (auto s = writer_.write("kpi " + d.id + ": remote history", puts); !s) return s;
  }
  slot.history_ready.store(true);
  return Status::ok();
}

void Evaluator::apply_history(Slot& slot, const HistoryUpdate& update) {
  const Definition& d = *slot.definition;
  if (!update.error.empty()) {
    spdlog::warn("kpi {}: computing its value history: {}", d.id, update.error);
    slot.next_refresh = std::min(slot.next_refresh, update.at + 60'000);  // retry soon
    return;
  }
  if (update.breach_fraction && !slot.breach_checked) {
    slot.breach_checked = true;
    if (*update.breach_fraction > 0.5) {
      spdlog::warn(
          "kpi {}: its band would have been breached {:.0f}% of the time over the last "
          "{} ({} values): check its thresholds",
          d.id, *update.breach_fraction * 100, format_duration(history_spec(d).window),
          update.points);
    }
  }
  // Write, then apply: a changed baseline is recorded before the view shows it; when the write
  // fails the previous baseline stands and the history is recomputed soon.
  const auto& baseline = update.baseline;
  if (baseline &&
      (!slot.recorded_baseline || slot.recorded_baseline->lower != baseline->range.lower ||
       slot.recorded_baseline->center != baseline->range.center ||
       slot.recorded_baseline->upper != baseline->range.upper)) {
    std::string key = key_prefix(d.id, "baseline");
    append_big_endian(key, static_cast<uint64_t>(update.at), 8);
    std::string record;
    append_number(record, baseline->range.lower);
    append_number(record, baseline->range.center);
    append_number(record, baseline->range.upper);
    append_number(record, baseline->trusted ? 1 : 0);
    const std::pair<std::string, std::string> puts[] = {{std::move(key), std::move(record)}};
    if (!writer_.write("kpi " + d.id + ": baseline", puts)) {
      slot.next_refresh = std::min(slot.next_refresh, update.at + 60'000);
      return;
    }
    slot.recorded_baseline = baseline->range;
  }
  std::lock_guard lock(slot.mutex);
  slot.view.history_start = update.history_start;
  slot.view.suggested = update.suggested;
  slot.view.baseline = update.baseline;
}

TimestampMs Evaluator::load_first_sample(const std::string& id) const {
  auto stored = state_.get_state(first_sample_key(id));
  if (!stored) {
    spdlog::error("kpi {}: reading its first sample time: {}", id, stored.status().message());
  } else if (*stored) {
    return static_cast<TimestampMs>(std::strtod((*stored)->c_str(), nullptr));
  }
  // Recorded before first samples were: a status other than no_data says it had data then.
  TimestampMs first = 0;
  const std::string prefix = key_prefix(id, "status");
  auto s = state_.scan_state(prefix, [&](std::string_view key, std::string_view value) {
    auto h = parse_health(value.substr(0, value.find(' ')));
    if (!h || *h == Health::kNoData) return true;
    first = std::max<TimestampMs>(1, time_of_key(key, prefix.size()));
    return false;
  });
  if (!s) spdlog::error("kpi {}: reading its status history: {}", id, s.message());
  return first;
}

bool Evaluator::record_first_sample(Slot& slot, TimestampMs time) {
  std::string record;
  append_number(record, static_cast<double>(time));
  const std::pair<std::string, std::string> puts[] = {
      {first_sample_key(slot.definition->id), std::move(record)}};
  return writer_.write("kpi " + slot.definition->id + ": first sample", puts).is_ok();
}

void Evaluator::publish(Slot& slot) {
  if (!metrics_) return;
  std::lock_guard lock(slot.mutex);
  if (slot.value_gauge) slot.value_gauge->Set(slot.view.value);
  for (int h = 0; h < 6; ++h) {
    if (slot.status_gauges[h]) {
      slot.status_gauges[h]->Set(static_cast<int>(slot.view.status) == h ? 1 : 0);
    }
  }
  if (slot.view.baseline) metrics_->set_baseline(slot, slot.view.baseline->range);
}

}  // namespace kpid::kpi
