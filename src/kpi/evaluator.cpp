#include "kpid/kpi/evaluator.h"

#include "kpid/core/text.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

namespace kpid::kpi {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr DurationMs k5m = 5 * 60'000;
constexpr DurationMs k1h = 60 * 60'000;
// A sample stamped ahead of kpid's clock (a client's clock running a little fast) counts at
// once: the KPI is evaluated at that sample's time, up to this far ahead of now.
constexpr DurationMs kFutureTolerance = 10'000;
// How much timer-driven evaluation one round does before it lets new samples' KPIs go first.
constexpr auto kTimerSlice = std::chrono::milliseconds(1);

// What a KPI without a [kpi.baseline] uses for its history (threshold suggestions only).
BaselineSpec history_spec(const Definition& d) { return d.baseline ? *d.baseline : BaselineSpec{}; }

// --- state store records --------------------------------------------------------------------
// Keys: "kpi/<id>/<kind>/" + big-endian time (+ sequence), so a prefix scan is in time order.
// Values: space-separated numbers in shortest round-trip form ("nan" for none).

std::string key_prefix(std::string_view id, std::string_view kind) {
  std::string k = "kpi/";
  k.append(id);
  k.push_back('/');
  k.append(kind);
  k.push_back('/');
  return k;
}

TimestampMs time_of_key(std::string_view key, size_t prefix_size) {
  if (key.size() < prefix_size + 8) return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(key[prefix_size + i]);
  return static_cast<TimestampMs>(v);
}

void append_number(std::string& out, double v) {
  if (!out.empty()) out.push_back(' ');
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc() ? end : buf);
}

std::vector<double> parse_numbers(std::string_view text) {
  std::vector<double> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    double v = kNaN;
    std::from_chars(text.data() + pos, text.data() + end, v);
    out.push_back(v);
    pos = end + 1;
  }
  return out;
}

std::optional<Health> parse_health(std::string_view text) {
  for (Health h :
       {Health::kOk, Health::kWarn, Health::kCrit, Health::kAnomalous, Health::kNoData}) {
    if (health_name(h) == text) return h;
  }
  return std::nullopt;
}

std::string encode_band(const std::optional<Band>& band) {
  if (!band) return "none";
  std::string out;
  append_number(out, band->target ? *band->target : kNaN);
  for (double v :
       {band->warn, band->crit, band->warn_low, band->crit_low, band->warn_high, band->crit_high}) {
    append_number(out, v);
  }
  return out;
}

// A band from its record's numbers (see encode_band); nullopt for "none".
std::optional<Band> band_from(const std::vector<double>& v) {
  if (v.size() != 7) return std::nullopt;
  Band b;
  if (!std::isnan(v[0])) b.target = v[0];
  b.warn = v[1];
  b.crit = v[2];
  b.warn_low = v[3];
  b.crit_low = v[4];
  b.warn_high = v[5];
  b.crit_high = v[6];
  return b;
}

// The thresholds of a band by name, in the order the API lists them.
std::vector<std::pair<std::string, double>> thresholds_of(Direction d, const Band& b) {
  std::vector<std::pair<std::string, double>> out;
  if (b.target) out.emplace_back("target", *b.target);
  if (d == Direction::kInRange) {
    out.emplace_back("warn_low", b.warn_low);
    out.emplace_back("crit_low", b.crit_low);
    out.emplace_back("warn_high", b.warn_high);
    out.emplace_back("crit_high", b.crit_high);
  } else {
    out.emplace_back("warn", b.warn);
    out.emplace_back("crit", b.crit);
  }
  return out;
}

// The one value of an across-series aggregation, NaN when no series had samples.
Result<double> term_value(const query::Engine& engine, const query::Expr& expr, TimestampMs t) {
  auto result = engine.instant(expr, t);
  if (!result) return result.status();
  if (result->series.empty() || result->series.front().points.empty()) return kNaN;
  return result->series.front().points.front().value;
}

