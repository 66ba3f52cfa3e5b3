// Every PromQL aggregation, step by step as Prometheus 2.42's aggregation() (the reference the
// differential test runs), and limitk / limit_ratio (newer) as the current Prometheus documents
// and implements them.
//
// Per group (by: the listed labels; without: all but the listed and __name__), at each step:
// - sum: compensated sum (as current Prometheus; 2.42 adds plainly, which differs only where
//   terms cancel, e.g. 1e100 + 1 - 1e100); avg: compensated mean; min/max: NaN is replaced by
//   any other value; count; group: 1.
// - stddev, stdvar: population variance by Welford's update, as 2.42 (one Inf gives 0).
// - quantile(φ, v): φ per step; interpolated between ranks, NaN values sort first; φ < 0 gives
//   -Inf, φ > 1 +Inf, NaN φ NaN.
// - count_values("l", v): the label must be a valid name ("invalid label name"); each value,
//   formatted as Go's FormatFloat(v, 'f', -1) (NaN, +Inf, -Inf), is set as label l, and the
//   groups (by: the listed labels and l) are counted.
// - topk, bottomk, limitk (k, v): k per step must fit int64 ("Scalar value NaN overflows
//   int64") and is truncated; k < 1 selects nothing. The selected elements keep their labels
//   (__name__ too), so in a range query a series appears at the steps where it was selected.
//   topk/bottomk keep a binary heap exactly as Go's container/heap does, so ties and NaN (lowest
//   for both, replaced by any later value) select the same series as Prometheus; an instant
//   query lists groups in first-seen order, each group best first, NaN last, equal values in
//   the order Go's sort.Sort leaves them. limitk keeps the
//   first k elements of each group in input (label) order.
// - limit_ratio(r, v): r per step, NaN an error ("Ratio value NaN is NaN"), clamped to [-1, 1]
//   (Prometheus also warns; kpid's API has no warnings), 0 selects nothing. An element is kept
//   when offset < r (r > 0) or offset >= 1 + r (r < 0), offset being the XXH64 (seed 0) of its
//   labels as "name\xffvalue\xff..." divided by 2^64 - 1 as a double: Prometheus'
//   HashRatioSampler over Labels.Hash, so the same series are selected, at every step.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <utility>

#include "evaluator.h"
#include "functions.h"
#include "series_ops.h"

