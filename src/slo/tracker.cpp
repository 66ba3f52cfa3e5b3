#include "kpid/slo/tracker.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include "kpid/core/text.h"
#include "kpid/query/promql.h"

namespace kpid::slo {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// A counter series not seen for this long is forgotten; seen again, it starts afresh.
constexpr DurationMs kForgetSeries = 3'600'000;
// Range queries filling the ledger are cut into pieces of this many steps.
constexpr int64_t kFillPieceSteps = 1'000;

// What an events expression reads as counters: its counted selector, else the expression.
std::string counter_query(const std::string& text) {
  std::string selector = counted_selector(text);
  return selector.empty() ? text : selector;
}

// The increase of `query`'s counters over each `step` ending at start, start + step, ... <= end,
// as PromQL's increase() sees it (a selector directly, anything else through a subquery).
std::string increase_query(const std::string& counters, DurationMs step) {
  auto parsed = query::parse_promql(counters);
  const bool selector = parsed && std::holds_alternative<query::VectorSelector>((*parsed)->node);
  const std::string range = format_duration(step);
  if (selector) return "sum(increase(" + counters + "[" + range + "]))";
  const DurationMs sub_step = std::max<DurationMs>(step / 12, 10'000);
  return "sum(increase((" + counters + ")[" + range + ":" + format_duration(sub_step) + "]))";
}

bool compare(const std::string& op, double v, double threshold) {
  if (op == "lt") return v < threshold;
  if (op == "lte") return v <= threshold;
  if (op == "gt") return v > threshold;
  return v >= threshold;
}

std::string window_label(DurationMs w) { return format_duration(w); }

}  // namespace

void AlerterBridge::evaluated(const SloView& slo) {
  const Definition& d = *slo.definition;
  alert::SloObservation o;
  o.slo = d.id;
  o.name = d.name;
  o.description = d.description;
  o.owner = d.owner;
  o.objective = d.objective;
  o.sli = slo.sli;
  o.budget_remaining = slo.budget_remaining;
  o.burn_rates = slo.burn_rates;
  o.evaluated_at = slo.evaluated_at;
  o.interval = d.interval;
  alerter_.slo_evaluated(std::move(o));
}

double SloView::burn_rate(DurationMs window) const {
  auto it = burn_rates.find(window);
  return it == burn_rates.end() ? kNaN : it->second;
}

// One counter expression's last values, by series.
struct CounterState {
  std::string query;
  struct Last {
    double value = 0;
    TimestampMs seen = 0;
  };
  std::unordered_map<std::string, Last> last;
};

struct Tracker::Slot {
  std::shared_ptr<const Definition> definition;
  std::mutex mutex;  // the ledger and counters: the tracker thread writes, history() reads
  Ledger ledger;
  CounterState good;  // good, or bad when the SLO counts bad events
  CounterState total;
  TimestampMs last_eval = 0;  // 0: the next evaluation only takes the counters' values
  TimestampMs last_try = 0;   // a failed evaluation is tried again at the next due time
  bool filled = false;
  std::vector<DurationMs> windows;  // burn-rate windows reported: kBurnWindows and the alerts'
  SloView view;                     // under Tracker::mutex_

  explicit Slot(std::shared_ptr<const Definition> d)
      : definition(std::move(d)), ledger(2 * definition->longest_window()) {
    const Definition& def = *definition;
    good.query = counter_query(def.good.empty() ? def.bad : def.good);
    total.query = counter_query(def.total);
    windows.assign(std::begin(kBurnWindows), std::end(kBurnWindows));
    for (const auto& a : def.alerts) {
      windows.push_back(a.long_window);
      windows.push_back(a.short_window);
    }
    std::sort(windows.begin(), windows.end());
    windows.erase(std::unique(windows.begin(), windows.end()), windows.end());
    view.definition = definition;
    view.sli = view.budget_remaining = kNaN;
  }
};

struct Tracker::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : objective(prometheus::BuildGauge()
                      .Name("kpid_slo_objective")
                      .Help("The SLO's objective as a ratio (0.999 for 99.9%).")
                      .Register(r)),
        sli(prometheus::BuildGauge()
                .Name("kpid_slo_sli")
                .Help("The SLO's service level indicator over its window, as a ratio of good "
                      "events (or good time) to all (NaN without events).")
                .Register(r)),
        remaining(prometheus::BuildGauge()
                      .Name("kpid_slo_error_budget_remaining")
                      .Help("The share of the SLO's error budget left over its window (1 "
                            "untouched, 0 spent, negative overspent; NaN without events).")
                      .Register(r)),
        burn(prometheus::BuildGauge()
                 .Name("kpid_slo_burn_rate")
                 .Help("The SLO's error budget burn rate over each window: the error ratio "
                       "divided by the budget (1 spends the budget exactly over the SLO's "
                       "window; NaN without events in the window).")
                 .Register(r)),
        evaluations(prometheus::BuildCounter()
                        .Name("kpid_slo_evaluations_total")
                        .Help("SLO evaluations, by outcome (ok, error).")
                        .Register(r)),
        ok(&evaluations.Add({{"outcome", "ok"}})),
        failed(&evaluations.Add({{"outcome", "error"}})) {}