double ratio(const Definition& d, double numerator, double denominator) {
  if (std::isnan(numerator) || std::isnan(denominator) || denominator == 0) return kNaN;
  return numerator / denominator * d.scale;
}

// Range query of `expr` in pieces the engine's max_points_per_series allows.
Status range_points(const query::Engine& engine, const query::Expr& expr, TimestampMs first,
                    TimestampMs last, DurationMs step, std::vector<store::Point>& out) {
  const int64_t per_query = std::max<int64_t>(1, engine.options().max_points_per_series);
  for (TimestampMs from = first; from <= last; from += per_query * step) {
    const TimestampMs to = std::min(last, from + (per_query - 1) * step);
    auto result = engine.range(expr, from, to, step);
    if (!result) return result.status();
    if (!result->series.empty()) {
      const auto& points = result->series.front().points;
      out.insert(out.end(), points.begin(), points.end());
    }
  }
  return Status::ok();
}

// Joins numerator and denominator points by timestamp into ratio points.
std::vector<store::Point> join_ratio(const Definition& d, const std::vector<store::Point>& num,
                                     const std::vector<store::Point>& den) {
  std::vector<store::Point> out;
  size_t j = 0;
  for (const auto& p : num) {
    while (j < den.size() && den[j].timestamp < p.timestamp) ++j;
    if (j == den.size() || den[j].timestamp != p.timestamp) continue;
    const double v = ratio(d, p.value, den[j].value);
    if (!std::isnan(v)) out.push_back({p.timestamp, v});
  }
  return out;
}

Result<query::ExprPtr> term_expr(const Term& term, DurationMs window) {
  return query::parse_promql(term.promql(window));
}

// The KPI's value at `time` from its compiled terms (`den` null unless a ratio): NaN when
// undefined.
Result<double> value_of(const query::Engine& engine, const Definition& d, const query::Expr& num,
                        const query::Expr* den, TimestampMs time) {
  auto n = term_value(engine, num, time);
  if (!n || den == nullptr) return n;
  auto v = term_value(engine, *den, time);
  if (!v) return v.status();
  return ratio(d, *n, *v);
}

// The KPI's value at first, first + step, ... <= last, each term's window replaced by the given
// one; steps where it is undefined (no samples, zero denominator) are left out.
Result<std::vector<store::Point>> value_points(const query::Engine& engine, const Definition& d,
                                               DurationMs num_window, DurationMs den_window,
                                               TimestampMs first, TimestampMs last,
                                               DurationMs step) {
  auto points = [&](const Term& term, DurationMs window, std::vector<store::Point>& into) {
    auto expr = term_expr(term, window);
    return expr ? range_points(engine, **expr, first, last, step, into) : expr.status();
  };
  std::vector<store::Point> num;
  if (auto s = points(d.numerator, num_window, num); !s) return s;
  if (!d.denominator) {
    std::erase_if(num, [](const store::Point& p) { return std::isnan(p.value); });
    return num;
  }
  std::vector<store::Point> den;
  if (auto s = points(*d.denominator, den_window, den); !s) return s;
  return join_ratio(d, num, den);
}

// When a KPI's history is next due for recomputation after one at `now`.
TimestampMs next_refresh_after(const Definition& d, TimestampMs now) {
  const BaselineSpec spec = history_spec(d);
  TimestampMs next = now + spec.refresh;
  // The seasonal range is per hour of the week: recompute as each hour begins.
  if (d.baseline && spec.method == BaselineMethod::kSeasonal) {
    next = std::min(next, (now / k1h + 1) * k1h);
  }
  return next;
}

}  // namespace

// --- free functions ---------------------------------------------------------------------------

Result<double> evaluate_value(const query::Engine& engine, const Definition& kpi,
                              TimestampMs time) {
  auto num = term_expr(kpi.numerator, kpi.numerator.window);
  if (!num) return num.status();
  query::ExprPtr den;
  if (kpi.denominator) {
    auto parsed = term_expr(*kpi.denominator, kpi.denominator->window);
    if (!parsed) return parsed.status();
    den = std::move(parsed).value();
  }
  return value_of(engine, kpi, **num, den.get(), time);
}

