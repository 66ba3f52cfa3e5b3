#pragma once
// OTLP delta temporality -> cumulative series. A delta point says how much a stream changed
// over (start, end]; PromQL's rate() and KPIs read counters. The accumulator keeps, per stream
// (kind, series name and labels), the running total (for histograms: count, sum and every
// bucket), adds each accepted delta to it and hands out the total as the stream's series at
// the delta's end time.
//
// The rule for late and repeated deltas: a delta whose time_unix_nano is not after the last
// accepted one of its stream is refused (a duplicate, or out of order), counted as a rejected
// data point; its total is unchanged. A start time after the last end (a gap: the sender lost
// deltas or restarted) still adds. An explicit histogram whose bounds change restarts its
// stream at that point's counts (rate() reads it as a counter reset). Exponential histograms
// are added at the finest scale both share.
//
// Durable across restarts: totals live in the state store under `otlp_delta/<stream>`, loaded
// at start. Write, then apply, in this order: a Batch computes new totals without applying
// them, the caller stores the series, and only then does commit() write the totals and apply
// them in memory. If storing the samples fails nothing advances; if writing the totals fails
// after the samples were stored, nothing advances either and a retry of the same request
// stores the same values at the same timestamps again.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/ingest/otlp.h"
#include "kpid/store/state_store.h"

namespace kpid::ingest {

// Thread-safe: batches run one at a time.
class DeltaAccumulator {
 public:
  struct Stream;

  explicit DeltaAccumulator(store::StateStore& state,
                            size_t max_histogram_buckets = kDefaultHistogramBuckets);
  ~DeltaAccumulator();

  // Reads the totals earlier runs recorded. Fails (internal) on a record it cannot read.
  Status load();
  // Streams known.
  size_t streams() const;

  // One request's deltas. Holds the accumulator's lock until destroyed, so totals are computed
  // and committed by one request at a time.
  class Batch {
   public:
    Batch(Batch&&) noexcept;
    ~Batch();
    // Adds `delta`'s stream series at its new total to `out`; returns "" when accepted, else
    // why it was refused (nothing added).
    std::string add(const OtlpDelta& delta, OtlpSeriesBuilder& out);
    // Writes the new totals of the streams for which `stored(point)` is true for some point
    // added, then applies them. On error (the state store's) nothing is applied.
    Status commit(const std::function<bool(size_t point)>& stored);

   private:
    friend class DeltaAccumulator;
    explicit Batch(DeltaAccumulator& owner);
    DeltaAccumulator* owner_;
    std::unique_lock<std::mutex> lock_;
  };
  Batch begin();

 private:
  struct Pending;
  store::StateStore& state_;
  size_t max_buckets_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<Stream>> streams_;
  // The current batch's new totals, reused from one batch to the next.
  std::vector<std::unique_ptr<Pending>> pending_;
  size_t pending_used_ = 0;
  std::unordered_map<std::string, size_t> pending_index_;
  std::string key_;
  std::vector<ClassicBucket> buckets_;
  std::vector<IndexedCount> positive_;
  std::vector<IndexedCount> negative_;
};

}  // namespace kpid::ingest
