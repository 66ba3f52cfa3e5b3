#include "kpid/okr/planner.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "kpid/core/json.h"
#include "kpid/core/text.h"
#include "planner_detail.h"

namespace kpid::okr {

namespace json = boost::json;
using detail::kPrefix;
using detail::kSeqKey;
using detail::kVariables;
using detail::okr_json;
using detail::tidy;

namespace detail {

std::string tidy(std::string text) {
  std::string out;
  for (char c : text) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

json::object okr_json(const Okr& okr, const std::string& url) {
  json::object o = to_json(okr);
  o.erase("next_kr");
  o["url"] = url;
  return o;
}

}  // namespace detail

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The healthy value a breaching KPI should get back to: the band's target, or the baseline's
// center (target = "baseline"), whichever is there, else the edge of the healthy range.
double target_of(const kpi::KpiView& view, bool prefer_baseline) {
  const kpi::Definition& d = *view.definition;
  const bool has_target = d.band && d.band->target.has_value();
  const bool has_center = view.baseline && view.baseline->trusted;
  if (prefer_baseline && has_center) return view.baseline->range.center;
  if (has_target) return *d.band->target;
  if (has_center) return view.baseline->range.center;
  if (d.band) {
    if (d.direction == kpi::Direction::kInRange) return (d.band->warn_low + d.band->warn_high) / 2;
    return d.band->warn;
  }
  return view.value;
}

// The template variables of a KPI's key results and guardrails.
std::function<std::string(std::string_view)> kpi_vars(const kpi::Definition& k, double start,
                                                      double target, std::string verb,
                                                      std::string side, double threshold) {
  return [=, &k](std::string_view name) -> std::string {
    if (name == "kpi") return k.id;
    if (name == "kpi.name") return k.name;
    if (name == "owner") return k.owner;
    if (name == "unit") return k.unit;
    if (name == "start") return format_number(start);
    if (name == "target") return format_number(target);
    if (name == "verb") return verb;
    if (name == "side") return side;
    if (name == "threshold") return format_number(threshold);
    return "";
  };
}

Status not_open(const Okr& okr, std::string_view action) {
  return Status::invalid_argument("OKR " + okr.id + " is " + std::string(state_name(okr.state)) +
                                  "; only " + std::string(action));
}

}  // namespace

PolicySetup compile_policies(const config::Config& config) {
  PolicySetup setup;
  std::set<std::string> ids;
  for (const auto& k : config.kpis) ids.insert(k.id);
  for (const auto& k : config.kpis) {
    if (!k.okr || !k.okr->enabled) continue;
    const kpi::OkrDraftOptions& c = *k.okr;
    const std::string section = "kpi." + k.id + ".okr";
    const size_t before = setup.errors.size();
    auto error = [&](const SourcePos& pos, const std::string& key, std::string message) {
      const SourcePos& at = pos.line ? pos : c.pos;
      setup.errors.push_back(
          {at.file, at.line, at.column, section + "." + key, std::move(message)});
    };
    Policy p;
    p.kpi = k.id;
    p.after = c.after;
    p.severities = c.severities;
    p.target_baseline = c.target == "baseline";
    p.period = c.period;
    p.graduate_after = c.graduate_after;
    auto compile = [&](const std::string& text, const SourcePos& pos, const char* key,
                       alert::Template& out) {
      auto t = alert::Template::parse(text, kVariables);
      if (!t) {
        error(pos, key, t.status().message());
        return;
      }
      out = std::move(*t);
    };
    compile(c.objective, c.objective_pos, "objective", p.objective);
    compile(c.key_result, c.key_result_pos, "key_result", p.key_result);
    compile(c.guardrail, c.guardrail_pos, "guardrail", p.guardrail);
    for (const auto& r : c.related) {
      if (r == k.id) {
        error(c.related_pos, "related", "a KPI cannot be its own guardrail");
      } else if (!ids.contains(r)) {
        error(c.related_pos, "related", "no KPI with id \"" + r + "\"");
      }
    }
    p.related = c.related;
    if (setup.errors.size() == before) setup.policies.push_back(std::move(p));
  }
  config::sort_errors(setup.errors);
  return setup;
}

struct Planner::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : score(prometheus::BuildGauge()
                  .Name("kpid_okr_score")
                  .Help("The score (mean key-result progress, 0-1) of each open OKR.")
                  .Register(r)),
        progress(prometheus::BuildGauge()
                     .Name("kpid_okr_key_result_progress")
                     .Help("Progress (0-1) of each key result of each open OKR.")
                     .Register(r)) {}
  prometheus::Family<prometheus::Gauge>& score;
  prometheus::Family<prometheus::Gauge>& progress;
  // What is registered, so edited and closed OKRs lose their old series.
  struct Gauges {
    prometheus::Gauge* score = nullptr;
    std::vector<prometheus::Gauge*> progress;
  };
  std::map<std::string, Gauges> by_okr;
};

