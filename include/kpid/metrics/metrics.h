#pragma once
// The one prometheus-cpp registry of a kpid process. Modules register their metric families on
// registry(); values that are cheaper to read at scrape time than to keep current (store size,
// series count) register a refresh hook. Only the server exposes the text form at /metrics.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

namespace kpid::metrics {

class Metrics {
 public:
  Metrics();
  prometheus::Registry& registry() { return *registry_; }
  // Adds a hook run before every scrape to update gauges. Hooks must be cheap and thread-safe
  // and must outlive this object's last scrape. Thread-safe.
  void on_scrape(std::function<void()> hook);
  // Runs the hooks and renders every family in the Prometheus text format 0.0.4. Thread-safe.
  std::string scrape();
  // Runs the hooks and returns every family as collected (for kpid's own series sent by remote
  // write). Thread-safe.
  std::vector<prometheus::MetricFamily> collect();

  // kpid_state_write_failures_total{module}: one family shared by every module that writes
  // state (kpi, alert, okr, outbox). Thread-safe; the counter lives as long as this object.
  prometheus::Counter& state_write_failures(const std::string& module);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::mutex hooks_mutex_;
  std::vector<std::function<void()>> hooks_;
  std::mutex families_mutex_;
  prometheus::Family<prometheus::Counter>* state_write_failures_ = nullptr;
};

}  // namespace kpid::metrics
