#pragma once
// Alerts and silences as records: what the API shows, what the state store keeps (as JSON) and
// what notifications carry.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "kpid/alert/rule.h"
#include "kpid/core/labels.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"

namespace kpid::alert {

struct Acknowledgement {
  std::string author;
  TimestampMs at = 0;
  std::string comment;
};

// One episode of one rule on one KPI: from the condition starting to hold (pending) through
// firing to resolved. A pending alert whose condition stops before `for` is deleted.
struct Alert {
  std::string id;                      // decimal, unique for the life of the data dir
  std::string kpi;                     // "" for an SLO's alert
  std::string kpi_name;                // the KPI's name, or the SLO's
  std::string slo;                     // set for an SLO's burn-rate alert
  std::vector<std::string> receivers;  // only these receivers (names); empty: every one routing it
  Condition condition = Condition::kCrit;
  std::string name;  // alertname
  std::string severity;
  std::string owner;
  std::string unit;
  std::string runbook_url;
  State state = State::kPending;
  TimestampMs pending_since = 0;
  TimestampMs firing_since = 0;  // 0 until it fires
  TimestampMs resolved_at = 0;   // 0 until it resolves
  std::optional<TimestampMs> recovering_since;
  double value = 0;  // the KPI's value when the state last changed (NaN: none)
  std::optional<double> threshold;
  std::map<std::string, std::string> labels;  // alertname, kpi, condition, severity, owner, ...
  std::map<std::string, std::string> annotations;
  std::optional<Acknowledgement> acknowledged;
  // Its firing was announced (queued for its receivers, or found no receiver), not held back
  // by a silence: later events (acknowledged, resolved) go to receivers too.
  bool announced = false;
  // A receiver accepted (2xx) a firing or repeat notification of it.
  bool notified = false;
  // What became of the latest firing or repeat announcement: "" (none yet), "silenced",
  // "no_receiver" (no receiver routes its severity and owner), "queued" (waiting in the
  // outbox), "delivered" (a receiver accepted it), "expired" (dropped undelivered).
  std::string notification;
  TimestampMs last_notified = 0;  // the last firing or repeat announcement
  // A Prometheus rule file's alert: its group's id ("<file>:<group>"); "" for KPI and SLO
  // alerts. Its identity is the group, the alertname and the labels.
  std::string rule_group;
  // The episode as every replica with the same config and data names it (episode.h): the key
  // notifications are deduplicated by (PagerDuty dedup_key, webhook Idempotency-Key) and the
  // id of an OKR draft it opens. "" for alerts recorded before episode keys existed.
  std::string episode;
  TimestampMs episode_start = 0;  // the deterministic start the episode key was made from
  uint32_t repeat = 0;            // the number of the latest repeat notification
};

// A line of an alert's timeline.
struct AlertEvent {
  TimestampMs time = 0;
  std::string kind;  // pending, firing, resolved, acknowledged, silenced, queued, delivered, ...
  std::string detail;
};

struct Silence {
  std::string id;
  std::vector<LabelMatcher> matchers;  // on alert labels: kpi, owner, severity, alertname, ...
  TimestampMs starts_at = 0;
  TimestampMs ends_at = 0;
  TimestampMs created_at = 0;
  std::string author;
  std::string comment;

  bool active(TimestampMs now) const { return starts_at <= now && now < ends_at; }
  // "pending", "active" or "expired"
  std::string_view state(TimestampMs now) const;
  bool matches(const Alert& alert) const;
};

boost::json::object to_json(const Alert& alert);
Result<Alert> alert_from_json(const boost::json::object& o);
boost::json::object to_json(const AlertEvent& event);
Result<AlertEvent> event_from_json(const boost::json::object& o);
// `now` decides the "state" field.
boost::json::object to_json(const Silence& silence, TimestampMs now);
Result<Silence> silence_from_json(const boost::json::object& o);

// Reads a record written by one of the to_json functions.
Result<boost::json::object> parse_record(std::string_view text);

}  // namespace kpid::alert
