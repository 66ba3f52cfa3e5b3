// The budget opens the OKR: SLO policies, their trigger, drafts and links, and the live figures
// of SLO key results. The KPI path (planner.cpp) is the model: write, then apply; one open OKR
// per subject; a new episode of trouble links to it instead of opening another.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include <spdlog/spdlog.h>

#include "kpid/core/json.h"
#include "kpid/core/text.h"
#include "kpid/okr/planner.h"
#include "planner_detail.h"

namespace kpid::okr {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr DurationMs kHour = 3'600'000;
constexpr size_t kMaxAlerts = 10;

constexpr std::array<std::string_view, 4> kSloVariables = {"slo", "slo.name", "owner", "objective"};

// A percentage as key results say it: one decimal, a typographic minus.
std::string percent_text(double v) {
  std::string text = format_number(std::round(v * 10) / 10 + 0.0);
  if (!text.empty() && text[0] == '-') text = "\u2212" + text.substr(1);
  return text;
}

std::string rate_text(double v) { return format_number(std::round(v * 10) / 10 + 0.0); }

std::string time_text(TimestampMs t) {
  std::string s;
  append_rfc3339(s, t);
  return s;
}

// The SLO's figure a key result of kind slo measures: NaN when unknown.
double figure_of(const slo::SloView& view, std::string_view measure) {
  if (measure == kMeasureBudgetRemaining) return view.budget_remaining * 100;
  if (measure == kMeasureBurnRate1h) return view.burn_rate(kHour);
  return kNaN;
}

}  // namespace

SloPolicySetup compile_slo_policies(const config::Config& config,
                                    const std::vector<slo::Definition>& slos) {
  SloPolicySetup setup;
  std::set<std::string> kpis;
  for (const auto& k : config.kpis) kpis.insert(k.id);
  const std::string default_guardrail = kpi::OkrDraftOptions{}.guardrail;
  for (const auto& d : slos) {
    if (!d.okr || !d.okr->enabled) continue;
    const slo::SloOkrOptions& c = *d.okr;
    const std::string section = "slo." + d.id + ".okr";
    const size_t before = setup.errors.size();
    auto error = [&](const SourcePos& pos, const std::string& key, std::string message) {
      const SourcePos& at = pos.line ? pos : c.pos.line ? c.pos : d.pos;
      setup.errors.push_back(
          {at.file, at.line, at.column, section + "." + key, std::move(message)});
    };
    SloPolicy p;
    p.slo = d.id;
    p.on_exhausted = std::find(c.on.begin(), c.on.end(), "exhausted") != c.on.end();
    p.on_projected = std::find(c.on.begin(), c.on.end(), "projected") != c.on.end();
    p.after = c.after;
    p.budget_target = c.budget_target;
    p.burn_target = c.burn_target;
    p.period = c.period;
    p.graduate_after = c.graduate_after;
    if (auto t = alert::Template::parse(c.objective, kSloVariables); t) {
      p.objective = std::move(*t);
    } else {
      error(c.objective_pos, "objective", t.status().message());
    }
    p.guardrail = alert::Template::parse(default_guardrail, detail::kVariables).value();
    for (const auto& r : c.related) {
      if (!kpis.contains(r)) error(c.related_pos, "related", "no KPI with id \"" + r + "\"");
    }
    p.related = c.related;
    if (setup.errors.size() == before) setup.policies.push_back(std::move(p));
  }
  config::sort_errors(setup.errors);
  return setup;
}

void Planner::set_slo_tracker(const slo::Tracker* tracker) {
  std::lock_guard lock(mutex_);
  slos_ = tracker;
}

void Planner::set_slo_policies(std::vector<SloPolicy> policies) {
  std::lock_guard lock(mutex_);
  slo_policies_.clear();
  for (auto& p : policies) slo_policies_.emplace(p.slo, std::move(p));
  // SLOs gone from the config take their trigger state with them.
  std::erase_if(slo_triggers_, [&](const auto& t) { return !slo_policies_.contains(t.first); });
}