  void publish(const SloView& v, const std::vector<DurationMs>& windows) {
    const Definition& d = *v.definition;
    const std::map<std::string, std::string> labels = {{"slo", d.id}};
    objective.Add(labels).Set(d.objective / 100);
    sli.Add(labels).Set(v.sli);
    remaining.Add(labels).Set(v.budget_remaining);
    for (DurationMs w : windows) {
      burn.Add({{"slo", d.id}, {"window", window_label(w)}}).Set(v.burn_rate(w));
    }
  }
  void remove(const SloView& v, const std::vector<DurationMs>& windows) {
    const std::map<std::string, std::string> labels = {{"slo", v.definition->id}};
    objective.Remove(&objective.Add(labels));
    sli.Remove(&sli.Add(labels));
    remaining.Remove(&remaining.Add(labels));
    for (DurationMs w : windows) {
      burn.Remove(&burn.Add({{"slo", v.definition->id}, {"window", window_label(w)}}));
    }
  }

  prometheus::Family<prometheus::Gauge>& objective;
  prometheus::Family<prometheus::Gauge>& sli;
  prometheus::Family<prometheus::Gauge>& remaining;
  prometheus::Family<prometheus::Gauge>& burn;
  prometheus::Family<prometheus::Counter>& evaluations;
  prometheus::Counter* ok;
  prometheus::Counter* failed;
};

Tracker::Tracker(const query::Engine& engine, const kpi::Evaluator& kpis, metrics::Metrics* metrics,
                 const Clock& clock, TrackerOptions options)
    : engine_(engine), kpis_(kpis), clock_(clock), options_(options) {
  if (metrics != nullptr) metrics_ = std::make_unique<Metrics>(metrics->registry());
}

Tracker::~Tracker() { stop(); }

void Tracker::set_slos(std::vector<Definition> slos) {
  std::lock_guard round(round_mutex_);
  std::vector<std::shared_ptr<Slot>> next;
  for (auto& d : slos)
    next.push_back(std::make_shared<Slot>(std::make_shared<const Definition>(std::move(d))));
  std::lock_guard lock(mutex_);
  for (const auto& old : slots_) {
    const bool gone = std::none_of(next.begin(), next.end(), [&](const auto& s) {
      return s->definition->id == old->definition->id;
    });
    if (gone && metrics_) metrics_->remove(old->view, old->windows);
  }
  slots_ = std::move(next);
}

void Tracker::set_sources(std::map<std::string, RemoteQueries, std::less<>> sources) {
  std::lock_guard round(round_mutex_);
  sources_ = std::move(sources);
}

Result<query::QueryResult> Tracker::instant(const Definition& d, const std::string& q,
                                            TimestampMs t) const {
  if (d.datasource.empty()) return engine_.instant(q, t);
  auto it = sources_.find(d.datasource);
  if (it == sources_.end() || !it->second.instant) {
    return Status::not_found("datasource " + d.datasource + " is not configured");
  }
  return it->second.instant(q, t);
}

Result<query::QueryResult> Tracker::range(const Definition& d, const std::string& q,
                                          TimestampMs start, TimestampMs end,
                                          DurationMs step) const {
  if (d.datasource.empty()) return engine_.range(q, start, end, step);
  auto it = sources_.find(d.datasource);
  if (it == sources_.end() || !it->second.range) {
    return Status::not_found("datasource " + d.datasource + " is not configured");
  }
  return it->second.range(q, start, end, step);
}

void Tracker::start() {
  if (!options_.background || thread_.started()) return;
  thread_.start([this] { run(); });
}

void Tracker::stop(Deadline deadline) {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  stop_source_.request_stop();
  wake_.notify_all();
  if (!thread_.wait(deadline)) spdlog::warn("slo: still evaluating at the stop deadline");
  thread_.join();
}