Planner::Planner(store::StateStore& state, const kpi::Evaluator& kpis, alert::Alerter& alerts,
                 metrics::Metrics* metrics, const Clock& clock, PlannerOptions options)
    : state_(state),
      writer_(state, metrics, "okr"),
      kpis_(kpis),
      alerts_(alerts),
      clock_(clock),
      options_(options) {
  if (metrics != nullptr) metrics_ = std::make_unique<Metrics>(metrics->registry());
}

Planner::~Planner() { stop(); }

Status Planner::load() {
  std::lock_guard lock(mutex_);
  if (auto s = store::read_sequence(state_, kSeqKey, next_id_); !s) return s;
  return state_.scan_state(kPrefix, [&](std::string_view key, std::string_view value) {
    boost::system::error_code ec;
    json::value v = json::parse(value, ec);
    Result<Okr> okr = ec || !v.is_object() ? Result<Okr>(Status::invalid_argument("not JSON"))
                                           : okr_from_json(v.get_object());
    // Records are kept by sequence number (creation order); the id is the number for drafts
    // of alerts without an episode and SLO drafts, the episode's for the others.
    std::string_view seq_text = key.substr(std::min(key.size(), kPrefix.size()));
    while (seq_text.size() > 1 && seq_text.front() == '0') seq_text.remove_prefix(1);
    auto seq = parse_id(seq_text);
    if (!okr || !seq || okr->id.empty()) {
      spdlog::error("okr: skipping unreadable record {}: {}", key,
                    okr ? "bad id" : okr.status().message());
      return true;
    }
    next_id_ = std::max(next_id_, *seq + 1);
    okrs_.emplace(*seq, std::move(*okr));
    return true;
  });
}

void Planner::set_policies(std::vector<Policy> policies) {
  std::lock_guard lock(mutex_);
  policies_.clear();
  for (auto& p : policies) policies_.emplace(p.kpi, std::move(p));
}

void Planner::set_external_url(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  std::lock_guard lock(mutex_);
  external_url_ = std::move(url);
}

std::string Planner::url_of(std::string_view id) const {
  return external_url_ + "/api/v1/okrs/" + std::string(id);
}

void Planner::start() {
  if (!options_.background || thread_.started()) return;
  thread_.start([this] { run(); });
}

void Planner::stop(Deadline deadline) {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (!thread_.wait(deadline)) spdlog::warn("OKR planning: still running at the stop deadline");
  thread_.join();
}

void Planner::run() {
  std::unique_lock lock(wake_mutex_);
  while (!stopping_) {
    lock.unlock();
    run_once();
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(options_.tick), [&] { return stopping_; });
  }
}

void Planner::run_once() {
  const TimestampMs now = clock_.now_ms();
  alert::AlertFilter firing;
  firing.state = "firing";
  const std::vector<alert::AlertView> alerts = alerts_.list(firing);
  std::lock_guard lock(mutex_);
  // Oldest first, so the alert that led to a draft is its first.
  for (auto it = alerts.rbegin(); it != alerts.rend(); ++it) open_or_link(*it, now);
  consider_slos(now);
  score_all(now);
}

