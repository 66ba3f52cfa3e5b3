#pragma once
// First storage engine: one RocksDB with column families
//   series      : series id (8 bytes big-endian) -> Labels::encode()
//   series_key  : Labels::encode()              -> series id
//   samples     : series id (8 BE) + timestamp (8 BE, sign bit flipped) -> float64 (8 bytes LE)
// Keys sort by series then time, so a range read is one seek and a short scan. The series index
// is also held in memory (labels, key -> id, and postings by label) for fast selection.

#include <memory>
#include <string>

#include "kpid/metrics/metrics.h"
#include "kpid/store/sample_store.h"

namespace kpid::store {

struct StoreOptions {
  std::string data_dir;
  bool sync = false;  // fsync the WAL on every write: survives power loss, not only kill -9
};

class RocksDbStore final : public SampleStore {
 public:
  // Opens (creating if needed) the store under options.data_dir and loads the series index.
  // `metrics` may be null; otherwise gauges are registered on it and must outlive the store.
  static Result<std::unique_ptr<RocksDbStore>> open(const StoreOptions& options,
                                                    metrics::Metrics* metrics);
  ~RocksDbStore() override;

  // Flushes memtables and closes RocksDB; later calls fail. Called by the destructor if needed.
  Status close();

  Result<SeriesId> resolve(std::string_view key) override;
  Status append(std::span<const Sample> samples) override;
  std::vector<SeriesRef> select(std::span<const LabelMatcher> matchers) const override;
  Status read(SeriesId series, TimestampMs start, TimestampMs end,
              std::vector<Point>& out) const override;
  Result<bool> has_samples(SeriesId series, TimestampMs start, TimestampMs end) const override;
  Status read_rollups(SeriesId series, DurationMs width, TimestampMs start, TimestampMs end,
                      std::vector<Rollup>& out) const override;
  TimestampMs raw_horizon() const override;
  RetentionPolicy retention() const override;
  std::vector<std::string> label_names() const override;
  std::vector<std::string> label_values(std::string_view name) const override;
  size_t series_count() const override;
  uint64_t disk_usage_bytes() const override;

  struct Impl;

 private:
  explicit RocksDbStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpid::store
