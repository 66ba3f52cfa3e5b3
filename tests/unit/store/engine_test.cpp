// The chunked engine: heads, chunk pieces, backfill and overwrites into sealed chunks, rollups
// against aggregates recomputed from raw samples, retention and the cardinality guard.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <thread>

#include "kpid/core/stale_marker.h"
#include "kpid/store/rocksdb_store.h"
#include "kpid/store/rollup.h"
#include "support/fake_clock.h"
#include "support/temp_dir.h"

using namespace kpid;
using namespace kpid::store;

namespace {

constexpr TimestampMs kHour = 3'600'000;
constexpr TimestampMs kDay = 24 * kHour;
constexpr TimestampMs kBase = 1'700'006'400'000;  // a multiple of 2h

struct Fixture {
  testing::TempDir dir;
  testing::FakeClock clock;
  StoreOptions options;
  std::unique_ptr<RocksDbStore> store;

  Fixture() {
    clock.set_ms(kBase + 10 * kDay);
    options.data_dir = dir.path();
    options.clock = &clock;
    options.background = false;
    open();
  }

  void open(metrics::Metrics* m = nullptr) {
    auto s = RocksDbStore::open(options, m);
    INFO(s.status().to_string());
    REQUIRE(s.is_ok());
    store = std::move(s).value();
  }

  void reopen() {
    REQUIRE(store->close().is_ok());
    store.reset();
    open();
  }

  SeriesId series(const char* name) {
    LabelsBuilder b;
    b.add("__name__", name);
    REQUIRE(b.finish().empty());
    auto id = store->resolve(b.key());
    REQUIRE(id.is_ok());
    return *id;
  }

  void append(std::vector<Sample> samples) {
    auto s = store->append(samples);
    INFO(s.to_string());
    REQUIRE(s.is_ok());
  }

  std::vector<Point> all(SeriesId id) {
    std::vector<Point> out;
    REQUIRE(store->read(id, INT64_MIN, INT64_MAX, out).is_ok());
    return out;
  }

  std::vector<Rollup> rollups(SeriesId id, DurationMs width, TimestampMs start, TimestampMs end) {
    std::vector<Rollup> out;
    auto s = store->read_rollups(id, width, start, end, out);
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    return out;
  }
};

// Reference model: what the store must hold after a sequence of appends (later wins).
using Model = std::map<TimestampMs, double>;

std::vector<Point> points_of(const Model& m) {
  std::vector<Point> out;
  for (auto [t, v] : m) out.push_back({t, v});
  return out;
}

// Equal, or both NaN (a NaN sample makes sum, sum_squares and increase NaN on both sides).
bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == Approx(b); }

void require_same_rollups(const std::vector<Rollup>& got, const std::vector<Rollup>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("bucket ending " << want[i].end);
    CHECK(got[i].end == want[i].end);
    CHECK(got[i].count == want[i].count);
    CHECK(same(got[i].sum, want[i].sum));
    CHECK(same(got[i].min, want[i].min));
    CHECK(same(got[i].max, want[i].max));
    CHECK(same(got[i].sum_squares, want[i].sum_squares));
    CHECK(got[i].first_timestamp == want[i].first_timestamp);
    CHECK(same(got[i].first, want[i].first));
    CHECK(got[i].last_timestamp == want[i].last_timestamp);
    CHECK(same(got[i].last, want[i].last));
    CHECK(same(got[i].increase, want[i].increase));
    CHECK(got[i].ends_stale == want[i].ends_stale);
    CHECK(got[i].sketch.count() == want[i].sketch.count());
    CHECK(same(got[i].sketch.quantile(0.5), want[i].sketch.quantile(0.5)));
  }
}

}  // namespace

TEST_CASE("engine: bucket ends are left-open, right-closed") {
  CHECK(bucket_end(0, kRollup5m) == 0);
  CHECK(bucket_end(1, kRollup5m) == kRollup5m);
  CHECK(bucket_end(kRollup5m, kRollup5m) == kRollup5m);
  CHECK(bucket_end(-1, kRollup5m) == 0);
  CHECK(bucket_end(-kRollup5m, kRollup5m) == -kRollup5m);
  CHECK(bucket_end(-kRollup5m - 1, kRollup5m) == -kRollup5m);
}