void Planner::open_or_link(const alert::AlertView& view, TimestampMs now) {
  const alert::Alert& alert = view.alert;
  auto policy = policies_.find(alert.kpi);
  if (policy == policies_.end()) return;
  const Policy& p = policy->second;
  if (std::find(p.severities.begin(), p.severities.end(), alert.severity) == p.severities.end()) {
    return;
  }
  // An alert leads to one OKR at most: once its draft is dismissed or closed, only a new breach
  // (a new alert) opens another.
  for (const auto& [id, okr] : okrs_) {
    if (std::find(okr.alerts.begin(), okr.alerts.end(), alert.id) != okr.alerts.end()) return;
  }
  // One open OKR per KPI: a later alert joins it.
  for (auto& [id, current] : okrs_) {
    if (current.kpi != alert.kpi || !current.open()) continue;
    Okr okr = current;
    okr.alerts.push_back(alert.id);
    okr.history.push_back({now, "kpid", "linked alert " + alert.id + " (" + alert.name + ")"});
    if (!persist(okr)) return;  // tried again next round
    current = std::move(okr);
    const Okr& linked = current;
    spdlog::info("okr {}: linked alert {}", linked.id, alert.id);
    if (auto s = alerts_.annotate(alert.id, "okr_url", url_of(linked.id)); !s) {
      spdlog::warn("okr {}: annotating alert {}: {}", linked.id, alert.id, s.message());
    }
    return;
  }
  if (now - alert.firing_since < p.after) return;
  auto kpi = kpis_.get(alert.kpi);
  if (!kpi || !kpi->definition) return;
  Okr okr = draft_for(p, *kpi, alert, now);
  const std::string url = url_of(okr.id);
  // The draft, the id sequence and okr.draft_opened in one write: a crash keeps all or none.
  const uint64_t id = next_id_;  // its place in the store; okr.id may be the episode's
  const alert::Outbox::Records records{
      {std::string(kPrefix) + padded_id(id), to_json_text(to_json(okr))},
      {std::string(kSeqKey), std::to_string(id + 1)}};
  // Write, then apply: the draft exists only once written (else the next round tries again).
  if (auto s =
          alerts_.notify_about(alert.id, alert::kOkrDraftOpenedEvent, okr_json(okr, url), records);
      !s) {
    // Logged and counted where the write failed (the alerter's or the outbox's writer).
    spdlog::error("okr {}: draft not opened: {}", okr.id, s.message());
    return;
  }
  next_id_ = id + 1;
  spdlog::warn("okr {}: draft opened for KPI {} from alert {}: {}", okr.id, okr.kpi, alert.id,
               okr.objective);
  for (const auto& w : okr.warnings) spdlog::warn("okr {}: {}", okr.id, w);
  if (auto s = alerts_.annotate(alert.id, "okr_url", url); !s) {
    spdlog::warn("okr {}: annotating alert {}: {}", okr.id, alert.id, s.message());
  }
  okrs_.emplace(id, std::move(okr));
}

