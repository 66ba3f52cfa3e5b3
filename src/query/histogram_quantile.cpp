#include "histogram_quantile.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

namespace kpid::query::detail {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

double bucket_quantile(double q, std::vector<Bucket>& buckets) {
  if (std::isnan(q)) return kNaN;
  if (q < 0) return -kInf;
  if (q > 1) return kInf;
  // NaN bounds last, so that the order is strict (Go's sort leaves them anywhere).
  std::stable_sort(buckets.begin(), buckets.end(), [](const Bucket& a, const Bucket& b) {
    if (std::isnan(a.upper_bound)) return false;
    return std::isnan(b.upper_bound) || a.upper_bound < b.upper_bound;
  });
  if (buckets.empty() ||
      !(std::isinf(buckets.back().upper_bound) && buckets.back().upper_bound > 0)) {
    return kNaN;
  }
  // Buckets with equal bounds (e.g. "1" and "1.0") are one bucket.
  size_t n = 0;
  for (size_t i = 1; i < buckets.size(); ++i) {
    if (buckets[i].upper_bound == buckets[n].upper_bound) {
      buckets[n].count += buckets[i].count;
    } else {
      buckets[++n] = buckets[i];
    }
  }
  buckets.resize(n + 1);
  // Counts of a cumulative histogram never fall; scrapes at slightly different times can make
  // them seem to.
  double max = -kInf;
  for (auto& b : buckets) {
    if (b.count > max) {
      max = b.count;
    } else if (b.count < max) {
      b.count = max;
    }
  }
  if (buckets.size() < 2) return kNaN;
  const double observations = buckets.back().count;
  if (observations == 0) return kNaN;
  double rank = q * observations;
  // The first bucket (of all but +Inf) whose count reaches the rank, by binary search as Go's
  // sort.Search (the same answer as a scan unless a count is NaN).
  size_t b = 0;
  size_t hi = buckets.size() - 1;
  while (b < hi) {
    const size_t mid = (b + hi) / 2;
    if (!(buckets[mid].count >= rank)) {
      b = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (b == buckets.size() - 1) return buckets[buckets.size() - 2].upper_bound;
  if (b == 0 && buckets[0].upper_bound <= 0) return buckets[0].upper_bound;
  double start = 0;
  const double end = buckets[b].upper_bound;
  double count = buckets[b].count;
  if (b > 0) {
    start = buckets[b - 1].upper_bound;
    count -= buckets[b - 1].count;
    rank -= buckets[b - 1].count;
  }
  return start + (end - start) * (rank / count);
}

std::optional<double> parse_bucket_bound(std::string_view text) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text.front()))) return std::nullopt;
  // strtod takes "nan(chars)", which Go does not.
  if (text.find('(') != std::string_view::npos) return std::nullopt;
  const std::string s(text);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  // Go fails on overflow (a finite number beyond double), not on a written infinity.
  if (errno == ERANGE && std::isinf(v)) return std::nullopt;
  return v;
}

}  // namespace kpid::query::detail
