#include "kpid/metrics/metrics.h"

#include <prometheus/text_serializer.h>

namespace kpid::metrics {

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {}

void Metrics::on_scrape(std::function<void()> hook) {
  std::lock_guard lock(hooks_mutex_);
  hooks_.push_back(std::move(hook));
}

std::string Metrics::scrape() {
  {
    std::lock_guard lock(hooks_mutex_);
    for (auto& hook : hooks_) hook();
  }
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace kpid::metrics
