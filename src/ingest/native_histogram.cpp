#include "kpid/ingest/native_histogram.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace kpid::ingest {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// base^index for a schema: 2^(index * 2^-schema), exact for schema <= 0. Computed from the
// integer and fractional parts of the exponent so that one bound has one value however it is
// reached (a coarse bound is the same double as the fine bound it coincides with).
double exponential_bound(int64_t index, int32_t schema) {
  if (schema <= 0) {
    const int64_t exponent = index << -schema;
    if (exponent > 1100) return kInf;
    if (exponent < -1100) return 0;
    return std::ldexp(1.0, static_cast<int>(exponent));
  }
  const int64_t per_octave = int64_t{1} << schema;
  int64_t whole = index / per_octave;
  int64_t rest = index % per_octave;
  if (rest < 0) {
    rest += per_octave;
    --whole;
  }
  if (whole > 1100) return kInf;
  if (whole < -1100) return 0;
  return std::ldexp(std::exp2(static_cast<double>(rest) / static_cast<double>(per_octave)),
                    static_cast<int>(whole));
}

// ceil(a / 2^shift) for signed a: the coarse bucket a fine bucket merges into.
int64_t ceil_shift(int64_t a, int shift) { return -((-a) >> shift); }

struct Range {
  bool any = false;
  int64_t low = 0;   // lowest index holding a count
  int64_t high = 0;  // highest
};

Range populated(std::span<const IndexedCount> buckets) {
  Range r;
  for (const IndexedCount& b : buckets) {
    if (!(b.count > 0)) continue;
    if (!r.any) r = {true, b.index, b.index};
    r.low = std::min<int64_t>(r.low, b.index);
    r.high = std::max<int64_t>(r.high, b.index);
  }
  return r;
}

// Finite bounds a side gives at `shift` steps down from the schema: the coarse indices from
// the one below the lowest populated bucket to the highest.
int64_t bounds_at(const Range& r, int shift) {
  if (!r.any) return 0;
  return ceil_shift(r.high, shift) - ceil_shift(r.low, shift) + 2;
}

void exponential(const NativeHistogram& h, size_t max_buckets, std::vector<ClassicBucket>& out) {
  const Range pos = populated(h.positive);
  const Range neg = populated(h.negative);
  const bool zero_bound = h.zero_count > 0 || neg.any;
  int shift = 0;
  // Each step halves a side's width; 64 steps leave every side at most a few bounds.
  while (shift < 62 && static_cast<uint64_t>(bounds_at(pos, shift) + bounds_at(neg, shift) +
                                             (zero_bound ? 1 : 0)) > max_buckets) {
    ++shift;
  }
  // Bucket counts are summed into coarse bucket ceil(i / 2^shift): the fine buckets whose upper
  // bounds lie at or below the coarse bound.
  const int32_t schema = h.schema - shift;
  double cumulative = 0;
  if (neg.any) {
    // Values ascend as negative indices descend: the most negative bucket first. Negative
    // bucket i's upper bound is -base^(i-1).
    const int64_t top = ceil_shift(neg.high, shift);
    const int64_t bottom = ceil_shift(neg.low, shift);
    out.push_back({-exponential_bound(top, schema), 0});
    size_t at = h.negative.size();
    for (int64_t j = top; j >= bottom; --j) {
      while (at > 0 && ceil_shift(h.negative[at - 1].index, shift) >= j) {
        if (h.negative[at - 1].count > 0) cumulative += h.negative[at - 1].count;
        --at;
      }
      out.push_back({-exponential_bound(j - 1, schema), cumulative});
    }
  }
  if (zero_bound) {
    cumulative += std::max(h.zero_count, 0.0);
    if (out.empty() || h.zero_threshold > out.back().upper_bound) {
      out.push_back({h.zero_threshold, cumulative});
    } else {
      out.back().cumulative = cumulative;
    }
  }
  if (pos.any) {
    const int64_t bottom = ceil_shift(pos.low, shift);
    const int64_t top = ceil_shift(pos.high, shift);
    const double below = exponential_bound(bottom - 1, schema);
    if (out.empty() || below > out.back().upper_bound) out.push_back({below, cumulative});
    size_t at = 0;
    for (int64_t j = bottom; j <= top; ++j) {
      while (at < h.positive.size() && ceil_shift(h.positive[at].index, shift) <= j) {
        if (h.positive[at].count > 0) cumulative += h.positive[at].count;
        ++at;
      }
      out.push_back({exponential_bound(j, schema), cumulative});
    }
  }
}

void custom(const NativeHistogram& h, size_t max_buckets, std::vector<ClassicBucket>& out) {
  const size_t bounds = h.custom_bounds.size();
  // Keep every 2^shift-th bound (counting from 1), so merged buckets stay on one grid.
  size_t stride = 1;
  while (stride < bounds && bounds / stride > std::max<size_t>(max_buckets, 1)) stride *= 2;
  double cumulative = 0;
  size_t at = 0;
  for (size_t b = stride - 1; b < bounds; b += stride) {
    while (at < h.positive.size() && h.positive[at].index <= static_cast<int64_t>(b)) {
      if (h.positive[at].count > 0) cumulative += h.positive[at].count;
      ++at;
    }
    if (std::isinf(h.custom_bounds[b])) break;
    out.push_back({h.custom_bounds[b], cumulative});
  }
}

}  // namespace

void to_classic_buckets(const NativeHistogram& h, size_t max_buckets,
                        std::vector<ClassicBucket>& out) {
  out.clear();
  if (h.schema == kCustomBucketsSchema) {
    custom(h, max_buckets, out);
  } else {
    exponential(h, max_buckets, out);
  }
  out.push_back({kInf, h.count});
}

std::string_view format_le(double bound, std::span<char, 32> buffer) {
  char* const begin = buffer.data();
  if (std::isinf(bound)) {
    const char* text = bound > 0 ? "+Inf" : "-Inf";
    std::memcpy(begin, text, 4);
    return {begin, 4};
  }
  if (std::isnan(bound)) {
    std::memcpy(begin, "NaN", 3);
    return {begin, 3};
  }
  // Go's strconv.FormatFloat(v, 'g', -1, 64), which Prometheus' clients use for `le`: the
  // shortest digits that round-trip, in exponent form when the decimal exponent is below -4
  // or at least 6 (1e-05, 100000, 1e+06).
  char digits[32];
  auto [end, ec] =
      std::to_chars(digits, digits + sizeof digits, bound, std::chars_format::scientific);
  (void)ec;
  // digits: [-]d[.ddd]e[+-]xx
  std::string_view sci(digits, static_cast<size_t>(end - digits));
  const size_t e = sci.find('e');
  int exponent = 0;
  std::from_chars(sci.data() + e + (sci[e + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exponent);
  if (exponent < -4 || exponent >= 6) {
    // Go's exponent form: mantissa, 'e', sign, at least two exponent digits.
    size_t n = 0;
    for (char c : sci.substr(0, e)) begin[n++] = c;
    begin[n++] = 'e';
    begin[n++] = exponent < 0 ? '-' : '+';
    const int magnitude = exponent < 0 ? -exponent : exponent;
    if (magnitude < 10) begin[n++] = '0';
    auto [p, ec2] = std::to_chars(begin + n, begin + 32, magnitude);
    (void)ec2;
    return {begin, static_cast<size_t>(p - begin)};
  }
  auto [p, ec3] = std::to_chars(begin, begin + 32, bound, std::chars_format::fixed);
  (void)ec3;
  return {begin, static_cast<size_t>(p - begin)};
}

}  // namespace kpid::ingest
