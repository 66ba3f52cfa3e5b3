#include "kpid/ingest/delta_accumulator.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace kpid::ingest {

namespace {

constexpr std::string_view kPrefix = "otlp_delta/";
constexpr uint8_t kFormat = 1;
// An exponential total wider than this many buckets per side is coarsened (never reached by
// senders that keep OTLP's default of 160 buckets).
constexpr size_t kMaxDenseBuckets = 4096;

void put_bytes(std::string& out, const void* p, size_t n) {
  out.append(static_cast<const char*>(p), n);
}
template <typename T>
void put(std::string& out, T v) {
  put_bytes(out, &v, sizeof v);
}
void put_doubles(std::string& out, const std::vector<double>& v) {
  put(out, static_cast<uint32_t>(v.size()));
  put_bytes(out, v.data(), v.size() * sizeof(double));
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <typename T>
  bool get(T& v) {
    if (in_.size() < sizeof v) return false;
    std::memcpy(&v, in_.data(), sizeof v);
    in_.remove_prefix(sizeof v);
    return true;
  }
  bool get_doubles(std::vector<double>& v) {
    uint32_t n = 0;
    if (!get(n) || in_.size() / sizeof(double) < n) return false;
    v.resize(n);
    if (n > 0) std::memcpy(v.data(), in_.data(), n * sizeof(double));
    in_.remove_prefix(n * sizeof(double));
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

void append_part(std::string& key, std::string_view part) {
  const auto n = static_cast<uint32_t>(part.size());
  put(key, n);
  key.append(part);
}

// Counts at OTLP indices offset + i, coarsened by `by` scale steps (index k -> k >> by).
void downscale(int32_t& offset, std::vector<double>& counts, int by) {
  if (by <= 0 || counts.empty()) return;
  const int32_t first = offset >> by;
  std::vector<double> merged;
  for (size_t i = 0; i < counts.size(); ++i) {
    const auto at = static_cast<size_t>(((offset + static_cast<int32_t>(i)) >> by) - first);
    if (merged.size() <= at) merged.resize(at + 1, 0);
    merged[at] += counts[i];
  }
  offset = first;
  counts = std::move(merged);
}

// total += add, both at OTLP indices (offset + i) of one scale.
void add_dense(int32_t& offset, std::vector<double>& total, int32_t add_offset,
               std::span<const double> add) {
  if (add.empty()) return;
  if (total.empty()) {
    offset = add_offset;
    total.assign(add.begin(), add.end());
    return;
  }
  const int32_t low = std::min(offset, add_offset);
  const int64_t high = std::max<int64_t>(offset + static_cast<int64_t>(total.size()),
                                         add_offset + static_cast<int64_t>(add.size()));
  if (low < offset) total.insert(total.begin(), static_cast<size_t>(offset - low), 0.0);
  offset = low;
  total.resize(static_cast<size_t>(high - low), 0.0);
  for (size_t i = 0; i < add.size(); ++i) {
    total[static_cast<size_t>(add_offset - low) + i] += add[i];
  }
}

void to_indexed(int32_t offset, const std::vector<double>& counts, std::vector<IndexedCount>& out) {
  out.clear();
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] != 0) out.push_back({offset + static_cast<int32_t>(i) + 1, counts[i]});
  }
}

}  // namespace

struct DeltaAccumulator::Stream {
  OtlpDelta::Kind kind = OtlpDelta::Kind::kSum;
  int64_t last_end_ns = 0;
  double value = 0;  // kSum
  double count = 0;
  double sum = 0;
  bool has_sum = true;
  std::vector<double> bounds;  // kHistogram
  std::vector<double> counts;
  int32_t scale = 0;  // kExponentialHistogram
  double zero_threshold = 0;
  double zero_count = 0;
  int32_t positive_offset = 0;
  std::vector<double> positive;
  int32_t negative_offset = 0;
  std::vector<double> negative;

  std::string encode() const {
    std::string out;
    put(out, kFormat);
    put(out, static_cast<uint8_t>(kind));
    put(out, last_end_ns);
    if (kind == OtlpDelta::Kind::kSum) {
      put(out, value);
      return out;
    }
    put(out, count);
    put(out, sum);
    put(out, static_cast<uint8_t>(has_sum));
    if (kind == OtlpDelta::Kind::kHistogram) {
      put_doubles(out, bounds);
      put_doubles(out, counts);
      return out;
    }
    put(out, scale);
    put(out, zero_threshold);
    put(out, zero_count);
    put(out, positive_offset);
    put_doubles(out, positive);
    put(out, negative_offset);
    put_doubles(out, negative);
    return out;
  }

