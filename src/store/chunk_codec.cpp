#include "kpid/store/chunk_codec.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <string>

#include "kpid/core/varint.h"

namespace kpid::store {
namespace {

constexpr uint8_t kDecimalMode = 0;
constexpr uint8_t kXorMode = 1;
constexpr uint8_t kOrderedMode = 2;
constexpr uint8_t kDodTimestamps = 0;
constexpr uint8_t kGridTimestamps = 1;
constexpr int kMaxExponent = 15;  // 10^15 is exact in a double
constexpr double kTwo53 = 9007199254740992.0;

constexpr std::array<double, kMaxExponent + 1> kPowersOf10 = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

// Bits, most significant first, appended to a string.
class BitWriter {
 public:
  explicit BitWriter(std::string& out) : out_(out) {}

  // The low `width` bits of `bits`, width in 0..64.
  void put(uint64_t bits, int width) {
    while (width > 0) {
      if (free_bits_ == 0) {
        out_.push_back('\0');
        free_bits_ = 8;
      }
      const int n = width < free_bits_ ? width : free_bits_;
      const uint64_t chunk = (bits >> (width - n)) & ((uint64_t{1} << n) - 1);
      auto& last = out_.back();
      last = static_cast<char>(static_cast<uint8_t>(last) | (chunk << (free_bits_ - n)));
      free_bits_ -= n;
      width -= n;
    }
  }

 private:
  std::string& out_;
  int free_bits_ = 0;
};

class BitReader {
 public:
  explicit BitReader(std::string_view data) : data_(data) {}

  size_t remaining() const { return data_.size() * 8 - pos_; }
  size_t bytes_consumed() const { return (pos_ + 7) / 8; }

  // False when fewer than `width` bits remain; width in 0..64.
  bool read(int width, uint64_t& out) {
    if (static_cast<size_t>(width) > remaining()) return false;
    uint64_t v = 0;
    while (width > 0) {
      const auto byte = static_cast<uint8_t>(data_[pos_ / 8]);
      const int avail = 8 - static_cast<int>(pos_ % 8);
      const int n = width < avail ? width : avail;
      const uint64_t chunk = (byte >> (avail - n)) & ((1u << n) - 1);
      v = (v << n) | chunk;
      pos_ += static_cast<size_t>(n);
      width -= n;
    }
    out = v;
    return true;
  }

