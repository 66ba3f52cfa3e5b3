#pragma once
// Write, then apply: how a module records a state change. The change is written to the state
// store first; the caller applies it in memory only when write() returned ok. A failed write is
// logged, counted in kpid_state_write_failures_total{module}, and returned as unavailable
// naming what was being recorded and why, so the API answers 503 and nothing changed.

#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "kpid/core/status.h"
#include "kpid/metrics/metrics.h"
#include "kpid/store/state_store.h"

namespace prometheus {
class Counter;
}

namespace kpid::store {

class StateWriter {
 public:
  // `module` labels the failure metric ("kpi", "alert", "okr", "outbox"); `metrics` may be null.
  StateWriter(StateStore& state, metrics::Metrics* metrics, std::string module);

  // Writes every put and erase atomically. `what` names the change for the log line and the
  // error ("alert 12: firing").
  Status write(std::string_view what, std::span<const std::pair<std::string, std::string>> puts,
               std::span<const std::string> erase = {});

  // For a write made elsewhere on this module's behalf (the outbox writing an alert's records
  // with its notification): logs and counts a failure. Returns `failed` as unavailable with
  // `what`, or ok unchanged.
  Status check(std::string_view what, const Status& failed);

  StateStore& state() const { return state_; }

 private:
  StateStore& state_;
  std::string module_;
  prometheus::Counter* failures_ = nullptr;
};

}  // namespace kpid::store