  bool decode(std::string_view in) {
    Reader r(in);
    uint8_t format = 0, k = 0, with_sum = 0;
    if (!r.get(format) || format != kFormat || !r.get(k) || k > 2 || !r.get(last_end_ns)) {
      return false;
    }
    kind = static_cast<OtlpDelta::Kind>(k);
    if (kind == OtlpDelta::Kind::kSum) return r.get(value) && r.done();
    if (!r.get(count) || !r.get(sum) || !r.get(with_sum)) return false;
    has_sum = with_sum != 0;
    if (kind == OtlpDelta::Kind::kHistogram) {
      return r.get_doubles(bounds) && r.get_doubles(counts) &&
             (counts.empty() || counts.size() == bounds.size() + 1) && r.done();
    }
    return r.get(scale) && r.get(zero_threshold) && r.get(zero_count) && r.get(positive_offset) &&
           r.get_doubles(positive) && r.get(negative_offset) && r.get_doubles(negative) && r.done();
  }
};

struct DeltaAccumulator::Pending {
  std::string key;
  Stream stream;
  std::vector<size_t> points;
};

DeltaAccumulator::DeltaAccumulator(store::StateStore& state, size_t max_histogram_buckets)
    : state_(state), max_buckets_(max_histogram_buckets) {}
DeltaAccumulator::~DeltaAccumulator() = default;

Status DeltaAccumulator::load() {
  std::unordered_map<std::string, std::unique_ptr<Stream>> loaded;
  std::string corrupt;
  auto s = state_.scan_state(kPrefix, [&](std::string_view key, std::string_view value) {
    auto stream = std::make_unique<Stream>();
    if (!stream->decode(value)) {
      corrupt = std::string(key.substr(kPrefix.size()));
      return false;
    }
    loaded.emplace(std::string(key.substr(kPrefix.size())), std::move(stream));
    return true;
  });
  if (!s) return s;
  if (!corrupt.empty()) {
    // The key's readable part: the kind byte, then the length-prefixed series name.
    std::string name = corrupt.size() > 5 ? corrupt.substr(5) : corrupt;
    return Status::internal("corrupt OTLP delta state record (state key " + std::string(kPrefix) +
                            "..., series " + name.substr(0, name.find('\0')) + ")");
  }
  std::lock_guard lock(mutex_);
  streams_ = std::move(loaded);
  return Status::ok();
}

size_t DeltaAccumulator::streams() const {
  std::lock_guard lock(mutex_);
  return streams_.size();
}

DeltaAccumulator::Batch DeltaAccumulator::begin() { return Batch(*this); }

DeltaAccumulator::Batch::Batch(DeltaAccumulator& owner) : owner_(&owner), lock_(owner.mutex_) {
  owner_->pending_used_ = 0;
  owner_->pending_index_.clear();
}

DeltaAccumulator::Batch::Batch(Batch&& other) noexcept
    : owner_(other.owner_), lock_(std::move(other.lock_)) {}

DeltaAccumulator::Batch::~Batch() = default;

