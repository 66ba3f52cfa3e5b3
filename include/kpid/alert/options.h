#pragma once
// The alert module's options: [alerting] and the [[receiver]] tables, parsed straight into these
// structs by the config. What a reload may change is decided here too.

#include <string>
#include <vector>

#include "kpid/core/source_pos.h"
#include "kpid/core/time.h"

namespace kpid::alert {

// [alerting]: how alerts are announced and how long their records are kept.
struct AlertingOptions {
  // kpid's address as people reach it, for links in notifications; "" = http://<http.listen>.
  std::string external_url;
  DurationMs repeat_interval = 4 * 3'600'000;  // a firing, unacknowledged alert is re-notified
  DurationMs notification_max_age = 24 * 3'600'000;  // an undelivered notification is dropped
  DurationMs retry_initial = 1'000;                  // first retry delay; doubles per failure
  DurationMs retry_max = 5 * 60'000;                 // longest retry delay
  DurationMs resolved_retention = 7 * 86'400'000LL;  // resolved alerts, expired silences
  SourcePos external_url_pos;
};

// [[receiver]]: where notifications go, and which alerts (by severity and owner).
struct ReceiverOptions {
  std::string name;
  std::string type;  // alertmanager, pagerduty, webhook
  std::string url;   // alertmanager: its base URL; webhook: the full URL; pagerduty: optional
  std::vector<std::string> severities;  // empty: all
  std::vector<std::string> owners;      // empty: all
  DurationMs timeout = 10'000;
  std::string ca_file;                  // PEM bundle for https; "" = the system's
  std::string routing_key;              // pagerduty
  std::string secret;                   // webhook: HMAC-SHA256 key for X-Kpid-Signature
  DurationMs resend_interval = 60'000;  // alertmanager: re-sent this often while firing
  SourcePos pos;
  SourcePos url_pos;
};

// The [alerting] and [[receiver]] settings that differ between the running options and a
// reloaded config: receivers and delivery are set up at start, so a change takes effect after a
// restart. Rules ([[kpi.alert]]) reload.
std::vector<std::string> keys_needing_restart(const AlertingOptions& running,
                                              const std::vector<ReceiverOptions>& running_receivers,
                                              const AlertingOptions& next,
                                              const std::vector<ReceiverOptions>& next_receivers);

}  // namespace kpid::alert