Okr Planner::draft_for(const Policy& p, const kpi::KpiView& kpi, const alert::Alert& alert,
                       TimestampMs now) {
  const kpi::Definition& d = *kpi.definition;
  Okr okr;
  // Replicas open the same draft for the same episode: its id comes from the episode's key.
  okr.id = alert.episode.empty() ? std::to_string(next_id_) : okr_id_of_episode(alert.episode);
  okr.kpi = d.id;
  okr.state = OkrState::kDraft;
  okr.owner = d.owner;
  okr.created_at = now;
  okr.alerts.push_back(alert.id);
  const Period period = period_of(p.period, now).value();
  okr.period_start = period.start;
  okr.period_end = period.end;

  KeyResult main;
  main.id = "kr" + std::to_string(okr.next_kr++);
  main.kind = KrKind::kKpi;
  main.kpi = d.id;
  main.start = kpi.value;
  main.target = target_of(kpi, p.target_baseline);
  main.unit = d.unit;
  main.direction = main.target < main.start ? KrDirection::kDecrease : KrDirection::kIncrease;
  main.current = kpi.value;
  const auto& vars = kpi_vars;
  const std::string verb = main.direction == KrDirection::kDecrease ? "Reduce" : "Increase";
  main.description =
      tidy(p.key_result.render(vars(d, main.start, main.target, verb, "", main.target)));
  okr.objective = tidy(p.objective.render(vars(d, main.start, main.target, verb, "", main.target)));
  okr.key_results.push_back(std::move(main));

  for (const auto& related_id : p.related) {
    if (auto g = guardrail_for(related_id, p.guardrail, okr)) {
      okr.key_results.push_back(std::move(*g));
    }
  }
  warn_if_overloaded(okr);
  okr.history.push_back({now, "kpid",
                         "draft opened from alert " + alert.id + " (" + alert.name + ", " +
                             format_number(kpi.value) + (d.unit.empty() ? "" : " " + d.unit) +
                             ")"});
  return okr;
}

std::optional<KeyResult> Planner::guardrail_for(const std::string& related_id,
                                                const alert::Template& text, Okr& okr) {
  auto related = kpis_.get(related_id);
  if (!related || !related->definition || !related->definition->band) {
    okr.warnings.push_back("related KPI " + related_id +
                           " has no band, so no guardrail could be drawn from it");
    return std::nullopt;
  }
  const kpi::Definition& r = *related->definition;
  KeyResult g;
  g.id = "kr" + std::to_string(okr.next_kr++);
  g.kind = KrKind::kGuardrail;
  g.kpi = r.id;
  g.unit = r.unit;
  g.start = related->value;
  g.current = related->value;
  // The healthy side of its warn threshold.
  switch (r.direction) {
    case kpi::Direction::kLowerIsBetter:
      g.direction = KrDirection::kStayBelow;
      g.target = r.band->warn;
      break;
    case kpi::Direction::kHigherIsBetter:
      g.direction = KrDirection::kStayAbove;
      g.target = r.band->warn;
      break;
    case kpi::Direction::kInRange: {
      const bool low = std::isfinite(related->value) &&
                       related->value < (r.band->warn_low + r.band->warn_high) / 2;
      g.direction = low ? KrDirection::kStayAbove : KrDirection::kStayBelow;
      g.target = low ? r.band->warn_low : r.band->warn_high;
      break;
    }
  }
  const std::string side = g.direction == KrDirection::kStayBelow ? "below" : "above";
  g.description = tidy(text.render(kpi_vars(r, g.start, g.target, "Keep", side, g.target)));
  return g;
}

void Planner::warn_if_overloaded(Okr& okr) const {
  size_t open_for_owner = 1;
  for (const auto& [id, other] : okrs_) {
    if (other.open() && other.owner == okr.owner && other.period_start == okr.period_start) {
      ++open_for_owner;
    }
  }
  if (!okr.owner.empty() && static_cast<int64_t>(open_for_owner) > options_.max_open_per_owner) {
    okr.warnings.push_back(okr.owner + " would hold " + std::to_string(open_for_owner) +
                           " open objectives this period (more than " +
                           std::to_string(options_.max_open_per_owner) +
                           "): focus suffers; consider dismissing or merging some");
  }
}

