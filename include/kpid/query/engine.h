#pragma once
// Evaluation of series selectors over the store, with Prometheus' semantics: an instant query
// takes each series' latest sample in (t - lookback_delta, t]; a range query does the same at
// every step from start to end.

#include <atomic>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/store/sample_store.h"

namespace kpid::query {

struct QueryOptions {
  DurationMs lookback_delta = 300'000;
  int64_t max_points_per_series = 11'000;
};

struct InstantSample {
  const Labels* labels;  // owned by the store
  store::Point point;    // timestamp is the evaluation time, as in Prometheus
};

struct RangeSeries {
  const Labels* labels;               // owned by the store
  std::vector<store::Point> points;   // one per step that had a sample in its lookback window
};

// Thread-safe; the store must outlive the engine.
class Engine {
 public:
  Engine(const store::SampleStore& store, QueryOptions options);

  // Applies new limits to queries started from now on (config reload).
  void set_options(QueryOptions options);
  QueryOptions options() const;

  // Errors: a bad selector (invalid_argument with the parser's message) or a storage failure.
  Result<std::vector<InstantSample>> instant(std::string_view selector, TimestampMs time) const;
  // Also fails when end < start or the step count exceeds max_points_per_series.
  Result<std::vector<RangeSeries>> range(std::string_view selector, TimestampMs start,
                                         TimestampMs end, DurationMs step) const;
  // Series matching any of `selectors` with a sample in [start, end], without duplicates.
  Result<std::vector<store::SeriesRef>> series(std::span<const std::string> selectors,
                                               TimestampMs start, TimestampMs end) const;
  // Label names (or values of `name`) of the series matching any selector in [start, end];
  // with no selectors, of every series. Sorted, unique.
  Result<std::vector<std::string>> label_names(std::span<const std::string> selectors,
                                               TimestampMs start, TimestampMs end) const;
  Result<std::vector<std::string>> label_values(std::string_view name,
                                                std::span<const std::string> selectors,
                                                TimestampMs start, TimestampMs end) const;

 private:
  const store::SampleStore& store_;
  std::atomic<DurationMs> lookback_delta_;
  std::atomic<int64_t> max_points_;
};

}  // namespace kpid::query
