#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kpid/store/chunk_codec.h"
#include "kpid/store/rollup.h"

using namespace kpid;
using namespace kpid::store;

namespace {

std::string encode(const std::vector<Point>& points) { return encode_chunk(points); }

// Compares values by bit pattern: Point's operator== would call NaN != NaN and -0.0 == 0.0.
void require_bit_exact(const std::vector<Point>& got, const std::vector<Point>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("sample " << i);
    REQUIRE(got[i].timestamp == want[i].timestamp);
    REQUIRE(std::bit_cast<uint64_t>(got[i].value) == std::bit_cast<uint64_t>(want[i].value));
  }
}

std::string round_trip(const std::vector<Point>& points) {
  std::string bytes = encode(points);
  auto decoded = decode_chunk(bytes);
  INFO(decoded.status().to_string());
  REQUIRE(decoded.is_ok());
  require_bit_exact(*decoded, points);
  return bytes;
}

double bytes_per_sample(const std::string& bytes, size_t n) {
  return static_cast<double>(bytes.size()) / static_cast<double>(n);
}

constexpr TimestampMs kStart = 1'700'000'000'000;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

}  // namespace

TEST_CASE("codec: empty and single-sample chunks", "[codec]") {
  auto empty = round_trip({});
  CHECK(empty.size() == 2);  // version + count
  round_trip({{kStart, 42.5}});
  round_trip({{0, 0.0}});
  round_trip({{-1, -1.0}});
}

