#pragma once
// The query engine's options: the [query] table of the config, parsed straight into this
// struct. All of them can change on reload.

#include <cstdint>

#include "kpid/core/time.h"

namespace kpid::query {

struct QueryOptions {
  DurationMs lookback_delta = 300'000;  // how far back an instant selector looks for a sample
  int64_t max_points_per_series = 11'000;  // a range query's (end - start) / step + 1, at most
};

}  // namespace kpid::query
