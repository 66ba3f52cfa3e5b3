#include "kpid/store/state_writer.h"

#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

namespace kpid::store {

StateWriter::StateWriter(StateStore& state, metrics::Metrics* metrics, std::string module)
    : state_(state), module_(std::move(module)) {
  if (metrics != nullptr) failures_ = &metrics->state_write_failures(module_);
}

Status StateWriter::write(std::string_view what,
                          std::span<const std::pair<std::string, std::string>> puts,
                          std::span<const std::string> erase) {
  return check(what, state_.write_state(puts, erase));
}

Status StateWriter::check(std::string_view what, const Status& s) {
  if (s) return s;
  // Already reported by an inner writer (the outbox writing an alert's records): pass it on.
  if (s.code() == StatusCode::kUnavailable && s.message().starts_with("state not written")) {
    return s;
  }
  if (failures_ != nullptr) failures_->Increment();
  spdlog::error("{}: {}: state not written, change not applied: {}", module_, what, s.message());
  return Status::unavailable("state not written (" + std::string(what) + "): " + s.message());
}

}  // namespace kpid::store
