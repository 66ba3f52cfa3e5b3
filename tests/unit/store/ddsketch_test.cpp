#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "kpid/store/ddsketch.h"

using namespace kpid;
using namespace kpid::store;

namespace {

constexpr double kQuantiles[] = {0, .01, .05, .25, .5, .75, .9, .95, .99, 1};

double exact_quantile(std::vector<double> sorted, double q) {
  std::sort(sorted.begin(), sorted.end());
  const auto rank = static_cast<size_t>(std::floor(q * static_cast<double>(sorted.size() - 1)));
  return sorted[rank];
}

DDSketch build(const std::vector<double>& values, double alpha = 0.01,
               uint32_t max_buckets = DDSketch::kDefaultMaxBuckets) {
  DDSketch s(alpha, max_buckets);
  for (double v : values) s.add(v);
  return s;
}

// Finer accuracies need more buckets to cover the same magnitude range (the cap would otherwise
// fold the smallest values), hence the larger cap below alpha = 0.01.
void check_accuracy(const std::vector<double>& values, double alpha) {
  const DDSketch s = build(values, alpha, alpha < 0.01 ? 1u << 15 : DDSketch::kDefaultMaxBuckets);
  REQUIRE(s.count() == values.size());
  for (double q : kQuantiles) {
    const double exact = exact_quantile(values, q);
    const double est = s.quantile(q);
    INFO("q=" << q << " exact=" << exact << " est=" << est << " alpha=" << alpha);
    // The 1e-12 slack absorbs rounding in log() at exact bucket boundaries.
    CHECK(std::fabs(est - exact) <= alpha * std::fabs(exact) * (1 + 1e-12) + 1e-300);
  }
  CHECK(s.quantile(0) == *std::min_element(values.begin(), values.end()));
  CHECK(s.quantile(1) == *std::max_element(values.begin(), values.end()));
}

void require_same_quantiles(const DDSketch& a, const DDSketch& b) {
  REQUIRE(a.count() == b.count());
  CHECK(a.min() == b.min());
  CHECK(a.max() == b.max());
  for (int i = 0; i <= 1000; ++i) {
    const double q = i / 1000.0;
    INFO("q=" << q);
    CHECK(a.quantile(q) == b.quantile(q));
  }
}

std::vector<double> uniform(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(0, 1000);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<double> lognormal(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> d(0, 2);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<double> exponential(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> d(0.01);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<double> mixed_sign(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(5, 50);
  std::lognormal_distribution<double> tail(3, 2);
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) {
    switch (i % 10) {
      case 0: v[i] = 0; break;
      case 1: v[i] = -tail(rng); break;
      case 2: v[i] = tail(rng); break;
      default: v[i] = d(rng); break;
    }
  }
  return v;
}

}  // namespace

TEST_CASE("ddsketch: empty sketch", "[ddsketch]") {
  DDSketch s;
  CHECK(s.count() == 0);
  CHECK(std::isnan(s.min()));
  CHECK(std::isnan(s.max()));
  CHECK(s.sum() == 0);
  for (double q : kQuantiles) CHECK(std::isnan(s.quantile(q)));
  auto d = DDSketch::decode(s.encode());
  REQUIRE(d.is_ok());
  CHECK(d->count() == 0);
  CHECK(d->encode() == s.encode());
}

TEST_CASE("ddsketch: relative accuracy on uniform, exponential, lognormal, mixed-sign data",
          "[ddsketch]") {
  for (double alpha : {0.01, 0.001, 0.05}) {
    check_accuracy(uniform(20'000, 1), alpha);
    check_accuracy(exponential(20'000, 2), alpha);
    check_accuracy(lognormal(20'000, 3), alpha);
    check_accuracy(mixed_sign(20'000, 4), alpha);
  }
  std::vector<double> negative = lognormal(10'000, 5);
  for (auto& x : negative) x = -x;
  check_accuracy(negative, 0.01);
}

TEST_CASE("ddsketch: every rank of a small data set", "[ddsketch]") {
  // Magnitudes within gamma^2048 (~6e17) of each other, so no bucket is folded.
  std::vector<double> v = {-1000, -3.5, -1e-9, 0, 0, 1e-320, 2, 2, 7.25, 1e6, 1e15};
  const DDSketch s = build(v);
  std::sort(v.begin(), v.end());
  for (int i = 0; i <= 100; ++i) {
    const double q = i / 100.0;
    const double exact = exact_quantile(v, q);
    INFO("q=" << q << " exact=" << exact);
    CHECK(std::fabs(s.quantile(q) - exact) <= 0.01 * std::fabs(exact) * (1 + 1e-12) + 1e-300);
  }
}

TEST_CASE("ddsketch: constant data and weighted adds", "[ddsketch]") {
  DDSketch s;
  for (int i = 0; i < 1000; ++i) s.add(42.0);
  for (double q : kQuantiles) CHECK(s.quantile(q) == 42.0);  // clamped to [min, max]
  CHECK(s.sum() == 42000.0);

  DDSketch w;
  w.add(42.0, 1000);
  CHECK(w.encode() == s.encode());
  w.add(1.0, 0);
  CHECK(w.count() == 1000);
}

TEST_CASE("ddsketch: NaN and infinities are ignored", "[ddsketch]") {
  DDSketch s;
  s.add(std::numeric_limits<double>::quiet_NaN());
  s.add(std::numeric_limits<double>::infinity());
  s.add(-std::numeric_limits<double>::infinity(), 5);
  CHECK(s.count() == 0);
  s.add(3.0);
  CHECK(s.count() == 1);
  CHECK(s.quantile(0.5) == 3.0);
  CHECK(std::isnan(s.quantile(-0.1)));
  CHECK(std::isnan(s.quantile(1.1)));
  CHECK(std::isnan(s.quantile(std::numeric_limits<double>::quiet_NaN())));
}

TEST_CASE("ddsketch: extreme magnitudes stay finite", "[ddsketch]") {
  DDSketch s;
  const double big = std::numeric_limits<double>::max();
  s.add(big);
  s.add(-big);
  s.add(std::numeric_limits<double>::denorm_min());
  s.add(-0.0);
  for (double q : kQuantiles) CHECK(std::isfinite(s.quantile(q)));
  CHECK(s.quantile(1) == big);
  CHECK(s.quantile(0) == -big);
  auto d = DDSketch::decode(s.encode());
  REQUIRE(d.is_ok());
  require_same_quantiles(*d, s);
}

TEST_CASE("ddsketch: merging halves equals the whole", "[ddsketch]") {
  for (const auto& values : {uniform(10'000, 7), lognormal(10'000, 8), mixed_sign(10'000, 9)}) {
    const DDSketch whole = build(values);
    const std::vector<double> a(values.begin(), values.begin() + 3000);
    const std::vector<double> b(values.begin() + 3000, values.end());
    DDSketch left = build(a);
    const DDSketch right = build(b);
    REQUIRE(left.merge(right).is_ok());
    require_same_quantiles(left, whole);
    CHECK(left.sum() == Approx(whole.sum()).epsilon(1e-9));
  }
  // Integer data makes sums exact, so the encodings match byte for byte.
  std::vector<double> ints;
  std::mt19937_64 rng(10);
  for (int i = 0; i < 10'000; ++i) ints.push_back(static_cast<double>(rng() % 100'000) - 20'000);
  const DDSketch whole = build(ints);
  DDSketch left = build({ints.begin(), ints.begin() + 5000});
  REQUIRE(left.merge(build({ints.begin() + 5000, ints.end()})).is_ok());
  CHECK(left.encode() == whole.encode());

  DDSketch empty;
  REQUIRE(empty.merge(whole).is_ok());
  CHECK(empty.encode() == whole.encode());
  REQUIRE(left.merge(DDSketch()).is_ok());
  CHECK(left.encode() == whole.encode());
}

TEST_CASE("ddsketch: merging a sketch into itself doubles it", "[ddsketch]") {
  DDSketch s = build(mixed_sign(2000, 15));
  DDSketch twice = s;
  REQUIRE(twice.merge(s).is_ok());
  REQUIRE(s.merge(s).is_ok());
  CHECK(s.count() == 4000);
  require_same_quantiles(s, twice);
}

TEST_CASE("ddsketch: merging different accuracies fails and leaves the sketch unchanged",
          "[ddsketch]") {
  DDSketch a(0.01);
  a.add(1);
  DDSketch b(0.02);
  b.add(2);
  const std::string before = a.encode();
  CHECK_FALSE(a.merge(b).is_ok());
  CHECK(a.encode() == before);
}

TEST_CASE("ddsketch: bucket cap collapses the smallest magnitudes", "[ddsketch]") {
  constexpr uint32_t kCap = 256;  // covers a magnitude ratio of gamma^256, about 167
  DDSketch s(0.01, kCap);
  // Values over 40 orders of magnitude need far more than 256 buckets.
  std::vector<double> v;
  for (int e = -20; e <= 20; ++e) v.push_back(std::pow(10.0, e));
  for (double x : v) s.add(x);
  CHECK(s.count() == v.size());
  // The largest values are still accurate; the smallest fold upward.
  CHECK(s.quantile(0.99) == Approx(exact_quantile(v, 0.99)).epsilon(0.01));
  CHECK(s.quantile(0.1) >= exact_quantile(v, 0.1));
  CHECK(s.quantile(0) == 1e-20);  // exact min survives

  // Order does not matter: folding depends only on the largest index.
  DDSketch reversed(0.01, kCap);
  for (auto it = v.rbegin(); it != v.rend(); ++it) reversed.add(*it);
  require_same_quantiles(reversed, s);  // sums differ in rounding, so compare quantiles
  DDSketch merged(0.01, kCap);
  DDSketch low(0.01, kCap);
  DDSketch high(0.01, kCap);
  for (size_t i = 0; i < v.size(); ++i) (i < 20 ? low : high).add(v[i]);
  REQUIRE(merged.merge(low).is_ok());
  REQUIRE(merged.merge(high).is_ok());
  require_same_quantiles(merged, s);

  auto d = DDSketch::decode(s.encode());
  REQUIRE(d.is_ok());
  CHECK(d->encode() == s.encode());
}

TEST_CASE("ddsketch: encode/decode round-trip", "[ddsketch]") {
  for (const auto& values : {uniform(10'000, 11), mixed_sign(10'000, 12)}) {
    const DDSketch s = build(values);
    const std::string bytes = s.encode();
    auto d = DDSketch::decode(bytes);
    INFO(d.status().to_string());
    REQUIRE(d.is_ok());
    CHECK(d->encode() == bytes);
    CHECK(d->sum() == s.sum());
    CHECK(d->relative_accuracy() == s.relative_accuracy());
    require_same_quantiles(*d, s);
    WARN("ddsketch of 10000 values: " << bytes.size() << " bytes");
    CHECK(bytes.size() < 4096);
  }
}

TEST_CASE("ddsketch: decode rejects corrupt input", "[ddsketch]") {
  const std::string good = build(mixed_sign(1000, 13)).encode();
  REQUIRE(DDSketch::decode(good).is_ok());
  CHECK_FALSE(DDSketch::decode("").is_ok());
  CHECK_FALSE(DDSketch::decode(good + '\0').is_ok());
  std::string bad_version = good;
  bad_version[0] = 7;
  CHECK_FALSE(DDSketch::decode(bad_version).is_ok());
  for (size_t len = 0; len < good.size(); ++len) {
    INFO("truncated to " << len);
    CHECK_FALSE(DDSketch::decode(good.substr(0, len)).is_ok());
  }
  // Accuracy out of range (NaN bit pattern).
  std::string bad_alpha = good;
  for (int i = 1; i <= 8; ++i) bad_alpha[static_cast<size_t>(i)] = '\xff';
  CHECK_FALSE(DDSketch::decode(bad_alpha).is_ok());

  std::mt19937_64 rng(14);
  size_t accepted = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string b = good;
    const size_t bit = rng() % (b.size() * 8);
    b[bit / 8] = static_cast<char>(b[bit / 8] ^ (1 << (bit % 8)));
    auto d = DDSketch::decode(b);
    if (d.is_ok()) {
      ++accepted;
      // Whatever decodes must be a usable sketch.
      (void)d->quantile(0.5);
      CHECK(DDSketch::decode(d->encode()).is_ok());
    }
    std::string junk(rng() % 80, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (!junk.empty()) junk[0] = 1;
    auto j = DDSketch::decode(junk);
    if (j.is_ok()) CHECK(DDSketch::decode(j->encode()).is_ok());
  }
  WARN("ddsketch fuzz: " << accepted << " of 5000 bit flips still decode");
}