void Planner::refresh(Okr& okr, TimestampMs now) {
  // Until a KPI's first evaluation (just after a start) its key results keep their last values.
  for (auto& kr : okr.key_results) {
    if (kr.kind == KrKind::kManual || kr.kind == KrKind::kSlo) continue;
    auto view = kpis_.get(kr.kpi);
    if (view && view->evaluated_at == 0) continue;
    kr.current = view ? view->value : kNaN;
  }
  refresh_slo(okr, now);  // SLO key results; an SLO OKR's health
  if (!okr.slo.empty()) return;
  auto view = kpis_.get(okr.kpi);
  if (view && view->evaluated_at == 0) return;
  const bool healthy = view && view->status == kpi::Health::kOk;
  const TimestampMs healthy_since = healthy ? (okr.healthy_since ? okr.healthy_since : now) : 0;
  okr.healthy_since = healthy_since;
}

void Planner::publish(const Okr& okr) {
  if (!metrics_) return;
  auto& gauges = metrics_->by_okr[okr.id];
  if (gauges.score != nullptr) metrics_->score.Remove(gauges.score);
  for (auto* g : gauges.progress) metrics_->progress.Remove(g);
  gauges = {};
  if (!okr.open()) {
    metrics_->by_okr.erase(okr.id);
    return;
  }
  gauges.score = &metrics_->score.Add({{"okr", okr.id}, {"owner", okr.owner}});
  gauges.score->Set(score(okr));
  for (const auto& kr : okr.key_results) {
    auto& g = metrics_->progress.Add({{"okr", okr.id}, {"kr", kr.id}});
    g.Set(progress(kr));
    gauges.progress.push_back(&g);
  }
}

void Planner::score_all(TimestampMs now) {
  for (auto& [id, current] : okrs_) {
    if (!current.open()) continue;
    // Live values, health, graduation and closing on a copy: a change of record (healthy_since,
    // state) is written, then applied; on a failure the next round tries again.
    Okr okr = current;
    refresh(okr, now);
    bool changed = okr.healthy_since != current.healthy_since;
    DurationMs graduate_after = 7 * 86'400'000LL;
    if (okr.slo.empty()) {
      if (auto p = policies_.find(okr.kpi); p != policies_.end()) {
        graduate_after = p->second.graduate_after;
      }
    } else if (auto p = slo_policies_.find(okr.slo); p != slo_policies_.end()) {
      graduate_after = p->second.graduate_after;
    }
    const std::string subject = okr.slo.empty() ? okr.kpi : "SLO " + okr.slo;
    const bool all_met = std::all_of(okr.key_results.begin(), okr.key_results.end(),
                                     [](const KeyResult& kr) { return met(kr); });
    if (okr.state == OkrState::kActive && all_met && okr.healthy_since != 0 &&
        now - okr.healthy_since >= graduate_after) {
      okr.state = OkrState::kClosed;
      okr.outcome = Outcome::kAchieved;
      okr.closed_at = now;
      okr.history.push_back({now, "kpid",
                             "achieved: every key result met and " + subject + " healthy for " +
                                 format_duration(now - okr.healthy_since) +
                                 "; back to plain monitoring"});
      changed = true;
    } else if (now >= okr.period_end) {
      const bool draft = okr.state == OkrState::kDraft;
      okr.state = OkrState::kClosed;
      okr.outcome = draft ? Outcome::kAbandoned : all_met ? Outcome::kAchieved : Outcome::kMissed;
      okr.closed_at = now;
      okr.history.push_back({now, "kpid",
                             std::string("period ended: ") +
                                 std::string(outcome_name(okr.outcome)) + " with score " +
                                 format_number(std::round(score(okr) * 100) / 100)});
      changed = true;
    }
    if (changed && !persist(okr)) continue;
    if (okr.state == OkrState::kClosed && current.state != OkrState::kClosed) {
      spdlog::info("okr {}: {}", okr.id, okr.history.back().what);
    }
    current = std::move(okr);
    publish(current);
  }
}

Status Planner::persist(const Okr& okr) {
  const std::pair<std::string, std::string> puts[] = {
      {std::string(kPrefix) + padded_id(seq_of(okr.id)), to_json_text(to_json(okr))}};
  const std::string what = "okr " + okr.id + ": " +
                           (okr.history.empty() ? std::string("update") : okr.history.back().what);
  return writer_.write(what, puts);
}