std::vector<std::shared_ptr<Tracker::Slot>> Tracker::slots() const {
  std::lock_guard lock(mutex_);
  return slots_;
}

void Tracker::run() {
  while (true) {
    run_once();
    // The next evaluation due: every SLO at the next multiple of its interval.
    TimestampMs now = clock_.now_ms();
    TimestampMs next = now + 1'000;
    for (const auto& s : slots()) {
      const DurationMs interval = s->definition->interval;
      next = std::min(next, (now / interval + 1) * interval);
    }
    std::unique_lock lock(wake_mutex_);
    if (stopping_) return;
    wake_.wait_for(lock, std::chrono::milliseconds(std::max<TimestampMs>(next - now, 1)));
    if (stopping_) return;
  }
}

void Tracker::run_once() {
  std::lock_guard round(round_mutex_);
  const TimestampMs now = clock_.now_ms();
  for (const auto& slot : slots()) {
    if (stop_source_.stop_requested()) return;
    const DurationMs interval = slot->definition->interval;
    const TimestampMs due = now / interval * interval;  // evaluations sit on the interval grid
    if (slot->last_try >= due) continue;
    slot->last_try = due;
    evaluate(*slot, due);
  }
}

namespace {

// Adds the increase of `counters`' series since their last values to `out`, and keeps the new
// values; false (with `error`) when the query fails. A series seen for the first time adds
// nothing, as a counter's first sample adds nothing to increase().
template <typename InstantFn>
bool read_increase(const InstantFn& instant, CounterState& counters, TimestampMs t, double& out,
                   std::string& error) {
  auto result = instant(counters.query, t);
  if (!result) {
    error = result.status().message();
    return false;
  }
  for (const auto& series : result->series) {
    if (series.points.empty()) continue;
    const double v = series.points.back().value;
    if (std::isnan(v)) continue;
    auto [it, fresh] = counters.last.try_emplace(series.labels->to_string());
    if (!fresh) {
      const double prev = it->second.value;
      out += v >= prev ? v - prev : v;  // a drop is a reset: the counter started again at 0
    }
    it->second = {v, t};
  }
  std::erase_if(counters.last, [&](const auto& e) { return t - e.second.seen > kForgetSeries; });
  return true;
}

}  // namespace

