#pragma once
// The query engine's options: the [query] table of the config, parsed straight into this
// struct. What a reload may change is decided here too.

#include <cstdint>
#include <string>
#include <vector>

#include "kpid/core/time.h"

namespace kpid::query {

// How the query pool's workers share the cores with ingest and the network threads.
enum class WorkerPriority {
  kIdle,    // Linux SCHED_IDLE: only cores nothing else wants; a waking thread preempts at once
  kLow,     // nice 10: a small share when the cores are busy
  kNormal,  // the process's own priority
};

struct QueryOptions {
  DurationMs lookback_delta = 300'000;     // how far back an instant selector looks for a sample
  int64_t max_points_per_series = 11'000;  // a range query's (end - start) / step + 1, at most
  // The API's limits for each query (Prometheus' query.timeout and query.max-samples): the API
  // turns them into QueryLimits (engine.h), the `timeout` parameter may shorten the deadline;
  // the engine's own callers (the KPI evaluator) run unlimited.
  DurationMs timeout = 120'000;
  uint64_t max_samples = 50'000'000;
  // The query pool: queries (and other heavy requests) running at once (0: one per core) and
  // how many more may wait for a worker before kpid answers 503.
  int64_t max_concurrency = 0;
  int64_t max_queued = 64;
  WorkerPriority worker_priority = WorkerPriority::kIdle;
  // The step of a subquery written without one (`x[1h:]`): Prometheus' evaluation_interval.
  DurationMs default_subquery_step = 60'000;
};

// The [query] keys that differ between the running options and a reloaded config and take
// effect only after a restart: the pool's size, queue and priority (the limits and lookback
// reload).
std::vector<std::string> keys_needing_restart(const QueryOptions& running,
                                              const QueryOptions& next);

// The running options with what a reload changes taken from `next`.
QueryOptions reloaded(const QueryOptions& running, const QueryOptions& next);

}  // namespace kpid::query
