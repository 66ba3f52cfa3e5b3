#pragma once
// DDSketch (Masson, Rim, Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with
// Relative-Error Guarantees", VLDB 2019): a quantile summary whose estimates are within a
// relative error alpha of the true value, and which merges exactly, so rollups can be built from
// per-chunk sketches.
//
// A value v > 0 goes to bucket i = ceil(log_gamma(v)), gamma = (1 + alpha) / (1 - alpha); every v
// in (gamma^(i-1), gamma^i] is within alpha of the bucket's estimate 2 gamma^i / (gamma + 1).
// Negative values use a second store keyed by |v|; |v| < kMinIndexable (including +-0) is counted
// in a zero bucket and estimated as 0.
//
// Memory is bounded: each store keeps at most max_buckets consecutive indexes. When a store
// would span more, its lowest indexes (the smallest magnitudes) are folded into the lowest kept
// bucket, so the alpha guarantee then holds only for magnitudes within gamma^max_buckets of the
// store's largest (about 6e17 for alpha = 0.01 and 2048 buckets). The fold is a function of the
// largest index alone, so merging still equals building one sketch from all the data.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"

namespace kpid::store {

class DDSketch {
 public:
  static constexpr double kDefaultRelativeAccuracy = 0.01;
  static constexpr uint32_t kDefaultMaxBuckets = 2048;
  // Below this magnitude values land in the zero bucket; keeps every index well inside int32 and
  // every estimate finite.
  static constexpr double kMinIndexable = 1e-300;

  // relative_accuracy is clamped to [1e-6, 0.5] and max_buckets to [1, 1 << 20], so every
  // sketch is usable and its indexes fit int32. Finer accuracies need proportionally more
  // buckets to cover the same magnitude range (the span covered is gamma^max_buckets).
  explicit DDSketch(double relative_accuracy = kDefaultRelativeAccuracy,
                    uint32_t max_buckets = kDefaultMaxBuckets);

  // Adds `count` copies of `value`. NaN and +-Inf are ignored: they have no bucket and would make
  // sum(), min() and max() meaningless for the finite data. count 0 is a no-op. The total count
  // must stay below 2^64 (not checked).
  void add(double value, uint64_t count = 1);

  // Adds every value of `other`. Fails (invalid_argument, sketch unchanged) when the relative
  // accuracies differ, because buckets of different widths cannot be combined exactly. The
  // result uses this sketch's max_buckets.
  Status merge(const DDSketch& other);

  double relative_accuracy() const { return alpha_; }
  uint32_t max_buckets() const { return max_buckets_; }

  // Values added (NaN and +-Inf excluded).
  uint64_t count() const { return count_; }
  // Exact extremes and the sum of the values added; NaN when empty (sum() is 0 when empty).
  double min() const;
  double max() const;
  double sum() const { return sum_; }

  // The value of rank floor(q * (count - 1)) among the values added, within relative error alpha
  // (absolute error kMinIndexable near zero), clamped to [min(), max()]. q = 0 and q = 1 return
  // the exact min() and max(). NaN when empty or q is outside [0, 1] or NaN.
  double quantile(double q) const;

  // Compact binary form: version, accuracy, max_buckets, counts, min/max/sum, then per store the
  // non-empty buckets as (index delta, count) varint pairs. Equal sketches encode equally.
  std::string encode() const;

  // Parses encode()'s output. Fails (invalid_argument) on anything malformed: unknown version,
  // accuracy out of range, truncation, trailing bytes, zero or overflowing counts, indexes not
  // strictly increasing or spanning more than max_buckets, inconsistent min/max.
  static Result<DDSketch> decode(std::string_view bytes);

  // The buckets alone (zero count, then per store the (index delta, count) pairs), for a
  // container that keeps count, min, max and sum itself and uses the default accuracy and
  // bucket limit (rollups).
  void encode_buckets(std::string& out) const;
  // Parses encode_buckets' output at bytes[pos...], advancing pos; min, max and sum are those of
  // the finite values, as the container kept them. Fails like decode().
  // Moves `pos` past what encode_buckets wrote, checking only that it is well-formed varints;
  // for readers that do not need the sketch.
  static Status skip_buckets(std::string_view bytes, size_t& pos);
  static Result<DDSketch> decode_buckets(std::string_view bytes, size_t& pos, double min,
                                         double max, double sum);

 private:
  void append_stores(std::string& out) const;
  Status read_stores(std::string_view bytes, size_t& pos, uint64_t& total);
  // Sets the totals a decoder read; fails when min and max are not finite and ordered.
  Status set_totals(uint64_t zero_count, uint64_t total, double min, double max, double sum);
  // Dense counts for a contiguous index range [offset_, offset_ + counts_.size()).
  class Store {
   public:
    void add(int32_t index, uint64_t count, uint32_t max_buckets);
    bool empty() const { return counts_.empty(); }
    int32_t min_index() const { return offset_; }
    int32_t max_index() const { return offset_ + static_cast<int32_t>(counts_.size()) - 1; }
    uint64_t at(int32_t index) const { return counts_[static_cast<size_t>(index - offset_)]; }

   private:
    std::vector<uint64_t> counts_;
    int32_t offset_ = 0;
  };

  int32_t index_of(double magnitude) const;
  double estimate(int32_t index) const;

  double alpha_;
  double gamma_;
  double log_gamma_;
  uint32_t max_buckets_;
  Store positive_;
  Store negative_;
  uint64_t zero_count_ = 0;
  uint64_t count_ = 0;
  double min_;
  double max_;
  double sum_ = 0;
};

}  // namespace kpid::store
