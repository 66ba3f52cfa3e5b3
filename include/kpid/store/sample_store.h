#pragma once
// The narrow storage interface the rest of kpid sees: series resolution, appends, range reads
// of raw samples, and reads of the 5-minute and 1-hour rollups kept beside them.

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/labels.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/store/ddsketch.h"
#include "kpid/store/options.h"

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

// A series known to the store. `labels` is the caller's own copy (shared by whoever keeps the
// ref): it does not point into the store and stays valid after the store is gone.
struct SeriesRef {
  SeriesId id;
  std::shared_ptr<const Labels> labels;
};

// Rollup widths. A rollup bucket of width W ending at E (a multiple of W) covers the samples
// with E - W < timestamp <= E: left-open like a PromQL range, so (t - R, t] with t and R
// multiples of W is exactly R / W buckets.
inline constexpr DurationMs kRollup5m = 5 * 60'000;
inline constexpr DurationMs kRollup1h = 60 * 60'000;

// Aggregates of one series over one bucket. NaN samples propagate into sum and sum_squares (as
// they do in PromQL's sum_over_time); min and max skip NaN unless every sample is NaN; the
// sketch skips NaN and infinities. Stale markers (core/stale_marker.h) are no samples here:
// no field counts them, and a bucket holding nothing else does not exist.
struct Rollup {
  TimestampMs end = 0;
  uint64_t count = 0;
  double sum = 0;
  double min = 0;
  double max = 0;
  double sum_squares = 0;  // sum of value * value
  TimestampMs first_timestamp = 0;
  double first = 0;
  TimestampMs last_timestamp = 0;
  double last = 0;
  // Counter increase between consecutive samples of the bucket, a drop read as a counter reset
  // (the new value counts whole), as PromQL's increase() corrects it.
  double increase = 0;
  // Whether a stale marker is newer than every sample counted: the series had ended at the
  // bucket's end, so a selector whose lookback is this bucket has no value there.
  bool ends_stale = false;
  DDSketch sketch;
};

// Told of every batch right after it is stored (the KPI evaluator, handed to the ingest
// pipeline at wiring time). Implementations must be thread-safe and quick: they run on the
// writer's thread before the write is answered.
class SampleObserver {
 public:
  virtual ~SampleObserver() = default;
  virtual void observe(std::span<const Sample> samples) = 0;
  // The ingest path calls this instead of observe(): an observer that must keep the batch
  // durably (the remote write queue) refuses it with an error, and the write is then answered
  // as a failed store write (503, the client retries). By default observe() and ok.
  virtual Status record(std::span<const Sample> samples) {
    observe(samples);
    return Status::ok();
  }
};

// Why a store is not taking writes at the moment: the writer should come back later rather than
// queue. Ingest refuses at once (HTTP 503 with Retry-After, TCP stops reading) instead of
// holding bodies in memory while the store catches up.
struct Pushback {
  enum class Reason : uint8_t {
    kNone,
    kWriteStall,   // RocksDB stopped writes until compaction or flushes catch up
    kHeadBacklog,  // the in-memory heads hold far more than a checkpoint should leave
    kDiskFull,     // a write failed for lack of space; taken again once space returns
    kWriteError,   // a write failed with another I/O error; retried in the background
    kMemoryLimit,  // resident memory is above storage.memory_limit; taken again once it falls
  };
  Reason reason = Reason::kNone;
  std::string message;         // for the client and the log
  DurationMs retry_after = 0;  // a hint for clients

  explicit operator bool() const { return reason != Reason::kNone; }
};

// "write_stall", "head_backlog", "disk_full", "write_error", "memory_limit" ("" for kNone): a
// metric label.
std::string_view pushback_name(Pushback::Reason reason);

// The store's open heads: samples written (durable in the head log) but not yet in chunks.
// The nearest kpid has to Prometheus' TSDB head, for /api/v1/status/tsdb.
struct HeadStats {
  size_t series = 0;     // series with at least one sample in their open head window
  uint64_t samples = 0;  // samples in all open heads
  // The oldest and newest head sample; INT64_MAX and INT64_MIN when no head holds one (as
  // Prometheus reports an empty head).
  TimestampMs min_time = std::numeric_limits<int64_t>::max();
  TimestampMs max_time = std::numeric_limits<int64_t>::min();
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

  // Appends to `out` the non-empty rollup buckets of `series` of width `width` (kRollup5m or
  // kRollup1h) whose end E satisfies start < E <= end, in time order. Buckets that raw data has
  // not yet been folded into (the open head, recent backfill) are computed from raw samples, so
  // the answer always equals aggregating the raw samples that exist. Fails (invalid_argument)
  // on any other width.
  // Without `with_sketches` the buckets' sketches are left empty (much cheaper to read).
  virtual Status read_rollups(SeriesId series, DurationMs width, TimestampMs start, TimestampMs end,
                              std::vector<Rollup>& out, bool with_sketches = true) const = 0;

  // Samples older than this may already be gone (now - retention.raw); rollups still cover them.
  virtual TimestampMs raw_horizon() const = 0;
  virtual RetentionPolicy retention() const = 0;

  // Every label name in use, sorted.
  virtual std::vector<std::string> label_names() const = 0;
  // Every value of label `name` in use, sorted.
  virtual std::vector<std::string> label_values(std::string_view name) const = 0;

  // The labels of `series`, a copy the caller owns, or null for an unknown id.
  virtual std::shared_ptr<const Labels> labels(SeriesId series) const = 0;

  // Whether writes should wait (see Pushback); cheap enough to ask before every write.
  virtual Pushback pushback() const { return {}; }

  virtual size_t series_count() const = 0;
  // What the open heads hold now; a store without heads reports none.
  virtual HeadStats head_stats() const { return {}; }
  // Bytes on disk (table files and write-ahead log).
  virtual uint64_t disk_usage_bytes() const = 0;
};

}  // namespace kpid::store
