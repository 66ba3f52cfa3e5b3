#include "kpid/store/ddsketch.h"

#include "kpid/core/varint.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace kpid::store {
namespace {

constexpr uint8_t kVersion = 1;
constexpr double kMinAlpha = 1e-6;
constexpr double kMaxAlpha = 0.5;
constexpr uint32_t kMaxMaxBuckets = 1u << 20;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double clamp_alpha(double alpha) {
  if (!(alpha >= kMinAlpha)) return kMinAlpha;  // also maps NaN
  return std::min(alpha, kMaxAlpha);
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  size_t remaining() const { return in_.size() - pos_; }

  bool byte(uint8_t& out) {
    if (pos_ >= in_.size()) return false;
    out = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }

  bool varint(uint64_t& out) { return read_varint(in_, pos_, out); }

  bool f64(double& out) { return read_f64(in_, pos_, out); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

Status bad(const std::string& what) {
  return Status::invalid_argument("corrupt ddsketch: " + what);
}

}  // namespace

void DDSketch::Store::add(int32_t index, uint64_t count, uint32_t max_buckets) {
  if (count == 0) return;
  if (counts_.empty()) {
    offset_ = index;
    counts_.assign(1, count);
    return;
  }
  const int64_t old_lo = offset_;
  const int64_t old_hi = max_index();
  int64_t lo = std::min<int64_t>(old_lo, index);
  const int64_t hi = std::max<int64_t>(old_hi, index);
  if (hi - lo + 1 > static_cast<int64_t>(max_buckets)) lo = hi - max_buckets + 1;
  const auto target = static_cast<int32_t>(std::max<int64_t>(index, lo));
  if (lo == old_lo) {
    if (hi > old_hi) counts_.resize(static_cast<size_t>(hi - lo + 1), 0);
  } else {
    // The range moves down (new smaller index) or up (fold): rebuild, folding below `lo`.
    std::vector<uint64_t> next(static_cast<size_t>(hi - lo + 1), 0);
    for (size_t i = 0; i < counts_.size(); ++i) {
      const int64_t idx = std::max<int64_t>(old_lo + static_cast<int64_t>(i), lo);
      next[static_cast<size_t>(idx - lo)] += counts_[i];
    }
    counts_ = std::move(next);
    offset_ = static_cast<int32_t>(lo);
  }
  counts_[static_cast<size_t>(target - offset_)] += count;
}

DDSketch::DDSketch(double relative_accuracy, uint32_t max_buckets)
    : alpha_(clamp_alpha(relative_accuracy)),
      gamma_((1 + alpha_) / (1 - alpha_)),
      log_gamma_(std::log(gamma_)),
      max_buckets_(std::clamp<uint32_t>(max_buckets, 1, kMaxMaxBuckets)),
      min_(std::numeric_limits<double>::infinity()),
      max_(-std::numeric_limits<double>::infinity()) {}

int32_t DDSketch::index_of(double magnitude) const {
  return static_cast<int32_t>(std::ceil(std::log(magnitude) / log_gamma_));
}

double DDSketch::estimate(int32_t index) const {
  // In log space so the largest indexes do not overflow before the 2 / (gamma + 1) factor.
  return std::exp(index * log_gamma_ + std::log(2 / (gamma_ + 1)));
}

void DDSketch::add(double value, uint64_t count) {
  if (count == 0 || !std::isfinite(value)) return;
  const double magnitude = std::fabs(value);
  if (magnitude < kMinIndexable) {
    zero_count_ += count;
  } else if (value > 0) {
    positive_.add(index_of(magnitude), count, max_buckets_);
  } else {
    negative_.add(index_of(magnitude), count, max_buckets_);
  }
  count_ += count;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += value * static_cast<double>(count);
}

Status DDSketch::merge(const DDSketch& other) {
  if (other.alpha_ != alpha_) {
    return Status::invalid_argument("ddsketch merge: relative accuracy " +
                                    std::to_string(other.alpha_) + " differs from " +
                                    std::to_string(alpha_));
  }
  if (other.count_ == 0) return Status::ok();
  if (&other == this) {
    const DDSketch copy = other;  // the loops below must not read buckets they are updating
    return merge(copy);
  }
  if (!other.positive_.empty()) {
    for (int32_t i = other.positive_.min_index(); i <= other.positive_.max_index(); ++i) {
      positive_.add(i, other.positive_.at(i), max_buckets_);
    }
  }
  if (!other.negative_.empty()) {
    for (int32_t i = other.negative_.min_index(); i <= other.negative_.max_index(); ++i) {
      negative_.add(i, other.negative_.at(i), max_buckets_);
    }
  }
  zero_count_ += other.zero_count_;
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
  return Status::ok();
}

double DDSketch::min() const { return count_ == 0 ? kNaN : min_; }
double DDSketch::max() const { return count_ == 0 ? kNaN : max_; }

double DDSketch::quantile(double q) const {
  if (count_ == 0 || !(q >= 0 && q <= 1)) return kNaN;
  if (q == 0) return min_;
  if (q == 1) return max_;
  const auto rank = static_cast<uint64_t>(std::floor(q * static_cast<double>(count_ - 1)));
  uint64_t seen = 0;
  double result = max_;
  bool found = false;
  // Ascending value order: most negative first (highest negative index), zero, then positive.
  if (!negative_.empty()) {
    for (int32_t i = negative_.max_index(); i >= negative_.min_index() && !found; --i) {
      seen += negative_.at(i);
      if (seen > rank) {
        result = -estimate(i);
        found = true;
      }
    }
  }
  if (!found) {
    seen += zero_count_;
    if (seen > rank) {
      result = 0;
      found = true;
    }
  }
  if (!found && !positive_.empty()) {
    for (int32_t i = positive_.min_index(); i <= positive_.max_index() && !found; ++i) {
      seen += positive_.at(i);
      if (seen > rank) {
        result = estimate(i);
        found = true;
      }
    }
  }
  return std::clamp(result, min_, max_);
}

void DDSketch::append_stores(std::string& out) const {
  for (const Store* store : {&negative_, &positive_}) {
    if (store->empty()) {
      append_varint(out, 0);
      continue;
    }
    uint64_t buckets = 0;
    for (int32_t i = store->min_index(); i <= store->max_index(); ++i) buckets += store->at(i) != 0;
    append_varint(out, buckets);
    bool first = true;
    int32_t prev = 0;
    for (int32_t i = store->min_index(); i <= store->max_index(); ++i) {
      if (store->at(i) == 0) continue;
      append_varint(out, first ? zigzag(i) : static_cast<uint64_t>(i - prev));
      append_varint(out, store->at(i));
      first = false;
      prev = i;
    }
  }
}

void DDSketch::encode_buckets(std::string& out) const {
  append_varint(out, zero_count_);
  append_stores(out);
}

Result<DDSketch> DDSketch::decode_buckets(std::string_view bytes, size_t& pos, double min,
                                          double max, double sum) {
  DDSketch sketch;
  uint64_t zero_count = 0;
  if (!read_varint(bytes, pos, zero_count)) return bad("truncated zero count");
  uint64_t total = zero_count;
  if (Status s = sketch.read_stores(bytes, pos, total); !s.is_ok()) return s;
  if (total == 0) return sketch;
  if (Status s = sketch.set_totals(zero_count, total, min, max, sum); !s.is_ok()) return s;
  return sketch;
}

Status DDSketch::skip_buckets(std::string_view bytes, size_t& pos) {
  uint64_t value = 0;
  if (!read_varint(bytes, pos, value)) return bad("truncated zero count");
  for (int store = 0; store < 2; ++store) {
    uint64_t buckets = 0;
    if (!read_varint(bytes, pos, buckets)) return bad("truncated bucket count");
    if (buckets > (bytes.size() - pos) / 2) return bad("bucket count exceeds the data");
    for (uint64_t b = 0; b < 2 * buckets; ++b) {
      if (!read_varint(bytes, pos, value)) return bad("truncated bucket");
    }
  }
  return Status::ok();
}

Status DDSketch::set_totals(uint64_t zero_count, uint64_t total, double min, double max,
                            double sum) {
  if (!std::isfinite(min) || !std::isfinite(max) || min > max) return bad("inconsistent min/max");
  zero_count_ = zero_count;
  count_ = total;
  min_ = min;
  max_ = max;
  sum_ = sum;
  return Status::ok();
}

Status DDSketch::read_stores(std::string_view bytes, size_t& pos, uint64_t& total) {
  const int32_t lowest = index_of(kMinIndexable);
  const int32_t highest = index_of(std::numeric_limits<double>::max());
  for (Store* store : {&negative_, &positive_}) {
    uint64_t buckets = 0;
    if (!read_varint(bytes, pos, buckets)) return bad("truncated bucket count");
    if (buckets > (bytes.size() - pos) / 2) return bad("bucket count exceeds the data");
    int64_t index = 0;
    for (uint64_t b = 0; b < buckets; ++b) {
      uint64_t raw = 0;
      uint64_t count = 0;
      if (!read_varint(bytes, pos, raw) || !read_varint(bytes, pos, count)) {
        return bad("truncated bucket");
      }
      if (b == 0) {
        index = unzigzag(raw);
      } else {
        if (raw == 0 || raw > static_cast<uint64_t>(highest) - static_cast<uint64_t>(lowest)) {
          return bad("bucket indexes not strictly increasing or out of range");
        }
        index += static_cast<int64_t>(raw);
      }
      if (index < lowest || index > highest) return bad("bucket index out of range");
      if (!store->empty() && index - store->min_index() >= static_cast<int64_t>(max_buckets_)) {
        return bad("buckets span more than max_buckets");
      }
      if (count == 0) return bad("empty bucket");
      if (count > std::numeric_limits<uint64_t>::max() - total) return bad("count overflow");
      total += count;
      store->add(static_cast<int32_t>(index), count, max_buckets_);
    }
  }
  return Status::ok();
}

std::string DDSketch::encode() const {
  std::string out;
  out.push_back(static_cast<char>(kVersion));
  append_f64(out, alpha_);
  append_varint(out, max_buckets_);
  append_varint(out, count_);
  append_varint(out, zero_count_);
  if (count_ > 0) {
    append_f64(out, min_);
    append_f64(out, max_);
    append_f64(out, sum_);
  }
  append_stores(out);
  return out;
}

Result<DDSketch> DDSketch::decode(std::string_view bytes) {
  Reader in(bytes);
  uint8_t version = 0;
  if (!in.byte(version)) return bad("empty input");
  if (version != kVersion) return bad("unknown version " + std::to_string(version));
  double alpha = 0;
  uint64_t max_buckets = 0;
  uint64_t declared = 0;
  uint64_t zero_count = 0;
  if (!in.f64(alpha) || !in.varint(max_buckets) || !in.varint(declared) || !in.varint(zero_count)) {
    return bad("truncated");
  }
  if (!(alpha >= kMinAlpha && alpha <= kMaxAlpha)) return bad("relative accuracy out of range");
  if (max_buckets < 1 || max_buckets > kMaxMaxBuckets) return bad("max_buckets out of range");
  DDSketch sketch(alpha, static_cast<uint32_t>(max_buckets));
  if (sketch.alpha_ != alpha) return bad("relative accuracy out of range");

  uint64_t total = zero_count;
  double min = 0;
  double max = 0;
  double sum = 0;
  if (declared > 0) {
    if (!in.f64(min) || !in.f64(max) || !in.f64(sum)) return bad("truncated min/max/sum");
  }
  size_t pos = bytes.size() - in.remaining();
  if (Status s = sketch.read_stores(bytes, pos, total); !s.is_ok()) return s;
  if (pos != bytes.size()) return bad("trailing bytes");
  if (total != declared) return bad("bucket counts do not add up to the total");
  if (declared == 0) return sketch;
  // sum may legitimately be infinite or NaN after overflow, so it is not checked.
  if (Status s = sketch.set_totals(zero_count, total, min, max, sum); !s.is_ok()) return s;
  return sketch;
}

}  // namespace kpid::store