Result<Okr> Planner::install(Okr& current, Okr next) {
  if (auto s = persist(next); !s) return s;
  current = std::move(next);
  publish(current);
  return current;
}

Okr* Planner::find(std::string_view id_text) {
  for (auto& [seq, okr] : okrs_) {
    if (okr.id == id_text) return &okr;
  }
  return nullptr;
}

uint64_t Planner::seq_of(std::string_view id) const {
  for (const auto& [seq, okr] : okrs_) {
    if (okr.id == id) return seq;
  }
  return next_id_;  // not installed yet: the place it takes
}

std::string okr_id_of_episode(std::string_view episode) {
  return "e" + std::string(episode.substr(0, 16));
}

Result<std::vector<Okr>> Planner::list(const OkrFilter& f) const {
  TimestampMs in_period = 0;
  if (!f.period.empty()) {
    auto t = parse_time(f.period);
    if (!t) return Status::invalid_argument("period: " + t.status().message());
    in_period = *t;
  }
  std::lock_guard lock(mutex_);
  std::vector<Okr> out;
  for (auto it = okrs_.rbegin(); it != okrs_.rend(); ++it) {
    const Okr& o = it->second;
    if (!f.state.empty() && state_name(o.state) != f.state) continue;
    if (!f.owner.empty() && o.owner != f.owner) continue;
    if (!f.kpi.empty() && o.kpi != f.kpi) continue;
    if (!f.slo.empty() && o.slo != f.slo) continue;
    if (in_period != 0 && !(o.period_start <= in_period && in_period < o.period_end)) continue;
    out.push_back(o);
  }
  return out;
}

Result<Okr> Planner::get(std::string_view id) const {
  std::lock_guard lock(mutex_);
  for (const auto& [seq, okr] : okrs_) {
    if (okr.id == id) return okr;
  }
  return Status::not_found("no OKR " + std::string(id));
}

Result<Okr> Planner::accept(std::string_view id, const std::string& author) {
  std::lock_guard lock(mutex_);
  Okr* okr = find(id);
  if (okr == nullptr) return Status::not_found("no OKR " + std::string(id));
  if (okr->state != OkrState::kDraft) return not_open(*okr, "a draft can be accepted");
  const TimestampMs now = clock_.now_ms();
  Okr next = *okr;
  next.state = OkrState::kActive;
  next.accepted_at = now;
  next.history.push_back({now, author, "accepted"});
  return install(*okr, std::move(next));
}

Result<Okr> Planner::dismiss(std::string_view id, const std::string& author,
                             const std::string& comment) {
  std::lock_guard lock(mutex_);
  Okr* okr = find(id);
  if (okr == nullptr) return Status::not_found("no OKR " + std::string(id));
  if (okr->state != OkrState::kDraft) return not_open(*okr, "a draft can be dismissed");
  const TimestampMs now = clock_.now_ms();
  Okr next = *okr;
  next.state = OkrState::kDismissed;
  next.closed_at = now;
  next.history.push_back({now, author, "dismissed" + (comment.empty() ? "" : ": " + comment)});
  return install(*okr, std::move(next));
}

Result<Okr> Planner::close(std::string_view id, const std::string& author, Outcome outcome) {
  std::lock_guard lock(mutex_);
  Okr* okr = find(id);
  if (okr == nullptr) return Status::not_found("no OKR " + std::string(id));
  if (!okr->open()) return not_open(*okr, "a draft or an active OKR can be closed");
  const TimestampMs now = clock_.now_ms();
  Okr next = *okr;
  refresh(next, now);
  if (outcome == Outcome::kNone) {
    const bool all_met = std::all_of(next.key_results.begin(), next.key_results.end(),
                                     [](const KeyResult& kr) { return met(kr); });
    outcome = all_met ? Outcome::kAchieved : Outcome::kMissed;
  }
  next.state = OkrState::kClosed;
  next.outcome = outcome;
  next.closed_at = now;
  next.history.push_back({now, author,
                          "closed: " + std::string(outcome_name(outcome)) + " with score " +
                              format_number(std::round(score(next) * 100) / 100)});
  return install(*okr, std::move(next));
}

