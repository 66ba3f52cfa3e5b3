#include "kpid/store/rollup.h"

#include <cmath>

#include "kpid/core/varint.h"

namespace kpid::store {

namespace {
constexpr uint8_t kRollupVersion = 1;

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

void add_to_rollup(Rollup& r, TimestampMs timestamp, double value) {
  if (r.count == 0) {
    r.count = 1;
    r.sum = value;
    r.min = value;
    r.max = value;
    r.sum_squares = value * value;
    r.first_timestamp = r.last_timestamp = timestamp;
    r.first = r.last = value;
    r.increase = 0;
    r.sketch.add(value);
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
  r.sketch.add(value);
}

void build_rollups(std::span<const Point> points, DurationMs width, TimestampMs start,
                   TimestampMs end, std::vector<Rollup>& out) {
  Rollup* current = nullptr;
  for (const auto& p : points) {
    const TimestampMs e = bucket_end(p.timestamp, width);
    if (e <= start || e > end) continue;
    if (current == nullptr || current->end != e) {
      out.emplace_back();
      current = &out.back();
      current->end = e;
    }
    add_to_rollup(*current, p.timestamp, p.value);
  }
}

std::string encode_rollup(const Rollup& r) {
  std::string out;
  out.push_back(static_cast<char>(kRollupVersion));
  append_varint(out, r.count);
  append_varint(out, zigzag(r.end - r.first_timestamp));
  append_varint(out, zigzag(r.end - r.last_timestamp));
  for (double d : {r.sum, r.min, r.max, r.sum_squares, r.first, r.last, r.increase}) {
    append_f64(out, d);
  }
  out += r.sketch.encode();
  return out;
}

Result<Rollup> decode_rollup(TimestampMs end, std::string_view bytes) {
  size_t pos = 0;
  if (bytes.empty() || static_cast<uint8_t>(bytes[0]) != kRollupVersion) {
    return corrupt("unknown version");
  }
  pos = 1;
  Rollup r;
  r.end = end;
  uint64_t first_back = 0;
  uint64_t last_back = 0;
  if (!read_varint(bytes, pos, r.count) || !read_varint(bytes, pos, first_back) ||
      !read_varint(bytes, pos, last_back)) {
    return corrupt("truncated header");
  }
  if (r.count == 0) return corrupt("empty bucket");
  r.first_timestamp = end - unzigzag(first_back);
  r.last_timestamp = end - unzigzag(last_back);
  if (r.first_timestamp > r.last_timestamp || r.last_timestamp > end) {
    return corrupt("timestamps outside the bucket");
  }
  for (double* d : {&r.sum, &r.min, &r.max, &r.sum_squares, &r.first, &r.last, &r.increase}) {
    if (!read_f64(bytes, pos, *d)) return corrupt("truncated aggregates");
  }
  auto sketch = DDSketch::decode(bytes.substr(pos));
  if (!sketch) return sketch.status();
  r.sketch = std::move(sketch).value();
  return r;
}

std::string encode_rollup_block(std::span<const Rollup> rollups, TimestampMs window_end,
                                DurationMs width) {
  std::string out;
  append_varint(out, rollups.size());
  for (const auto& r : rollups) {
    append_varint(out, static_cast<uint64_t>((window_end - r.end) / width));
    std::string one = encode_rollup(r);
    append_varint(out, one.size());
    out += one;
  }
  return out;
}

Status decode_rollup_block(std::string_view bytes, TimestampMs window_end, DurationMs width,
                           TimestampMs start, TimestampMs end, std::vector<Rollup>& out) {
  size_t pos = 0;
  uint64_t n = 0;
  if (!read_varint(bytes, pos, n)) return corrupt("bad block count");
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t back = 0;
    uint64_t length = 0;
    if (!read_varint(bytes, pos, back) || !read_varint(bytes, pos, length) ||
        length > bytes.size() - pos || back > static_cast<uint64_t>(kMaxTimestamp / width)) {
      return corrupt("bad block entry");
    }
    const TimestampMs e = window_end - static_cast<TimestampMs>(back) * width;
    if (e > start && e <= end) {
      auto r = decode_rollup(e, bytes.substr(pos, length));
      if (!r) return r.status();
      out.push_back(std::move(r).value());
    }
    pos += length;
  }
  if (pos != bytes.size()) return corrupt("trailing bytes in block");
  return Status::ok();
}

}  // namespace kpid::store
