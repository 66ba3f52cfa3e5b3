// Appends to windows already past raw retention: rolled up at once into the stored 5-minute and
// 1-hour rollups (no chunk, no head), merged with what earlier appends stored there.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

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
constexpr TimestampMs kStep = 10'000;

struct Fixture {
  testing::TempDir dir;
  testing::FakeClock clock;
  StoreOptions options;
  std::unique_ptr<RocksDbStore> store;

  // "now" is 100 days after kBase: every window near kBase is past the 30-day raw retention.
  Fixture() {
    clock.set_ms(kBase + 100 * kDay);
    options.data_dir = dir.path();
    options.clock = &clock;
    options.background = false;
    open();
  }

  void open() {
    auto s = RocksDbStore::open(options, nullptr);
    INFO(s.status().to_string());
    REQUIRE(s.is_ok());
    store = std::move(s).value();
  }

  SeriesId series(const char* name) {
    LabelsBuilder b;
    b.add("__name__", name);
    REQUIRE(b.finish().empty());
    auto id = store->resolve(b.key());
    REQUIRE(id.is_ok());
    return *id;
  }

  void append(const std::vector<Sample>& samples) {
    auto st = store->append(samples);
    INFO(st.to_string());
    REQUIRE(st.is_ok());
  }

  std::vector<Rollup> rollups(SeriesId id, DurationMs width, TimestampMs start,
                              TimestampMs end) const {
    std::vector<Rollup> out;
    auto st = store->read_rollups(id, width, start, end, out);
    INFO(st.to_string());
    REQUIRE(st.is_ok());
    return out;
  }

  std::vector<Point> raw(SeriesId id) const {
    std::vector<Point> out;
    REQUIRE(store
                ->read(id, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                       out)
                .is_ok());
    return out;
  }
};

// A counter with a reset, over `windows` 2-hour windows from kBase, one sample every 10 s.
std::vector<Point> counter_points(int windows) {
  std::vector<Point> points;
  double v = 0;
  for (TimestampMs t = kBase + kStep; t <= kBase + windows * 2 * kHour; t += kStep) {
    v = (t - kBase) % (37 * 60'000) == 0 ? 1 : v + static_cast<double>((t / kStep) % 7);
    points.push_back({t, v});
  }
  return points;
}

std::vector<Sample> samples_of(SeriesId id, std::span<const Point> points) {
  std::vector<Sample> out;
  for (const auto& p : points) out.push_back({id, p.timestamp, p.value});
  return out;
}

// Every field equal; the counter increase only when `with_increase`.
void check_same(const std::vector<Rollup>& got, const std::vector<Rollup>& want,
                bool with_increase = true) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("bucket " << i << " ending " << want[i].end);
    CHECK(got[i].end == want[i].end);
    CHECK(got[i].count == want[i].count);
    CHECK(got[i].sum == want[i].sum);
    CHECK(got[i].min == want[i].min);
    CHECK(got[i].max == want[i].max);
    CHECK(got[i].sum_squares == want[i].sum_squares);
    CHECK(got[i].first_timestamp == want[i].first_timestamp);
    CHECK(got[i].first == want[i].first);
    CHECK(got[i].last_timestamp == want[i].last_timestamp);
    CHECK(got[i].last == want[i].last);
    if (with_increase) CHECK(got[i].increase == want[i].increase);
    CHECK(got[i].ends_stale == want[i].ends_stale);
    CHECK(got[i].sketch.count() == want[i].sketch.count());
    CHECK(got[i].sketch.quantile(0.5) == want[i].sketch.quantile(0.5));
    CHECK(got[i].sketch.quantile(0.99) == want[i].sketch.quantile(0.99));
  }
}

std::vector<Rollup> built(std::span<const Point> points, DurationMs width, TimestampMs start,
                          TimestampMs end) {
  std::vector<Rollup> out;
  build_rollups(points, width, start, end, out);
  return out;
}

}  // namespace