Result<std::vector<store::Point>> value_history(const query::Engine& engine, const Definition& kpi,
                                                TimestampMs start, TimestampMs end) {
  const bool quantile = kpi.numerator.over_time == "quantile" ||
                        (kpi.denominator && kpi.denominator->over_time == "quantile");
  // Quantiles come from sketches only over whole hours; otherwise 5m steps while that keeps
  // the history at 10,000 values or fewer.
  const DurationMs step = quantile || (end - start) / k5m > 10'000 ? k1h : k5m;
  const TimestampMs first = (start >= 0 ? start / step + 1 : start / step) * step;
  const TimestampMs last = (end >= 0 ? end / step : (end - step + 1) / step) * step;
  if (first > last) return std::vector<store::Point>();
  auto whole_steps = [step](DurationMs window) { return (window + step - 1) / step * step; };
  return value_points(engine, kpi, whole_steps(kpi.numerator.window),
                      kpi.denominator ? whole_steps(kpi.denominator->window) : 0, first, last,
                      step);
}

namespace {

// A KPI's value history over its baseline (or default) window, and what follows from it.
HistoryUpdate compute_history(const query::Engine& engine, const Definition& d, TimestampMs now) {
  HistoryUpdate update;
  update.at = now;
  const BaselineSpec spec = history_spec(d);
  auto history = value_history(engine, d, now - spec.window, now);
  if (!history) {
    update.error = history.status().message();
    return update;
  }
  const auto& points = *history;
  update.points = points.size();
  update.history_start = points.empty() ? 0 : points.front().timestamp;
  const bool enough = !points.empty() && now - update.history_start >= spec.min_history;
  if (enough) {
    if (auto range = quantile_baseline(points, 0.05, 0.95)) {
      update.suggested = suggest_thresholds(d.direction, *range);
    }
    if (d.band) {
      if (auto f = breach_fraction(d.direction, *d.band, points)) update.breach_fraction = *f;
    }
  }
  if (d.baseline) {
    Result<Baseline> range = Status::not_found("");
    switch (spec.method) {
      case BaselineMethod::kQuantile:
        range = quantile_baseline(points, spec.quantile_low, spec.quantile_high);
        break;
      case BaselineMethod::kStddev: range = stddev_baseline(points, spec.k); break;
      case BaselineMethod::kEwma: range = ewma_baseline(points, spec.alpha, spec.k); break;
      case BaselineMethod::kSeasonal: range = seasonal_baseline(points, now, spec.k); break;
    }
    if (range) update.baseline = BaselineState{*range, enough, now};
  }
  return update;
}

}  // namespace

// --- the evaluator ------------------------------------------------------------------------------

struct Evaluator::Slot {
  std::shared_ptr<const Definition> definition;
  query::ExprPtr numerator;
  query::ExprPtr denominator;
  std::atomic<bool> dirty{true};
  std::atomic<TimestampMs> last_sample{0};
  // Evaluator-thread state (under round_mutex_).
  bool last_sample_known = false;
  bool has_record = false;  // a status change is already recorded for this id
  uint32_t sequence = 0;
  TimestampMs last_evaluation = std::numeric_limits<TimestampMs>::min();
  TimestampMs next_refresh = 0;
  bool breach_checked = false;
  bool stale_status_possible = false;  // its status is not no_data yet
  std::optional<Baseline> recorded_baseline;
  // What readers see, under `mutex`.
  mutable std::mutex mutex;
  KpiView view;
  // Its gauges (owned by the families).
  prometheus::Gauge* value_gauge = nullptr;
  prometheus::Gauge* status_gauges[5] = {};
  prometheus::Gauge* baseline_gauges[3] = {};
  std::vector<prometheus::Gauge*> threshold_gauges;
};

