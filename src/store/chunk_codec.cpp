#include "kpid/store/chunk_codec.h"

#include "kpid/core/varint.h"

#include <bit>
#include <string>

namespace kpid::store {
namespace {

struct Bucket {
  uint64_t prefix;
  int prefix_bits;
  int payload_bits;
};

// The delta-of-delta buckets, widest last; see the header for the rationale.
constexpr Bucket kBuckets[] = {
    {0b10, 2, 7}, {0b110, 3, 9}, {0b1110, 4, 12}, {0b11110, 5, 20}, {0b111110, 6, 32},
    {0b111111, 6, 64},
};

bool fits(int64_t v, int bits) {
  if (bits >= 64) return true;
  const int64_t lim = int64_t{1} << (bits - 1);
  return v >= -lim && v < lim;
}

uint64_t low_bits(uint64_t v, int bits) { return bits >= 64 ? v : v & ((uint64_t{1} << bits) - 1); }

int64_t sign_extend(uint64_t v, int bits) {
  if (bits >= 64) return static_cast<int64_t>(v);
  const uint64_t sign = uint64_t{1} << (bits - 1);
  return static_cast<int64_t>((v ^ sign) - sign);
}





class BitReader {
 public:
  explicit BitReader(std::string_view data) : data_(data) {}

  size_t remaining() const { return data_.size() * 8 - pos_; }

  // False when fewer than `width` bits remain; width in 1..64.
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