Result<Okr> Planner::edit(std::string_view id, const std::string& author,
                          const json::object& changes) {
  std::lock_guard lock(mutex_);
  Okr* found = find(id);
  if (found == nullptr) return Status::not_found("no OKR " + std::string(id));
  if (!found->open()) return not_open(*found, "a draft or an active OKR can be edited");
  Okr okr = *found;  // edited as a whole: nothing changes unless every edit is valid
  const TimestampMs now = clock_.now_ms();
  std::vector<std::string> what;
  JsonReader r(changes);
  for (const auto& [key, value] : changes) {
    if (key != "objective" && key != "owner" && key != "period" && key != "key_results" &&
        key != "author") {
      return Status::invalid_argument(std::string(key) +
                                      ": unknown field; expected objective, owner, period or "
                                      "key_results");
    }
  }
  if (changes.contains("objective")) {
    const std::string objective = r.str("objective");
    if (auto s = r.status(); !s) return s;
    if (objective.empty()) return Status::invalid_argument("objective: must not be empty");
    what.push_back("objective: \"" + okr.objective + "\" -> \"" + objective + "\"");
    okr.objective = objective;
  }
  if (changes.contains("owner")) {
    const std::string owner = r.str("owner");
    if (auto s = r.status(); !s) return s;
    what.push_back("owner: " + okr.owner + " -> " + owner);
    okr.owner = owner;
  }
  if (const json::value* p = changes.if_contains("period")) {
    if (!p->is_object()) return Status::invalid_argument("period: expected {\"start\", \"end\"}");
    JsonReader pr(p->get_object());
    TimestampMs start = pr.time("start");
    TimestampMs end = pr.time("end");
    if (auto s = pr.status(); !s) return Status::invalid_argument("period." + s.message());
    if (start == 0) start = okr.period_start;
    if (end == 0) end = okr.period_end;
    if (end <= start) return Status::invalid_argument("period: end must be after start");
    std::string before, after;
    append_rfc3339(before, okr.period_end);
    append_rfc3339(after, end);
    what.push_back("period end: " + before + " -> " + after);
    okr.period_start = start;
    okr.period_end = end;
  }
  if (const json::value* k = changes.if_contains("key_results")) {
    if (!k->is_object()) {
      return Status::invalid_argument(
          "key_results: expected {\"add\": [...], \"remove\": [...], \"change\": [...]}");
    }
    JsonReader kr(k->get_object());
    for (const auto& removed : kr.strings("remove")) {
      auto it = std::find_if(okr.key_results.begin(), okr.key_results.end(),
                             [&](const KeyResult& x) { return x.id == removed; });
      if (it == okr.key_results.end()) {
        return Status::invalid_argument("key_results.remove: no key result " + removed);
      }
      what.push_back("removed " + removed + " (" + it->description + ")");
      okr.key_results.erase(it);
    }
    size_t index = 0;
    for (const auto& change : kr.objects("change")) {
      const std::string where = "key_results.change[" + std::to_string(index++) + "]";
      JsonReader c(change);
      const std::string kr_id = c.str("id");
      if (auto s = c.status(); !s) return Status::invalid_argument(where + "." + s.message());
      auto it = std::find_if(okr.key_results.begin(), okr.key_results.end(),
                             [&](const KeyResult& x) { return x.id == kr_id; });
      if (it == okr.key_results.end()) {
        return Status::invalid_argument(where + ".id: no key result " + kr_id);
      }
      for (const auto& [field, v] : change) {
        if (field != "id" && field != "target" && field != "start" && field != "description") {
          return Status::invalid_argument(where + "." + std::string(field) +
                                          ": unknown field; expected target, start or "
                                          "description");
        }
      }
      if (auto target = c.number("target")) {
        what.push_back(kr_id + " target: " + format_number(it->target) + " -> " +
                       format_number(*target));
        it->target = *target;
      }
      if (auto start = c.number("start")) {
        what.push_back(kr_id + " start: " + format_number(it->start) + " -> " +
                       format_number(*start));
        it->start = *start;
      }
      if (change.contains("description")) {
        const std::string description = c.str("description");
        what.push_back(kr_id + " description: \"" + it->description + "\" -> \"" + description +
                       "\"");
        it->description = description;
      }
      if (auto s = c.status(); !s) return Status::invalid_argument(where + "." + s.message());
    }
    index = 0;
    for (const auto& added : kr.objects("add")) {
      const std::string where = "key_results.add[" + std::to_string(index++) + "]";
      auto parsed = key_result_from_json(added);
      if (!parsed) return Status::invalid_argument(where + "." + parsed.status().message());
      if (parsed->kind != KrKind::kSlo && !parsed->kpi.empty() && !kpis_.get(parsed->kpi)) {
        return Status::invalid_argument(where + ".kpi: no KPI with id \"" + parsed->kpi + "\"");
      }
      if (parsed->kind == KrKind::kSlo && (slos_ == nullptr || !slos_->get(parsed->slo))) {
        return Status::invalid_argument(where + ".slo: no SLO with id \"" + parsed->slo + "\"");
      }
      parsed->id = "kr" + std::to_string(okr.next_kr++);
      what.push_back("added " + parsed->id + " (" + parsed->description + ")");
      okr.key_results.push_back(std::move(*parsed));
    }
    if (auto s = kr.status(); !s) return Status::invalid_argument("key_results." + s.message());
    if (okr.key_results.size() < 2 || okr.key_results.size() > 5) {
      return Status::invalid_argument(
          "key_results: an OKR has 2 to 5 key results; this edit "
          "leaves " +
          std::to_string(okr.key_results.size()));
    }
  }
  if (what.empty()) return Status::invalid_argument("nothing to change");
  for (auto& w : what) okr.history.push_back({now, author, std::move(w)});
  refresh(okr, now);
  return install(*found, std::move(okr));
}