struct Evaluator::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : value(prometheus::BuildGauge()
                  .Name("kpid_kpi_value")
                  .Help("The KPI's current value (NaN while it has none).")
                  .Register(r)),
        baseline(prometheus::BuildGauge()
                     .Name("kpid_kpi_baseline")
                     .Help("The KPI's baseline (normal operating range) by bound: lower, "
                           "center, upper.")
                     .Register(r)),
        threshold(prometheus::BuildGauge()
                      .Name("kpid_kpi_threshold")
                      .Help("The KPI's configured thresholds by level (target, warn, crit); "
                            "in_range KPIs also carry side=\"low|high\".")
                      .Register(r)),
        status(prometheus::BuildGauge()
                   .Name("kpid_kpi_status")
                   .Help("1 for the KPI's current status (ok, warn, crit, anomalous, no_data), "
                         "0 for the others.")
                   .Register(r)),
        evaluations(prometheus::BuildCounter()
                        .Name("kpid_kpi_evaluations_total")
                        .Help("KPI evaluations by trigger: sample (new data), timer (windows "
                              "moving on), baseline (a refreshed baseline).")
                        .Register(r)),
        by_sample(&evaluations.Add({{"trigger", "sample"}})),
        by_timer(&evaluations.Add({{"trigger", "timer"}})),
        by_baseline(&evaluations.Add({{"trigger", "baseline"}})) {}

  prometheus::Family<prometheus::Gauge>& value;
  prometheus::Family<prometheus::Gauge>& baseline;
  prometheus::Family<prometheus::Gauge>& threshold;
  prometheus::Family<prometheus::Gauge>& status;
  prometheus::Family<prometheus::Counter>& evaluations;
  prometheus::Counter* by_sample;
  prometheus::Counter* by_timer;
  prometheus::Counter* by_baseline;

  void add(Slot& s) {
    const Definition& d = *s.definition;
    const std::map<std::string, std::string> labels = {{"kpi", d.id}, {"owner", d.owner}};
    auto with = [&](const char* name, std::string value) {
      auto l = labels;
      l.emplace(name, std::move(value));
      return l;
    };
    s.value_gauge = &value.Add(labels);
    for (Health h :
         {Health::kOk, Health::kWarn, Health::kCrit, Health::kAnomalous, Health::kNoData}) {
      s.status_gauges[static_cast<int>(h)] =
          &status.Add(with("status", std::string(health_name(h))));
    }
    if (d.band) {
      for (const auto& [name, v] : thresholds_of(d.direction, *d.band)) {
        auto l = labels;
        if (auto underscore = name.find('_'); underscore != std::string::npos) {
          l.emplace("level", name.substr(0, underscore));
          l.emplace("side", name.substr(underscore + 1));
        } else {
          l.emplace("level", name);
        }
        auto* g = &threshold.Add(l);
        g->Set(v);
        s.threshold_gauges.push_back(g);
      }
    }
  }

  void set_baseline(Slot& s, const Baseline& b) {
    if (s.baseline_gauges[0] == nullptr) {
      const Definition& d = *s.definition;
      int i = 0;
      for (const char* bound : {"lower", "center", "upper"}) {
        s.baseline_gauges[i++] =
            &baseline.Add({{"kpi", d.id}, {"owner", d.owner}, {"bound", bound}});
      }
    }
    s.baseline_gauges[0]->Set(b.lower);
    s.baseline_gauges[1]->Set(b.center);
    s.baseline_gauges[2]->Set(b.upper);
  }

  void remove(Slot& s) {
    if (s.value_gauge) value.Remove(s.value_gauge);
    for (auto*& g : s.status_gauges) {
      if (g) status.Remove(g);
      g = nullptr;
    }
    for (auto*& g : s.baseline_gauges) {
      if (g) baseline.Remove(g);
      g = nullptr;
    }
    for (auto* g : s.threshold_gauges) threshold.Remove(g);
    s.threshold_gauges.clear();
    s.value_gauge = nullptr;
  }
};

