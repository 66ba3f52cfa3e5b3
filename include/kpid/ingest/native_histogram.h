#pragma once
// Native histograms (Prometheus' sparse exponential histograms, OTLP's ExponentialHistogram)
// turned into classic cumulative buckets, the form kpid stores and PromQL's histogram_quantile
// reads: `<name>_bucket{le="..."}`, `<name>_sum`, `<name>_count`.
//
// Buckets of an exponential schema s have bounds that are powers of base = 2^(2^-s). Prometheus
// numbers them so that positive bucket i is (base^(i-1), base^i] and negative bucket i is
// [-base^i, -base^(i-1)); OTLP's index is one less (OTLP bucket k is (base^k, base^(k+1)]),
// so an OTLP caller passes k + 1. A histogram with more buckets than the limit is converted at
// a coarser schema (each step down merges adjacent pairs, as Prometheus downscales), so the
// `le` values of one series stay on one grid from sample to sample and a coarse bound equals
// a fine one: rate() across a change of resolution still compares like with like.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace kpid::ingest {

// Finite buckets a converted histogram keeps at most unless configured
// (ingest.native_histogram_max_buckets).
inline constexpr size_t kDefaultHistogramBuckets = 160;

// Prometheus' schema for histograms with custom bounds (native histograms with custom buckets).
inline constexpr int32_t kCustomBucketsSchema = -53;

struct IndexedCount {
  int32_t index = 0;  // Prometheus' bucket index (see above)
  double count = 0;   // observations in that bucket alone, not cumulative
};

// One histogram sample with absolute counts. The spans are the caller's.
struct NativeHistogram {
  int32_t schema = 0;  // -4..8 (lower values work too), or kCustomBucketsSchema
  double zero_threshold = 0;
  double zero_count = 0;  // observations in [-zero_threshold, zero_threshold]
  double count = 0;       // all observations, NaN included
  double sum = 0;
  std::span<const IndexedCount> positive;  // ascending index, any may be zero
  std::span<const IndexedCount> negative;  // ascending index (so descending value)
  // kCustomBucketsSchema: the finite upper bounds, ascending; positive bucket i is
  // (custom_bounds[i-1], custom_bounds[i]] and bucket custom_bounds.size() is +Inf.
  std::span<const double> custom_bounds;
};

struct ClassicBucket {
  double upper_bound = 0;  // the `le`; the last bucket of a conversion is +Inf
  double cumulative = 0;   // observations <= upper_bound
};

// Appends `h` as classic buckets to `out` (cleared first): ascending bounds ending with +Inf
// (whose count is `h.count`), at most `max_buckets` finite ones (at least 2 is sensible; 0 or 1
// leave the finite buckets to whatever one coarsest step gives). Exponential histograms give
// every bound of the populated range (empty buckets inside it too, so histogram_quantile
// interpolates within the true bucket) plus the bound below its lowest populated bucket, and
// the zero bucket's bound when it or a negative bucket holds anything.
void to_classic_buckets(const NativeHistogram& h, size_t max_buckets,
                        std::vector<ClassicBucket>& out);

// Writes `bound` as Prometheus writes a `le` value ("0.25", "1e-05", "+Inf") into `buffer` and
// returns the view of it.
std::string_view format_le(double bound, std::span<char, 32> buffer);

}  // namespace kpid::ingest
