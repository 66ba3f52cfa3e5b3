// The alerter's API side: listing and reading alerts, acknowledgements, silences, annotations
// and events about an alert (the OKR planner's). Every change is written, then applied.
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "alerter_keys.h"
#include "kpid/alert/alerter.h"
#include "kpid/core/json.h"
#include "kpid/core/text.h"

namespace kpid::alert {

namespace json = boost::json;
using keys::event_key;
using keys::kEventPrefix;
using keys::kSilencePrefix;
using keys::kSilenceSeqKey;

Status Alerter::annotate(std::string_view id_text, const std::string& name,
                         const std::string& value) {
  std::lock_guard lock(mutex_);
  auto id = parse_id(id_text);
  auto it = id ? alerts_.find(*id) : alerts_.end();
  if (it == alerts_.end()) return Status::not_found("no alert " + std::string(id_text));
  if (auto existing = it->second.annotations.find(name);
      existing != it->second.annotations.end() && existing->second == value) {
    return Status::ok();
  }
  Alert next = it->second;
  next.annotations[name] = value;
  if (auto s = persist(next, {{clock_.now_ms(), "annotated", name + " = " + value}}); !s) return s;
  it->second = std::move(next);
  return Status::ok();
}

Status Alerter::notify_about(std::string_view id_text, std::string_view event,
                             const json::object& okr, const Outbox::Records& with) {
  std::lock_guard lock(mutex_);
  auto id = parse_id(id_text);
  auto it = id ? alerts_.find(*id) : alerts_.end();
  if (it == alerts_.end()) {
    return with.empty() ? Status::ok() : writer_.write(std::string(event), with);
  }
  const Alert& alert = it->second;
  const TimestampMs now = clock_.now_ms();
  // The timeline line goes in the same write as the notifications and `with`.
  const std::vector<std::string> names = outbox_.routes(event, alert);
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  Outbox::Records puts = with;
  puts.emplace_back(
      event_key(alert.id, now, event_seq_++),
      to_json_text(to_json(AlertEvent{
          now, "queued",
          std::string(event) + (names.empty() ? " (no receiver takes it)" : " for " + list)})));
  auto queued = outbox_.enqueue(event, alert, snapshot(alert, now), okr, puts);
  if (!queued)
    return writer_.check("alert " + alert.id + ": " + std::string(event), queued.status());
  return Status::ok();
}

AlertView Alerter::view_of(const Alert& alert, TimestampMs now) const {
  return {alert, silenced_by(alert, now), url_of(alert)};
}

std::vector<AlertView> Alerter::list(const AlertFilter& f) const {
  std::lock_guard lock(mutex_);
  const TimestampMs now = clock_.now_ms();
  std::vector<AlertView> out;
  for (auto it = alerts_.rbegin(); it != alerts_.rend(); ++it) {
    const Alert& a = it->second;
    if (!f.state.empty() && state_name(a.state) != f.state) continue;
    if (!f.kpi.empty() && a.kpi != f.kpi) continue;
    if (!f.slo.empty() && a.slo != f.slo) continue;
    if (!f.owner.empty() && a.owner != f.owner) continue;
    if (!f.severity.empty() && a.severity != f.severity) continue;
    if (!f.rule_group.empty() && a.rule_group != f.rule_group) continue;
    if (f.acknowledged && a.acknowledged.has_value() != *f.acknowledged) continue;
    AlertView view = view_of(a, now);
    if (f.silenced && view.silenced_by.empty() == *f.silenced) continue;
    out.push_back(std::move(view));
  }
  return out;
}

std::optional<uint64_t> Alerter::find_alert(std::string_view id_text) const {
  if (auto id = parse_id(id_text)) return alerts_.contains(*id) ? id : std::nullopt;
  // Links name an alert by its episode key, the same on HA replicas.
  for (const auto& [id, a] : alerts_) {
    if (!a.episode.empty() && a.episode == id_text) return id;
  }
  return std::nullopt;
}

Result<AlertDetail> Alerter::get(std::string_view id_text) const {
  std::optional<uint64_t> id;
  AlertDetail detail;
  {
    std::lock_guard lock(mutex_);
    id = find_alert(id_text);
    if (!id) return Status::not_found("no alert " + std::string(id_text));
    detail.view = view_of(alerts_.at(*id), clock_.now_ms());
  }
  const std::string prefix = std::string(kEventPrefix) + padded_id(*id) + "/";
  auto s = state_.scan_state(prefix, [&](std::string_view, std::string_view value) {
    auto record = parse_record(value);
    if (!record) return true;
    if (auto e = event_from_json(*record)) detail.timeline.push_back(std::move(*e));
    return true;
  });
  if (!s) return s;
  return detail;
}

Result<AlertView> Alerter::acknowledge(std::string_view id_text, std::string author,
                                       std::string comment) {
  std::lock_guard lock(mutex_);
  auto id = find_alert(id_text);
  auto it = id ? alerts_.find(*id) : alerts_.end();
  if (it == alerts_.end()) return Status::not_found("no alert " + std::string(id_text));
  Alert& a = it->second;
  if (a.state == State::kResolved) {
    return Status::invalid_argument("alert " + a.id + " is already resolved");
  }
  if (a.acknowledged) {
    return Status::invalid_argument("alert " + a.id + " was already acknowledged by " +
                                    a.acknowledged->author);
  }
  const TimestampMs now = clock_.now_ms();
  Alert next = a;
  next.acknowledged = Acknowledgement{author, now, comment};
  std::vector<AlertEvent> events{
      {now, "acknowledged", "by " + author + (comment.empty() ? "" : ": " + comment)}};
  // Receivers that heard it fire hear who took it (PagerDuty stops escalating).
  const Status written = next.announced ? notify(next, kAcknowledgedEvent, now, std::move(events))
                                        : persist(next, std::move(events));
  if (!written) return written;
  spdlog::info("alert {} ({}): acknowledged by {}", next.id, next.name, author);
  a = std::move(next);
  return view_of(a, now);
}

std::vector<Silence> Alerter::silences() const {
  std::lock_guard lock(mutex_);
  std::vector<Silence> out;
  for (auto it = silences_.rbegin(); it != silences_.rend(); ++it) out.push_back(it->second);
  return out;
}

Result<Silence> Alerter::add_silence(Silence s) {
  std::lock_guard lock(mutex_);
  const TimestampMs now = clock_.now_ms();
  if (s.starts_at == 0) s.starts_at = now;
  if (s.ends_at <= s.starts_at) {
    return Status::invalid_argument("ends_at must be after starts_at");
  }
  if (s.ends_at <= now) return Status::invalid_argument("ends_at is in the past");
  const uint64_t id = next_silence_;
  s.id = std::to_string(id);
  s.created_at = now;
  std::vector<std::pair<std::string, std::string>> puts{
      {std::string(kSilencePrefix) + padded_id(id), to_json_text(to_json(s, now))},
      {std::string(kSilenceSeqKey), std::to_string(id + 1)}};
  if (auto st = writer_.write("silence " + s.id + ": created", puts); !st) return st;
  next_silence_ = id + 1;
  spdlog::info("silence {} by {} until {}: {}", s.id, s.author, s.ends_at, s.comment);
  silences_.emplace(id, s);
  return s;
}

Result<Silence> Alerter::expire_silence(std::string_view id_text) {
  std::lock_guard lock(mutex_);
  auto id = parse_id(id_text);
  auto it = id ? silences_.find(*id) : silences_.end();
  if (it == silences_.end()) return Status::not_found("no silence " + std::string(id_text));
  const TimestampMs now = clock_.now_ms();
  if (it->second.ends_at > now) {
    Silence s = it->second;
    s.ends_at = now;
    if (s.starts_at > now) s.starts_at = now;
    std::vector<std::pair<std::string, std::string>> puts{
        {std::string(kSilencePrefix) + padded_id(*id), to_json_text(to_json(s, now))}};
    if (auto st = writer_.write("silence " + s.id + ": expired", puts); !st) return st;
    spdlog::info("silence {} expired", s.id);
    it->second = std::move(s);
  }
  return it->second;
}

}  // namespace kpid::alert