Evaluator::Evaluator(const store::SampleStore& samples, store::StateStore& state,
                     const query::Engine& engine, metrics::Metrics* metrics, const Clock& clock,
                     EvaluatorOptions options)
    : samples_(samples), state_(state), engine_(engine), clock_(clock), options_(options) {
  if (metrics != nullptr) metrics_ = std::make_unique<Metrics>(metrics->registry());
  if (options_.background) {
    thread_ = std::thread([this] { run(); });
    refresh_thread_ = std::thread([this] { run_refresh(); });
  }
}

Evaluator::~Evaluator() {
  stop();
  std::lock_guard round(round_mutex_);
  if (metrics_) {
    for (auto& s : slots_) metrics_->remove(*s);
  }
}

void Evaluator::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  refresh_wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (refresh_thread_.joinable()) refresh_thread_.join();
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
    slot->numerator = std::move(term_expr(def.numerator, def.numerator.window)).value();
    if (def.denominator) {
      slot->denominator = std::move(term_expr(*def.denominator, def.denominator->window)).value();
    }
    slot->view.definition = slot->definition;
    slot->view.value = kNaN;
    auto it = old.find(def.id);
    if (it != old.end()) {
      Slot& was = *it->second;
      std::lock_guard lock(was.mutex);
      slot->has_record = was.has_record;
      slot->sequence = was.sequence;
      slot->view.status = was.view.status;
      slot->view.since = was.view.since;
      if (was.definition->same_value(def)) {
        slot->view = was.view;
        slot->view.definition = slot->definition;
        if (!slot->definition->baseline) slot->view.baseline.reset();
        slot->last_sample.store(was.last_sample.load());
        slot->last_sample_known = was.last_sample_known;
        slot->recorded_baseline = was.recorded_baseline;
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
    }
    record_band(*slot, now);
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
    for (const Term* term : {&d.numerator, d.denominator ? &*d.denominator : nullptr}) {
      if (term == nullptr) continue;
      const LabelMatcher* key = nullptr;
      for (const auto& m : term->matchers) {
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

void Evaluator::record_band(const Slot& slot, TimestampMs now) {
  const Definition& d = *slot.definition;
  const std::string prefix = key_prefix(d.id, "band");
  std::optional<std::string> last;
  auto s = state_.scan_state_reverse(prefix, [&](std::string_view, std::string_view value) {
    last = std::string(value);
    return false;
  });
  const std::string encoded = encode_band(d.band);
  if (!s || last == encoded) return;
  std::string key = prefix;
  append_big_endian(key, static_cast<uint64_t>(now), 8);
  if (auto w = state_.write_state(std::vector<std::pair<std::string, std::string>>{{key, encoded}});
      !w) {
    spdlog::error("kpi {}: recording its band: {}", d.id, w.message());
  }
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
      if (const Labels* labels = samples_.labels(id)) {
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
          if (matches_all(*labels, d.numerator.matchers) ||
              (d.denominator && matches_all(*labels, d.denominator->matchers))) {
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
}

Evaluator::Round Evaluator::evaluate_round(bool sliced) {
  std::lock_guard lock(round_mutex_);
  const auto all = slots();
  const TimestampMs now = clock_.now_ms();
  Round round;
  // KPIs with new samples first: they are what a waiting breach is in.
  const auto started = std::chrono::steady_clock::now();
  for (const auto& slot : all) {
    if (!slot->dirty.exchange(false)) continue;
    evaluate(*slot, now);
    if (metrics_) metrics_->by_sample->Increment();
  }
  const auto timer_started = std::chrono::steady_clock::now();
  round.sample_work = timer_started - started;
  // Then the timer's: windows moving on, and staleness (checked every round, so no_data shows
  // within a second). At most kTimerSlice of them per round; the rest follow at once, after
  // any new samples' KPIs.
  for (const auto& slot : all) {
    const bool went_stale = slot->stale_status_possible &&
                            now - slot->last_sample.load() > slot->definition->stale_after;
    if (!went_stale && now - slot->last_evaluation < options_.reevaluate_interval) continue;
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
      slot->next_refresh = next_refresh_after(*slot->definition, now);
      due.push_back(slot);
    }
  }
  // Histories are read without the round lock, so evaluations go on meanwhile.
  for (const auto& slot : due) {
    {
      std::lock_guard lock(wake_mutex_);
      if (stopping_) return;
    }
    HistoryUpdate update = compute_history(engine_, *slot->definition, now);
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
    for (const Term* term : {&d.numerator, d.denominator ? &*d.denominator : nullptr}) {
      if (term == nullptr) continue;
      for (const auto& ref : samples_.select(term->matchers)) {
        points.clear();
        if (samples_.read(ref.id, now - d.stale_after, now, points) && !points.empty()) {
          newest = std::max(newest, points.back().timestamp);
        }
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
  auto evaluated = value_of(engine_, d, *slot.numerator, slot.denominator.get(), at);
  if (!evaluated) {
    spdlog::warn("kpi {}: evaluation failed: {}", d.id, evaluated.status().message());
  }
  const double value = evaluated ? *evaluated : kNaN;

  const TimestampMs last_sample = slot.last_sample.load();
  const bool stale = last_sample == 0 || now - last_sample > d.stale_after;
  Health health = Health::kNoData;
  if (!std::isnan(value) && !stale) {
    health = d.band ? classify(d.direction, *d.band, value) : Health::kOk;
    std::lock_guard lock(slot.mutex);
    if (health == Health::kOk && slot.view.baseline && slot.view.baseline->trusted &&
        is_anomalous(d.direction, slot.view.baseline->range, value)) {
      health = Health::kAnomalous;
    }
  }

  slot.stale_status_possible = health != Health::kNoData;
  bool changed = false;
  {
    std::lock_guard lock(slot.mutex);
    slot.view.value = value;
    slot.view.evaluated_at = now;
    slot.view.last_sample = last_sample;
    if (health != slot.view.status || !slot.has_record) {
      changed = true;
      slot.view.status = health;
      slot.view.since = now;
    }
  }
  if (changed) {
    slot.has_record = true;
    std::string key = key_prefix(d.id, "status");
    append_big_endian(key, static_cast<uint64_t>(now), 8);
    append_big_endian(key, slot.sequence++, 4);
    std::string record(health_name(health));
    append_number(record, value);
    if (auto s = state_.write_state(
            std::vector<std::pair<std::string, std::string>>{{std::move(key), std::move(record)}});
        !s) {
      spdlog::error("kpi {}: recording its status change: {}", d.id, s.message());
    }
    spdlog::info("kpi {}: {} (value {})", d.id, health_name(health), value);
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
  {
    std::lock_guard lock(slot.mutex);
    slot.view.history_start = update.history_start;
    slot.view.suggested = update.suggested;
    slot.view.baseline = update.baseline;
  }
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
    if (auto s = state_.write_state(
            std::vector<std::pair<std::string, std::string>>{{std::move(key), std::move(record)}});
        !s) {
      spdlog::error("kpi {}: recording its baseline: {}", d.id, s.message());
    } else {
      slot.recorded_baseline = baseline->range;
    }
  }
}

void Evaluator::publish(Slot& slot) {
  if (!metrics_) return;
  std::lock_guard lock(slot.mutex);
  if (slot.value_gauge) slot.value_gauge->Set(slot.view.value);
  for (int h = 0; h < 5; ++h) {
    if (slot.status_gauges[h]) {
      slot.status_gauges[h]->Set(static_cast<int>(slot.view.status) == h ? 1 : 0);
    }
  }
  if (slot.view.baseline) metrics_->set_baseline(slot, slot.view.baseline->range);
}

std::vector<KpiView> Evaluator::list() const {
  std::vector<KpiView> out;
  for (const auto& slot : slots()) {
    std::lock_guard lock(slot->mutex);
    out.push_back(slot->view);
  }
  return out;
}

std::optional<KpiView> Evaluator::get(std::string_view id) const {
  for (const auto& slot : slots()) {
    if (slot->definition->id != id) continue;
    std::lock_guard lock(slot->mutex);
    return slot->view;
  }
  return std::nullopt;
}

Result<std::vector<StatusChange>> Evaluator::history(std::string_view id, size_t limit) const {
  std::vector<StatusChange> out;
  const std::string prefix = key_prefix(id, "status");
  auto s = state_.scan_state_reverse(prefix, [&](std::string_view key, std::string_view value) {
    if (out.size() >= limit) return false;
    size_t space = value.find(' ');
    auto h = parse_health(value.substr(0, space));
    if (!h) return true;
    double v = kNaN;
    if (space != std::string_view::npos) {
      auto numbers = parse_numbers(value.substr(space + 1));
      if (!numbers.empty()) v = numbers.front();
    }
    out.push_back({time_of_key(key, prefix.size()), *h, v});
    return true;
  });
  if (!s) return s;
  std::reverse(out.begin(), out.end());
  return out;
}

Result<KpiSeries> Evaluator::series(std::string_view id, TimestampMs start, TimestampMs end,
                                    DurationMs step) const {
  auto view = get(id);
  if (!view) return Status::not_found("no KPI with id \"" + std::string(id) + "\"");
  if (auto s = engine_.check_range(start, end, step); !s) return s;
  const Definition& d = *view->definition;
  KpiSeries out;
  auto value = value_points(engine_, d, d.numerator.window,
                            d.denominator ? d.denominator->window : 0, start, end, step);
  if (!value) return value.status();
  out.value = std::move(value).value();

  // Baseline snapshots and band records: each applies from its time until the next.
  struct Snapshot {
    TimestampMs time;
    std::vector<double> values;
  };
  auto load = [&](std::string_view kind, std::vector<Snapshot>& into) -> Status {
    const std::string prefix = key_prefix(id, kind);
    return state_.scan_state(prefix, [&](std::string_view key, std::string_view value) {
      into.push_back({time_of_key(key, prefix.size()), parse_numbers(value)});
      return true;
    });
  };
  std::vector<Snapshot> baselines;
  std::vector<Snapshot> bands;
  if (auto s = load("baseline", baselines); !s) return s;
  if (auto s = load("band", bands); !s) return s;
  auto at = [](const std::vector<Snapshot>& list, TimestampMs t) -> const Snapshot* {
    auto it = std::upper_bound(list.begin(), list.end(), t,
                               [](TimestampMs x, const Snapshot& s) { return x < s.time; });
    return it == list.begin() ? nullptr : &*(it - 1);
  };
  std::map<std::string, std::vector<store::Point>> thresholds;
  std::vector<std::string> order;
  for (TimestampMs t = start; t <= end; t += step) {
    if (const Snapshot* b = at(baselines, t); b && b->values.size() >= 3) {
      out.baseline_lower.push_back({t, b->values[0]});
      out.baseline_center.push_back({t, b->values[1]});
      out.baseline_upper.push_back({t, b->values[2]});
    }
    // Before the first band record, the first one (the band as first configured) applies.
    const Snapshot* band_record = bands.empty() ? nullptr : at(bands, t);
    if (band_record == nullptr && !bands.empty()) band_record = &bands.front();
    auto b = band_record ? band_from(band_record->values) : std::nullopt;
    if (!b) continue;
    for (const auto& [name, v] : thresholds_of(d.direction, *b)) {
      auto& points = thresholds[name];
      if (points.empty() && std::find(order.begin(), order.end(), name) == order.end()) {
        order.push_back(name);
      }
      points.push_back({t, v});
    }
  }
  for (const auto& name : order) out.thresholds.emplace_back(name, std::move(thresholds[name]));
  return out;
}

}  // namespace kpid::kpi
