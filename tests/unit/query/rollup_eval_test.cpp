// Rollup-backed evaluation: which resolution a query reads, that rollup results equal raw ones
// on the same data (quantiles within the sketch's 1%), and the approximate widened windows used
// when raw samples have expired.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>

#include "query_fixture.h"

using namespace kpid;
using namespace kpid::query;
using namespace kpid::testing;
using store::Point;

namespace {

// Irregular samples over 8 hours: a counter with resets (one exactly where a bucket starts, one
// inside a bucket) and two gauges; a 50-minute gap; some samples exactly on bucket ends.
struct Rollups : QueryFixture {
  TimestampMs b = base_time();
  uint64_t seed = 0x9e3779b97f4a7c15ULL;

  uint64_t next() {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return seed >> 33;
  }

  Rollups() {
    std::vector<Point> counter;
    std::vector<Point> gauge_a;
    std::vector<Point> gauge_b;
    double c = 0;
    bool reset_at_2h = false;
    TimestampMs t = b + 3000;
    while (t < b + 8 * kHour) {
      TimestampMs next_t = t + 7000 + static_cast<TimestampMs>(next() % 16000);
      // Now and then land exactly on a 5m boundary (a bucket's last instant).
      const TimestampMs boundary = (t / (5 * kMin) + 1) * 5 * kMin;
      if (next_t > boundary && next() % 3 == 0) next_t = boundary;
      t = next_t;
      if (t > b + 3 * kHour + 10 * kMin && t < b + 4 * kHour) continue;  // the gap
      c += static_cast<double>(next() % 100);
      if (!reset_at_2h && t > b + 2 * kHour) {
        c = 3;  // the first sample of bucket (2h, 2h5m] is below the previous bucket's last
        reset_at_2h = true;
      } else if (next() % 150 == 0) {
        c = static_cast<double>(next() % 10);
      }
      counter.push_back({t, c});
      gauge_a.push_back({t, 50 + static_cast<double>(next() % 10000) / 100});
      gauge_b.push_back({t, 10 + static_cast<double>(next() % 5000) / 10});
    }
    add({{"__name__", "ctr"}, {"job", "x"}}, counter);
    add({{"__name__", "g"}, {"host", "a"}}, gauge_a);
    add({{"__name__", "g"}, {"host", "b"}}, gauge_b);
  }

  // Evaluates `q` as a range query from `start` to `end` with `step` (expected to read rollups
  // of `width`) and with a 1-minute step (raw samples), and compares the common timestamps.
  void check_equal(const std::string& q, TimestampMs start, TimestampMs end, DurationMs step,
                   DurationMs width, double epsilon) {
    INFO("query " << q << " from +" << (start - b) / kMin << "m to +" << (end - b) / kMin
                  << "m step " << step / kMin << "m");
    QueryStats rolled_stats;
    const auto rolled = range(q, start, end, step, &rolled_stats);
    CHECK(rolled_stats.raw_reads == 0);
    CHECK(rolled_stats.widened_reads == 0);
    if (width == store::kRollup1h) {
      CHECK(rolled_stats.rollup_1h_reads > 0);
    } else {
      CHECK(rolled_stats.rollup_5m_reads > 0);
    }
    QueryStats raw_stats;
    const auto raw = range(q, start, end, kMin, &raw_stats);
    CHECK(raw_stats.rollup_5m_reads + raw_stats.rollup_1h_reads == 0);
    CHECK(raw_stats.raw_reads > 0);

    std::map<std::string, std::map<TimestampMs, double>> want;
    for (const auto& s : raw.series) {
      for (const auto& p : s.points) {
        if ((p.timestamp - start) % step == 0) want[label_text(*s.labels)][p.timestamp] = p.value;
      }
    }
    size_t compared = 0;
    REQUIRE(rolled.series.size() == want.size());
    for (const auto& s : rolled.series) {
      const auto& w = want[label_text(*s.labels)];
      REQUIRE(s.points.size() == w.size());
      for (const auto& p : s.points) {
        INFO("at +" << (p.timestamp - b) / kMin << "m, " << label_text(*s.labels));
        REQUIRE(w.count(p.timestamp) == 1);
        CHECK(p.value == Approx(w.at(p.timestamp)).epsilon(epsilon).margin(1e-12));
        ++compared;
      }
    }
    CHECK(compared > 0);
  }
};

}  // namespace