std::string DeltaAccumulator::Batch::add(const OtlpDelta& delta, OtlpSeriesBuilder& out) {
  DeltaAccumulator& a = *owner_;
  std::string& key = a.key_;
  key.assign(1, static_cast<char>(delta.kind));
  append_part(key, delta.name);
  for (const RemoteLabel& l : delta.labels) {
    append_part(key, l.name);
    append_part(key, l.value);
  }

  // The stream's total as this batch left it, else as committed, else a new stream.
  Pending* p = nullptr;
  if (auto it = a.pending_index_.find(key); it != a.pending_index_.end()) {
    p = a.pending_[it->second].get();
  } else {
    const auto committed = a.streams_.find(key);
    if (committed != a.streams_.end() && delta.end_ns <= committed->second->last_end_ns) {
      return "duplicate or out-of-order delta: time_unix_nano " + std::to_string(delta.end_ns) +
             " is not after " + std::to_string(committed->second->last_end_ns) +
             ", the stream's last accepted point";
    }
    if (a.pending_used_ == a.pending_.size()) a.pending_.push_back(std::make_unique<Pending>());
    p = a.pending_[a.pending_used_].get();
    p->key = key;
    p->points.clear();
    if (committed != a.streams_.end()) {
      p->stream = *committed->second;
    } else {
      p->stream = Stream{};
      p->stream.kind = delta.kind;
      p->stream.last_end_ns = std::numeric_limits<int64_t>::min();
      p->stream.scale = delta.scale;
    }
    a.pending_index_.emplace(key, a.pending_used_++);
  }
  Stream& s = p->stream;
  if (delta.end_ns <= s.last_end_ns) {
    return "duplicate or out-of-order delta: time_unix_nano " + std::to_string(delta.end_ns) +
           " is not after " + std::to_string(s.last_end_ns) +
           ", the stream's last accepted point (earlier in this request)";
  }
  s.last_end_ns = delta.end_ns;
  p->points.push_back(delta.point);
  const int64_t ts = delta.end_ns / 1'000'000;

  switch (delta.kind) {
    case OtlpDelta::Kind::kSum:
      s.value += delta.value;
      out.add(delta.point, delta.name, delta.labels, {}, ts, s.value);
      break;
    case OtlpDelta::Kind::kHistogram: {
      const bool same_bounds =
          std::equal(s.bounds.begin(), s.bounds.end(), delta.bounds.begin(), delta.bounds.end()) &&
          s.counts.size() == delta.bucket_counts.size();
      if (!same_bounds) {
        // New bucket layout: the stream starts over from this point.
        s.bounds.assign(delta.bounds.begin(), delta.bounds.end());
        s.counts.assign(delta.bucket_counts.size(), 0.0);
        s.count = 0;
        s.sum = 0;
        s.has_sum = true;
      }
      for (size_t i = 0; i < s.counts.size(); ++i) s.counts[i] += delta.bucket_counts[i];
      s.count += delta.count;
      s.sum += delta.sum;
      s.has_sum = s.has_sum && delta.has_sum;
      a.buckets_.clear();
      double cumulative = 0;
      for (size_t i = 0; i < s.bounds.size() && i < s.counts.size(); ++i) {
        cumulative += s.counts[i];
        a.buckets_.push_back({s.bounds[i], cumulative});
      }
      a.buckets_.push_back({std::numeric_limits<double>::infinity(), s.count});
      out.add_histogram(delta.point, delta.name, delta.labels, a.buckets_,
                        s.has_sum ? &s.sum : nullptr, s.count, ts);
      break;
    }
    case OtlpDelta::Kind::kExponentialHistogram: {
      // Bring the total and the delta to a common scale, then add bucket by bucket.
      int32_t pos_offset = delta.positive_offset;
      int32_t neg_offset = delta.negative_offset;
      std::vector<double> pos(delta.positive_counts.begin(), delta.positive_counts.end());
      std::vector<double> neg(delta.negative_counts.begin(), delta.negative_counts.end());
      int32_t scale = std::min(s.scale, delta.scale);
      downscale(s.positive_offset, s.positive, s.scale - scale);
      downscale(s.negative_offset, s.negative, s.scale - scale);
      downscale(pos_offset, pos, delta.scale - scale);
      downscale(neg_offset, neg, delta.scale - scale);
      // Coarser still while the sum would span too many buckets (far apart offsets), so a
      // hostile pair of points cannot make the total huge.
      auto span = [](int32_t a, size_t an, int32_t b, size_t bn) -> int64_t {
        if (an == 0 || bn == 0) return static_cast<int64_t>(std::max(an, bn));
        return std::max<int64_t>(a + static_cast<int64_t>(an), b + static_cast<int64_t>(bn)) -
               std::min(a, b);
      };
      while ((span(s.positive_offset, s.positive.size(), pos_offset, pos.size()) >
                  static_cast<int64_t>(kMaxDenseBuckets) ||
              span(s.negative_offset, s.negative.size(), neg_offset, neg.size()) >
                  static_cast<int64_t>(kMaxDenseBuckets)) &&
             scale > -10) {
        for (auto [offset, counts] : {std::pair{&s.positive_offset, &s.positive},
                                      std::pair{&s.negative_offset, &s.negative},
                                      std::pair{&pos_offset, &pos}, std::pair{&neg_offset, &neg}}) {
          downscale(*offset, *counts, 1);
        }
        --scale;
      }
      s.scale = scale;
      add_dense(s.positive_offset, s.positive, pos_offset, pos);
      add_dense(s.negative_offset, s.negative, neg_offset, neg);
      s.zero_threshold = std::max(s.zero_threshold, delta.zero_threshold);
      s.zero_count += delta.zero_count;
      s.count += delta.count;
      s.sum += delta.sum;
      s.has_sum = s.has_sum && delta.has_sum;
      to_indexed(s.positive_offset, s.positive, a.positive_);
      to_indexed(s.negative_offset, s.negative, a.negative_);
      NativeHistogram h;
      h.schema = s.scale;
      h.zero_threshold = s.zero_threshold;
      h.zero_count = s.zero_count;
      h.count = s.count;
      h.sum = s.sum;
      h.positive = a.positive_;
      h.negative = a.negative_;
      to_classic_buckets(h, a.max_buckets_, a.buckets_);
      out.add_histogram(delta.point, delta.name, delta.labels, a.buckets_,
                        s.has_sum ? &s.sum : nullptr, s.count, ts);
      break;
    }
  }
  return {};
}

Status DeltaAccumulator::Batch::commit(const std::function<bool(size_t point)>& stored) {
  DeltaAccumulator& a = *owner_;
  std::vector<std::pair<std::string, std::string>> puts;
  std::vector<Pending*> applied;
  for (size_t i = 0; i < a.pending_used_; ++i) {
    Pending& p = *a.pending_[i];
    if (std::none_of(p.points.begin(), p.points.end(), stored)) continue;
    puts.emplace_back(std::string(kPrefix) + p.key, p.stream.encode());
    applied.push_back(&p);
  }
  a.pending_used_ = 0;
  a.pending_index_.clear();
  if (puts.empty()) return Status::ok();
  if (auto s = a.state_.write_state(puts); !s) {
    return Status::unavailable("recording OTLP delta totals failed: " + s.message());
  }
  for (Pending* p : applied) {
    auto& slot = a.streams_[p->key];
    if (!slot) slot = std::make_unique<Stream>();
    *slot = p->stream;
  }
  return Status::ok();
}

}  // namespace kpid::ingest