TEST_CASE("expired-window samples become the rollups build_rollups gives, and nothing raw") {
  Fixture f;
  const SeriesId id = f.series("c");
  const auto points = counter_points(3);
  f.append(samples_of(id, points));
  const TimestampMs end = kBase + 6 * kHour;
  check_same(f.rollups(id, kRollup1h, kBase, end), built(points, kRollup1h, kBase, end));
  check_same(f.rollups(id, kRollup5m, kBase, end), built(points, kRollup5m, kBase, end));
  CHECK(f.rollups(id, kRollup1h, kBase, end).size() == 6);
  // Nothing raw: no chunk, no head, no window left for a rollup pass.
  CHECK(f.raw(id).empty());
  CHECK(f.store->head_samples() == 0);
  CHECK(f.store->dirty_windows() == 0);
  // The rollups are stored, not computed on the fly: they survive a reopen and a maintenance
  // pass, and a full compaction (which applies retention) keeps them.
  REQUIRE(f.store->maintain().is_ok());
  REQUIRE(f.store->close().is_ok());
  f.store.reset();
  f.open();
  REQUIRE(f.store->compact().is_ok());
  check_same(f.rollups(id, kRollup1h, kBase, end), built(points, kRollup1h, kBase, end));
  check_same(f.rollups(id, kRollup5m, kBase, end), built(points, kRollup5m, kBase, end));
  CHECK(f.raw(id).empty());
}

TEST_CASE("an expired window sent one sample per append equals the same window in one append") {
  Fixture f;
  const SeriesId one = f.series("one");
  const SeriesId many = f.series("many");
  const auto points = counter_points(2);
  f.append(samples_of(one, points));
  // Time-major backfill: one request per timestamp, each holding one sample of the series.
  for (const auto& p : points) f.append({{many, p.timestamp, p.value}});
  const TimestampMs end = kBase + 4 * kHour;
  for (DurationMs width : {kRollup5m, kRollup1h}) {
    INFO("width " << width);
    check_same(f.rollups(many, width, kBase, end), f.rollups(one, width, kBase, end));
  }
  CHECK(f.raw(many).empty());
}

TEST_CASE("pieces of an expired window arriving newest first merge by timestamp") {
  Fixture f;
  const SeriesId id = f.series("g");
  const auto points = counter_points(1);
  const auto half = static_cast<std::ptrdiff_t>(points.size() / 2);
  // The later half first, then the earlier one: the pieces do not interleave, so the counter
  // increase across them is known too.
  f.append(samples_of(id, std::span(points).subspan(static_cast<size_t>(half))));
  f.append(samples_of(id, std::span(points).first(static_cast<size_t>(half))));
  const TimestampMs end = kBase + 2 * kHour;
  check_same(f.rollups(id, kRollup1h, kBase, end), built(points, kRollup1h, kBase, end));
  check_same(f.rollups(id, kRollup5m, kBase, end), built(points, kRollup5m, kBase, end));
}

TEST_CASE("interleaved pieces of an expired window: exact but for the counter increase") {
  Fixture f;
  const SeriesId id = f.series("i");
  const auto points = counter_points(1);
  std::vector<Point> even;
  std::vector<Point> odd;
  for (size_t i = 0; i < points.size(); ++i) (i % 2 == 0 ? even : odd).push_back(points[i]);
  f.append(samples_of(id, even));
  f.append(samples_of(id, odd));
  const TimestampMs end = kBase + 2 * kHour;
  check_same(f.rollups(id, kRollup1h, kBase, end), built(points, kRollup1h, kBase, end), false);
  // Each piece counts steps between its own samples, not between neighbours: not the same.
  const auto got = f.rollups(id, kRollup1h, kBase, end);
  const auto want = built(points, kRollup1h, kBase, end);
  REQUIRE(got.size() == want.size());
  CHECK(got[0].increase != want[0].increase);
}

