#pragma once
// Notifications: what the outbox keeps and delivers, and the HTTP request each kind of receiver
// gets for one (Alertmanager API v2, PagerDuty Events API v2, a signed webhook).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "kpid/alert/rules.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"

namespace kpid::alert {

// Events, as the webhook's "event" field names them.
inline constexpr std::string_view kFiringEvent = "alert.firing";
inline constexpr std::string_view kRepeatEvent = "alert.repeat";
inline constexpr std::string_view kAcknowledgedEvent = "alert.acknowledged";
inline constexpr std::string_view kResolvedEvent = "alert.resolved";
// An OKR draft was opened for the alert's KPI (the okr module).
inline constexpr std::string_view kOkrDraftOpenedEvent = "okr.draft_opened";

// Whether a receiver of `type` takes `event`: Alertmanager only firing and resolved (it repeats
// and has no acknowledgement of its own; kpid keeps its lease fresh instead); PagerDuty the four
// alert events (an OKR draft is not an incident); webhooks everything.
bool takes(ReceiverType type, std::string_view event);

struct Notification {
  uint64_t seq = 0;  // outbox order, unique for the life of the data dir
  std::string receiver;
  std::string event;
  std::string alert_id;
  TimestampMs created = 0;
  std::string source;         // kpid's external URL
  boost::json::object alert;  // the alert as the API shows it, plus "url"
  boost::json::object okr;    // okr.* events: the OKR as the API shows it, plus "url"
  // The event's key from the alert's episode (episode.h: notification_key), the same on every
  // replica; "" for notifications of alerts without an episode (recorded before it existed).
  std::string key;

  // Stable across retries and restarts, and across replicas for the same event: `key`, else
  // (older records) "<alert id>-<seq>".
  std::string idempotency_key() const;
};

boost::json::object to_json(const Notification& n);
Result<Notification> notification_from_json(const boost::json::object& o);

struct OutboundRequest {
  std::string target;  // path and query
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// The request `receiver` gets for `n` at `now` (which sets an Alertmanager lease's endsAt).
OutboundRequest render_request(const Receiver& receiver, const Notification& n, TimestampMs now);

// The webhook body: {"version":"1","event":...,"idempotency_key":...,"created_at":...,
// "source":...,"alert":{...}} (okr.* events also "okr":{...}).
std::string webhook_body(const Notification& n);

// Lower-case hex HMAC-SHA256 of `data` under `key`.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

}  // namespace kpid::alert