TEST_CASE("engine: head samples, checkpoints and sealed chunks read back the same") {
  Fixture f;
  SeriesId id = f.series("m");
  Model model;
  std::vector<Sample> batch;
  for (int i = 0; i < 3000; ++i) {  // 8.3 h at 10 s: crosses four chunk windows
    const TimestampMs t = kBase + 10'000 * i;
    batch.push_back({id, t, i * 0.5});
    model[t] = i * 0.5;
    if (batch.size() == 700) {
      f.append(batch);
      batch.clear();
    }
  }
  f.append(batch);
  CHECK(f.store->head_samples() > 0);
  CHECK(f.all(id) == points_of(model));
  REQUIRE(f.store->maintain().is_ok());
  CHECK(f.store->head_samples() == 0);
  CHECK(f.store->dirty_windows() == 0);
  CHECK(f.all(id) == points_of(model));
  f.reopen();
  CHECK(f.all(id) == points_of(model));
  std::vector<Point> range;
  REQUIRE(f.store->read(id, kBase + 2 * kHour - 10'000, kBase + 2 * kHour + 10'000, range).is_ok());
  CHECK(range.size() == 3);
}

TEST_CASE("engine: a sample on a window end belongs to the window it ends") {
  Fixture f;
  SeriesId id = f.series("m");
  const TimestampMs end = kBase + kChunkSpan;
  f.append({{id, end, 1}, {id, end + 1, 2}, {id, end - 1, 3}});
  REQUIRE(f.store->maintain().is_ok());
  CHECK(f.all(id) == std::vector<Point>{{end - 1, 3}, {end, 1}, {end + 1, 2}});
  auto five = f.rollups(id, kRollup5m, end - kRollup5m, end + kRollup5m);
  REQUIRE(five.size() == 2);
  CHECK(five[0].end == end);
  CHECK(five[0].count == 2);
  CHECK(five[1].count == 1);
}

