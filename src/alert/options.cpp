#include "kpid/alert/options.h"

#include <algorithm>
#include <tuple>

namespace kpid::alert {

std::vector<std::string> keys_needing_restart(const AlertingOptions& running,
                                              const std::vector<ReceiverOptions>& running_receivers,
                                              const AlertingOptions& next,
                                              const std::vector<ReceiverOptions>& next_receivers) {
  auto receiver_fields = [](const ReceiverOptions& r) {
    return std::tie(r.name, r.type, r.url, r.severities, r.owners, r.timeout, r.ca_file,
                    r.routing_key, r.secret, r.resend_interval);
  };
  auto delivery_fields = [](const AlertingOptions& a) {
    return std::tie(a.external_url, a.repeat_interval, a.notification_max_age, a.retry_initial,
                    a.retry_max, a.resolved_retention);
  };
  std::vector<std::string> keys;
  if (delivery_fields(running) != delivery_fields(next)) keys.emplace_back("[alerting]");
  const bool same_receivers = std::equal(
      running_receivers.begin(), running_receivers.end(), next_receivers.begin(),
      next_receivers.end(),
      [&](const auto& a, const auto& b) { return receiver_fields(a) == receiver_fields(b); });
  if (!same_receivers) keys.emplace_back("[[receiver]]");
  return keys;
}

}  // namespace kpid::alert