TEST_CASE("rollups: the resolution follows the range and the evaluation times", "[rollup]") {
  Rollups f;
  auto reads = [&](const std::string& q, TimestampMs t) {
    QueryStats s;
    f.instant(q, t, &s);
    return s;
  };
  const TimestampMs b = f.b;
  CHECK(reads("sum_over_time(g[1h])", b + 2 * kHour).rollup_1h_reads == 2);
  CHECK(reads("sum_over_time(g[2h])", b + 5 * kHour).rollup_1h_reads == 2);
  CHECK(reads("sum_over_time(g[1h])", b + 2 * kHour + 5 * kMin).rollup_5m_reads == 2);
  CHECK(reads("sum_over_time(g[90m])", b + 3 * kHour).rollup_5m_reads == 2);
  CHECK(reads("sum_over_time(g[15m])", b + 3 * kHour).rollup_5m_reads == 2);
  CHECK(reads("sum_over_time(g[1h])", b + 2 * kHour + kMin).raw_reads == 2);
  CHECK(reads("sum_over_time(g[7m])", b + 3 * kHour).raw_reads == 2);
  // Offsets count: what must be aligned is the window's end.
  CHECK(reads("sum_over_time(g[1h] offset 1h)", b + 3 * kHour).rollup_1h_reads == 2);
  CHECK(reads("sum_over_time(g[1h] offset 5m)", b + 3 * kHour).rollup_5m_reads == 2);
  CHECK(reads("sum_over_time(g[1h] offset 1m)", b + 3 * kHour).raw_reads == 2);
  // Quantiles from sketches only for ranges of an hour or more.
  CHECK(reads("quantile_over_time(0.5, g[30m])", b + 3 * kHour).raw_reads == 2);
  CHECK(reads("quantile_over_time(0.5, g[1h])", b + 3 * kHour).rollup_1h_reads == 2);
  CHECK(reads("quantile_over_time(0.5, g[1h])", b + 3 * kHour + 5 * kMin).rollup_5m_reads == 2);
  // Plain selectors in instant queries read raw samples.
  CHECK(reads("g", b + 3 * kHour).raw_reads == 2);

  // Range queries: every step must be aligned too.
  QueryStats s;
  f.range("rate(ctr[1h])", b + 2 * kHour, b + 6 * kHour, kHour, &s);
  CHECK(s.rollup_1h_reads == 1);
  f.range("rate(ctr[1h])", b + 2 * kHour, b + 6 * kHour, 30 * kMin, &s);
  CHECK(s.rollup_5m_reads == 1);
  f.range("rate(ctr[1h])", b + 2 * kHour, b + 6 * kHour, 7 * kMin, &s);
  CHECK(s.raw_reads == 1);
  f.range("rate(ctr[1h])", b + 2 * kHour + kMin, b + 6 * kHour + kMin, kHour, &s);
  CHECK(s.raw_reads == 1);
  // A plain selector in a 5m-aligned range query with the default 5m lookback reads the 5m
  // rollups' last values.
  f.range("g", b + 2 * kHour, b + 6 * kHour, 5 * kMin, &s);
  CHECK(s.rollup_5m_reads == 2);
  f.range("g", b + 2 * kHour, b + 6 * kHour, 2 * kMin, &s);
  CHECK(s.raw_reads == 2);
  f.engine.set_options({10 * kMin, 11'000});
  f.range("g", b + 2 * kHour, b + 6 * kHour, 5 * kMin, &s);
  CHECK(s.raw_reads == 2);
}

TEST_CASE("rollups: results equal raw evaluation for every function", "[rollup]") {
  Rollups f;
  const TimestampMs b = f.b;
  const DurationMs h = store::kRollup1h;
  const DurationMs m5 = store::kRollup5m;
  for (const char* fn : {"avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
                         "count_over_time", "last_over_time"}) {
    const std::string g = std::string(fn) + "(g[1h])";
    f.check_equal(g, b + kHour, b + 8 * kHour, kHour, h, 1e-9);
    f.check_equal(std::string(fn) + "(g[2h])", b + 2 * kHour, b + 8 * kHour, kHour, h, 1e-9);
    f.check_equal(std::string(fn) + "(g[15m])", b + 10 * kMin, b + 8 * kHour, 5 * kMin, m5, 1e-9);
    f.check_equal(std::string(fn) + "(g[1h])", b + 2 * kHour + 5 * kMin, b + 7 * kHour, 25 * kMin,
                  m5, 1e-9);
  }
  for (const char* fn : {"stddev_over_time", "stdvar_over_time"}) {
    f.check_equal(std::string(fn) + "(g[1h])", b + kHour, b + 8 * kHour, kHour, h, 1e-7);
    f.check_equal(std::string(fn) + "(g[15m])", b + 10 * kMin, b + 8 * kHour, 5 * kMin, m5, 1e-7);
  }
  for (const char* fn : {"rate", "increase"}) {
    f.check_equal(std::string(fn) + "(ctr[1h])", b + kHour, b + 8 * kHour, kHour, h, 1e-9);
    f.check_equal(std::string(fn) + "(ctr[3h])", b + 3 * kHour, b + 8 * kHour, kHour, h, 1e-9);
    f.check_equal(std::string(fn) + "(ctr[10m])", b + 10 * kMin, b + 8 * kHour, 5 * kMin, m5, 1e-9);
    f.check_equal(std::string(fn) + "(ctr[5m])", b + 5 * kMin, b + 8 * kHour, 5 * kMin, m5, 1e-9);
  }
  // Quantiles: the sketch's 1% relative error (values here are positive).
  for (const char* q : {"0", "0.1", "0.5", "0.9", "0.99", "1"}) {
    f.check_equal(std::string("quantile_over_time(") + q + ", g[1h])", b + kHour, b + 8 * kHour,
                  kHour, h, 0.01);
    f.check_equal(std::string("quantile_over_time(") + q + ", g[2h])", b + 2 * kHour + 5 * kMin,
                  b + 8 * kHour, 5 * kMin, m5, 0.01);
  }
  // Expressions over rollup-backed functions, and offsets.
  f.check_equal("sum(rate(ctr[1h])) * 60", b + kHour, b + 8 * kHour, kHour, h, 1e-9);
  f.check_equal("max by (host) (avg_over_time(g[1h] offset 1h))", b + 2 * kHour, b + 8 * kHour,
                kHour, h, 1e-9);
  f.check_equal("sum_over_time(g[1h]) / count_over_time(g[1h])", b + kHour, b + 8 * kHour, kHour, h,
                1e-9);
  // Plain selectors from the 5m rollups' last value.
  f.check_equal("g", b, b + 8 * kHour, 5 * kMin, m5, 0);
  f.check_equal("g offset 10m", b, b + 8 * kHour, 15 * kMin, m5, 0);
}

TEST_CASE("rollups: instant queries equal their raw evaluation", "[rollup]") {
  Rollups f;
  const TimestampMs b = f.b;
  for (const char* q : {"rate(ctr[1h])", "increase(ctr[2h])", "sum_over_time(g[1h])",
                        "stddev_over_time(g[1h])", "count_over_time(g[35m])"}) {
    for (TimestampMs t : {b + 2 * kHour, b + 5 * kHour, b + 4 * kHour + 35 * kMin}) {
      INFO(q << " at +" << (t - b) / kMin << "m");
      QueryStats rs;
      const auto rolled = f.instant(q, t, &rs);
      CHECK(rs.raw_reads == 0);
      // Steps at t - 1m and t with a 1m step: unaligned, so raw; the second is at t.
      QueryStats ws;
      const auto raw = f.range(q, t - kMin, t, kMin, &ws);
      CHECK(ws.raw_reads > 0);
      REQUIRE(rolled.series.size() == raw.series.size());
      for (size_t i = 0; i < rolled.series.size(); ++i) {
        REQUIRE(raw.series[i].points.back().timestamp == t);
        CHECK(rolled.series[i].points[0].value ==
              Approx(raw.series[i].points.back().value).epsilon(1e-7));
      }
    }
  }
}

namespace {

// The store with raw samples older than `horizon` gone, as retention leaves it.
class ExpiringStore final : public store::SampleStore {
 public:
  ExpiringStore(store::SampleStore& inner, TimestampMs horizon, store::RetentionPolicy retention)
      : inner_(inner), horizon_(horizon), retention_(retention) {}
  Result<store::SeriesId> resolve(std::string_view key) override { return inner_.resolve(key); }
  Status append(std::span<const store::Sample> samples) override { return inner_.append(samples); }
  std::vector<store::SeriesRef> select(std::span<const LabelMatcher> m) const override {
    return inner_.select(m);
  }
  Status read(store::SeriesId id, TimestampMs start, TimestampMs end,
              std::vector<Point>& out) const override {
    return inner_.read(id, std::max(start, horizon_), end, out);
  }
  Result<bool> has_samples(store::SeriesId id, TimestampMs start, TimestampMs end) const override {
    return inner_.has_samples(id, std::max(start, horizon_), end);
  }
  Status read_rollups(store::SeriesId id, DurationMs width, TimestampMs start, TimestampMs end,
                      std::vector<store::Rollup>& out, bool with_sketches) const override {
    return inner_.read_rollups(id, width, start, end, out, with_sketches);
  }
  TimestampMs raw_horizon() const override { return horizon_; }
  store::RetentionPolicy retention() const override { return retention_; }
  std::vector<std::string> label_names() const override { return inner_.label_names(); }
  std::vector<std::string> label_values(std::string_view n) const override {
    return inner_.label_values(n);
  }
  size_t series_count() const override { return inner_.series_count(); }
  std::shared_ptr<const Labels> labels(store::SeriesId id) const override {
    return inner_.labels(id);
  }
  uint64_t disk_usage_bytes() const override { return inner_.disk_usage_bytes(); }

 private:
  store::SampleStore& inner_;
  TimestampMs horizon_;
  store::RetentionPolicy retention_;
};

}  // namespace

TEST_CASE("rollups: windows past the raw horizon are widened to whole buckets", "[rollup]") {
  QueryFixture f;
  const TimestampMs b = base_time();
  std::vector<Point> gauge;
  std::vector<Point> counter;
  for (TimestampMs t = b + 10 * kSec; t <= b + 3 * kHour; t += 10 * kSec) {
    gauge.push_back({t, static_cast<double>((t / 1000) % 17)});
    counter.push_back({t, static_cast<double>((t - b) / 1000)});
  }
  f.add({{"__name__", "g"}}, gauge);
  f.add({{"__name__", "c"}}, counter);
  // Raw kept back to b+2h; 5m rollups back to b+1h30m; 1h rollups for years.
  const TimestampMs horizon = b + 2 * kHour;
  store::RetentionPolicy retention;
  retention.raw = 86'400'000;
  retention.rollup_5m = retention.raw + 30 * kMin;
  retention.rollup_1h = 10LL * 365 * 86'400'000;
  ExpiringStore expiring(*f.store, horizon, retention);
  Engine engine(expiring, QueryOptions{});
  auto eval = [&](const std::string& q, TimestampMs t, QueryStats& stats) {
    auto r = engine.instant(q, t, &stats);
    INFO(q);
    REQUIRE(r.is_ok());
    REQUIRE(r->series.size() == 1);
    return r->series[0].points[0].value;
  };

  SECTION("5m buckets when the 5m rollups still cover the window") {
    QueryStats s;
    // (b+1h56m, b+2h3m] reaches past the raw horizon: widened to (b+1h55m, b+2h5m].
    const double widened = eval("count_over_time(g[7m])", b + 2 * kHour + 3 * kMin, s);
    CHECK(s.rollup_5m_reads == 1);
    CHECK(s.widened_reads == 1);
    CHECK(widened == 60);
    QueryStats exact;
    CHECK(eval("count_over_time(g[10m])", b + 2 * kHour + 5 * kMin, exact) == widened);
    CHECK(exact.widened_reads == 0);
    // rate divides by the widened width: the same as the exact 10m window.
    const double rate = eval("rate(c[7m])", b + 2 * kHour + 3 * kMin, s);
    CHECK(rate == Approx(eval("rate(c[10m])", b + 2 * kHour + 5 * kMin, exact)));
    CHECK(rate == Approx(1.0));
  }
  SECTION("1h buckets when only they go back far enough") {
    QueryStats s;
    // (b+1h16m, b+1h23m]: the 5m rollups start at b+1h30m; widened to (b+1h, b+2h].
    const double widened = eval("sum_over_time(g[7m])", b + kHour + 23 * kMin, s);
    CHECK(s.rollup_1h_reads == 1);
    CHECK(s.widened_reads == 1);
    QueryStats exact;
    CHECK(widened == eval("sum_over_time(g[1h])", b + 2 * kHour, exact));
    CHECK(exact.widened_reads == 0);
  }
  SECTION("aligned windows stay exact, recent ones stay raw") {
    QueryStats s;
    eval("avg_over_time(g[1h])", b + 2 * kHour, s);
    CHECK(s.rollup_1h_reads == 1);
    CHECK(s.widened_reads == 0);
    QueryStats recent;
    CHECK(eval("count_over_time(g[7m])", b + 2 * kHour + 30 * kMin + kSec, recent) == 42);
    CHECK(recent.raw_reads == 1);
    // An aligned 5m window older than the 5m rollups moves to 1h buckets.
    QueryStats old;
    eval("max_over_time(g[5m])", b + kHour + 5 * kMin, old);
    CHECK(old.rollup_1h_reads == 1);
    CHECK(old.widened_reads == 1);
  }
}
