#pragma once
// The narrow storage interface the rest of kpid sees: series resolution, appends, and range
// reads. The first engine (RocksDbStore) keeps one RocksDB key per sample; a later engine can
// replace it without touching ingest or query.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/labels.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"

namespace kpid::store {

using SeriesId = uint64_t;

struct Sample {
  SeriesId series;
  TimestampMs timestamp;
  double value;
};

struct Point {
  TimestampMs timestamp;
  double value;
  friend bool operator==(const Point&, const Point&) = default;
};

// A series known to the store. `labels` points into the store and stays valid for the store's
// lifetime (series are never removed in this version).
struct SeriesRef {
  SeriesId id;
  const Labels* labels;
};

// Implementations are thread-safe: any number of threads may call any method concurrently.
class SampleStore {
 public:
  virtual ~SampleStore() = default;

  // The id of the series whose canonical key (LabelsBuilder::key(), Labels::encode()) is `key`,
  // creating the series durably when it is new. Fails (invalid_argument) on a malformed key or a
  // label set with an empty or repeated name.
  virtual Result<SeriesId> resolve(std::string_view key) = 0;

  // Stores `samples` atomically (all or none); a sample with the same series and timestamp as a
  // stored one replaces it. When this returns ok the samples survive a crash of the process
  // (and, with sync enabled, of the machine).
  virtual Status append(std::span<const Sample> samples) = 0;

  // The series whose labels satisfy every matcher, in id order.
  virtual std::vector<SeriesRef> select(std::span<const LabelMatcher> matchers) const = 0;

  // Appends to `out` the samples of `series` with start <= timestamp <= end, in time order.
  virtual Status read(SeriesId series, TimestampMs start, TimestampMs end,
                      std::vector<Point>& out) const = 0;

  // Whether `series` has at least one sample with start <= timestamp <= end.
  virtual Result<bool> has_samples(SeriesId series, TimestampMs start, TimestampMs end) const = 0;

  // Every label name in use, sorted.
  virtual std::vector<std::string> label_names() const = 0;
  // Every value of label `name` in use, sorted.
  virtual std::vector<std::string> label_values(std::string_view name) const = 0;

  virtual size_t series_count() const = 0;
  // Bytes on disk (table files and write-ahead log).
  virtual uint64_t disk_usage_bytes() const = 0;
};

}  // namespace kpid::store