void Tracker::evaluate(Slot& slot, TimestampMs t) {
  const Definition& d = *slot.definition;
  std::string error;
  {
    std::lock_guard lock(slot.mutex);
    const bool first = slot.last_eval == 0;
    Counts add;
    bool ok = true;
    if (d.kind == SliKind::kEvents) {
      double good = 0;
      double total = 0;
      // Both reads or neither: a failed one must not leave the other's counters moved on.
      CounterState good_counters = slot.good;
      CounterState total_counters = slot.total;
      auto query = [&](const std::string& q, TimestampMs at) { return instant(d, q, at); };
      ok = read_increase(query, good_counters, t, good, error) &&
           read_increase(query, total_counters, t, total, error);
      if (ok) {
        slot.good = std::move(good_counters);
        slot.total = std::move(total_counters);
      }
      add.total = total;
      add.good = d.good.empty() ? total - good : good;
    } else if (!first) {
      // A slice: the time since the previous evaluation, good or bad by the status now.
      const double seconds = static_cast<double>(t - slot.last_eval) / 1000;
      std::optional<bool> good;
      if (!d.kpi.empty()) {
        // unknown (its data source failed) counts as no_data.
        if (auto kpi = kpis_.get(d.kpi);
            kpi && kpi->status != kpi::Health::kNoData && kpi->status != kpi::Health::kUnknown) {
          good = std::find(d.good_statuses.begin(), d.good_statuses.end(), kpi->status) !=
                 d.good_statuses.end();
        } else if (kpi && std::find(d.good_statuses.begin(), d.good_statuses.end(),
                                    kpi::Health::kNoData) != d.good_statuses.end()) {
          good = true;
        }
      } else if (auto value = instant(d, d.slice_expr, t); !value) {
        error = value.status().message();
        ok = false;
      } else {
        double v = kNaN;
        if (value->type == query::ValueType::kScalar) v = value->scalar;
        if (!value->series.empty() && !value->series[0].points.empty()) {
          v = value->series[0].points.back().value;
        }
        if (!std::isnan(v)) good = compare(d.slice_op, v, d.slice_threshold);
      }
      if (!good && d.no_data != "skip") good = d.no_data == "good";
      if (good) add = {*good ? seconds : 0, seconds};
    }
    if (ok) {
      if (first) {
        slot.ledger.start_live(t);
      } else {
        slot.ledger.add(t, add);
      }
      slot.last_eval = t;
      if (!slot.filled) {
        backfill(slot, t);
        slot.filled = true;
      }
      slot.ledger.trim(t);
    }
  }
  // The figures, from the ledger.
  SloView view;
  view.definition = slot.definition;
  view.evaluated_at = t;
  view.error = error;
  {
    std::lock_guard lock(slot.mutex);
    const auto span = d.window_at(t);
    view.window_start = span.start;
    view.window_end = d.calendar.empty() ? t : span.end;
    view.window = slot.ledger.sum(span.start, t);
    for (DurationMs w : slot.windows) {
      const Counts c = slot.ledger.sum(t - w, t);
      view.burn_rates[w] = c.total > 0 ? (c.total - c.good) / c.total / d.budget() : kNaN;
    }
  }
  const double total = view.window.total;
  view.sli = total > 0 ? view.window.good / total : kNaN;
  view.budget_total = d.budget() * total;
  view.budget_consumed = total - view.window.good;
  view.budget_remaining = total > 0 ? 1 - view.budget_consumed / view.budget_total : kNaN;
  // At burn rate b the whole budget lasts window / b; what is left lasts remaining times that.
  const DurationMs length = d.calendar.empty() ? d.window : view.window_end - view.window_start;
  auto exhaustion = [&](DurationMs w) -> std::optional<DurationMs> {
    const double b = view.burn_rate(w);
    if (!(b > 0) || std::isnan(view.budget_remaining)) return std::nullopt;
    if (view.budget_remaining <= 0) return 0;
    return static_cast<DurationMs>(view.budget_remaining * static_cast<double>(length) / b);
  };
  view.exhaustion_1h = exhaustion(3'600'000);
  view.exhaustion_6h = exhaustion(21'600'000);
  if (metrics_) {
    (error.empty() ? metrics_->ok : metrics_->failed)->Increment();
    metrics_->publish(view, slot.windows);
  }
  if (!error.empty()) spdlog::warn("slo {}: evaluation failed: {}", d.id, error);
  {
    std::lock_guard lock(mutex_);
    // A failed evaluation keeps the last figures, with the error.
    if (error.empty() || slot.view.evaluated_at == 0) {
      slot.view = view;
    } else {
      slot.view.error = error;
    }
  }
  if (auto* listener = listener_.load(); listener != nullptr && error.empty()) {
    listener->evaluated(view);
  }
}