TEST_CASE("engine: out-of-order, backfill and overwrites, into the head and sealed chunks") {
  Fixture f;
  SeriesId id = f.series("m");
  Model model;
  auto put = [&](std::vector<Sample> s) {
    for (auto& x : s) model[x.timestamp] = x.value;
    f.append(s);
  };
  // A day of data, then write into every part of it again.
  std::vector<Sample> day;
  for (int i = 0; i < 1440; ++i) day.push_back({id, kBase + 60'000 * i, static_cast<double>(i)});
  put(day);
  REQUIRE(f.store->maintain().is_ok());
  // Out of order inside the open head window.
  put({{id, kBase + 1439 * 60'000 - 30'000, -1}, {id, kBase + 1439 * 60'000 - 90'000, -2}});
  // Overwrite in the head, in a sealed chunk, and backfill before everything.
  put({{id, kBase + 1438 * 60'000, 100}, {id, kBase + 60'000, 200}, {id, kBase - kDay, 300}});
  // Overwrite the same sample twice in one batch: the later one wins.
  put({{id, kBase + 120'000, 1}, {id, kBase + 120'000, 2}});
  CHECK(f.all(id) == points_of(model));
  REQUIRE(f.store->maintain().is_ok());
  CHECK(f.all(id) == points_of(model));
  // After a checkpoint, the head window is in a chunk: overwrite there too.
  put({{id, kBase + 1439 * 60'000, 400}});
  CHECK(f.all(id) == points_of(model));
  f.reopen();
  CHECK(f.all(id) == points_of(model));
  REQUIRE(f.store->compact().is_ok());
  CHECK(f.all(id) == points_of(model));
}

TEST_CASE("engine: head samples survive a restart through the head log") {
  Fixture f;
  f.options.checkpoint_interval = 3'600'000;
  f.reopen();
  SeriesId id = f.series("m");
  f.append({{id, kBase + 1000, 1}, {id, kBase + 2000, 2}});
  f.append({{id, kBase + kChunkSpan + 1000, 3}});  // seals the first window
  f.append({{id, kBase + kChunkSpan + 500, 4}});
  REQUIRE(f.store->head_samples() == 2);
  f.reopen();  // close() checkpoints; the head log path is covered by the kill -9 tests
  CHECK(f.all(id) == std::vector<Point>{{kBase + 1000, 1},
                                        {kBase + 2000, 2},
                                        {kBase + kChunkSpan + 500, 4},
                                        {kBase + kChunkSpan + 1000, 3}});
}

TEST_CASE("engine: rollups equal aggregates recomputed from the raw samples") {
  Fixture f;
  SeriesId gauge = f.series("gauge");
  SeriesId counter = f.series("counter");
  std::mt19937_64 rng(11);
  std::map<SeriesId, Model> model;
  double c = 0;
  double g = 50;
  std::vector<Sample> batch;
  for (int i = 0; i < 4000; ++i) {  // ~11 h at 10 s with jitter
    const TimestampMs t = kBase + 10'000 * i + static_cast<int64_t>(rng() % 1000);
    g += static_cast<double>(static_cast<int>(rng() % 201) - 100) / 100.0;
    c = (rng() % 500 == 0) ? 0 : c + static_cast<double>(rng() % 50);  // occasional reset
    batch.push_back({gauge, t, g});
    batch.push_back({counter, t, c});
    if (batch.size() >= 500) {
      for (auto& s : batch) model[s.series][s.timestamp] = s.value;
      f.append(batch);
      batch.clear();
    }
  }
  for (auto& s : batch) model[s.series][s.timestamp] = s.value;
  f.append(batch);
  // Backfill and overwrites into sealed windows, NaN included.
  std::vector<Sample> late = {{gauge, kBase + 5000, 1e6},
                              {gauge, kBase + 3 * kHour + 7, -3},
                              {gauge, kBase + 3 * kHour + 10'000 * 1080, std::nan("")},
                              {counter, kBase + 4 * kHour + 1, 5}};
  for (auto& s : late) model[s.series][s.timestamp] = s.value;
  f.append(late);

  const TimestampMs start = kBase - kHour;
  const TimestampMs end = kBase + 13 * kHour;
  for (int pass = 0; pass < 2; ++pass) {
    INFO((pass == 0 ? "dirty windows computed from raw" : "stored rollups"));
    for (SeriesId id : {gauge, counter}) {
      auto raw = points_of(model[id]);
      for (DurationMs width : {kRollup5m, kRollup1h}) {
        std::vector<Rollup> want;
        build_rollups(raw, width, start, end, want);
        require_same_rollups(f.rollups(id, width, start, end), want);
        // A sub-range: start and end cut through windows.
        want.clear();
        build_rollups(raw, width, kBase + 3 * kHour, kBase + 7 * kHour, want);
        require_same_rollups(f.rollups(id, width, kBase + 3 * kHour, kBase + 7 * kHour), want);
      }
    }
    REQUIRE(f.store->maintain().is_ok());
    CHECK(f.store->dirty_windows() == 0);
  }
  f.reopen();
  auto raw = points_of(model[gauge]);
  std::vector<Rollup> want;
  build_rollups(raw, kRollup1h, start, end, want);
  require_same_rollups(f.rollups(gauge, kRollup1h, start, end), want);

  // Read without sketches: the same buckets and aggregates, sketches left empty.
  for (DurationMs width : {kRollup5m, kRollup1h}) {
    const auto with = f.rollups(gauge, width, start, end);
    std::vector<Rollup> without;
    REQUIRE(f.store->read_rollups(gauge, width, start, end, without, false).is_ok());
    REQUIRE(without.size() == with.size());
    for (size_t i = 0; i < with.size(); ++i) {
      Rollup expected = with[i];
      expected.sketch = DDSketch();
      require_same_rollups({without[i]}, {expected});
      CHECK(without[i].sketch.count() == 0);
    }
  }
}

TEST_CASE("engine: 1-hour rollups of a day's windows combine, in one batch or in several") {
  Fixture f;
  const SeriesId one = f.series("one_batch");
  const SeriesId several = f.series("several_batches");
  // Three days' worth of windows, kBase - 30 h to kBase + 30 h (kBase is a midnight), a sample
  // a minute with a value of its own.
  const TimestampMs from = kBase - 30 * kHour;
  const TimestampMs to = kBase + 30 * kHour;
  auto value = [](TimestampMs t) { return static_cast<double>((t / 60'000) % 97) * 0.5; };
  std::vector<Sample> all;
  for (TimestampMs t = from + 60'000; t <= to; t += 60'000) all.push_back({one, t, value(t)});
  f.append(all);
  REQUIRE(f.store->maintain().is_ok());  // every window of `one` in one rollup batch
  // `several`: window by window, newest first, a rollup pass after each.
  for (TimestampMs w = to; w > from; w -= 2 * kHour) {
    std::vector<Sample> window;
    for (TimestampMs t = w - 2 * kHour + 60'000; t <= w; t += 60'000) {
      window.push_back({several, t, value(t)});
    }
    f.append(window);
    REQUIRE(f.store->maintain().is_ok());
  }
  CHECK(f.store->dirty_windows() == 0);

  auto check = [&](SeriesId id) {
    INFO("series " << id);
    const auto raw = f.all(id);
    REQUIRE(raw.size() == all.size());
    // The whole span, one day, and ranges that start and end inside days and windows.
    for (auto [start, end] : {std::pair{from - kDay, to + kDay},
                              {kBase - kDay, kBase},
                              {kBase - 5 * kHour - 1, kBase + 3 * kHour + 1},
                              {kBase - kHour, kBase + kHour},
                              {kBase + 23 * kHour, kBase + 25 * kHour},
                              {kBase + kHour, kBase + kHour}}) {
      INFO("(" << start << ", " << end << "]");
      std::vector<Rollup> want;
      build_rollups(raw, kRollup1h, start, end, want);
      require_same_rollups(f.rollups(id, kRollup1h, start, end), want);
    }
  };
  check(one);
  check(several);

  // A window written again: its piece replaces the window's buckets and no other. Stale markers
  // over every sample of the window ending at midnight leave it no bucket at all.
  std::vector<Sample> over;
  for (TimestampMs t = kBase - 2 * kHour + 60'000; t <= kBase; t += 60'000) {
    over.push_back({one, t, kStaleNaN});
    over.push_back({several, t, kStaleNaN});
  }
  for (TimestampMs t = kBase + 4 * kHour + 60'000; t <= kBase + 6 * kHour; t += 60'000) {
    over.push_back({one, t, -value(t)});
    over.push_back({several, t, -value(t)});
  }
  f.append(over);
  // Dirty: read from raw for those windows, from the day values for the others.
  check(one);
  REQUIRE(f.store->maintain().is_ok());
  CHECK(f.rollups(one, kRollup1h, kBase - 2 * kHour, kBase).empty());
  CHECK(f.rollups(one, kRollup1h, kBase - 3 * kHour, kBase + kHour).size() == 2);
  check(one);
  check(several);
  // Folded by a full compaction and read back after a restart, the same.
  REQUIRE(f.store->compact().is_ok());
  f.reopen();
  check(one);
  check(several);
}

TEST_CASE("engine: rollups skip stale markers and flag a bucket that ends in one") {
  Fixture f;
  const SeriesId id = f.series("scraped");
  const SeriesId clean = f.series("clean");  // the same samples without the markers
  std::vector<Sample> with;
  std::vector<Sample> without;
  // 10 s apart through the first hour; a marker 30 s after the sample at 12m (the bucket
  // (10m, 15m] ends stale), nothing until a marker alone at 27m (bucket (25m, 30m] holds only
  // it), then samples again from 31m; in (40m, 45m] a marker followed by a sample (not stale).
  for (TimestampMs t = kBase + 10'000; t <= kBase + kHour; t += 10'000) {
    const TimestampMs m = (t - kBase) / 60'000;
    if (t > kBase + 12 * 60'000 && t <= kBase + 31 * 60'000) continue;
    const double v = static_cast<double>((t - kBase) / 1000 % 97);
    with.push_back({id, t, v});
    without.push_back({clean, t, v});
    if (m == 42 && t % 60'000 == 0) with.push_back({id, t + 5000, kStaleNaN});
  }
  with.push_back({id, kBase + 12 * 60'000 + 30'000, kStaleNaN});
  with.push_back({id, kBase + 27 * 60'000, kStaleNaN});
  std::sort(with.begin(), with.end(),
            [](const Sample& a, const Sample& b) { return a.timestamp < b.timestamp; });
  f.append(with);
  f.append(without);

  for (int pass = 0; pass < 2; ++pass) {
    INFO((pass == 0 ? "dirty windows computed from raw" : "stored rollups"));
    // The raw read keeps the markers, bit for bit.
    size_t markers = 0;
    for (const auto& p : f.all(id)) markers += is_stale_marker(p.value) ? 1 : 0;
    CHECK(markers == 3);
    for (DurationMs width : {kRollup5m, kRollup1h}) {
      const auto got = f.rollups(id, width, kBase, kBase + kHour);
      auto want = f.rollups(clean, width, kBase, kBase + kHour);
      for (auto& r : want) r.ends_stale = width == kRollup5m && r.end == kBase + 15 * 60'000;
      require_same_rollups(got, want);
      for (const auto& r : got) {
        CHECK_FALSE(std::isnan(r.sum));
        CHECK(r.sketch.count() == r.count);
      }
    }
    REQUIRE(f.store->maintain().is_ok());
    CHECK(f.store->dirty_windows() == 0);
  }
  f.reopen();
  const auto five = f.rollups(id, kRollup5m, kBase, kBase + kHour);
  const auto stale_bucket =
      std::find_if(five.begin(), five.end(), [](const Rollup& r) { return r.ends_stale; });
  REQUIRE(stale_bucket != five.end());
  CHECK(stale_bucket->end == kBase + 15 * 60'000);
  CHECK(stale_bucket->last_timestamp == kBase + 12 * 60'000);
}

TEST_CASE("engine: rollup blocks keep ends_stale, and version 2 blocks still read") {
  std::vector<Point> points = {{kBase + 1000, 1},
                               {kBase + 2000, 2},
                               {kBase + 3000, kStaleNaN},
                               {kBase + 301'000, 4},
                               {kBase + 302'000, kStaleNaN},
                               {kBase + 303'000, 5},
                               {kBase + 601'000, kStaleNaN}};
  std::vector<Rollup> rollups;
  build_rollups(points, kRollup5m, kBase - kHour, kBase + kHour, rollups);
  // The third bucket held only a marker: no bucket.
  REQUIRE(rollups.size() == 2);
  CHECK(rollups[0].ends_stale);
  CHECK(rollups[0].count == 2);
  CHECK(rollups[0].sum == 3);
  CHECK_FALSE(rollups[1].ends_stale);  // a sample came after the marker
  CHECK(rollups[1].count == 2);
  CHECK(rollups[1].last == 5);

  // A third bucket, so no column has two values (whose coding version 4 changed) and the
  // block reads as version 2 and 3 alike below.
  build_rollups(std::vector<Point>{{kBase + 901'000, 7}}, kRollup5m, kBase - kHour, kBase + kHour,
                rollups);
  const TimestampMs window = kBase + 2 * kHour;
  const std::string block = encode_rollup_block(rollups, window, kRollup5m);
  CHECK(static_cast<uint8_t>(block[0]) == 4);
  for (bool sketches : {true, false}) {
    std::vector<Rollup> decoded;
    REQUIRE(decode_rollup_block(block, window, kRollup5m, kBase - kHour, window, decoded, sketches)
                .is_ok());
    std::vector<Rollup> want = rollups;
    if (!sketches) {
      for (auto& r : want) r.sketch = DDSketch();
    }
    require_same_rollups(decoded, want);
  }
  // A version 3 block reads alike (no column here has the two values whose coding changed).
  std::string v3 = block;
  v3[0] = 3;
  std::vector<Rollup> from_v3;
  REQUIRE(decode_rollup_block(v3, window, kRollup5m, kBase - kHour, window, from_v3).is_ok());
  require_same_rollups(from_v3, rollups);
  // A version 2 block (no flag) reads as it did; the stale flag is unknown there.
  rollups[0].ends_stale = false;
  std::string old = encode_rollup_block(rollups, window, kRollup5m);
  old[0] = 2;
  std::vector<Rollup> decoded;
  REQUIRE(decode_rollup_block(old, window, kRollup5m, kBase - kHour, window, decoded).is_ok());
  REQUIRE(decoded.size() == 3);
  CHECK_FALSE(decoded[0].ends_stale);
  std::string flagged = block;
  flagged[0] = 2;
  decoded.clear();
  CHECK_FALSE(
      decode_rollup_block(flagged, window, kRollup5m, kBase - kHour, window, decoded).is_ok());
}

TEST_CASE("engine: rollup quantiles are within the sketch's relative error") {
  Fixture f;
  SeriesId id = f.series("latency");
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> dist(5, 1);
  std::vector<Sample> batch;
  std::vector<double> values;
  for (int i = 0; i < 720; ++i) {  // one hour, 5 s apart
    const double v = dist(rng);
    values.push_back(v);
    batch.push_back({id, kBase + 5000 * (i + 1), v});
  }
  f.append(batch);
  REQUIRE(f.store->maintain().is_ok());
  auto hour = f.rollups(id, kRollup1h, kBase, kBase + kHour);
  REQUIRE(hour.size() == 1);
  std::sort(values.begin(), values.end());
  for (double q : {0.05, 0.5, 0.9, 0.99}) {
    const double exact = values[static_cast<size_t>(q * (values.size() - 1))];
    CHECK(std::fabs(hour[0].sketch.quantile(q) - exact) <= 0.01 * exact * 1.0001);
  }
}

TEST_CASE("engine: retention expires raw chunks and rollups by their own periods") {
  Fixture f;
  f.options.retention = {2 * kDay, 10 * kDay, 100 * kDay};
  f.reopen();
  SeriesId id = f.series("m");
  const TimestampMs now = kBase + 30 * kDay;
  f.clock.set_ms(now);
  std::vector<Sample> old;
  for (TimestampMs t : {now - 50 * kDay, now - 5 * kDay, now - kHour}) {
    for (int i = 0; i < 12; ++i) old.push_back({id, t + 300'000 * i, 1.0});
  }
  f.append(old);
  REQUIRE(f.store->compact().is_ok());
  CHECK(f.all(id).size() == 12);  // only the last hour is within raw retention
  CHECK(f.rollups(id, kRollup5m, INT64_MIN / 2, now).size() == 24);  // 5 days and 1 hour ago
  CHECK(f.rollups(id, kRollup1h, INT64_MIN / 2, now).size() >= 3);   // all three hours
  CHECK(f.store->raw_horizon() == now - 2 * kDay);
  f.clock.set_ms(now + 20 * kDay);
  REQUIRE(f.store->compact().is_ok());
  CHECK(f.all(id).empty());
  CHECK(f.rollups(id, kRollup5m, INT64_MIN / 2, now).empty());
  CHECK(!f.rollups(id, kRollup1h, INT64_MIN / 2, now).empty());
}

TEST_CASE(
    "engine: 5-minute rollups are stored a day before raw expires, read from raw until then") {
  Fixture f;  // raw retention 30 days
  SeriesId id = f.series("m");
  const TimestampMs now = kBase + 10 * kDay;
  f.clock.set_ms(now);
  std::vector<Sample> batch;
  for (int i = 0; i < 4 * 360; ++i) {  // four hours of 10 s samples, ten days old
    batch.push_back({id, kBase + 10'000 * (i + 1), static_cast<double>(i % 37) * 0.5});
  }
  f.append(batch);
  REQUIRE(f.store->compact().is_ok());
  std::vector<Rollup> want;
  build_rollups(f.all(id), kRollup5m, kBase - kHour, kBase + 5 * kHour, want);
  REQUIRE(want.size() == 48);
  // Not stored yet (the window is 20 days from expiry): the chunks answer, with the same buckets.
  require_same_rollups(f.rollups(id, kRollup5m, kBase - kHour, kBase + 5 * kHour), want);

  // A day before the second window (kBase + 4h) leaves raw retention both are stored ...
  f.clock.set_ms(kBase + 4 * kHour + 29 * kDay + kHour);
  REQUIRE(f.store->maintain().is_ok());
  // ... so once raw has expired and been compacted away, they are still there.
  f.clock.set_ms(kBase + 4 * kHour + 30 * kDay + kHour);
  REQUIRE(f.store->compact().is_ok());
  CHECK(f.all(id).empty());
  require_same_rollups(f.rollups(id, kRollup5m, kBase - kHour, kBase + 5 * kHour), want);
  // And across a restart (the list of windows still due is on disk too).
  f.reopen();
  require_same_rollups(f.rollups(id, kRollup5m, kBase - kHour, kBase + 5 * kHour), want);
}

TEST_CASE(
    "engine: a window backfilled a day or less before raw expiry gets its 5-minute rollups "
    "at once, and a restart keeps what is still due") {
  Fixture f;
  SeriesId id = f.series("m");
  const TimestampMs now = kBase + 40 * kDay;
  f.clock.set_ms(now);
  const TimestampMs old_window = bucket_end(now - 30 * kDay + 12 * kHour, 2 * kHour);
  const TimestampMs young_window = bucket_end(now - 20 * kDay, 2 * kHour);
  std::vector<Sample> batch;
  for (TimestampMs w : {old_window, young_window}) {
    for (int i = 0; i < 12; ++i) batch.push_back({id, w - 600'000 * i, 1.0 + i});
  }
  f.append(batch);
  REQUIRE(f.store->maintain().is_ok());
  f.reopen();  // the young window stays listed as due
  f.clock.set_ms(young_window + 29 * kDay + kHour);
  REQUIRE(f.store->maintain().is_ok());
  f.clock.set_ms(young_window + 31 * kDay);
  auto compacted = f.store->compact();
  INFO(compacted.to_string());
  REQUIRE(compacted.is_ok());
  CHECK(f.all(id).empty());
  CHECK(f.rollups(id, kRollup5m, INT64_MIN / 2, young_window).size() == 24);
}

TEST_CASE("engine: once writes pause the store settles by itself: no write-ahead log left") {
  metrics::Metrics metrics;
  Fixture f;
  REQUIRE(f.store->close().is_ok());
  f.store.reset();
  f.options.background = true;
  f.options.settle_after = 200;
  f.open(&metrics);
  SeriesId id = f.series("m");
  std::vector<Sample> batch;
  for (int i = 0; i < 3000; ++i) batch.push_back({id, kBase + 10'000 * i, i * 0.25});
  f.append(batch);
  auto wal_bytes = [&] {
    const std::string text = metrics.scrape();
    const auto at = text.find("\nkpid_store_wal_bytes ");
    REQUIRE(at != std::string::npos);
    return std::stod(text.substr(at + 22));
  };
  CHECK(wal_bytes() > 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (wal_bytes() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(wal_bytes() == 0);
  CHECK(f.store->head_samples() == 0);  // checkpointed into chunks
  CHECK(f.all(id).size() == 3000);
  f.reopen();
  CHECK(f.all(id).size() == 3000);
}

TEST_CASE("engine: the cardinality guard refuses new series and counts them") {
  metrics::Metrics metrics;  // outlives the store, as open() requires
  Fixture f;
  f.options.limits.max_series = 2;
  f.options.limits.max_labels_per_series = 3;
  f.options.limits.max_label_value_bytes = 10;
  REQUIRE(f.store->close().is_ok());
  f.store.reset();
  f.open(&metrics);
  auto key = [](std::vector<std::pair<std::string, std::string>> labels) {
    LabelsBuilder b;
    for (auto& [n, v] : labels) b.add(n, v);
    REQUIRE(b.finish().empty());
    return std::string(b.key());
  };
  auto too_many = f.store->resolve(key({{"__name__", "a"}, {"x", "1"}, {"y", "2"}, {"z", "3"}}));
  REQUIRE_FALSE(too_many.is_ok());
  CHECK(too_many.status().code() == StatusCode::kResourceExhausted);
  CHECK(too_many.status().message().find("storage.max_labels_per_series (3)") != std::string::npos);
  auto long_value = f.store->resolve(key({{"__name__", "a"}, {"x", "01234567890"}}));
  REQUIRE_FALSE(long_value.is_ok());
  CHECK(long_value.status().message().find("label \"x\"") != std::string::npos);

  auto a = f.store->resolve(key({{"__name__", "a"}}));
  auto b = f.store->resolve(key({{"__name__", "b"}}));
  REQUIRE((a.is_ok() && b.is_ok()));
  auto c = f.store->resolve(key({{"__name__", "c"}}));
  REQUIRE_FALSE(c.is_ok());
  CHECK(c.status().message().find("series limit of 2 (storage.max_series)") != std::string::npos);
  // Existing series keep working.
  CHECK(*f.store->resolve(key({{"__name__", "a"}})) == *a);
  f.append({{*a, kBase, 1}});
  const std::string text = metrics.scrape();
  CHECK(text.find("kpid_store_series_refused_total{reason=\"max_series\"} 1") != std::string::npos);
  CHECK(text.find("kpid_store_series_refused_total{reason=\"max_labels_per_series\"} 1") !=
        std::string::npos);
}

TEST_CASE("engine: one metric name cannot take more than max_series_per_metric series") {
  metrics::Metrics metrics;
  Fixture f;
  f.options.limits.max_series_per_metric = 2;
  REQUIRE(f.store->close().is_ok());
  f.store.reset();
  f.open(&metrics);
  auto key = [](const std::string& name, const std::string& host) {
    LabelsBuilder b;
    b.add("__name__", name);
    b.add("host", host);
    REQUIRE(b.finish().empty());
    return std::string(b.key());
  };
  auto a1 = f.store->resolve(key("cpu", "a"));
  auto a2 = f.store->resolve(key("cpu", "b"));
  REQUIRE((a1.is_ok() && a2.is_ok()));
  auto a3 = f.store->resolve(key("cpu", "c"));
  REQUIRE_FALSE(a3.is_ok());
  CHECK(a3.status().code() == StatusCode::kResourceExhausted);
  CHECK(a3.status().message().find("metric \"cpu\" has 2 series") != std::string::npos);
  // Other metrics and the metric's existing series are not affected.
  CHECK(f.store->resolve(key("mem", "c")).is_ok());
  CHECK(*f.store->resolve(key("cpu", "a")) == *a1);
  CHECK(metrics.scrape().find(
            "kpid_store_series_refused_total{reason=\"max_series_per_metric\"} 1") !=
        std::string::npos);
  // The count is rebuilt from the index on open.
  REQUIRE(f.store->close().is_ok());
  f.store.reset();
  f.open(nullptr);
  CHECK_FALSE(f.store->resolve(key("cpu", "d")).is_ok());
}

TEST_CASE("engine: appends with unknown series or timestamps out of range fail whole") {
  Fixture f;
  SeriesId id = f.series("m");
  std::vector<Sample> bad_series = {{id, 1, 1}, {id + 5, 2, 2}};
  CHECK(f.store->append(bad_series).code() == StatusCode::kInvalidArgument);
  std::vector<Sample> bad_time = {{id, 1, 1}, {id, kMaxTimestamp + 1, 2}};
  CHECK(f.store->append(bad_time).code() == StatusCode::kInvalidArgument);
  CHECK(f.all(id).empty());
}
