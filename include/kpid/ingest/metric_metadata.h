#pragma once
// What senders say of their metric families (type, help, unit; Prometheus remote write carries
// it), kept durably in the state store and served by GET /api/v1/metadata in Prometheus' shape.

#include <cstddef>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/ingest/remote_write.h"
#include "kpid/store/state_store.h"

namespace kpid::ingest {

struct MetricMetadata {
  std::string type;  // "counter", "gauge", ... or "unknown"
  std::string help;
  std::string unit;
  bool operator==(const MetricMetadata&) const = default;
};

// Thread-safe.
class MetricMetadataStore {
 public:
  explicit MetricMetadataStore(store::StateStore& state) : state_(state) {}

  // Reads what earlier runs recorded.
  Status load();

  // Records `entries` (a family's latest metadata replaces what it had): written to the state
  // store first, applied in memory once that succeeded; unchanged families are not rewritten.
  Status record(std::span<const RemoteMetadata> entries);

  // Families and their metadata in name order: only `metric` when not empty, at most `limit`
  // families when `limit` > 0.
  std::vector<std::pair<std::string, MetricMetadata>> list(std::string_view metric,
                                                           size_t limit) const;

 private:
  store::StateStore& state_;
  mutable std::mutex mutex_;
  std::map<std::string, MetricMetadata, std::less<>> families_;
};

}  // namespace kpid::ingest