  // The rest of the current byte must be zero padding.
  bool padding_is_zero() {
    const int rest = static_cast<int>((8 - pos_ % 8) % 8);
    uint64_t bits = 0;
    return rest == 0 || (read(rest, bits) && bits == 0);
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

Status corrupt(const std::string& what) {
  return Status::invalid_argument("corrupt chunk: " + what);
}

int bit_length(uint64_t v) { return 64 - std::countl_zero(v); }

// ---- packed blocks ---------------------------------------------------------------------------

// Rice coding of a packed block (parameter k): per value, q = v >> k ones and a zero, then the
// low k bits; a value with q >= kRiceEscape is kRiceEscape ones and its 64 bits.
constexpr uint64_t kRiceEscape = 32;
constexpr int kRiceTag = 128;  // a block's first byte: kRiceTag + k; slot widths are 0..64

struct RiceChoice {
  int k = 0;
  uint64_t cost = UINT64_MAX;  // bits
};

// The cheapest k a little under the best slot width `width`, where the optimum lies (an
// outlier, which moves the mean, moves neither).
RiceChoice best_rice(std::span<const uint64_t> values, int width) {
  RiceChoice best;
  for (int k = std::max(0, width - 4); k <= std::min(63, width); ++k) {
    uint64_t cost = 0;
    for (uint64_t v : values) {
      const uint64_t q = v >> k;
      cost += q < kRiceEscape ? q + 1 + static_cast<uint64_t>(k) : kRiceEscape + 64;
    }
    if (cost < best.cost) best = {k, cost};
  }
  return best;
}

void append_rice(std::string& out, std::span<const uint64_t> values, int k) {
  out.push_back(static_cast<char>(kRiceTag + k));
  BitWriter bits(out);
  const uint64_t low_mask = k == 0 ? 0 : (~uint64_t{0} >> (64 - k));
  for (uint64_t v : values) {
    const uint64_t q = v >> k;
    if (q >= kRiceEscape) {
      bits.put(~uint64_t{0}, static_cast<int>(kRiceEscape));
      bits.put(v, 64);
      continue;
    }
    bits.put((~uint64_t{0} >> (64 - q - 1)) << 1, static_cast<int>(q + 1));  // q ones, a zero
    bits.put(v & low_mask, k);
  }
}

void append_block(std::string& out, std::span<const uint64_t> values) {
  // Pick the slot width that minimises slots plus exceptions (each about 8 bits of index and
  // its value's varint).
  std::array<size_t, 65> by_length{};
  int longest = 0;
  for (uint64_t v : values) {
    const int len = bit_length(v);
    ++by_length[static_cast<size_t>(len)];
    longest = std::max(longest, len);
  }
  // cost(w) = slots + exceptions longer than w; walk w down, growing the exception sum.
  int best_width = longest;
  uint64_t best_cost = static_cast<uint64_t>(longest) * values.size();
  uint64_t exception_cost = 0;
  for (int w = longest - 1; w >= 0; --w) {
    const int len = w + 1;
    exception_cost +=
        by_length[static_cast<size_t>(len)] * (8 + 8 * static_cast<uint64_t>((len + 6) / 7));
    const uint64_t cost = static_cast<uint64_t>(w) * values.size() + exception_cost;
    if (cost <= best_cost) {
      best_cost = cost;
      best_width = w;
    }
  }
  // Rice coding instead, when cheaper: values spread like a bell (a random walk's steps) cost
  // about a bit less each than in fixed slots.
  if (const auto rice = best_rice(values, best_width); rice.cost < best_cost) {
    append_rice(out, values, rice.k);
    return;
  }
  const int w = best_width;
  const auto fits = [w](uint64_t v) { return bit_length(v) <= w; };
  out.push_back(static_cast<char>(w));
  uint64_t exceptions = 0;
  for (uint64_t v : values) exceptions += fits(v) ? 0 : 1;
  append_varint(out, exceptions);
  size_t next_index = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (fits(values[i])) continue;
    append_varint(out, i - next_index);
    append_varint(out, values[i]);
    next_index = i + 1;
  }
  BitWriter bits(out);
  for (uint64_t v : values) bits.put(fits(v) ? v : 0, w);
}

// Reads a block of `count` values from bytes[pos...], calling emit(value) for each in order.
template <typename Emit>
Status read_block(std::string_view bytes, size_t& pos, uint64_t count, const char* what,
                  Emit&& emit) {
  if (pos >= bytes.size()) return corrupt(std::string("truncated ") + what);
  const int w = static_cast<uint8_t>(bytes[pos++]);
  if (w >= kRiceTag) {
    const int k = w - kRiceTag;
    if (k > 63) return corrupt(std::string(what) + " Rice parameter over 63");
    BitReader in(bytes.substr(pos));
    // Every value costs at least k + 1 bits: a count beyond that is corruption.
    if (count > in.remaining() / static_cast<uint64_t>(k + 1)) {
      return corrupt(std::string("truncated ") + what);
    }
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t q = 0;
      uint64_t bit = 1;
      while (q < kRiceEscape) {
        if (!in.read(1, bit)) return corrupt(std::string("truncated ") + what);
        if (bit == 0) break;
        ++q;
      }
      uint64_t v = 0;
      if (q == kRiceEscape) {
        if (!in.read(64, v)) return corrupt(std::string("truncated ") + what);
        if ((v >> k) < kRiceEscape) return corrupt(std::string("non-canonical escape in ") + what);
      } else {
        uint64_t low = 0;
        if (!in.read(k, low)) return corrupt(std::string("truncated ") + what);
        v = (q << k) | low;
      }
      emit(v);
    }
    if (!in.padding_is_zero()) return corrupt(std::string("non-zero padding in ") + what);
    pos += in.bytes_consumed();
    return Status::ok();
  }
  if (w > 64) return corrupt(std::string(what) + " slot width over 64");
  uint64_t exceptions = 0;
  if (!read_varint(bytes, pos, exceptions) || exceptions > count) {
    return corrupt(std::string("bad exception count in ") + what);
  }
  // Exceptions are few; their (index, value) pairs are read lazily alongside the slots.
  size_t exception_pos = pos;
  for (uint64_t e = 0; e < exceptions; ++e) {
    uint64_t skip = 0;
    if (!read_varint(bytes, pos, skip) || !read_varint(bytes, pos, skip)) {
      return corrupt(std::string("truncated exceptions in ") + what);
    }
  }
  const uint64_t slot_bits = static_cast<uint64_t>(w) * count;
  if (slot_bits / 8 > bytes.size() - pos) return corrupt(std::string("truncated ") + what);
  BitReader slots(bytes.substr(pos));
  uint64_t exceptions_left = exceptions;
  uint64_t next_exception = UINT64_MAX;
  uint64_t exception_value = 0;
  uint64_t next_index = 0;
  auto load_exception = [&]() -> bool {
    if (exceptions_left == 0) {
      next_exception = UINT64_MAX;
      return true;
    }
    uint64_t gap = 0;
    if (!read_varint(bytes, exception_pos, gap) ||
        !read_varint(bytes, exception_pos, exception_value)) {
      return false;
    }
    if (gap >= count - next_index) return false;
    next_exception = next_index + gap;
    next_index = next_exception + 1;
    --exceptions_left;
    return true;
  };
  if (!load_exception()) return corrupt(std::string("exception index out of range in ") + what);
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t v = 0;
    if (!slots.read(w, v)) return corrupt(std::string("truncated ") + what);
    if (i == next_exception) {
      if (v != 0 || bit_length(exception_value) <= w) {
        return corrupt(std::string("non-canonical exception in ") + what);
      }
      v = exception_value;
      if (!load_exception()) {
        return corrupt(std::string("exception index out of range in ") + what);
      }
    }
    emit(v);
  }
  if (!slots.padding_is_zero()) return corrupt(std::string("non-zero padding in ") + what);
  pos += slots.bytes_consumed();
  return Status::ok();
}

// ---- values ----------------------------------------------------------------------------------

// The smallest exponent E with value == m / 10^E for an integer |m| < 2^53, or -1.
int decimal_exponent(double value) {
  for (int e = 0; e <= kMaxExponent; ++e) {
    const double scaled = value * kPowersOf10[static_cast<size_t>(e)];
    if (!(std::fabs(scaled) < kTwo53)) return -1;  // also NaN and infinities
    // Through int64, as the decoder sees it: -0.0 becomes 0 and must not pass.
    const auto m = static_cast<double>(static_cast<int64_t>(std::nearbyint(scaled)));
    if (std::bit_cast<uint64_t>(m / kPowersOf10[static_cast<size_t>(e)]) ==
        std::bit_cast<uint64_t>(value)) {
      return e;
    }
  }
  return -1;
}

// Fills `mantissas` when every value is m / 10^E for one E; false otherwise.
bool to_decimals(std::span<const Point> points, int& exponent, std::vector<int64_t>& mantissas) {
  exponent = 0;
  for (const auto& p : points) {
    const int e = decimal_exponent(p.value);
    if (e < 0) return false;
    if (e > exponent) exponent = e;
  }
  const double scale = kPowersOf10[static_cast<size_t>(exponent)];
  mantissas.reserve(points.size());
  for (const auto& p : points) {
    const double scaled = p.value * scale;
    if (!(std::fabs(scaled) < kTwo53)) return false;
    const auto m = static_cast<int64_t>(std::nearbyint(scaled));
    if (std::bit_cast<uint64_t>(static_cast<double>(m) / scale) !=
        std::bit_cast<uint64_t>(p.value)) {
      return false;
    }
    mantissas.push_back(m);
  }
  return true;
}

uint64_t wrapping_diff(int64_t a, int64_t b) {
  return static_cast<uint64_t>(a) - static_cast<uint64_t>(b);
}

// zz of the differences of `v` (order 1) or of the differences of differences (order 2),
// starting at index `order`.
void differences(std::span<const int64_t> v, int order, std::vector<uint64_t>& out) {
  out.clear();
  for (size_t i = static_cast<size_t>(order); i < v.size(); ++i) {
    uint64_t d = wrapping_diff(v[i], v[i - 1]);
    if (order == 2) d -= wrapping_diff(v[i - 1], v[i - 2]);
    out.push_back(zigzag(static_cast<int64_t>(d)));
  }
}

uint64_t total_bits(std::span<const uint64_t> v) {
  uint64_t bits = 0;
  for (uint64_t x : v) bits += static_cast<uint64_t>(bit_length(x));
  return bits;
}

void append_xor_values(std::string& out, std::span<const Point> points) {
  BitWriter bits(out);
  uint64_t prev = std::bit_cast<uint64_t>(points[0].value);
  bits.put(prev, 64);
  int window_leading = -1;
  int window_trailing = 0;
  for (size_t i = 1; i < points.size(); ++i) {
    const auto cur = std::bit_cast<uint64_t>(points[i].value);
    const uint64_t x = cur ^ prev;
    prev = cur;
    if (x == 0) {
      bits.put(0, 1);
      continue;
    }
    const int leading = std::countl_zero(x);
    const int trailing = std::countr_zero(x);
    if (window_leading >= 0 && leading >= window_leading && trailing >= window_trailing) {
      bits.put(0b10, 2);
      bits.put(x >> window_trailing, 64 - window_leading - window_trailing);
    } else {
      const int length = 64 - leading - trailing;
      bits.put(0b11, 2);
      bits.put(static_cast<uint64_t>(leading), 6);
      bits.put(static_cast<uint64_t>(length - 1), 6);
      bits.put(x >> trailing, length);
      window_leading = leading;
      window_trailing = trailing;
    }
  }
}

Status read_xor_values(std::string_view bytes, size_t& pos, size_t first, std::vector<Point>& out) {
  BitReader in(bytes.substr(pos));
  const size_t n = out.size() - first;
  // Every value after the first costs at least one bit.
  if (in.remaining() < 64 || n - 1 > in.remaining() - 64) return corrupt("truncated values");
  uint64_t value = 0;
  in.read(64, value);
  out[first].value = std::bit_cast<double>(value);
  int window_leading = -1;
  int window_trailing = 0;
  for (size_t i = 1; i < n; ++i) {
    uint64_t bit = 0;
    if (!in.read(1, bit)) return corrupt("truncated values");
    if (bit != 0) {
      uint64_t fresh = 0;
      if (!in.read(1, fresh)) return corrupt("truncated values");
      if (fresh != 0) {
        uint64_t leading = 0;
        uint64_t length = 0;
        if (!in.read(6, leading) || !in.read(6, length)) return corrupt("truncated values");
        ++length;
        if (leading + length > 64) return corrupt("value window wider than 64 bits");
        window_leading = static_cast<int>(leading);
        window_trailing = static_cast<int>(64 - leading - length);
      } else if (window_leading < 0) {
        return corrupt("value window reused before one was opened");
      }
      const int length = 64 - window_leading - window_trailing;
      uint64_t meaningful = 0;
      if (!in.read(length, meaningful)) return corrupt("truncated values");
      if (meaningful == 0) return corrupt("empty value xor");
      if (fresh != 0 && ((meaningful & 1) == 0 || (meaningful >> (length - 1)) == 0)) {
        return corrupt("non-canonical value window");
      }
      value ^= meaningful << window_trailing;
    }
    out[first + i].value = std::bit_cast<double>(value);
  }
  if (!in.padding_is_zero()) return corrupt("non-zero padding after values");
  pos += in.bytes_consumed();
  return Status::ok();
}

// A double's bits as an unsigned integer in the order of the values (-NaN < -inf < ... < -0.0
// < +0.0 < ... < +inf < +NaN), so values close together are integers close together.
uint64_t ordered_bits(double v) {
  const auto u = std::bit_cast<uint64_t>(v);
  return (u >> 63) != 0 ? ~u : u ^ (uint64_t{1} << 63);
}

double from_ordered_bits(uint64_t key) {
  return std::bit_cast<double>((key >> 63) != 0 ? key ^ (uint64_t{1} << 63) : ~key);
}

// Values that are not short decimals, as ordered bits: the smaller of their offsets from the
// least (noise within a band: about log2 of the band in ulps, where XOR pays for every bit
// below the first that differs) and their successive differences (a smooth float series).
void append_ordered_values(std::string& out, std::span<const Point> points) {
  std::vector<uint64_t> keys(points.size());
  uint64_t least = UINT64_MAX;
  for (size_t i = 0; i < points.size(); ++i) {
    keys[i] = ordered_bits(points[i].value);
    least = std::min(least, keys[i]);
  }
  std::vector<uint64_t> column(points.size());
  for (size_t i = 0; i < points.size(); ++i) column[i] = keys[i] - least;
  std::string offsets;
  offsets.push_back(0);
  append_varint(offsets, least);
  append_block(offsets, column);
  std::string deltas;
  deltas.push_back(1);
  append_varint(deltas, keys[0]);
  column.clear();
  for (size_t i = 1; i < keys.size(); ++i) {
    column.push_back(zigzag(static_cast<int64_t>(keys[i] - keys[i - 1])));
  }
  append_block(deltas, column);
  out += offsets.size() <= deltas.size() ? offsets : deltas;
}

Status read_ordered_values(std::string_view bytes, size_t& pos, Point* pts, uint64_t count) {
  if (pos >= bytes.size()) return corrupt("missing ordered-bits order");
  const auto order = static_cast<uint8_t>(bytes[pos++]);
  uint64_t base = 0;
  if (!read_varint(bytes, pos, base)) return corrupt("bad ordered-bits base");
  size_t i = 0;
  if (order == 0) {
    return read_block(bytes, pos, count, "values",
                      [&](uint64_t v) { pts[i++].value = from_ordered_bits(base + v); });
  }
  if (order != 1) return corrupt("unknown ordered-bits order " + std::to_string(order));
  pts[i++].value = from_ordered_bits(base);
  return read_block(bytes, pos, count - 1, "values", [&](uint64_t zz) {
    base += static_cast<uint64_t>(unzigzag(zz));
    pts[i++].value = from_ordered_bits(base);
  });
}

// The value half of a chunk: mode byte, then decimal, XOR or ordered-bits coding of the n >= 1
// values (two decimals as a plain difference: format 3 chunks, version 4 rollup blocks).
void append_values(std::string& out, std::span<const Point> points) {
  int exponent = 0;
  std::vector<int64_t> mantissas;
  if (!to_decimals(points, exponent, mantissas)) {
    std::string xored;
    append_xor_values(xored, points);
    std::string ordered;
    if (points.size() > 1) append_ordered_values(ordered, points);
    const bool use_xor = ordered.empty() || xored.size() <= ordered.size();
    out.push_back(static_cast<char>(use_xor ? kXorMode : kOrderedMode));
    out += use_xor ? xored : ordered;
    return;
  }
  out.push_back(static_cast<char>(kDecimalMode));
  out.push_back(static_cast<char>(exponent));
  append_varint(out, zigzag(mantissas[0]));
  if (points.size() == 1) return;
  if (points.size() == 2) {
    // A rollup column of two buckets: a block would cost more than the difference itself.
    append_varint(out, zigzag(static_cast<int64_t>(wrapping_diff(mantissas[1], mantissas[0]))));
    return;
  }
  std::vector<uint64_t> scratch;
  std::vector<uint64_t> deltas;
  differences(mantissas, 1, deltas);
  differences(mantissas, 2, scratch);
  // A counter without a reset never steps down: its steps need no sign bit (order 3).
  const bool rising =
      std::adjacent_find(mantissas.begin(), mantissas.end(), std::greater<>()) == mantissas.end();
  const uint64_t step_bits = total_bits(deltas) - (rising ? deltas.size() : 0);
  if (points.size() > 2 && total_bits(scratch) < step_bits) {
    out.push_back(2);
    append_varint(out, deltas[0]);
    append_block(out, scratch);
  } else if (rising) {
    out.push_back(3);
    for (auto& d : deltas) d = unzigzag(d);  // >= 0
    append_block(out, deltas);
  } else {
    out.push_back(1);
    append_block(out, deltas);
  }
}

// Reads append_values' output for out[first, first + count); `pairs` is false for the formats
// before two decimals were a plain difference (format 2 chunks, rollup blocks up to version 3).
Status read_values(std::string_view bytes, size_t& pos, std::vector<Point>& out, size_t first,
                   uint64_t count, bool pairs) {
  Point* pts = out.data() + first;
  if (pos >= bytes.size()) return corrupt("missing value mode");
  const auto mode = static_cast<uint8_t>(bytes[pos++]);
  if (mode == kXorMode) {
    if (auto st = read_xor_values(bytes, pos, first, out); !st) return st;
  } else if (mode == kOrderedMode) {
    if (auto st = read_ordered_values(bytes, pos, pts, count); !st) return st;
  } else if (mode == kDecimalMode) {
    if (pos >= bytes.size()) return corrupt("missing exponent");
    const int exponent = static_cast<uint8_t>(bytes[pos++]);
    if (exponent > kMaxExponent) return corrupt("exponent over 15");
    const double scale = kPowersOf10[static_cast<size_t>(exponent)];
    uint64_t m0 = 0;
    if (!read_varint(bytes, pos, m0)) return corrupt("bad first mantissa");
    uint64_t m = static_cast<uint64_t>(unzigzag(m0));
    // A mantissa beyond 2^53 could not have come from the encoder.
    auto value_of = [&](uint64_t mantissa, double& v) {
      const auto signed_m = static_cast<int64_t>(mantissa);
      if (signed_m >= (int64_t{1} << 53) || signed_m <= -(int64_t{1} << 53)) return false;
      v = static_cast<double>(signed_m) / scale;
      return true;
    };
    if (!value_of(m, pts[0].value)) return corrupt("mantissa out of range");
    if (count == 2 && pairs) {
      uint64_t d = 0;
      if (!read_varint(bytes, pos, d)) return corrupt("bad value difference");
      m += static_cast<uint64_t>(unzigzag(d));
      if (!value_of(m, pts[1].value)) return corrupt("mantissa out of range");
    } else if (count > 1) {
      if (pos >= bytes.size()) return corrupt("missing order");
      const int order = static_cast<uint8_t>(bytes[pos++]);
      bool in_range = true;
      size_t i = 1;
      Status st = Status::ok();
      if (order == 1) {
        st = read_block(bytes, pos, count - 1, "values", [&](uint64_t zz) {
          m += static_cast<uint64_t>(unzigzag(zz));
          in_range = value_of(m, pts[i++].value) && in_range;
        });
      } else if (order == 3) {
        st = read_block(bytes, pos, count - 1, "values", [&](uint64_t step) {
          m += step;
          in_range = value_of(m, pts[i++].value) && in_range;
        });
      } else if (order == 2) {
        uint64_t d = 0;
        if (!read_varint(bytes, pos, d)) return corrupt("bad first value delta");
        uint64_t vdelta = static_cast<uint64_t>(unzigzag(d));
        m += vdelta;
        in_range = value_of(m, pts[i++].value);
        if (count > 2) {
          st = read_block(bytes, pos, count - 2, "values", [&](uint64_t zz) {
            vdelta += static_cast<uint64_t>(unzigzag(zz));
            m += vdelta;
            in_range = value_of(m, pts[i++].value) && in_range;
          });
        }
      } else {
        return corrupt("unknown value order " + std::to_string(order));
      }
      if (!st) return st;
      if (!in_range) return corrupt("mantissa out of range");
    }
  } else {
    return corrupt("unknown value mode " + std::to_string(mode));
  }
  return Status::ok();
}

}  // namespace