  bool read_bit(bool& bit) {
    uint64_t v = 0;
    if (!read(1, v)) return false;
    bit = v != 0;
    return true;
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

Status corrupt(const std::string& what, size_t sample) {
  return Status::invalid_argument("corrupt chunk: " + what + " at sample " + std::to_string(sample));
}

}  // namespace

void ChunkEncoder::put_bits(uint64_t bits, int width) {
  while (width > 0) {
    if (free_bits_ == 0) {
      stream_.push_back('\0');
      free_bits_ = 8;
    }
    const int n = width < free_bits_ ? width : free_bits_;
    const uint64_t chunk = (bits >> (width - n)) & ((uint64_t{1} << n) - 1);
    auto& last = stream_.back();
    last = static_cast<char>(static_cast<uint8_t>(last) | (chunk << (free_bits_ - n)));
    free_bits_ -= n;
    width -= n;
  }
}

void ChunkEncoder::append(TimestampMs timestamp, double value) {
  const auto t = static_cast<uint64_t>(timestamp);
  const auto bits = std::bit_cast<uint64_t>(value);
  if (count_ == 0) {
    first_timestamp_ = t;
    prev_timestamp_ = t;
    prev_delta_ = 0;
    prev_value_ = bits;
    put_bits(bits, 64);
    count_ = 1;
    return;
  }

  const uint64_t delta = t - prev_timestamp_;
  const auto dod = static_cast<int64_t>(delta - prev_delta_);
  if (dod == 0) {
    put_bits(0, 1);
  } else {
    for (const auto& b : kBuckets) {
      if (fits(dod, b.payload_bits)) {
        put_bits(b.prefix, b.prefix_bits);
        put_bits(low_bits(static_cast<uint64_t>(dod), b.payload_bits), b.payload_bits);
        break;
      }
    }
  }
  prev_timestamp_ = t;
  prev_delta_ = delta;

  const uint64_t x = bits ^ prev_value_;
  prev_value_ = bits;
  if (x == 0) {
    put_bits(0, 1);
  } else {
    const int leading = std::countl_zero(x);
    const int trailing = std::countr_zero(x);
    if (window_leading_ >= 0 && leading >= window_leading_ && trailing >= window_trailing_) {
      put_bits(0b10, 2);
      put_bits(x >> window_trailing_, 64 - window_leading_ - window_trailing_);
    } else {
      const int length = 64 - leading - trailing;
      put_bits(0b11, 2);
      put_bits(static_cast<uint64_t>(leading), 6);
      put_bits(static_cast<uint64_t>(length - 1), 6);
      put_bits(x >> trailing, length);
      window_leading_ = leading;
      window_trailing_ = trailing;
    }
  }
  ++count_;
}

size_t ChunkEncoder::size_bytes() const {
  size_t n = 1 + varint_size(count_);
  if (count_ > 0) n += varint_size(zigzag(static_cast<int64_t>(first_timestamp_)));
  return n + stream_.size();
}

std::string ChunkEncoder::bytes() const {
  std::string out;
  out.reserve(size_bytes());
  out.push_back(static_cast<char>(kChunkFormatVersion));
  append_varint(out, count_);
  if (count_ > 0) {
    append_varint(out, zigzag(static_cast<int64_t>(first_timestamp_)));
    out += stream_;
  }
  return out;
}

void ChunkEncoder::clear() {
  stream_.clear();
  free_bits_ = 0;
  count_ = 0;
  first_timestamp_ = prev_timestamp_ = prev_delta_ = prev_value_ = 0;
  window_leading_ = -1;
  window_trailing_ = 0;
}

Result<std::vector<Point>> decode_chunk(std::string_view bytes) {
  if (bytes.empty()) return Status::invalid_argument("corrupt chunk: empty input");
  if (static_cast<uint8_t>(bytes[0]) != kChunkFormatVersion) {
    return Status::invalid_argument("corrupt chunk: unknown format version " +
                                    std::to_string(static_cast<uint8_t>(bytes[0])));
  }
  size_t pos = 1;
  uint64_t count = 0;
  if (!read_varint(bytes, pos, count)) return Status::invalid_argument("corrupt chunk: bad count");
  std::vector<Point> out;
  if (count == 0) {
    if (pos != bytes.size()) return Status::invalid_argument("corrupt chunk: trailing bytes");
    return out;
  }
  uint64_t first = 0;
  if (!read_varint(bytes, pos, first)) {
    return Status::invalid_argument("corrupt chunk: bad first timestamp");
  }
  BitReader in(bytes.substr(pos));
  // Every sample after the first costs at least 2 bits, so a count the stream cannot hold is
  // rejected before it can drive a huge allocation.
  if (in.remaining() < 64 || (count - 1) > (in.remaining() - 64) / 2) {
    return Status::invalid_argument("corrupt chunk: count " + std::to_string(count) +
                                    " exceeds the data");
  }
  out.reserve(count);

  uint64_t t = static_cast<uint64_t>(unzigzag(first));
  uint64_t value = 0;
  if (!in.read(64, value)) return corrupt("truncated value", 0);
  out.push_back({static_cast<TimestampMs>(t), std::bit_cast<double>(value)});

  uint64_t delta = 0;
  int window_leading = -1;
  int window_trailing = 0;
  for (uint64_t i = 1; i < count; ++i) {
    // Timestamp: count the prefix's leading ones (at most 6).
    int ones = 0;
    bool bit = true;
    while (ones < 6) {
      if (!in.read_bit(bit)) return corrupt("truncated timestamp", i);
      if (!bit) break;
      ++ones;
    }
    uint64_t dod = 0;
    if (ones > 0) {
      const int width = kBuckets[ones - 1].payload_bits;
      uint64_t raw = 0;
      if (!in.read(width, raw)) return corrupt("truncated timestamp", i);
      const int64_t d = sign_extend(raw, width);
      // Canonical form only: a value in a wider bucket than needed means corruption.
      if (d == 0 || (ones > 1 && fits(d, kBuckets[ones - 2].payload_bits))) {
        return corrupt("non-canonical timestamp delta", i);
      }
      dod = static_cast<uint64_t>(d);
    }
    delta += dod;
    t += delta;

    // Value.
    if (!in.read_bit(bit)) return corrupt("truncated value", i);
    if (bit) {
      bool fresh = false;
      if (!in.read_bit(fresh)) return corrupt("truncated value", i);
      if (fresh) {
        uint64_t leading = 0;
        uint64_t length = 0;
        if (!in.read(6, leading) || !in.read(6, length)) return corrupt("truncated value", i);
        ++length;
        if (leading + length > 64) return corrupt("value window wider than 64 bits", i);
        window_leading = static_cast<int>(leading);
        window_trailing = static_cast<int>(64 - leading - length);
      } else if (window_leading < 0) {
        return corrupt("value window reused before one was opened", i);
      }
      const int length = 64 - window_leading - window_trailing;
      uint64_t meaningful = 0;
      if (!in.read(length, meaningful)) return corrupt("truncated value", i);
      if (meaningful == 0) return corrupt("empty value xor", i);
      if (fresh && ((meaningful & 1) == 0 || (meaningful >> (length - 1)) == 0)) {
        return corrupt("non-canonical value window", i);
      }
      value ^= meaningful << window_trailing;
    }
    out.push_back({static_cast<TimestampMs>(t), std::bit_cast<double>(value)});
  }

  if (in.remaining() >= 8) return Status::invalid_argument("corrupt chunk: trailing bytes");
  uint64_t padding = 0;
  if (in.remaining() > 0 && (!in.read(static_cast<int>(in.remaining()), padding) || padding != 0)) {
    return Status::invalid_argument("corrupt chunk: non-zero padding");
  }
  return out;
}

}  // namespace kpid::store
