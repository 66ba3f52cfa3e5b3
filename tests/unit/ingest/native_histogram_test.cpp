#include "kpid/ingest/native_histogram.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace kpid::ingest;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string le(double bound) {
  char buffer[32];
  return std::string(format_le(bound, buffer));
}

// "le=count" pairs, for compact expectations.
std::string printed(const std::vector<ClassicBucket>& buckets) {
  std::string out;
  for (const ClassicBucket& b : buckets) {
    if (!out.empty()) out += ' ';
    out += le(b.upper_bound) + '=' + le(b.cumulative);
  }
  return out;
}

}  // namespace

TEST_CASE("le values are written as Prometheus' clients write them") {
  CHECK(le(0.25) == "0.25");
  CHECK(le(1) == "1");
  CHECK(le(0.005) == "0.005");
  CHECK(le(0.00001) == "1e-05");
  CHECK(le(100000) == "100000");
  CHECK(le(1000000) == "1e+06");
  CHECK(le(-2.5) == "-2.5");
  CHECK(le(kInf) == "+Inf");
  CHECK(le(std::sqrt(2.0)) == "1.4142135623730951");
}

TEST_CASE("schema 0: each bucket doubles, with the bound below the lowest and +Inf") {
  // Buckets 1 (1,2], 2 (2,4], 4 (8,16]: bucket 3 is empty inside the range and still given.
  const std::vector<IndexedCount> positive = {{1, 3}, {2, 5}, {4, 2}};
  NativeHistogram h;
  h.schema = 0;
  h.count = 10;
  h.sum = 42;
  h.positive = positive;
  std::vector<ClassicBucket> out;
  to_classic_buckets(h, 100, out);
  CHECK(printed(out) == "1=0 2=3 4=8 8=8 16=10 +Inf=10");
}

TEST_CASE("the zero bucket and negative buckets come first, in ascending order") {
  const std::vector<IndexedCount> negative = {{1, 1}, {2, 2}};  // [-2,-1) and [-4,-2)
  const std::vector<IndexedCount> positive = {{1, 4}};
  NativeHistogram h;
  h.schema = 0;
  h.zero_threshold = 0.001;
  h.zero_count = 3;
  h.count = 10;
  h.negative = negative;
  h.positive = positive;
  std::vector<ClassicBucket> out;
  to_classic_buckets(h, 100, out);
  CHECK(printed(out) == "-4=0 -2=2 -1=3 0.001=6 1=6 2=10 +Inf=10");
}

TEST_CASE("over the bucket limit, adjacent buckets merge onto the coarser schema's grid") {
  // Schema 1 (base sqrt 2): buckets 1..8 one observation each = bounds 2^(i/2).
  std::vector<IndexedCount> positive;
  for (int32_t i = 1; i <= 8; ++i) positive.push_back({i, 1});
  NativeHistogram h;
  h.schema = 1;
  h.count = 8;
  h.positive = positive;
  std::vector<ClassicBucket> out;
  to_classic_buckets(h, 9, out);
  CHECK(out.size() == 10);  // 1 below + 8 + +Inf
  to_classic_buckets(h, 8, out);
  // One step down: schema 0, bounds 1 2 4 8 16, each coarse bucket two fine ones.
  CHECK(printed(out) == "1=0 2=2 4=4 8=6 16=8 +Inf=8");
  // The coarse bounds are the same doubles as the fine ones they coincide with.
  std::vector<ClassicBucket> fine;
  to_classic_buckets(h, 100, fine);
  CHECK(fine[2].upper_bound == out[1].upper_bound);
  CHECK(fine[2].cumulative == out[1].cumulative);
}

TEST_CASE("custom bounds give their bounds, merged pairwise past the limit") {
  const std::vector<double> bounds = {0.1, 0.2, 0.5, 1};
  const std::vector<IndexedCount> positive = {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}};
  NativeHistogram h;
  h.schema = kCustomBucketsSchema;
  h.count = 15;
  h.custom_bounds = bounds;
  h.positive = positive;
  std::vector<ClassicBucket> out;
  to_classic_buckets(h, 10, out);
  CHECK(printed(out) == "0.1=1 0.2=3 0.5=6 1=10 +Inf=15");
  to_classic_buckets(h, 2, out);
  CHECK(printed(out) == "0.2=3 1=10 +Inf=15");
}

TEST_CASE("an empty histogram is only its +Inf bucket") {
  NativeHistogram h;
  h.count = 0;
  std::vector<ClassicBucket> out;
  to_classic_buckets(h, 10, out);
  CHECK(printed(out) == "+Inf=0");
}