namespace {

// The largest of 1000, 100, 10 and 1 ms that divides every timestamp, as its exponent.
int timestamp_unit_exponent(std::span<const Point> points) {
  int k = 3;
  for (const auto& p : points) {
    while (k > 0 && p.timestamp % static_cast<int64_t>(kPowersOf10[static_cast<size_t>(k)]) != 0) {
      --k;
    }
    if (k == 0) break;
  }
  return k;
}

// The most common difference between consecutive timestamps (scaled); points.size() >= 2.
uint64_t usual_interval(std::span<const int64_t> ts) {
  std::vector<uint64_t> deltas;
  deltas.reserve(ts.size() - 1);
  for (size_t i = 1; i < ts.size(); ++i) deltas.push_back(wrapping_diff(ts[i], ts[i - 1]));
  std::sort(deltas.begin(), deltas.end());
  uint64_t best = deltas[0];
  size_t best_run = 0;
  for (size_t i = 0; i < deltas.size();) {
    size_t j = i;
    while (j < deltas.size() && deltas[j] == deltas[i]) ++j;
    if (j - i > best_run) {
      best_run = j - i;
      best = deltas[i];
    }
    i = j;
  }
  return best;
}

// The timestamps of n >= 2 points after the count (format 3): unit, t0, then the cheaper of
// the grid (offsets from t0 + i * interval: a jittered scrape costs one exception) and
// delta-of-delta (a missed scrape costs two) codings.
void append_timestamps(std::string& out, std::span<const Point> points) {
  const int unit = timestamp_unit_exponent(points);
  const auto scale = static_cast<int64_t>(kPowersOf10[static_cast<size_t>(unit)]);
  std::vector<int64_t> ts(points.size());
  for (size_t i = 0; i < points.size(); ++i) ts[i] = points[i].timestamp / scale;
  out.push_back(static_cast<char>(unit));
  append_varint(out, zigzag(ts[0]));
  std::vector<uint64_t> scratch;
  scratch.reserve(points.size());

  std::string grid;
  const uint64_t interval = usual_interval(ts);
  append_varint(grid, zigzag(static_cast<int64_t>(interval)));
  for (size_t i = 1; i < ts.size(); ++i) {
    const uint64_t expected = static_cast<uint64_t>(ts[0]) + interval * i;
    scratch.push_back(zigzag(static_cast<int64_t>(static_cast<uint64_t>(ts[i]) - expected)));
  }
  append_block(grid, scratch);

  std::string dod;
  append_varint(dod, zigzag(static_cast<int64_t>(wrapping_diff(ts[1], ts[0]))));
  if (ts.size() > 2) {
    scratch.clear();
    differences(ts, 2, scratch);
    append_block(dod, scratch);
  }
  const bool use_grid = grid.size() <= dod.size();
  out.push_back(static_cast<char>(use_grid ? kGridTimestamps : kDodTimestamps));
  out += use_grid ? grid : dod;
}

Status read_timestamps(std::string_view bytes, size_t& pos, Point* pts, uint64_t count) {
  if (pos >= bytes.size()) return corrupt("missing timestamp unit");
  const int unit = static_cast<uint8_t>(bytes[pos++]);
  if (unit > 3) return corrupt("timestamp unit over 10^3");
  const auto scale = static_cast<uint64_t>(kPowersOf10[static_cast<size_t>(unit)]);
  uint64_t t0 = 0;
  if (!read_varint(bytes, pos, t0)) return corrupt("bad first timestamp");
  uint64_t t = static_cast<uint64_t>(unzigzag(t0));
  // Scaled back within int64 only: a larger value could not have come from the encoder.
  auto put = [&](size_t i, uint64_t scaled) {
    const auto v = static_cast<int64_t>(scaled);
    if (v > INT64_MAX / static_cast<int64_t>(scale) ||
        v < INT64_MIN / static_cast<int64_t>(scale)) {
      return false;
    }
    pts[i].timestamp = v * static_cast<int64_t>(scale);
    return true;
  };
  bool in_range = put(0, t);
  if (count == 1) return in_range ? Status::ok() : corrupt("timestamp out of range");
  if (pos >= bytes.size()) return corrupt("missing timestamp mode");
  const auto mode = static_cast<uint8_t>(bytes[pos++]);
  uint64_t d = 0;
  if (!read_varint(bytes, pos, d)) return corrupt("bad timestamp interval");
  uint64_t delta = static_cast<uint64_t>(unzigzag(d));
  Status st = Status::ok();
  if (mode == kGridTimestamps) {
    size_t i = 1;
    const uint64_t base = t;
    st = read_block(bytes, pos, count - 1, "timestamps", [&](uint64_t zz) {
      in_range = put(i, base + delta * i + static_cast<uint64_t>(unzigzag(zz))) && in_range;
      ++i;
    });
  } else if (mode == kDodTimestamps) {
    t += delta;
    in_range = put(1, t) && in_range;
    if (count > 2) {
      size_t i = 2;
      st = read_block(bytes, pos, count - 2, "timestamps", [&](uint64_t zz) {
        delta += static_cast<uint64_t>(unzigzag(zz));
        t += delta;
        in_range = put(i++, t) && in_range;
      });
    }
  } else {
    return corrupt("unknown timestamp mode " + std::to_string(mode));
  }
  if (!st) return st;
  return in_range ? Status::ok() : corrupt("timestamp out of range");
}

// Format 2's timestamps: t0, t1 - t0, then the delta-of-delta block.
Status read_timestamps_v2(std::string_view bytes, size_t& pos, Point* pts, uint64_t count) {
  uint64_t t0 = 0;
  if (!read_varint(bytes, pos, t0)) return corrupt("bad first timestamp");
  uint64_t t = static_cast<uint64_t>(unzigzag(t0));
  pts[0].timestamp = static_cast<TimestampMs>(t);
  uint64_t delta = 0;
  if (count > 1) {
    uint64_t d = 0;
    if (!read_varint(bytes, pos, d)) return corrupt("bad first delta");
    delta = static_cast<uint64_t>(unzigzag(d));
    t += delta;
    pts[1].timestamp = static_cast<TimestampMs>(t);
  }
  if (count > 2) {
    size_t i = 2;
    auto st = read_block(bytes, pos, count - 2, "timestamps", [&](uint64_t zz) {
      delta += static_cast<uint64_t>(unzigzag(zz));
      t += delta;
      pts[i++].timestamp = static_cast<TimestampMs>(t);
    });
    if (!st) return st;
  }
  return Status::ok();
}

}  // namespace

