#pragma once
// The data set of the PromQL differential test (promql_diff_test.cpp): a few hours of counters
// (with resets, starting and ending mid-range), gauges with gaps, NaN and ±Inf values, stale
// markers, classic histogram buckets (one non-monotonic, one without +Inf), info series for
// joins and label values for regex tests. Deterministic for a given start time.
//
// Every sample's timestamp has a non-zero millisecond part, so no sample lies on the boundary of
// a window that starts or ends at a whole second: kpid's windows are (t-R, t] as in Prometheus 3,
// Prometheus 2.42's are [t-R, t], and the test's query times, ranges, steps and offsets are all
// whole seconds.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kpid_it::promql_diff {

struct Sample {
  int64_t t_ms = 0;
  double value = 0;
  bool stale = false;  // Prometheus' stale marker (the value is then ignored)
};

struct Series {
  std::map<std::string, std::string> labels;  // with __name__
  std::vector<Sample> samples;                // ascending time
  bool has_stale_markers() const;
};

struct DataSet {
  int64_t start_ms = 0;  // first possible sample time (a whole second)
  int64_t end_ms = 0;    // no sample at or after it
  std::vector<Series> series;
};

// The data set from `start_ms` (a whole second) on, `hours` long.
DataSet generate(int64_t start_ms, int hours = 3);

// OpenMetrics text of the series without stale markers, for `promtool tsdb
// create-blocks-from openmetrics`: lines ordered by time, and at one time the series in a fixed
// shuffled order (histogram buckets out of `le` order), timestamps in seconds, ending "# EOF".
std::string openmetrics(const DataSet& data);

}  // namespace kpid_it::promql_diff