void Tracker::backfill(Slot& slot, TimestampMs t) {
  const Definition& d = *slot.definition;
  const auto stop = stop_source_.get_token();
  // Each resolution from as far back as it keeps, up to the first live evaluation at t.
  for (DurationMs resolution : {Ledger::kFiveMinutes, Ledger::kHour}) {
    const DurationMs span =
        resolution == Ledger::kHour ? 2 * d.longest_window() : Ledger::kFiveSpan;
    const TimestampMs aligned = t / resolution * resolution;
    const TimestampMs from = aligned - span;
    slot.ledger.set_covered(resolution, from);
    if (d.kind == SliKind::kTimeSlices && !d.kpi.empty()) {
      // The KPI's recorded status changes: the time in good and bad statuses per bucket.
      auto changes = kpis_.history(d.kpi, 1'000'000);
      if (!changes) continue;
      const auto& list = *changes;
      for (size_t i = 0; i < list.size(); ++i) {
        const TimestampMs begin = std::max(list[i].time, from);
        const TimestampMs end = i + 1 < list.size() ? std::min(list[i + 1].time, t) : t;
        if (end <= begin) continue;
        // unknown (its data source failed) counts as no_data.
        const kpi::Health h =
            list[i].status == kpi::Health::kUnknown ? kpi::Health::kNoData : list[i].status;
        std::optional<bool> good;
        if (std::find(d.good_statuses.begin(), d.good_statuses.end(), h) != d.good_statuses.end()) {
          good = true;
        } else if (h != kpi::Health::kNoData) {
          good = false;
        } else if (d.no_data != "skip") {
          good = d.no_data == "good";
        }
        if (!good) continue;
        for (TimestampMs b = begin; b < end;) {
          const TimestampMs bucket_end = std::min((b / resolution + 1) * resolution, end);
          const double seconds = static_cast<double>(bucket_end - b) / 1000;
          slot.ledger.fill(resolution, bucket_end, {*good ? seconds : 0, seconds});
          b = bucket_end;
        }
      }
      continue;
    }
    // Events (increase per bucket) or threshold slices (one slice per step).
    auto fill_range = [&](const std::string& q, TimestampMs start, TimestampMs end,
                          auto&& apply) -> bool {
      for (TimestampMs piece = start; piece <= end; piece += kFillPieceSteps * resolution) {
        if (stop.stop_requested()) return false;
        const TimestampMs piece_end = std::min(end, piece + (kFillPieceSteps - 1) * resolution);
        auto r = range(d, q, piece, piece_end, resolution);
        if (!r) {
          spdlog::warn("slo {}: reading its history: {}", d.id, r.status().message());
          return false;
        }
        for (const auto& s : r->series) {
          for (const auto& p : s.points) apply(p.timestamp, p.value);
        }
      }
      return true;
    };
    if (d.kind == SliKind::kEvents) {
      std::map<TimestampMs, Counts> buckets;
      const bool counting_bad = d.good.empty();
      fill_range(increase_query(slot.good.query, resolution), from + resolution, aligned,
                 [&](TimestampMs at, double v) { buckets[at].good += v; });
      fill_range(increase_query(slot.total.query, resolution), from + resolution, aligned,
                 [&](TimestampMs at, double v) { buckets[at].total += v; });
      // The part of a bucket before the first live evaluation.
      if (t > aligned) {
        for (auto [counters, field] :
             {std::pair{&slot.good, &Counts::good}, std::pair{&slot.total, &Counts::total}}) {
          auto q = instant(d, increase_query(counters->query, t - aligned), t);
          if (q && !q->series.empty() && !q->series[0].points.empty()) {
            buckets[t].*field += q->series[0].points.back().value;
          }
        }
      }
      for (auto& [at, c] : buckets) {
        if (counting_bad) c.good = c.total - c.good;
        slot.ledger.fill(resolution, at, c);
      }
    } else {
      const std::string q = "(" + d.slice_expr + ") " +
                            (d.slice_op == "lt"    ? "<"
                             : d.slice_op == "lte" ? "<="
                             : d.slice_op == "gt"  ? ">"
                                                   : ">=") +
                            " bool " + format_number(d.slice_threshold);
      const double seconds = static_cast<double>(resolution) / 1000;
      fill_range(q, from + resolution, aligned, [&](TimestampMs at, double v) {
        if (!std::isnan(v)) slot.ledger.fill(resolution, at, {v == 1 ? seconds : 0, seconds});
      });
    }
  }
}

std::vector<SloView> Tracker::list() const {
  std::lock_guard lock(mutex_);
  std::vector<SloView> out;
  out.reserve(slots_.size());
  for (const auto& s : slots_) out.push_back(s->view);
  return out;
}

std::optional<SloView> Tracker::get(std::string_view id) const {
  std::lock_guard lock(mutex_);
  for (const auto& s : slots_) {
    if (s->definition->id == id) return s->view;
  }
  return std::nullopt;
}

Result<std::vector<HistoryPoint>> Tracker::history(std::string_view id) const {
  std::shared_ptr<Slot> slot;
  for (const auto& s : slots()) {
    if (s->definition->id == id) slot = s;
  }
  if (!slot) return Status::not_found("unknown SLO \"" + std::string(id) + "\"");
  const Definition& d = *slot->definition;
  std::lock_guard lock(slot->mutex);
  std::vector<HistoryPoint> out;
  const TimestampMs now = slot->ledger.latest();
  if (now == 0) return out;
  const auto span = d.window_at(now);
  const TimestampMs first = std::max(span.start, slot->ledger.hourly_covered_from());
  auto rate = [&](const Counts& c) {
    return c.total > 0 ? (c.total - c.good) / c.total / d.budget() : kNaN;
  };
  for (TimestampMs h = (first / Ledger::kHour + 1) * Ledger::kHour; h <= now; h += Ledger::kHour) {
    const TimestampMs start = d.calendar.empty() ? h - d.window : span.start;
    const Counts c = slot->ledger.sum_hourly(start, h);
    HistoryPoint p;
    p.time = h;
    p.sli = c.total > 0 ? c.good / c.total : kNaN;
    p.budget_remaining = c.total > 0 ? 1 - (c.total - c.good) / (d.budget() * c.total) : kNaN;
    p.burn_rate_1h = rate(slot->ledger.sum_hourly(h - Ledger::kHour, h));
    p.burn_rate_6h = rate(slot->ledger.sum_hourly(h - 6 * Ledger::kHour, h));
    out.push_back(p);
  }
  return out;
}

}  // namespace kpid::slo
