// Writes the chunk target's seed corpus (corpus/chunk/seed-*): chunks, value columns, rollup
// blocks and sketches as the encoders write them, and inputs for the round-trip modes, each
// prefixed with its mode byte (see chunk_fuzz.cpp). Rerun after a format change, from the repo:
//   cmake --build build --target chunk_seeds
//   build/tests/fuzz/chunk_seeds tests/fuzz/corpus/chunk

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "kpid/store/chunk_codec.h"
#include "kpid/store/ddsketch.h"
#include "kpid/store/rollup.h"

namespace {

using kpid::TimestampMs;
using kpid::store::Point;

std::string g_dir;

void write(const std::string& name, char mode, const std::string& payload) {
  std::ofstream out(g_dir + "/seed-" + name, std::ios::binary | std::ios::trunc);
  out.put(mode);
  out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", name.c_str());
    std::exit(1);
  }
}

std::string le(uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}

std::vector<Point> series(size_t n, TimestampMs t0, TimestampMs step, double (*value)(size_t)) {
  std::vector<Point> points;
  for (size_t i = 0; i < n; ++i)
    points.push_back({t0 + static_cast<TimestampMs>(i) * step, value(i)});
  return points;
}

// Deterministic noise (xorshift), for inputs of the round-trip modes.
std::string noise(uint64_t seed, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    out.push_back(static_cast<char>(seed));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  using kpid::store::encode_chunk;
  constexpr TimestampMs kT0 = 1'700'000'000'000;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();

  // Mode 0: chunks.
  write("chunk-empty", 0, encode_chunk({}));
  write("chunk-one-point", 0, encode_chunk(std::vector<Point>{{kT0, 42.5}}));
  write("chunk-two-points", 0, encode_chunk(std::vector<Point>{{kT0, 1}, {kT0 + 15'000, 2}}));
  write("chunk-regular-constant", 0,
        encode_chunk(series(240, kT0, 15'000, [](size_t) { return 1.0; })));
  write("chunk-counter", 0,
        encode_chunk(series(120, kT0, 30'000, [](size_t i) { return 1000.0 + 7.0 * i; })));
  write("chunk-decimals", 0, encode_chunk(series(60, kT0, 10'000, [](size_t i) {
          return (257 + static_cast<double>(i % 9)) / 100;
        })));
  write("chunk-gauge-noise", 0, encode_chunk(series(64, kT0, 1'000, [](size_t i) {
          return std::sin(static_cast<double>(i)) * 1e3;
        })));
  write("chunk-special-values", 0,
        encode_chunk(std::vector<Point>{{kT0, nan},
                                        {kT0 + 1, -0.0},
                                        {kT0 + 2, inf},
                                        {kT0 + 3, -inf},
                                        {kT0 + 4, 4.9e-324},
                                        {kT0 + 5, std::bit_cast<double>(0x7ff8'0000'0000'0042ULL)},
                                        {kT0 + 6, 1.7976931348623157e308}}));
  write("chunk-any-order-extremes", 0,
        encode_chunk(std::vector<Point>{{std::numeric_limits<int64_t>::max(), 1},
                                        {std::numeric_limits<int64_t>::min(), 2},
                                        {0, 3},
                                        {-1, 4},
                                        {kT0, 5},
                                        {kT0, 6}}));
  {
    auto gaps = series(100, kT0, 15'000, [](size_t i) { return static_cast<double>(i % 3); });
    for (size_t i = 50; i < gaps.size(); ++i) gaps[i].timestamp += 3'600'000;
    gaps[77].timestamp += 1;
    write("chunk-gaps-exceptions", 0, encode_chunk(gaps));
  }
  write("chunk-negative-times", 0,
        encode_chunk(series(30, -kT0, 60'000, [](size_t i) { return -1.25 * i; })));

  // Mode 2: value columns (2-byte count, the form byte, then the column).
  auto column = [](std::vector<double> values) {
    std::string out = le(values.size(), 2);
    out.push_back(1);  // two-value columns as a plain difference (what is written today)
    kpid::store::append_value_column(out, values);
    return out;
  };
  write("column-counts", 2, column({1, 2, 3, 4, 5, 6, 7, 8}));
  write("column-decimals", 2, column({0.001, 0.002, 1200, -3.5}));
  write("column-xor", 2, column({0.1 + 0.2, 1.0 / 3, nan, -0.0, inf}));
  write("column-pair", 2, column({3600, 3590}));
  write("column-ordered", 2, column({1.0000000001, 1.0000000003, 1.0000000002, 0.9999999999}));

  // Mode 4: rollup blocks (width byte, window end as chunk_fuzz.cpp reads it, the block).
  auto rollup_block = [&](kpid::DurationMs width, std::vector<Point> points) {
    constexpr kpid::DurationMs kWindow = 2 * 3'600'000;
    const TimestampMs end = kpid::store::bucket_end(points.back().timestamp, kWindow);
    std::vector<kpid::store::Rollup> rollups;
    kpid::store::build_rollups(points, width, end - kWindow, end, rollups);
    const auto windows = static_cast<uint64_t>(end / kWindow + (int64_t{1} << 43)) << 20;
    return std::string(1, width == kpid::store::kRollup1h ? 1 : 0) + le(windows, 8) +
           kpid::store::encode_rollup_block(rollups, end, width);
  };
  write("rollup-5m-gauge", 4,
        rollup_block(kpid::store::kRollup5m, series(480, kT0, 15'000, [](size_t i) {
                       return 100 + std::sin(i / 10.0) * 20;
                     })));
  write("rollup-1h-counter", 4,
        rollup_block(kpid::store::kRollup1h, series(120, kT0, 60'000, [](size_t i) {
                       return i < 60 ? 10.0 * i : 5.0 * i - 290;  // a counter reset
                     })));
  write("rollup-5m-nan", 4,
        rollup_block(kpid::store::kRollup5m,
                     std::vector<Point>{{kT0, nan}, {kT0 + 1, 1}, {kT0 + 400'000, nan}}));

  // Mode 6: sketches.
  kpid::store::DDSketch sketch;
  for (int i = -50; i < 200; ++i) sketch.add(i * 1.7);
  sketch.add(0);
  write("sketch-mixed", 6, sketch.encode());
  write("sketch-empty", 6, kpid::store::DDSketch().encode());
  kpid::store::DDSketch fine(0.001, 64);
  fine.add(1e-9);
  fine.add(1e9, 3);
  write("sketch-fine-folded", 6, fine.encode());

  // Modes 1, 3, 5: bytes the targets turn into points, values and rollups.
  for (char mode : {1, 3, 5}) {
    for (uint64_t seed : {1, 2}) {
      write("derived-mode" + std::to_string(mode) + "-" + std::to_string(seed), mode,
            noise(seed * 7919 + static_cast<uint64_t>(mode), 300));
    }
  }
  return 0;
}
