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

std::vector<prometheus::MetricFamily> Metrics::collect() {
  {
    std::lock_guard lock(hooks_mutex_);
    for (auto& hook : hooks_) hook();
  }
  return registry_->Collect();
}

prometheus::Counter& Metrics::state_write_failures(const std::string& module) {
  std::lock_guard lock(families_mutex_);
  if (state_write_failures_ == nullptr) {
    state_write_failures_ =
        &prometheus::BuildCounter()
             .Name("kpid_state_write_failures_total")
             .Help(
                 "State changes (KPI status records, alert transitions, acks, silences, OKR "
                 "changes, outbox entries) not applied because their write to the state store "
                 "failed, by module.")
             .Register(*registry_);
  }
  return state_write_failures_->Add({{"module", module}});
}

}  // namespace kpid::metrics