namespace kpid::query::detail {

namespace {

constexpr size_t kNone = std::numeric_limits<size_t>::max();

bool listed(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool in_group(const Label& l, const std::vector<std::string>& grouping, bool without) {
  return without ? !listed(grouping, l.name) && l.name != kMetricNameLabel
                 : listed(grouping, l.name);
}

// The group's key ("name\xffvalue\xff" per label) into `key`.
void group_key(const Labels& labels, const std::vector<std::string>& grouping, bool without,
               std::string& key) {
  key.clear();
  for (const auto& l : labels.items()) {
    if (!in_group(l, grouping, without)) continue;
    key += l.name;
    key.push_back('\xff');
    key += l.value;
    key.push_back('\xff');
  }
}

LabelsPtr group_labels(const Labels& labels, const std::vector<std::string>& grouping,
                       bool without) {
  std::vector<Label> items;
  for (const auto& l : labels.items()) {
    if (in_group(l, grouping, without)) items.push_back(l);
  }
  // A subset of a valid label set: cannot fail.
  auto out = Labels::from(std::move(items));
  return std::make_shared<const Labels>(out ? std::move(out).value() : Labels());
}

// Go's %v of a float64: %g with the shortest digits, so the exponent form below 1e-4 and from
// 1e6 ("1e+19", "1.5e+06", "123456.5").
std::string go_float_v(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const int exp = std::atoi(sci.c_str() + sci.find('e') + 1);
  if (exp < -4 || exp >= 6) return sci;
  r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

// Go's strconv.FormatFloat(v, 'f', -1, 64), as count_values writes values.
void format_value(double v, std::string& out) {
  out.clear();
  if (std::isnan(v)) {
    out = "NaN";
  } else if (std::isinf(v)) {
    out = v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[512];  // the longest fixed form of a double is about 330 characters
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    out.assign(buf, r.ptr);
  }
}

// XXH64 with seed 0 (the published algorithm), the hash Prometheus' Labels.Hash uses.
constexpr uint64_t kP1 = 11400714785074694791ULL;
constexpr uint64_t kP2 = 14029467366897019727ULL;
constexpr uint64_t kP3 = 1609587929392839161ULL;
constexpr uint64_t kP4 = 9650029242287828579ULL;
constexpr uint64_t kP5 = 2870177450012600261ULL;

uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
uint64_t read64(const char* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, 8);  // little-endian hosts only (x86-64, arm64)
  return v;
}
uint32_t read32(const char* p) {
  uint32_t v = 0;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t xxh_round(uint64_t acc, uint64_t input) { return rotl(acc + input * kP2, 31) * kP1; }
uint64_t xxh_merge(uint64_t acc, uint64_t v) { return (acc ^ xxh_round(0, v)) * kP1 + kP4; }

uint64_t xxh64(std::string_view data) {
  const char* p = data.data();
  const char* end = p + data.size();
  uint64_t h = 0;
  if (data.size() >= 32) {
    uint64_t v1 = kP1 + kP2;
    uint64_t v2 = kP2;
    uint64_t v3 = 0;
    uint64_t v4 = 0 - kP1;
    for (; end - p >= 32; p += 32) {
      v1 = xxh_round(v1, read64(p));
      v2 = xxh_round(v2, read64(p + 8));
      v3 = xxh_round(v3, read64(p + 16));
      v4 = xxh_round(v4, read64(p + 24));
    }
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = xxh_merge(xxh_merge(xxh_merge(xxh_merge(h, v1), v2), v3), v4);
  } else {
    h = kP5;
  }
  h += data.size();
  for (; end - p >= 8; p += 8) h = rotl(h ^ xxh_round(0, read64(p)), 27) * kP1 + kP4;
  if (end - p >= 4) {
    h = rotl(h ^ (static_cast<uint64_t>(read32(p)) * kP1), 23) * kP2 + kP3;
    p += 4;
  }
  for (; p < end; ++p)
    h = rotl(h ^ (static_cast<uint64_t>(static_cast<uint8_t>(*p)) * kP5), 11) * kP1;
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

// Prometheus' HashRatioSampler offset of a series: its label hash scaled to [0, 1].
double ratio_offset(const Labels& labels) {
  std::string bytes;
  for (const auto& l : labels.items()) {
    bytes += l.name;
    bytes.push_back('\xff');
    bytes += l.value;
    bytes.push_back('\xff');
  }
  return static_cast<double>(xxh64(bytes)) /
         static_cast<double>(std::numeric_limits<uint64_t>::max());
}

// One element of a topk/bottomk/limitk/limit_ratio group at one step.
struct Entry {
  double value;
  size_t series;
};

// Go's vectorByValueHeap (topk) and vectorByReverseValueHeap (bottomk) orders: NaN lowest.
bool topk_less(const Entry& a, const Entry& b) { return std::isnan(a.value) || a.value < b.value; }
bool bottomk_less(const Entry& a, const Entry& b) {
  return std::isnan(a.value) || a.value > b.value;
}
using EntryLess = bool (*)(const Entry&, const Entry&);

// Go's container/heap, step for step, so that equal values leave the heap in the same order.
void heap_up(std::vector<Entry>& h, size_t j, EntryLess less) {
  while (j > 0) {
    const size_t i = (j - 1) / 2;
    if (!less(h[j], h[i])) break;
    std::swap(h[i], h[j]);
    j = i;
  }
}
void heap_down(std::vector<Entry>& h, size_t i, size_t n, EntryLess less) {
  while (true) {
    const size_t j1 = 2 * i + 1;
    if (j1 >= n) break;
    size_t j = j1;
    if (j1 + 1 < n && less(h[j1 + 1], h[j1])) j = j1 + 1;
    if (!less(h[j], h[i])) break;
    std::swap(h[i], h[j]);
    i = j;
  }
}
void heap_push(std::vector<Entry>& h, Entry e, EntryLess less) {
  h.push_back(e);
  heap_up(h, h.size() - 1, less);
}
void heap_pop(std::vector<Entry>& h, EntryLess less) {
  const size_t n = h.size() - 1;
  std::swap(h[0], h[n]);
  heap_down(h, 0, n, less);
  h.pop_back();
}

// Go's sort.Sort (pdqsort since Go 1.19, which built Debian's Prometheus 2.42) over data[a, b)
// with `less(i, j)`, step for step: it is not stable, and the order it leaves equal values in is
// the order Prometheus lists them.
class GoSort {
 public:
  GoSort(std::vector<Entry>& data, bool (*less)(const Entry&, const Entry&))
      : d_(data), less_(less) {}

  void sort() {
    const size_t n = d_.size();
    if (n <= 1) return;
    pdqsort(0, static_cast<long>(n), bit_len(n));
  }

 private:
  enum Hint { kUnknown, kIncreasing, kDecreasing };

  static int bit_len(uint64_t x) { return x == 0 ? 0 : 64 - __builtin_clzll(x); }
  bool less(long i, long j) const { return less_(d_[i], d_[j]); }
  void swap(long i, long j) { std::swap(d_[i], d_[j]); }

  void insertion_sort(long a, long b) {
    for (long i = a + 1; i < b; ++i) {
      for (long j = i; j > a && less(j, j - 1); --j) swap(j, j - 1);
    }
  }
  void sift_down(long lo, long hi, long first) {
    long root = lo;
    while (true) {
      long child = 2 * root + 1;
      if (child >= hi) return;
      if (child + 1 < hi && less(first + child, first + child + 1)) ++child;
      if (!less(first + root, first + child)) return;
      swap(first + root, first + child);
      root = child;
    }
  }
  void heap_sort(long a, long b) {
    const long first = a;
    const long hi = b - a;
    for (long i = (hi - 1) / 2; i >= 0; --i) sift_down(i, hi, first);
    for (long i = hi - 1; i >= 0; --i) {
      swap(first, first + i);
      sift_down(0, i, first);
    }
  }
  void pdqsort(long a, long b, int limit) {
    constexpr long kMaxInsertion = 12;
    bool was_balanced = true;
    bool was_partitioned = true;
    while (true) {
      const long length = b - a;
      if (length <= kMaxInsertion) {
        insertion_sort(a, b);
        return;
      }
      if (limit == 0) {
        heap_sort(a, b);
        return;
      }
      if (!was_balanced) {
        break_patterns(a, b);
        --limit;
      }
      auto [pivot, hint] = choose_pivot(a, b);
      if (hint == kDecreasing) {
        reverse_range(a, b);
        pivot = (b - 1) - (pivot - a);
        hint = kIncreasing;
      }
      if (was_balanced && was_partitioned && hint == kIncreasing) {
        if (partial_insertion_sort(a, b)) return;
      }
      if (a > 0 && !less(a - 1, pivot)) {
        a = partition_equal(a, b, pivot);
        continue;
      }
      auto [mid, already] = partition(a, b, pivot);
      was_partitioned = already;
      const long left = mid - a;
      const long right = b - mid;
      const long balance = length / 8;
      if (left < right) {
        was_balanced = left >= balance;
        pdqsort(a, mid, limit);
        a = mid + 1;
      } else {
        was_balanced = right >= balance;
        pdqsort(mid + 1, b, limit);
        b = mid;
      }
    }
  }
  std::pair<long, bool> partition(long a, long b, long pivot) {
    swap(a, pivot);
    long i = a + 1;
    long j = b - 1;
    while (i <= j && less(i, a)) ++i;
    while (i <= j && !less(j, a)) --j;
    if (i > j) {
      swap(j, a);
      return {j, true};
    }
    swap(i, j);
    ++i;
    --j;
    while (true) {
      while (i <= j && less(i, a)) ++i;
      while (i <= j && !less(j, a)) --j;
      if (i > j) break;
      swap(i, j);
      ++i;
      --j;
    }
    swap(j, a);
    return {j, false};
  }
  long partition_equal(long a, long b, long pivot) {
    swap(a, pivot);
    long i = a + 1;
    long j = b - 1;
    while (true) {
      while (i <= j && !less(a, i)) ++i;
      while (i <= j && less(a, j)) --j;
      if (i > j) break;
      swap(i, j);
      ++i;
      --j;
    }
    return i;
  }
  bool partial_insertion_sort(long a, long b) {
    constexpr int kMaxSteps = 5;
    constexpr long kShortestShifting = 50;
    long i = a + 1;
    for (int step = 0; step < kMaxSteps; ++step) {
      while (i < b && !less(i, i - 1)) ++i;
      if (i == b) return true;
      if (b - a < kShortestShifting) return false;
      swap(i, i - 1);
      if (i - a >= 2) {
        for (long j = i - 1; j >= 1; --j) {
          if (!less(j, j - 1)) break;
          swap(j, j - 1);
        }
      }
      if (b - i >= 2) {
        for (long j = i + 1; j < b; ++j) {
          if (!less(j, j - 1)) break;
          swap(j, j - 1);
        }
      }
    }
    return false;
  }
  void break_patterns(long a, long b) {
    const long length = b - a;
    if (length < 8) return;
    uint64_t random = static_cast<uint64_t>(length);
    const uint64_t modulus = uint64_t{1} << bit_len(static_cast<uint64_t>(length));
    const long idx = a + (length / 4) * 2 - 1;
    for (long i = 0; i < 3; ++i) {
      random ^= random << 13;  // Go 1.19's xorshift (later Go uses 13, 7, 17)
      random ^= random >> 17;
      random ^= random << 5;
      auto other = static_cast<long>(random & (modulus - 1));
      if (other >= length) other -= length;
      swap(idx + i, a + other);
    }
  }
  std::pair<long, Hint> choose_pivot(long a, long b) {
    constexpr long kShortestNinther = 50;
    constexpr int kMaxSwaps = 4 * 3;
    const long l = b - a;
    int swaps = 0;
    long i = a + l / 4 * 1;
    long j = a + l / 4 * 2;
    long k = a + l / 4 * 3;
    if (l >= 8) {
      if (l >= kShortestNinther) {
        i = median(i - 1, i, i + 1, swaps);
        j = median(j - 1, j, j + 1, swaps);
        k = median(k - 1, k, k + 1, swaps);
      }
      j = median(i, j, k, swaps);
    }
    if (swaps == 0) return {j, kIncreasing};
    if (swaps == kMaxSwaps) return {j, kDecreasing};
    return {j, kUnknown};
  }
  void order2(long& a, long& b, int& swaps) {
    if (less(b, a)) {
      ++swaps;
      std::swap(a, b);
    }
  }
  long median(long a, long b, long c, int& swaps) {
    order2(a, b, swaps);
    order2(b, c, swaps);
    order2(a, b, swaps);
    return b;
  }
  void reverse_range(long a, long b) {
    for (long i = a, j = b - 1; i < j; ++i, --j) swap(i, j);
  }

  std::vector<Entry>& d_;
  bool (*less_)(const Entry&, const Entry&);
};

// sort.Sort(sort.Reverse(heap)): best first, NaN last, equal values as Go leaves them.
void sort_best_first(std::vector<Entry>& h, EntryLess less) {
  // Reverse's Less(i, j) is the heap's Less(j, i).
  if (less == topk_less) {
    GoSort(h, [](const Entry& a, const Entry& b) { return topk_less(b, a); }).sort();
  } else {
    GoSort(h, [](const Entry& a, const Entry& b) { return bottomk_less(b, a); }).sort();
  }
}

// k of topk/bottomk/limitk at one step, as Go's convertibleToInt64 then int64(v).
Result<int64_t> k_of(double v) {
  constexpr double kTwo63 = 9223372036854775808.0;
  if (std::isnan(v) || v > kTwo63 || v < -kTwo63) {
    return Status::invalid_argument("Scalar value " + go_float_v(v) + " overflows int64");
  }
  // float64(MaxInt64) is 2^63, which passes the check; Go's conversion then yields MinInt64.
  if (v == kTwo63) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

bool selects(AggregateOp op) {
  return op == AggregateOp::kTopk || op == AggregateOp::kBottomk || op == AggregateOp::kLimitk ||
         op == AggregateOp::kLimitRatio;
}

// Walks a series' step-stamped points in step order.
struct Cursor {
  const std::vector<store::Point>* points;
  size_t next = 0;
  const store::Point* at(TimestampMs t) {
    if (next < points->size() && (*points)[next].timestamp == t) return &(*points)[next++];
    return nullptr;
  }
};

}  // namespace

Result<Value> Evaluator::aggregate(const AggregateExpr& n, Value in, const Value* param) {
  const AggregateOp op = n.op;
  // Prometheus aggregates in its input's order: a selector's series sorted by labels (which
  // decides ties in topk, bottomk and limitk, and the rounding of sums), or an instant topk's
  // own order.
  if (!in.keep_order) {
    std::stable_sort(in.series.begin(), in.series.end(), [](const Series& a, const Series& b) {
      return a.labels->items() < b.labels->items();
    });
  }
  const bool count_values = op == AggregateOp::kCountValues;
  std::string value_label;
  std::vector<std::string> grouping = n.grouping;
  if (count_values) {
    value_label = param->string;
    if (!valid_label_name(value_label)) {
      std::string m = "invalid label name ";
      append_quoted(m, value_label);
      return Status::invalid_argument(m);
    }
    if (!n.without) grouping.push_back(value_label);
  }

  // Groups of every input series (count_values: of every distinct labels-and-value, below).
  std::unordered_map<std::string, size_t> ids;
  std::vector<LabelsPtr> group_of_labels;
  std::vector<size_t> group_of(in.series.size(), kNone);
  std::string key;
  if (!count_values) {
    for (size_t i = 0; i < in.series.size(); ++i) {
      group_key(*in.series[i].labels, grouping, n.without, key);
      auto [it, inserted] = ids.try_emplace(key, group_of_labels.size());
      if (inserted)
        group_of_labels.push_back(group_labels(*in.series[i].labels, grouping, n.without));
      group_of[i] = it->second;
    }
  }

  struct State {
    size_t stamp = kNone;  // the step this state belongs to
    double value = 0;
    double c = 0;
    double mean = 0;
    uint64_t count = 0;
    MeanAccumulator acc;
    std::vector<Entry> heap;     // topk, bottomk, limitk, limit_ratio
    std::vector<double> values;  // quantile
  };
  std::vector<State> states(group_of_labels.size());
  std::vector<Series> out_groups;  // value aggregations: one series per group
  for (const auto& l : group_of_labels) out_groups.push_back({l, {}});
  // Selections: the chosen input series' points (range), or the ordered elements (instant).
  std::vector<std::vector<store::Point>> chosen(selects(op) ? in.series.size() : 0);
  Value v;
  v.type = ValueType::kVector;
  const bool ordered = selects(op) && !grid_.range_query;

  std::vector<Cursor> cs;
  cs.reserve(in.series.size());
  for (const auto& s : in.series) cs.push_back({&s.points});
  // limit_ratio's per-series offsets, hashed once.
  std::vector<double> offsets;
  if (op == AggregateOp::kLimitRatio) {
    for (const auto& s : in.series) offsets.push_back(ratio_offset(*s.labels));
  }
  auto sampled = [&](double ratio, size_t i) {
    return (ratio >= 0 && offsets[i] < ratio) || (ratio < 0 && offsets[i] >= 1 + ratio);
  };
  std::vector<size_t> touched;
  std::string formatted;
  for (size_t k = 0; k < grid_.count; ++k) {
    if (auto st = guard_.tick(); !st) return st;
    const TimestampMs t = grid_.at(k);
    int64_t limit = 0;
    double ratio = 0;
    if (op == AggregateOp::kTopk || op == AggregateOp::kBottomk || op == AggregateOp::kLimitk) {
      auto kk = k_of(param->scalars[k]);
      if (!kk) return kk.status();
      limit = *kk;
    } else if (op == AggregateOp::kLimitRatio) {
      ratio = param->scalars[k];
      if (std::isnan(ratio)) return Status::invalid_argument("Ratio value NaN is NaN");
      ratio = std::clamp(ratio, -1.0, 1.0);
    }
    // Nothing to select at this step; the series' points at it are skipped.
    const bool none = (selects(op) && op != AggregateOp::kLimitRatio && limit < 1) ||
                      (op == AggregateOp::kLimitRatio && ratio == 0);
    touched.clear();
    for (size_t i = 0; i < cs.size(); ++i) {
      const auto* p = cs[i].at(t);
      if (p == nullptr || none) continue;
      const double x = p->value;
      size_t g = group_of[i];
      if (count_values) {
        // The series' labels with value_label set to the value, then grouped.
        format_value(x, formatted);
        std::vector<Label> items;
        bool set = false;
        for (const auto& l : in.series[i].labels->items()) {
          if (!set && l.name >= value_label) {
            items.push_back({value_label, formatted});
            set = true;
            if (l.name == value_label) continue;
          }
          items.push_back(l);
        }
        if (!set) items.push_back({value_label, formatted});
        auto labels = Labels::from(std::move(items));
        if (!labels) return labels.status();
        group_key(*labels, grouping, n.without, key);
        auto [it, inserted] = ids.try_emplace(key, states.size());
        if (inserted) {
          states.emplace_back();
          out_groups.push_back({group_labels(*labels, grouping, n.without), {}});
        }
        g = it->second;
      }
      State& st = states[g];
      if (st.stamp != k) {
        st.stamp = k;
        st.value = x;
        st.c = 0;
        st.mean = x;
        st.count = 1;
        st.acc = MeanAccumulator{};
        st.heap.clear();
        st.values.clear();
        touched.push_back(g);
        switch (op) {
          case AggregateOp::kAvg: st.acc.add(x); break;
          case AggregateOp::kGroup: st.value = 1; break;
          case AggregateOp::kStddev:
          case AggregateOp::kStdvar: st.value = 0; break;
          case AggregateOp::kQuantile: st.values.push_back(x); break;
          case AggregateOp::kTopk:
          case AggregateOp::kBottomk:
          case AggregateOp::kLimitk: st.heap.push_back({x, i}); break;
          case AggregateOp::kLimitRatio:
            if (sampled(ratio, i)) st.heap.push_back({x, i});
            break;
          default: break;
        }
        continue;
      }
      ++st.count;
      switch (op) {
        case AggregateOp::kSum: kahan_add(x, st.value, st.c); break;
        case AggregateOp::kAvg: st.acc.add(x); break;
        case AggregateOp::kMin:
          if (st.value > x || std::isnan(st.value)) st.value = x;
          break;
        case AggregateOp::kMax:
          if (st.value < x || std::isnan(st.value)) st.value = x;
          break;
        case AggregateOp::kCount:
        case AggregateOp::kCountValues:
        case AggregateOp::kGroup: break;
        case AggregateOp::kStddev:
        case AggregateOp::kStdvar: {
          const double delta = x - st.mean;
          st.mean += delta / static_cast<double>(st.count);
          st.value += delta * (x - st.mean);
          break;
        }
        case AggregateOp::kQuantile: st.values.push_back(x); break;
        case AggregateOp::kTopk:
        case AggregateOp::kBottomk: {
          const bool top = op == AggregateOp::kTopk;
          const EntryLess less = top ? topk_less : bottomk_less;
          auto& h = st.heap;
          if (static_cast<int64_t>(h.size()) < limit) {
            heap_push(h, {x, i}, less);
          } else if ((top ? h[0].value < x : h[0].value > x) || std::isnan(h[0].value)) {
            heap_pop(h, less);
            heap_push(h, {x, i}, less);
          }
          break;
        }
        case AggregateOp::kLimitk:
          if (static_cast<int64_t>(st.heap.size()) < limit) heap_push(st.heap, {x, i}, topk_less);
          break;
        case AggregateOp::kLimitRatio:
          if (sampled(ratio, i)) heap_push(st.heap, {x, i}, topk_less);
          break;
      }
    }
    for (size_t g : touched) {
      State& st = states[g];
      if (selects(op)) {
        if (op == AggregateOp::kTopk) sort_best_first(st.heap, topk_less);
        if (op == AggregateOp::kBottomk) sort_best_first(st.heap, bottomk_less);
        for (const Entry& e : st.heap) {
          if (ordered) {
            v.series.push_back({in.series[e.series].labels, {{t, e.value}}});
          } else {
            chosen[e.series].push_back({t, e.value});
          }
        }
        continue;
      }
      double value = st.value;
      const auto count = static_cast<double>(st.count);
      switch (op) {
        case AggregateOp::kSum: value = kahan_value(st.value, st.c); break;
        case AggregateOp::kAvg: value = st.acc.value(); break;
        case AggregateOp::kCount:
        case AggregateOp::kCountValues: value = count; break;
        case AggregateOp::kStdvar: value = st.value / count; break;
        case AggregateOp::kStddev: value = std::sqrt(st.value / count); break;
        case AggregateOp::kQuantile: value = quantile_of(param->scalars[k], st.values); break;
        default: break;
      }
      out_groups[g].points.push_back({t, value});
    }
  }

  if (selects(op)) {
    if (ordered) {
      v.keep_order = true;
      return v;
    }
    for (size_t i = 0; i < in.series.size(); ++i) {
      if (!chosen[i].empty()) v.series.push_back({in.series[i].labels, std::move(chosen[i])});
    }
  } else {
    v.series = std::move(out_groups);
    std::erase_if(v.series, [](const Series& s) { return s.points.empty(); });
  }
  std::stable_sort(v.series.begin(), v.series.end(), [](const Series& a, const Series& b) {
    return a.labels->items() < b.labels->items();
  });
  return v;
}

}  // namespace kpid::query::detail