void Planner::consider_slos(TimestampMs now) {
  if (slos_ == nullptr) return;
  for (const auto& [slo_id, p] : slo_policies_) {
    const std::string& id = slo_id;
    auto view = slos_->get(id);
    // Before its first evaluation an SLO says nothing: its trigger stays as it was.
    if (!view || !view->definition || view->evaluated_at == 0) continue;
    const slo::Definition& d = *view->definition;
    const bool exhausted = p.on_exhausted && view->exhausted();
    bool projected = false;
    if (p.on_projected && view->exhaustion_6h) {
      const DurationMs left = d.calendar.empty() ? d.window : view->window_end - now;
      projected = *view->exhaustion_6h < left;
    }
    auto [it, first_sight] = slo_triggers_.try_emplace(id);
    SloTrigger& trigger = it->second;
    if (!exhausted && !projected) {
      trigger = {};
      continue;
    }
    if (trigger.since == 0) {
      trigger.since = now;
      // Trouble already running when the planner starts, with its OKR open: the episode that
      // opened it, not a new one.
      if (first_sight) {
        trigger.handled = std::any_of(okrs_.begin(), okrs_.end(), [&](const auto& o) {
          return o.second.slo == id && o.second.open();
        });
      }
    }
    if (trigger.handled || now - trigger.since < p.after) continue;
    open_or_link_slo(p, *view, exhausted, now);
  }
}

void Planner::open_or_link_slo(const SloPolicy& p, const slo::SloView& view, bool exhausted,
                               TimestampMs now) {
  const slo::Definition& d = *view.definition;
  // The alerts that led here: firing, or resolved within the SLO's window; newest first.
  alert::AlertFilter filter;
  filter.slo = d.id;
  std::vector<alert::Alert> alerts;
  for (const auto& a : alerts_.list(filter)) {
    const bool firing = a.alert.state == alert::State::kFiring;
    const bool recent =
        a.alert.state == alert::State::kResolved && a.alert.resolved_at >= view.window_start;
    if (firing || recent) alerts.push_back(a.alert);
    if (alerts.size() == kMaxAlerts) break;
  }
  const std::string why = exhausted ? "budget exhausted" : "budget projected to run out";

  // One open OKR per SLO in a period: trouble again links to it.
  for (auto& [key, current] : okrs_) {
    if (current.slo != d.id || !current.open()) continue;
    if (!(current.period_start <= now && now < current.period_end)) continue;
    Okr okr = current;
    std::vector<std::string> added;
    for (const auto& a : alerts) {
      if (a.state != alert::State::kFiring) continue;
      if (std::find(okr.alerts.begin(), okr.alerts.end(), a.id) != okr.alerts.end()) continue;
      okr.alerts.push_back(a.id);
      added.push_back(a.id);
    }
    std::string what = why + " again at " + time_text(now) + " (remaining " +
                       percent_text(view.budget_remaining * 100) + "%)";
    if (!added.empty()) {
      what += "; linked alert" + std::string(added.size() > 1 ? "s" : "");
      for (const auto& a : added) what += " " + a;
    }
    okr.history.push_back({now, "kpid", what});
    if (!persist(okr)) return;  // tried again next round
    current = std::move(okr);
    slo_triggers_[d.id].handled = true;
    spdlog::info("okr {}: SLO {}: {}", current.id, d.id, what);
    for (const auto& a : added) {
      if (auto s = alerts_.annotate(a, "okr_url", url_of(current.id)); !s) {
        spdlog::warn("okr {}: annotating alert {}: {}", current.id, a, s.message());
      }
    }
    return;
  }

  Okr okr = slo_draft_for(p, view, alerts, exhausted, now);
  const std::string url = url_of(okr.id);
  const uint64_t id = *parse_id(okr.id);
  // The draft, the id sequence and okr.draft_opened in one write: a crash keeps all or none.
  const alert::Outbox::Records records{
      {std::string(detail::kPrefix) + padded_id(id), to_json_text(to_json(okr))},
      {std::string(detail::kSeqKey), std::to_string(id + 1)}};
  // Announced with the newest firing alert (else the newest that led here); without any alert
  // the OKR is written alone.
  const alert::Alert* announce = nullptr;
  for (const auto& a : alerts) {
    if (a.state == alert::State::kFiring) {
      announce = &a;
      break;
    }
  }
  if (announce == nullptr && !alerts.empty()) announce = &alerts.front();
  Status written = announce != nullptr
                       ? alerts_.notify_about(announce->id, alert::kOkrDraftOpenedEvent,
                                              detail::okr_json(okr, url), records)
                       : writer_.write("okr " + okr.id + ": draft opened for SLO " + d.id, records);
  if (!written) {
    // Logged and counted where the write failed; the next round tries again.
    spdlog::error("okr {}: draft not opened: {}", okr.id, written.message());
    return;
  }
  next_id_ = id + 1;
  slo_triggers_[d.id].handled = true;
  spdlog::warn("okr {}: draft opened for SLO {} ({}): {}", okr.id, d.id, why, okr.objective);
  for (const auto& w : okr.warnings) spdlog::warn("okr {}: {}", okr.id, w);
  for (const auto& a : alerts) {
    if (a.state != alert::State::kFiring) continue;
    if (auto s = alerts_.annotate(a.id, "okr_url", url); !s) {
      spdlog::warn("okr {}: annotating alert {}: {}", okr.id, a.id, s.message());
    }
  }
  okrs_.emplace(id, std::move(okr));
}

