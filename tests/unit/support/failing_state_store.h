#pragma once
// A StateStore that fails writes on demand: a wrapper around a real one (the RocksDB store),
// for unit tests of write, then apply. Reads always go through; while fail_writes is set, every
// write_state() returns an io_error and writes nothing.

#include <atomic>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "kpid/store/state_store.h"

namespace kpid::testing {

class FailingStateStore final : public store::StateStore {
 public:
  explicit FailingStateStore(store::StateStore& real) : real_(real) {}

  std::atomic<bool> fail_writes{false};
  std::atomic<int> failed_writes{0};  // writes refused so far

  Status write_state(std::span<const std::pair<std::string, std::string>> puts,
                     std::span<const std::string> erase = {}) override {
    if (fail_writes.load()) {
      ++failed_writes;
      return Status::io_error("IO error: No space left on device (injected)");
    }
    return real_.write_state(puts, erase);
  }
  Result<std::optional<std::string>> get_state(std::string_view key) const override {
    return real_.get_state(key);
  }
  Status scan_state(
      std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& visit) const override {
    return real_.scan_state(prefix, visit);
  }
  Status scan_state_reverse(
      std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& visit) const override {
    return real_.scan_state_reverse(prefix, visit);
  }

 private:
  store::StateStore& real_;
};

}  // namespace kpid::testing
