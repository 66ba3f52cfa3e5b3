#include "kpid/alert/notification.h"
#include "kpid/core/json.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>

namespace kpid::alert {

namespace json = boost::json;

namespace {

std::string rfc3339(TimestampMs t) {
  std::string s;
  append_rfc3339(s, t);
  return s;
}

std::string string_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// PagerDuty takes at most 1024 characters of summary.
std::string clip(std::string text, size_t max) {
  if (text.size() <= max) return text;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  text.resize(cut);
  return text;
}

std::string alertmanager_body(const Receiver& r, const Notification& n, TimestampMs now) {
  const json::object& a = n.alert;
  json::object labels;
  if (const json::value* l = a.if_contains("labels"); l && l->is_object()) labels = l->get_object();
  json::object annotations;
  if (const json::value* v = a.if_contains("annotations"); v && v->is_object()) {
    annotations = v->get_object();
  }
  if (auto runbook = string_field(a, "runbook_url"); !runbook.empty()) {
    annotations["runbook_url"] = runbook;
  }
  json::object alert;
  alert["labels"] = std::move(labels);
  alert["annotations"] = std::move(annotations);
  std::string starts = string_field(a, "firing_since");
  if (!starts.empty()) alert["startsAt"] = starts;
  if (n.event == kResolvedEvent) {
    std::string ends = string_field(a, "resolved_at");
    alert["endsAt"] = ends.empty() ? rfc3339(now) : ends;
  } else {
    // A lease, as Prometheus gives: the alert stays firing in Alertmanager this long unless
    // re-sent, so a kpid that is gone does not leave it firing forever.
    alert["endsAt"] = rfc3339(now + 4 * r.resend_interval);
  }
  alert["generatorURL"] = string_field(a, "url");
  return to_json_text(json::array{std::move(alert)});
}

std::string pagerduty_body(const Receiver& r, const Notification& n) {
  const json::object& a = n.alert;
  json::object body;
  body["routing_key"] = r.routing_key;
  // One PagerDuty incident per episode, whichever replica triggers, acknowledges or resolves it.
  const std::string episode = string_field(n.alert, "episode");
  body["dedup_key"] = episode.empty() ? "kpid-alert-" + n.alert_id : "kpid-" + episode;
  if (n.event == kAcknowledgedEvent || n.event == kResolvedEvent) {
    body["event_action"] = n.event == kResolvedEvent ? "resolve" : "acknowledge";
    return to_json_text(body);
  }
  body["event_action"] = "trigger";
  std::string summary;
  if (const json::value* v = a.if_contains("annotations"); v && v->is_object()) {
    summary = string_field(v->get_object(), "summary");
  }
  if (summary.empty()) summary = string_field(a, "name");
  json::object payload;
  payload["summary"] = clip(summary, 1024);
  payload["source"] = n.source.empty() ? std::string("kpid") : n.source;
  std::string severity = string_field(a, "severity");
  payload["severity"] = severity.empty() ? std::string("critical") : severity;
  if (auto t = string_field(a, "firing_since"); !t.empty()) payload["timestamp"] = t;
  payload["component"] = a.contains("slo") ? string_field(a, "slo") : string_field(a, "kpi");
  if (auto owner = string_field(a, "owner"); !owner.empty()) payload["group"] = owner;
  payload["class"] = string_field(a, "condition");
  json::object details;
  for (const char* key : {"kpi_name", "value", "threshold", "unit", "owner", "labels",
                          "annotations", "pending_since", "firing_since"}) {
    if (const json::value* v = a.if_contains(key)) details[key] = *v;
  }
  payload["custom_details"] = std::move(details);
  body["payload"] = std::move(payload);
  json::array links;
  if (auto url = string_field(a, "url"); !url.empty()) {
    links.push_back(json::object{{"href", url}, {"text", "Alert in kpid"}});
  }
  if (auto runbook = string_field(a, "runbook_url"); !runbook.empty()) {
    links.push_back(json::object{{"href", runbook}, {"text", "Runbook"}});
  }
  body["links"] = std::move(links);
  body["client"] = "kpid";
  if (!n.source.empty()) body["client_url"] = n.source;
  return to_json_text(body);
}

}  // namespace

bool takes(ReceiverType type, std::string_view event) {
  switch (type) {
    case ReceiverType::kAlertmanager: return event == kFiringEvent || event == kResolvedEvent;
    case ReceiverType::kPagerDuty: return event.starts_with("alert.");
    case ReceiverType::kWebhook: return true;
  }
  return false;
}

std::string Notification::idempotency_key() const {
  return key.empty() ? alert_id + "-" + std::to_string(seq) : key;
}

json::object to_json(const Notification& n) {
  return json::object{{"seq", n.seq},           {"receiver", n.receiver}, {"event", n.event},
                      {"alert_id", n.alert_id}, {"created", n.created},   {"source", n.source},
                      {"alert", n.alert},       {"okr", n.okr},           {"key", n.key}};
}

Result<Notification> notification_from_json(const json::object& o) {
  Notification n;
  const json::value* seq = o.if_contains("seq");
  const json::value* created = o.if_contains("created");
  const json::value* alert = o.if_contains("alert");
  if (seq == nullptr || !seq->is_number() || created == nullptr || !created->is_number() ||
      alert == nullptr || !alert->is_object()) {
    return Status::invalid_argument("notification record lacks seq, created or alert");
  }
  n.seq = seq->to_number<uint64_t>();
  n.created = created->to_number<int64_t>();
  n.receiver = string_field(o, "receiver");
  n.event = string_field(o, "event");
  n.alert_id = string_field(o, "alert_id");
  n.source = string_field(o, "source");
  n.key = string_field(o, "key");
  n.alert = alert->get_object();
  if (const json::value* okr = o.if_contains("okr"); okr && okr->is_object()) {
    n.okr = okr->get_object();
  }
  if (n.receiver.empty() || n.event.empty() || n.alert_id.empty()) {
    return Status::invalid_argument("notification record lacks receiver, event or alert_id");
  }
  return n;
}

std::string webhook_body(const Notification& n) {
  json::object body{{"version", "1"},
                    {"event", n.event},
                    {"idempotency_key", n.idempotency_key()},
                    {"created_at", rfc3339(n.created)},
                    {"source", n.source},
                    {"alert", n.alert}};
  if (!n.okr.empty()) body["okr"] = n.okr;
  return to_json_text(body);
}

OutboundRequest render_request(const Receiver& r, const Notification& n, TimestampMs now) {
  OutboundRequest req;
  req.target = r.url.target;
  req.headers.emplace_back("Content-Type", "application/json");
  switch (r.type) {
    case ReceiverType::kAlertmanager: req.body = alertmanager_body(r, n, now); break;
    case ReceiverType::kPagerDuty: req.body = pagerduty_body(r, n); break;
    case ReceiverType::kWebhook:
      req.body = webhook_body(n);
      req.headers.emplace_back("X-Kpid-Event", n.event);
      req.headers.emplace_back("Idempotency-Key", n.idempotency_key());
      if (!r.secret.empty()) {
        req.headers.emplace_back("X-Kpid-Signature",
                                 "sha256=" + hmac_sha256_hex(r.secret, req.body));
      }
      break;
  }
  return req;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

}  // namespace kpid::alert