std::string encode_chunk(std::span<const Point> points) {
  std::string out;
  out.reserve(16 + points.size() * 2);
  out.push_back(static_cast<char>(kChunkFormatVersion));
  append_varint(out, points.size());
  if (points.empty()) return out;
  if (points.size() == 1) {
    out.push_back(0);  // unit 1 ms
    append_varint(out, zigzag(points[0].timestamp));
  } else {
    append_timestamps(out, points);
  }
  append_values(out, points);
  return out;
}

Status decode_chunk(std::string_view bytes, std::vector<Point>& out) {
  if (bytes.empty()) return corrupt("empty input");
  const auto version = static_cast<uint8_t>(bytes[0]);
  if (version != kChunkFormatVersion && version != kOldChunkFormatVersion) {
    return corrupt("unknown format version " + std::to_string(version));
  }
  size_t pos = 1;
  uint64_t count = 0;
  if (!read_varint(bytes, pos, count)) return corrupt("bad count");
  if (count > kMaxChunkSamples) return corrupt("count " + std::to_string(count) + " too large");
  if (count == 0) {
    if (pos != bytes.size()) return corrupt("trailing bytes");
    return Status::ok();
  }
  const size_t first = out.size();
  out.resize(first + count);
  Point* pts = out.data() + first;

  const Status times = version == kChunkFormatVersion ? read_timestamps(bytes, pos, pts, count)
                                                      : read_timestamps_v2(bytes, pos, pts, count);
  if (!times) return times;
  if (auto st = read_values(bytes, pos, out, first, count, version == kChunkFormatVersion); !st) {
    return st;
  }
  if (pos != bytes.size()) return corrupt("trailing bytes");
  return Status::ok();
}

void append_value_column(std::string& out, std::span<const double> values) {
  std::vector<Point> points(values.size());
  for (size_t i = 0; i < values.size(); ++i) points[i].value = values[i];
  if (!points.empty()) append_values(out, points);
}

Status read_value_column(std::string_view bytes, size_t& pos, size_t count,
                         std::vector<double>& out, bool pairs) {
  if (count == 0) return Status::ok();
  if (count > kMaxChunkSamples) return corrupt("column too long");
  std::vector<Point> points(count);
  if (auto st = read_values(bytes, pos, points, 0, count, pairs); !st) return st;
  for (const auto& p : points) out.push_back(p.value);
  return Status::ok();
}

Result<std::vector<Point>> decode_chunk(std::string_view bytes) {
  std::vector<Point> out;
  if (auto st = decode_chunk(bytes, out); !st) return st;
  return out;
}

}  // namespace kpid::store