TEST_CASE("codec: regular 10 s random walk with 2 decimals", "[codec]") {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int> step(-100, 100);
  std::vector<Point> pts;
  int64_t cents = 50'000;
  for (int i = 0; i < 1000; ++i) {
    cents += step(rng);
    pts.push_back({kStart + 10'000 * i, static_cast<double>(cents) / 100.0});
  }
  auto bytes = round_trip(pts);
  WARN("10 s random walk, 2 decimals: " << bytes_per_sample(bytes, pts.size()) << " bytes/sample");
  // Steps of up to 1.00 need 8 bits as scaled integers; Gorilla's XOR needed about 6.7 bytes.
  CHECK(bytes_per_sample(bytes, pts.size()) < 1.1);
}

TEST_CASE("codec: a constant at a regular interval costs a few bytes per chunk", "[codec]") {
  std::vector<Point> pts;
  for (int i = 0; i < 1000; ++i) pts.push_back({kStart + 10'000 * i, 1.0});
  auto bytes = round_trip(pts);
  WARN("constant, 10 s: " << bytes.size() << " bytes for 1000 samples");
  CHECK(bytes.size() < 24);
}

TEST_CASE("codec: monotonic counter", "[codec]") {
  std::mt19937_64 rng(2);
  std::uniform_int_distribution<int> inc(0, 500);
  std::vector<Point> pts;
  double c = 0;
  for (int i = 0; i < 1000; ++i) {
    c += inc(rng);
    pts.push_back({kStart + 15'000 * i, c});
  }
  auto bytes = round_trip(pts);
  WARN("counter, 15 s: " << bytes_per_sample(bytes, pts.size()) << " bytes/sample");
  CHECK(bytes.size() < 2 * pts.size());
}

TEST_CASE("codec: a counter without a reset needs no sign bit, one with a reset still reads",
          "[codec]") {
  std::mt19937_64 rng(13);
  std::vector<Point> pts;
  double c = 1e6;
  for (int i = 0; i < 720; ++i) {
    c += static_cast<double>(rng() % 1000);
    pts.push_back({kStart + 10'000 * i, c});
  }
  const auto rising = round_trip(pts);
  // Steps below 1000 fit 10 bits unsigned (11 with a sign bit).
  CHECK(rising.size() < 720 * 10 / 8 + 32);
  pts[400].value = 5;  // a reset
  CHECK(round_trip(pts).size() > rising.size());
}

TEST_CASE("codec: a steady counter is delta-of-delta coded", "[codec]") {
  std::vector<Point> pts;
  for (int i = 0; i < 720; ++i) pts.push_back({kStart + 10'000 * i, 1000.0 + 25.0 * i});
  auto bytes = round_trip(pts);
  CHECK(bytes.size() < 24);
}

TEST_CASE("codec: timestamps cost bits only for their jitter", "[codec]") {
  std::vector<Point> regular;
  std::vector<Point> jittered;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 8000; ++i) {
    regular.push_back({kStart + 10'000 * i, 3.0});
    jittered.push_back({kStart + 10'000 * i + static_cast<int64_t>(rng() % 3), 3.0});
  }
  CHECK(round_trip(regular).size() < 24);
  // Delta-of-delta in [-4, 4]: zigzag needs 4 bits.
  CHECK(round_trip(jittered).size() <= 8000 / 2 + 32);
}

TEST_CASE("codec: one long gap does not widen every slot", "[codec]") {
  std::vector<Point> pts;
  for (int i = 0; i < 1000; ++i) {
    pts.push_back({kStart + 10'000 * i + (i >= 500 ? 86'400'000 : 0), 7.0});
  }
  CHECK(round_trip(pts).size() < 40);
}

TEST_CASE("codec: decimal values mixed with one that is not fall back to XOR", "[codec]") {
  std::vector<Point> pts;
  for (int i = 0; i < 100; ++i) pts.push_back({kStart + 10'000 * i, i * 0.25});
  const auto decimal = round_trip(pts);
  pts[50].value = -0.0;  // not m / 10^E: the sign would be lost
  const auto mixed = round_trip(pts);
  CHECK(mixed.size() > decimal.size());
  pts[50].value = 0.1 + 0.2;  // 0.30000000000000004 needs 17 digits
  round_trip(pts);
  pts[50].value = 123456789.123456;  // 15 significant digits: still decimal
  round_trip(pts);
}

TEST_CASE("codec: random doubles and integers near 2^53", "[codec]") {
  std::mt19937_64 rng(3);
  std::vector<Point> pts;
  for (int i = 0; i < 2000; ++i) {
    double v = std::bit_cast<double>(rng());
    if (std::isnan(v)) v = 1.0;
    pts.push_back({kStart + i, v});
  }
  round_trip(pts);

  std::vector<Point> ints;
  const double base = 9007199254740992.0;  // 2^53
  for (int i = 0; i < 1000; ++i) {
    ints.push_back({kStart + 1000 * i, base - 500 + static_cast<double>(rng() % 1000)});
  }
  round_trip(ints);

  // Every bit differing forces the 64-meaningful-bit window.
  round_trip({{1, std::bit_cast<double>(uint64_t{0})},
              {2, std::bit_cast<double>(~uint64_t{0})},
              {3, std::bit_cast<double>(uint64_t{0x8000000000000001})},
              {4, std::bit_cast<double>(uint64_t{0x7ffffffffffffffe})}});
}

TEST_CASE("codec: special values round-trip bit-exactly", "[codec]") {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan_payload = std::bit_cast<double>(uint64_t{0x7ff8dead0000beef});
  const double neg_nan = std::bit_cast<double>(uint64_t{0xfff0000000000001});  // signalling
  std::vector<Point> pts = {{0, std::numeric_limits<double>::quiet_NaN()},
                            {1, nan_payload},
                            {2, neg_nan},
                            {3, inf},
                            {4, -inf},
                            {5, 0.0},
                            {6, -0.0},
                            {7, 0.0},
                            {8, std::numeric_limits<double>::denorm_min()},
                            {9, -std::numeric_limits<double>::denorm_min()},
                            {10, std::numeric_limits<double>::min()},
                            {11, std::numeric_limits<double>::max()},
                            {12, std::numeric_limits<double>::lowest()},
                            {13, 1e-310},
                            {14, nan_payload}};
  round_trip(pts);
}

TEST_CASE("codec: equal timestamps are kept", "[codec]") {
  std::vector<Point> pts = {{kStart, 1},         {kStart, 2},     {kStart, 3},
                            {kStart + 1, 4},     {kStart + 1, 5}, {kStart + 10'000, 6},
                            {kStart + 10'000, 6}};
  round_trip(pts);
}

TEST_CASE("codec: irregular, huge and negative gaps", "[codec]") {
  std::mt19937_64 rng(4);
  std::vector<Point> pts;
  TimestampMs t = kStart;
  for (int i = 0; i < 3000; ++i) {
    // Jitter within each bucket width, plus occasional jumps of days to centuries.
    switch (rng() % 6) {
      case 0: t += 10'000; break;
      case 1: t += 10'000 + static_cast<int64_t>(rng() % 200) - 100; break;
      case 2: t += static_cast<int64_t>(rng() % 5000); break;
      case 3: t += static_cast<int64_t>(rng() % 1'000'000); break;
      case 4: t += static_cast<int64_t>(rng() % (int64_t{1} << 36)); break;
      default: t += static_cast<int64_t>(rng() % 1000) * 365 * 86'400'000LL / 100; break;
    }
    pts.push_back({t, static_cast<double>(i)});
  }
  round_trip(pts);

  // Out-of-order input is not what the engine sends, but it must still round-trip.
  round_trip({{1000, 1}, {500, 2}, {-3'000'000'000'000, 3}, {4'000'000'000'000, 4}, {0, 5}});
}

TEST_CASE("codec: negative timestamps", "[codec]") {
  std::vector<Point> pts;
  for (int i = 0; i < 100; ++i) pts.push_back({-1'000'000 + 10'000 * i, i * 0.5});
  round_trip(pts);
}

TEST_CASE("codec: timestamps at the int64 limits", "[codec]") {
  round_trip({{kMin, 1}, {kMax, 2}});
  round_trip({{kMax, 1}, {kMin, 2}, {kMax, 3}, {kMin, 4}});
  round_trip(
      {{kMin, 1}, {kMin + 1, 2}, {kMin + 2, 3}, {0, 4}, {kMax - 2, 5}, {kMax - 1, 6}, {kMax, 7}});
  round_trip({{kMax - 20'000, 1}, {kMax - 10'000, 2}, {kMax, 3}});
  round_trip({{kMin, 1}, {kMin + 10'000, 2}, {kMin + 20'000, 3}});
}

TEST_CASE("codec: bucket boundaries of the delta-of-delta", "[codec]") {
  // Each delta-of-delta d is produced from a regular base, exercising both sides of each bucket.
  const int64_t edges[] = {1,
                           2,
                           63,
                           64,
                           65,
                           255,
                           256,
                           257,
                           2047,
                           2048,
                           2049,
                           (1 << 19) - 1,
                           1 << 19,
                           (1 << 19) + 1,
                           (int64_t{1} << 31) - 1,
                           int64_t{1} << 31,
                           (int64_t{1} << 31) + 1,
                           int64_t{1} << 40,
                           int64_t{1} << 62};
  for (int64_t e : edges) {
    for (int64_t d : {e, -e}) {
      INFO("dod " << d);
      const int64_t base = int64_t{1} << 40;
      round_trip({{0, 1}, {base, 2}, {base * 2 + d, 3}, {base * 2 + d + base / 2, 4}});
      round_trip({{0, 1}, {10'000, 2}, {20'000 + d, 3}, {30'000 + d, 4}});
    }
  }
}

TEST_CASE("codec: large chunks", "[codec]") {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0, 1);
  std::vector<Point> pts;
  double v = 100;
  for (int i = 0; i < 20'000; ++i) {
    v += noise(rng);
    pts.push_back({kStart + 1000 * i + static_cast<int64_t>(rng() % 3), v});
  }
  round_trip(pts);
}

TEST_CASE("codec: structural corruption is rejected", "[codec]") {
  const std::string good = encode({{kStart, 1}, {kStart + 10, 2}, {kStart + 20, 2.5}});
  REQUIRE(decode_chunk(good).is_ok());

  CHECK_FALSE(decode_chunk("").is_ok());
  std::string bad_version = good;
  bad_version[0] = 9;
  CHECK_FALSE(decode_chunk(bad_version).is_ok());
  CHECK_FALSE(decode_chunk(good + '\0').is_ok());                     // trailing byte
  CHECK_FALSE(decode_chunk(std::string("\x03\x00\x00", 3)).is_ok());  // empty chunk + trailing
  CHECK_FALSE(decode_chunk(std::string("\x02\x00\x00", 3)).is_ok());  // in format 2 too
  // A count far beyond the limit must fail before allocating.
  CHECK_FALSE(
      decode_chunk(std::string("\x02\xff\xff\xff\xff\xff\xff\xff\xff\x7f\x00", 11)).is_ok());
  // Overlong varint.
  CHECK_FALSE(
      decode_chunk(std::string("\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12)).is_ok());
  // A version 1 (Gorilla-only) chunk is not read by this engine.
  CHECK_FALSE(decode_chunk(std::string("\x01\x00", 2)).is_ok());
  for (size_t len = 0; len < good.size(); ++len) {
    INFO("truncated to " << len);
    CHECK_FALSE(decode_chunk(good.substr(0, len)).is_ok());
  }
  // Value reuse ('10') before any window exists: count 2, t0 0, delta 0, XOR mode, value 0,
  // then '10' (format 2).
  std::string reuse("\x02\x02\x00\x00\x01", 5);
  reuse += std::string(8, '\0');
  reuse += static_cast<char>(0b10000000);
  CHECK_FALSE(decode_chunk(reuse).is_ok());
}

TEST_CASE("codec: a jittered scrape costs one timestamp exception on the grid", "[codec]") {
  std::vector<Point> pts;
  for (int i = 0; i < 720; ++i) {
    // Every 50th scrape a second late: the grid coding pays once per jitter, delta-of-delta
    // would pay three times.
    pts.push_back({kStart + 10'000 * i + (i % 50 == 7 ? 1000 : 0), 2.0});
  }
  const auto bytes = round_trip(pts);
  // Header, 15 exceptions of two bytes (whole seconds: one byte of offset), the value.
  CHECK(bytes.size() < 56);
  // A missed scrape moves every later one off the grid: delta-of-delta is chosen then, at
  // three exceptions per jitter.
  pts.erase(pts.begin() + 300);
  const auto missed = round_trip(pts);
  CHECK(missed.size() > bytes.size());
  CHECK(missed.size() < 128);
}

TEST_CASE("codec: noisy floats in a band cost less than XOR", "[codec]") {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> band(900.0, 1100.0);
  std::vector<Point> pts;
  for (int i = 0; i < 720; ++i) pts.push_back({kStart + 10'000 * i, band(rng)});
  const auto bytes = round_trip(pts);
  WARN("noise within +-10%: " << bytes_per_sample(bytes, pts.size()) << " bytes/sample");
  // About 47 bits of band in ulps; XOR coding needed about 6.8 bytes.
  CHECK(bytes_per_sample(bytes, pts.size()) < 6.5);
  // Negative values, NaN, infinities and -0.0 keep their bits in the ordered coding too.
  for (auto& p : pts) p.value = -p.value;
  pts[3].value = std::numeric_limits<double>::quiet_NaN();
  pts[4].value = -std::numeric_limits<double>::infinity();
  pts[5].value = -0.0;
  round_trip(pts);
}

TEST_CASE("codec: bell-shaped steps are Rice coded, and outliers escape", "[codec]") {
  std::mt19937_64 rng(12);
  std::normal_distribution<double> step(0, 300);
  std::vector<Point> pts;
  int64_t cents = 100'000;
  for (int i = 0; i < 720; ++i) {
    cents += std::llround(step(rng));
    if (i == 400) cents += 1'000'000'000;  // one jump far past the escape
    pts.push_back({kStart + 10'000 * i, static_cast<double>(cents) / 100.0});
  }
  const auto bytes = round_trip(pts);
  WARN("gaussian steps, sigma 3.00: " << bytes_per_sample(bytes, pts.size()) << " bytes/sample");
  // Entropy is log2(300) + 2.05 = 10.3 bits; Rice needs about 10.4, fixed slots 11 (1.41 bytes a
  // sample with the escape and the header).
  CHECK(bytes_per_sample(bytes, pts.size()) < 1.37);
}

TEST_CASE("codec: format 2 chunks and version 3 rollup blocks of the previous kpid still read",
          "[codec]") {
  // Written by kpid c74c172 (format 2: timestamps as t0, t1 - t0 and delta of delta; two-value
  // decimal columns with an order byte and a block).
  const std::string chunk(
      "\x02\x0c\x80\x8a\xdc\xfe\xf9\x62\xb0\xea\x01\x00\x03\x03\xd0\x0f\x00\x9f\x1f\x00\xd0\x0f\x00"
      "\x02\x82\x10\x02\xac\x02\x0a\x00\x00\x25\x79\x60\x00\x95\xe5\x80\x02\x57\x96\x00\x00",
      44);
  std::vector<Point> want;
  const TimestampMs base = 1'700'000'400'000;
  for (int i = 0; i < 12; ++i) {
    want.push_back({base + i * 15'000 + (i == 5 ? 1000 : 0), 10.25 + i * 0.5 + (i % 3)});
  }
  auto decoded = decode_chunk(chunk);
  REQUIRE(decoded.is_ok());
  require_bit_exact(*decoded, want);
  const std::string pair("\x02\x02\x80\x8a\xdc\xfe\xf9\x62\xa0\x9c\x01\x00\x01\x1e\x01\x05\x00\xa0",
                         18);
  decoded = decode_chunk(pair);
  REQUIRE(decoded.is_ok());
  require_bit_exact(*decoded, {{base, 1.5}, {base + 10'000, 2.5}});

  const std::string block(
      "\x03\x02\x00\x00\x02\x01\x01\x00\x80\x00\x00\x0c\x01\x00\x00\x00\x00\xb0\xaa\xb7\x03\x01\x00"
      "\x00\x00\x00\xb0\x8f\x49\x01\x00\x00\x00\x00\x48\x01\x07\x00\x90\x00\x01\x46\x01\x07\x00\xf0"
      "\x00\x01\xaa\x01\x01\x07\x00\xf0\x00\x01\xbe\x24\x01\x0e\x00\xca\x80\x00\x01\x46\x01\x07\x00"
      "\xf0\x00\x01\xaa\x01\x01\x07\x00\xf0\x00\x00\x0a\x01\x00\x00\x00\x00\x00\x06\x7e\x01\x0d\x01"
      "\x0a\x01\x08\x01\x07\x01\x06\x01\x00\x00\x00\x06\xe2\x01\x01\x05\x01\x05\x01\x04\x01\x04\x01"
      "\x03\x01",
      117);
  const TimestampMs window = 1'700'006'400'000;
  std::vector<Point> spread;
  for (int i = 0; i < 12; ++i) spread.push_back({window - 7'200'000 + 1000 + i * 600'000, 3.5 + i});
  std::vector<Rollup> want_rollups;
  build_rollups(spread, 3'600'000, window - 7'200'000, window, want_rollups);
  std::vector<Rollup> got;
  REQUIRE(decode_rollup_block(block, window, 3'600'000, window - 7'200'000, window, got).is_ok());
  REQUIRE(got.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(got[i].end == want_rollups[i].end);
    CHECK(got[i].count == want_rollups[i].count);
    CHECK(got[i].sum == want_rollups[i].sum);
    CHECK(got[i].min == want_rollups[i].min);
    CHECK(got[i].max == want_rollups[i].max);
    CHECK(got[i].first == want_rollups[i].first);
    CHECK(got[i].last == want_rollups[i].last);
    CHECK(got[i].sketch.count() == want_rollups[i].sketch.count());
  }
  // What this kpid writes for the same rollups is version 4, and smaller.
  const auto now = encode_rollup_block(want_rollups, window, 3'600'000);
  CHECK(static_cast<uint8_t>(now[0]) == 4);
  CHECK(now.size() < block.size());
}

TEST_CASE("codec: random and mutated input never crashes", "[codec]") {
  std::mt19937_64 rng(6);
  std::vector<Point> pts;
  TimestampMs t = kStart;
  for (int i = 0; i < 200; ++i) {
    t += (rng() % 4 == 0) ? static_cast<int64_t>(rng() % 100'000) : 10'000;
    pts.push_back(
        {t, (rng() % 3 == 0) ? std::bit_cast<double>(rng()) : static_cast<double>(i % 7)});
  }
  const std::string good = encode(pts);
  size_t ok = 0;
  size_t failed = 0;
  auto probe = [&](const std::string& bytes) {
    auto r = decode_chunk(bytes);
    if (r.is_ok()) {
      ++ok;
      CHECK(r->size() <= kMaxChunkSamples);
    } else {
      ++failed;
      CHECK_FALSE(r.status().message().empty());
    }
  };
  for (int i = 0; i < 3000; ++i) {
    std::string b = good;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      const size_t bit = rng() % (b.size() * 8);
      b[bit / 8] = static_cast<char>(b[bit / 8] ^ (1 << (bit % 8)));
    }
    probe(b);
    probe(good.substr(0, rng() % good.size()));
  }
  for (int i = 0; i < 3000; ++i) {
    std::string b(rng() % 64, '\0');
    for (auto& c : b) c = static_cast<char>(rng());
    if (!b.empty() && rng() % 2 == 0)
      b[0] = static_cast<char>(kChunkFormatVersion);  // get past the version check
    probe(b);
  }
  WARN("fuzz: " << ok << " decoded, " << failed << " rejected");
  CHECK(failed > 0);
}