Result<Okr> Planner::check_in(std::string_view id, const std::string& author,
                              const std::string& kr_id, double value, const std::string& note,
                              std::optional<double> confidence) {
  std::lock_guard lock(mutex_);
  Okr* okr = find(id);
  if (okr == nullptr) return Status::not_found("no OKR " + std::string(id));
  if (!okr->open()) return not_open(*okr, "a draft or an active OKR takes check-ins");
  auto it = std::find_if(okr->key_results.begin(), okr->key_results.end(),
                         [&](const KeyResult& x) { return x.id == kr_id; });
  if (it == okr->key_results.end()) {
    return Status::invalid_argument("kr: no key result " + kr_id);
  }
  if (it->kind != KrKind::kManual) {
    const std::string from = it->kind == KrKind::kSlo ? "SLO " + it->slo : "KPI " + it->kpi;
    return Status::invalid_argument("kr: " + kr_id + " is measured from " + from +
                                    "; only manual key results take check-ins");
  }
  if (!std::isfinite(value)) return Status::invalid_argument("value: must be a finite number");
  if (confidence && (*confidence < 0 || *confidence > 1)) {
    return Status::invalid_argument("confidence: must be between 0 and 1");
  }
  const TimestampMs now = clock_.now_ms();
  Okr next = *okr;
  KeyResult& kr = next.key_results[static_cast<size_t>(it - okr->key_results.begin())];
  kr.checkins.push_back({now, author, value, note, confidence});
  kr.current = value;
  next.history.push_back({now, author, "check-in on " + kr_id + ": " + format_number(value)});
  return install(*okr, std::move(next));
}

}  // namespace kpid::okr