TEST_CASE("a stale marker sent alone after an expired bucket's samples ends that bucket") {
  Fixture f;
  const SeriesId id = f.series("s");
  f.append({{id, kBase + 10'000, 1}, {id, kBase + 20'000, 2}});
  f.append({{id, kBase + 30'000, kStaleNaN}});
  auto got = f.rollups(id, kRollup5m, kBase, kBase + 2 * kHour);
  REQUIRE(got.size() == 1);
  CHECK(got[0].count == 2);
  CHECK(got[0].ends_stale);
  // A later sample of the same bucket starts the series again.
  f.append({{id, kBase + 40'000, 3}});
  got = f.rollups(id, kRollup5m, kBase, kBase + 2 * kHour);
  REQUIRE(got.size() == 1);
  CHECK(got[0].count == 3);
  CHECK_FALSE(got[0].ends_stale);
  CHECK(got[0].last == 3);
}

TEST_CASE("expired samples keep only the rollups whose retention still holds them") {
  Fixture f;
  f.options.retention.rollup_5m = 50 * kDay;
  f.options.retention.rollup_1h = 80 * kDay;
  REQUIRE(f.store->close().is_ok());
  f.store.reset();
  f.open();
  const SeriesId id = f.series("r");
  // Now is kBase + 100 days: 60 days back is past 5-minute retention, inside 1-hour
  // retention; 90 days back is past both.
  const TimestampMs mid = kBase + 40 * kDay;
  const TimestampMs old = kBase + 10 * kDay;
  f.append({{id, mid + 10'000, 1}, {id, mid + 20'000, 2}, {id, old + 10'000, 5}});
  CHECK(f.rollups(id, kRollup5m, mid, mid + 2 * kHour).empty());
  const auto hour = f.rollups(id, kRollup1h, mid, mid + 2 * kHour);
  REQUIRE(hour.size() == 1);
  CHECK(hour[0].count == 2);
  CHECK(hour[0].sum == 3);
  CHECK(f.rollups(id, kRollup1h, old, old + 2 * kHour).empty());
  CHECK(f.store->expired_samples_dropped() == 1);
  CHECK(f.raw(id).empty());
}

TEST_CASE("a window still open in its head takes its samples raw even once expired") {
  Fixture f;
  const SeriesId id = f.series("h");
  // Written while recent: the window is the series' head.
  f.clock.set_ms(kBase + kDay);
  const TimestampMs w = kBase + 2 * kHour;
  f.append({{id, w - 20'000, 1}});
  // Now the window is past raw retention but still the head's: the sample goes to the head,
  // so the pass that rolls the window up from its chunk sees both.
  f.clock.set_ms(kBase + 100 * kDay);
  f.append({{id, w - 10'000, 2}});
  CHECK(f.store->head_samples() == 2);
  REQUIRE(f.store->maintain().is_ok());
  const auto hour = f.rollups(id, kRollup1h, w - 2 * kHour, w);
  REQUIRE(hour.size() == 1);
  CHECK(hour[0].count == 2);
  CHECK(hour[0].sum == 3);
  // Once rolled up, no longer dirty and no longer the head's (a recent sample moved the head),
  // a later sample of that window merges into its stored rollups.
  CHECK(f.store->dirty_windows() == 0);
  f.append({{id, kBase + 100 * kDay - 1000, 9}});
  f.append({{id, w - 90 * 60'000, 4}});
  CHECK(f.store->head_samples() == 1);
  CHECK(f.store->dirty_windows() == 0);
  const auto both = f.rollups(id, kRollup1h, w - 2 * kHour, w);
  REQUIRE(both.size() == 2);
  CHECK(both[0].count == 1);
  CHECK(both[0].sum == 4);
  CHECK(both[1].count == 2);
}

TEST_CASE("merge_rollup of pieces in time order equals build_rollups of their union") {
  const auto points = counter_points(1);
  const auto whole = built(points, kRollup1h, kBase, kBase + 2 * kHour);
  for (size_t cut : {size_t{1}, points.size() / 3, points.size() - 1}) {
    INFO("cut at " << cut);
    const auto a = built(std::span(points).first(cut), kRollup1h, kBase, kBase + 2 * kHour);
    const auto b = built(std::span(points).subspan(cut), kRollup1h, kBase, kBase + 2 * kHour);
    // Each piece as `into` and as `from`.
    for (bool forward : {true, false}) {
      std::vector<Rollup> into = forward ? a : b;
      const std::vector<Rollup>& from = forward ? b : a;
      for (const auto& r : from) {
        auto it =
            std::find_if(into.begin(), into.end(), [&](const Rollup& x) { return x.end == r.end; });
        if (it == into.end()) {
          into.push_back(r);
        } else {
          REQUIRE(merge_rollup(*it, r).is_ok());
        }
      }
      std::sort(into.begin(), into.end(),
                [](const Rollup& x, const Rollup& y) { return x.end < y.end; });
      check_same(into, whole);
    }
  }
}