Okr Planner::slo_draft_for(const SloPolicy& p, const slo::SloView& view,
                           const std::vector<alert::Alert>& alerts, bool exhausted,
                           TimestampMs now) {
  const slo::Definition& d = *view.definition;
  Okr okr;
  okr.id = std::to_string(next_id_);  // taken once the draft is written
  okr.slo = d.id;
  okr.state = OkrState::kDraft;
  okr.owner = d.owner;
  okr.created_at = now;
  for (const auto& a : alerts) okr.alerts.push_back(a.id);
  const Period period = period_of(p.period, now).value();
  okr.period_start = period.start;
  okr.period_end = period.end;
  okr.objective = detail::tidy(p.objective.render([&](std::string_view name) -> std::string {
    if (name == "slo") return d.id;
    if (name == "slo.name") return d.name;
    if (name == "owner") return d.owner;
    if (name == "objective") return format_number(d.objective);
    return "";
  }));

  const double remaining = view.budget_remaining * 100;
  KeyResult budget;
  budget.id = "kr" + std::to_string(okr.next_kr++);
  budget.kind = KrKind::kSlo;
  budget.slo = d.id;
  budget.measure = kMeasureBudgetRemaining;
  budget.start = remaining;
  budget.target = p.budget_target;
  budget.unit = "%";
  budget.direction = KrDirection::kIncrease;
  budget.current = remaining;
  budget.description = "Error budget remaining from " + percent_text(remaining) + "% to \u2265 " +
                       percent_text(p.budget_target) + "% by the end of the " + p.period;
  okr.key_results.push_back(std::move(budget));

  const double burn = view.burn_rate(kHour);
  KeyResult rate;
  rate.id = "kr" + std::to_string(okr.next_kr++);
  rate.kind = KrKind::kSlo;
  rate.slo = d.id;
  rate.measure = kMeasureBurnRate1h;
  rate.start = burn;
  rate.target = p.burn_target;
  rate.direction = KrDirection::kDecrease;
  rate.current = burn;
  rate.description = std::isfinite(burn) ? "1h burn rate from " + rate_text(burn) + " to below " +
                                               format_number(p.burn_target)
                                         : "1h burn rate below " + format_number(p.burn_target);
  okr.key_results.push_back(std::move(rate));

  for (const auto& related_id : p.related) {
    if (auto g = guardrail_for(related_id, p.guardrail, okr)) {
      okr.key_results.push_back(std::move(*g));
    }
  }
  warn_if_overloaded(okr);
  std::string what = "draft opened: SLO " + d.id + " ";
  if (exhausted) {
    what += "error budget exhausted (remaining " + percent_text(remaining) + "%)";
  } else {
    what += "error budget projected to run out in " +
            format_duration(view.exhaustion_6h.value_or(0)) + " at the 6h burn rate, before " +
            (d.calendar.empty() ? "a window's length" : "the window ends");
  }
  if (!alerts.empty())
    what += ", from alert " + alerts.front().id + " (" + alerts.front().name + ")";
  okr.history.push_back({now, "kpid", what});
  return okr;
}

void Planner::refresh_slo(Okr& okr, TimestampMs now) {
  if (slos_ == nullptr) return;
  // Until an SLO's first evaluation (just after a start) its key results keep their last values.
  for (auto& kr : okr.key_results) {
    if (kr.kind != KrKind::kSlo) continue;
    auto view = slos_->get(kr.slo);
    if (view && view->evaluated_at == 0) continue;
    kr.current = view ? figure_of(*view, kr.measure) : kNaN;
  }
  if (okr.slo.empty()) return;
  auto view = slos_->get(okr.slo);
  if (view && view->evaluated_at == 0) return;
  SloPolicy defaults;
  const auto policy = slo_policies_.find(okr.slo);
  const SloPolicy& p = policy != slo_policies_.end() ? policy->second : defaults;
  // Healthy: the budget back at its target and no longer burning faster than the target rate.
  // NaN (no events) is healthy for neither.
  const bool healthy = view && figure_of(*view, kMeasureBudgetRemaining) >= p.budget_target &&
                       view->burn_rate(kHour) < p.burn_target;
  okr.healthy_since = healthy ? (okr.healthy_since ? okr.healthy_since : now) : 0;
}

}  // namespace kpid::okr
