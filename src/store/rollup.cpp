#include "kpid/store/rollup.h"

#include <cmath>

#include "kpid/core/stale_marker.h"
#include "kpid/core/varint.h"
#include "kpid/store/chunk_codec.h"

namespace kpid::store {

namespace {

Status corrupt(const char* what) {
  return Status::invalid_argument(std::string("corrupt rollup: ") + what);
}
}  // namespace

TimestampMs bucket_end(TimestampMs timestamp, DurationMs width) {
  // Floor division that is right for negative timestamps too.
  TimestampMs q = timestamp / width;
  if (timestamp % width != 0 && timestamp > 0) ++q;
  return q * width;
}

void add_to_rollup(Rollup& r, TimestampMs timestamp, double value, bool with_sketch) {
  // A stale marker is the end of the series, not a value: counting it would turn sum, min,
  // max and the sketch into NaN.
  if (is_stale_marker(value)) {
    if (r.count != 0) r.ends_stale = true;
    return;
  }
  r.ends_stale = false;
  if (r.count == 0) {
    r.count = 1;
    r.sum = value;
    r.min = value;
    r.max = value;
    r.sum_squares = value * value;
    r.first_timestamp = r.last_timestamp = timestamp;
    r.first = r.last = value;
    r.increase = 0;
    if (with_sketch) r.sketch.add(value);
    return;
  }
  ++r.count;
  r.sum += value;
  r.sum_squares += value * value;
  // Like PromQL's min_over_time: NaN only wins when nothing else is there.
  if (value < r.min || std::isnan(r.min)) r.min = value;
  if (value > r.max || std::isnan(r.max)) r.max = value;
  r.increase += value >= r.last ? value - r.last : value;
  r.last_timestamp = timestamp;
  r.last = value;
  if (with_sketch) r.sketch.add(value);
}

Status merge_rollup(Rollup& into, const Rollup& from) {
  if (from.count == 0) return Status::ok();
  if (into.count == 0) {
    into = from;
    return Status::ok();
  }
  DDSketch sketch = into.sketch;
  if (auto st = sketch.merge(from.sketch); !st) return st;
  into.sketch = std::move(sketch);
  // The step from the last sample of one piece to the first of the next, as add_to_rollup
  // counts it (a drop is a counter reset).
  const auto step = [](double last, double next) { return next >= last ? next - last : next; };
  const bool after = from.first_timestamp > into.last_timestamp;
  const bool before = from.last_timestamp < into.first_timestamp;
  double increase = into.increase + from.increase;
  if (after) increase += step(into.last, from.first);
  if (before) increase += step(from.last, into.first);
  into.increase = increase;
  into.count += from.count;
  into.sum += from.sum;
  into.sum_squares += from.sum_squares;
  if (from.min < into.min || std::isnan(into.min)) into.min = from.min;
  if (from.max > into.max || std::isnan(into.max)) into.max = from.max;
  if (from.first_timestamp < into.first_timestamp) {
    into.first_timestamp = from.first_timestamp;
    into.first = from.first;
  }
  if (from.last_timestamp >= into.last_timestamp) {
    into.last_timestamp = from.last_timestamp;
    into.last = from.last;
    into.ends_stale = from.ends_stale;
  }
  return Status::ok();
}

void build_rollups(std::span<const Point> points, DurationMs width, TimestampMs start,
                   TimestampMs end, std::vector<Rollup>& out, bool with_sketches) {
  Rollup* current = nullptr;
  for (const auto& p : points) {
    const TimestampMs e = bucket_end(p.timestamp, width);
    if (e <= start || e > end) continue;
    if (current == nullptr || current->end != e) {
      if (is_stale_marker(p.value)) continue;  // a bucket holding only markers is empty
      out.emplace_back();
      current = &out.back();
      current->end = e;
    }
    add_to_rollup(*current, p.timestamp, p.value, with_sketches);
  }
}

namespace {

constexpr uint8_t kBlockVersion = 4;
constexpr uint8_t kStaleFlagVersion = 3;  // two-value columns in version 2's form; still read
constexpr uint8_t kOldBlockVersion = 2;   // no ends_stale flag either; still read
constexpr uint8_t kSketchOwnTotals = 1;   // the sketch's min/max/sum differ from the rollup's
constexpr uint8_t kEndsStale = 2;         // Rollup::ends_stale

// The columns of a block after `end` and `count`, in order.
constexpr double Rollup::*kColumns[] = {&Rollup::sum,         &Rollup::min,   &Rollup::max,
                                        &Rollup::sum_squares, &Rollup::first, &Rollup::last,
                                        &Rollup::increase};

}  // namespace

std::string encode_rollup_block(std::span<const Rollup> rollups, TimestampMs window_end,
                                DurationMs width) {
  std::string out;
  out.push_back(static_cast<char>(kBlockVersion));
  append_varint(out, rollups.size());
  if (rollups.empty()) return out;
  std::vector<double> column(rollups.size());
  auto put = [&](auto field_of) {
    for (size_t i = 0; i < rollups.size(); ++i) column[i] = field_of(rollups[i]);
    append_value_column(out, column);
  };
  put([&](const Rollup& r) { return static_cast<double>((window_end - r.end) / width); });
  put([](const Rollup& r) { return static_cast<double>(r.count); });
  put([](const Rollup& r) { return static_cast<double>(r.end - r.first_timestamp); });
  put([](const Rollup& r) { return static_cast<double>(r.end - r.last_timestamp); });
  for (auto field : kColumns) put([field](const Rollup& r) { return r.*field; });
  for (const auto& r : rollups) {
    const auto& k = r.sketch;
    const bool same =
        k.count() == r.count && k.min() == r.min && k.max() == r.max && k.sum() == r.sum;
    const uint8_t stale = r.ends_stale ? kEndsStale : 0;
    if (same || k.count() == 0) {
      out.push_back(static_cast<char>(stale));
    } else {
      out.push_back(static_cast<char>(kSketchOwnTotals | stale));
      append_f64(out, k.min());
      append_f64(out, k.max());
      append_f64(out, k.sum());
    }
    k.encode_buckets(out);
  }
  return out;
}

Status decode_rollup_block(std::string_view bytes, TimestampMs window_end, DurationMs width,
                           TimestampMs start, TimestampMs end, std::vector<Rollup>& out,
                           bool with_sketches) {
  size_t pos = 0;
  const uint8_t version = bytes.empty() ? 0 : static_cast<uint8_t>(bytes[0]);
  if (version != kBlockVersion && version != kStaleFlagVersion && version != kOldBlockVersion) {
    return corrupt("unknown block version");
  }
  const uint8_t known_flags = version != kOldBlockVersion
                                  ? static_cast<uint8_t>(kSketchOwnTotals | kEndsStale)
                                  : kSketchOwnTotals;
  pos = 1;
  uint64_t n = 0;
  if (!read_varint(bytes, pos, n)) return corrupt("bad block count");
  // A block holds at most 24 buckets (a 2-hour window of 5-minute ones, a day of 1-hour ones);
  // a large count is corruption, refused before it drives an allocation.
  if (n > 1024) return corrupt("too many buckets");
  std::vector<double> columns;
  columns.reserve(n * 11);
  for (int c = 0; c < 11; ++c) {
    if (auto st = read_value_column(bytes, pos, n, columns, version == kBlockVersion); !st) {
      return st;
    }
  }
  auto col = [&](int c, size_t i) { return columns[static_cast<size_t>(c) * n + i]; };
  const size_t first_out = out.size();
  for (size_t i = 0; i < n; ++i) {
    const double back = col(0, i);
    const double count = col(1, i);
    const double first_back = col(2, i);
    const double last_back = col(3, i);
    if (!(back >= 0 && back <= 1e6) || !(count >= 1 && count <= 9e15) ||
        !(first_back >= 0 && first_back < static_cast<double>(width)) ||
        !(last_back >= 0 && last_back <= first_back)) {
      return corrupt("bucket header out of range");
    }
    Rollup r;
    r.end = window_end - static_cast<TimestampMs>(back) * width;
    r.count = static_cast<uint64_t>(count);
    r.first_timestamp = r.end - static_cast<TimestampMs>(first_back);
    r.last_timestamp = r.end - static_cast<TimestampMs>(last_back);
    int c = 4;
    for (auto field : kColumns) r.*field = col(c++, i);
    if (pos >= bytes.size()) return corrupt("truncated sketch");
    const auto flag = static_cast<uint8_t>(bytes[pos++]);
    if ((flag & ~known_flags) != 0) return corrupt("unknown sketch flag");
    r.ends_stale = (flag & kEndsStale) != 0;
    const bool own_totals = (flag & kSketchOwnTotals) != 0;
    double min = r.min;
    double max = r.max;
    double sum = r.sum;
    if (own_totals) {
      if (!read_f64(bytes, pos, min) || !read_f64(bytes, pos, max) || !read_f64(bytes, pos, sum)) {
        return corrupt("truncated sketch totals");
      }
    }
    if (!with_sketches) {
      if (auto st = DDSketch::skip_buckets(bytes, pos); !st) return st;
      if (r.end > start && r.end <= end) out.push_back(std::move(r));
      continue;
    }
    auto sketch = DDSketch::decode_buckets(bytes, pos, min, max, sum);
    if (!sketch) return sketch.status();
    if (!own_totals && sketch->count() != 0 && sketch->count() != r.count) {
      return corrupt("sketch count differs from the bucket's");
    }
    if (r.end > start && r.end <= end) {
      r.sketch = std::move(sketch).value();
      out.push_back(std::move(r));
    }
  }
  if (pos != bytes.size()) return corrupt("trailing bytes in block");
  // Buckets were written in time order; anything else would break readers' merges.
  for (size_t i = first_out + 1; i < out.size(); ++i) {
    if (out[i].end <= out[i - 1].end) return corrupt("buckets out of order");
  }
  return Status::ok();
}

}  // namespace kpid::store
