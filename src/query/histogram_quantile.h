#pragma once
// histogram_quantile over classic (`le`) buckets, as Prometheus' bucketQuantile. Private to the
// query module.

#include <optional>
#include <string_view>
#include <vector>

namespace kpid::query::detail {

struct Bucket {
  double upper_bound;
  double count;  // cumulative: observations <= upper_bound
};

// The φ-quantile of the buckets of one histogram at one time: NaN for a NaN φ, -Inf for φ < 0,
// +Inf for φ > 1; NaN without a +Inf bucket, with fewer than two buckets, or with no
// observations. Buckets are sorted by bound, equal bounds added together, and counts forced
// monotonic (a count below an earlier one is raised to it); the quantile is interpolated
// linearly in its bucket, from 0 in the first bucket when its bound is positive (else that
// bound). A rank in the +Inf bucket yields the highest finite bound. Reorders `buckets`.
double bucket_quantile(double q, std::vector<Bucket>& buckets);

// An `le` value as Go's strconv.ParseFloat reads it ("0.5", "1e3", "+Inf", "NaN"); nullopt when
// it is not a number (Prometheus then ignores the series).
std::optional<double> parse_bucket_bound(std::string_view text);

}  // namespace kpid::query::detail
