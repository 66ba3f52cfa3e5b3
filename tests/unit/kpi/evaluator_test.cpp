#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "kpid/config/config.h"
#include "kpid/core/stale_marker.h"
#include "kpid/kpi/definition.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/query/engine.h"
#include "kpid/store/rocksdb_store.h"
#include "support/fake_clock.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace kpid;
using namespace kpid::kpi;

namespace {

constexpr TimestampMs kMinute = 60'000;
constexpr TimestampMs kHour = 60 * kMinute;
constexpr TimestampMs kDay = 24 * kHour;
constexpr TimestampMs kWeek = 7 * kDay;
constexpr TimestampMs kMonday = 1'700'438'400'000;  // Mon 2023-11-20 00:00 UTC

std::vector<Definition> compile_toml(const std::string& toml) {
  auto loaded = config::parse_config(toml, "kpis.toml", {});
  std::string errors;
  for (const auto& e : loaded.errors) errors += e.to_string() + "\n";
  INFO(errors);
  REQUIRE(loaded.ok());
  auto compiled = compile(loaded.config.kpis);
  for (const auto& e : compiled.errors) errors += e.to_string() + "\n";
  INFO(errors);
  REQUIRE(compiled.ok());
  return compiled.kpis;
}

// A store, an engine and an evaluator on a fake clock, with no background threads: tests
// drive rounds with run_once().
struct Rig {
  explicit Rig(TimestampMs now) {
    clock.set_ms(now);
    open_store();
    start_evaluator();
  }

  void open_store() {
    store = testing::open_test_store(dir.path() + "/data", clock);
    engine = std::make_unique<query::Engine>(*store, query::QueryOptions{});
  }

  void start_evaluator(DurationMs reevaluate = 5'000) {
    evaluator = std::make_unique<Evaluator>(*store, *store, *engine, &metrics, clock,
                                            EvaluatorOptions{reevaluate, false});
  }

  // Stores the points under metric `name` (with optional labels) and tells the evaluator,
  // as the ingest pipeline does.
  void write(const std::string& name, const std::vector<store::Point>& points,
             std::vector<Label> labels = {}, bool observe = true) {
    labels.push_back({"__name__", name});
    auto id = store->resolve(Labels::from(labels).value().encode());
    REQUIRE(id.is_ok());
    std::vector<store::Sample> samples;
    for (const auto& p : points) samples.push_back({*id, p.timestamp, p.value});
    REQUIRE(store->append(samples).is_ok());
    if (observe) evaluator->observe(samples);
  }

  KpiView view(const std::string& id) {
    auto v = evaluator->get(id);
    REQUIRE(v.has_value());
    return *v;
  }

  testing::TempDir dir;
  testing::FakeClock clock;
  metrics::Metrics metrics;
  std::unique_ptr<store::RocksDbStore> store;
  std::unique_ptr<query::Engine> engine;
  std::unique_ptr<Evaluator> evaluator;
};

// A KPI over metric m: `head` goes into [[kpi]], `extra` after the value's keys.
std::string kpi_toml(const std::string& id, const std::string& direction, const std::string& extra,
                     const std::string& head = "") {
  return "[[kpi]]\nid = \"" + id + "\"\nowner = \"team\"\ndirection = \"" + direction + "\"\n" +
         head + "[kpi.value]\nselector = \"m\"\nover_time = \"avg\"\n" + extra;
}

// The 5-minute averages of `points` at each 5-minute boundary in (start, end]: what the
// KPI "avg over 5m" was at each step, computed here from the samples.
std::vector<double> five_minute_means(const std::vector<store::Point>& points, TimestampMs start,
                                      TimestampMs end) {
  std::map<TimestampMs, std::pair<double, int>> buckets;
  for (const auto& p : points) {
    const TimestampMs bucket_end = (p.timestamp + 5 * kMinute - 1) / (5 * kMinute) * (5 * kMinute);
    if (bucket_end <= start || bucket_end > end) continue;
    buckets[bucket_end].first += p.value;
    buckets[bucket_end].second += 1;
  }
  std::vector<double> out;
  for (const auto& [t, cell] : buckets) out.push_back(cell.first / cell.second);
  return out;
}

double interpolated_quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double rank = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<size_t>(rank);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (v[i + 1] - v[i]) * (rank - static_cast<double>(i));
}

// Two days of a wavy signal, one sample a minute (30 s past each minute).
std::vector<store::Point> wavy(TimestampMs now) {
  std::vector<store::Point> points;
  for (TimestampMs t = now - 2 * kDay + 30'000; t <= now; t += kMinute) {
    const double i = static_cast<double>((t - now) / kMinute);
    points.push_back({t, 100 + 10 * std::sin(i / 50) + static_cast<double>((t / kMinute) % 7)});
  }
  return points;
}

}  // namespace

TEST_CASE("kpi: compiled KPIs become PromQL over their selectors") {
  auto kpis = compile_toml(R"toml([[kpi]]
id = "p95"
direction = "lower_is_better"
[kpi.value]
selector = 'latency{route="/a"}'
over_time = "quantile"
quantile = 0.95
window = "5m"
across = "max"

[[kpi]]
id = "errors"
direction = "lower_is_better"
[kpi.value]
scale = 100
[kpi.value.numerator]
selector = "errors_total"
over_time = "increase"
window = "10m"
[kpi.value.denominator]
selector = "requests_total"
over_time = "increase"
)toml");
  REQUIRE(kpis.size() == 2);
  CHECK(kpis[0].promql() ==
        R"(max(quantile_over_time(0.94999999999999996, latency{route="/a"}[5m])))");
  CHECK(kpis[0].stale_after == 5 * kMinute);  // the value window by default
  CHECK(kpis[1].promql() ==
        "(sum(increase(errors_total[10m]))) / (sum(increase(requests_total[5m]))) * 100");
  CHECK(kpis[1].window() == 10 * kMinute);
  CHECK(kpis[1].stale_after == 10 * kMinute);
}

TEST_CASE("kpi: compile rejects bands out of order and bad selectors, with positions") {
  auto loaded = config::parse_config(R"toml([[kpi]]
id = "a"
direction = "higher_is_better"
[kpi.value]
selector = 'up{job=~"("}'
over_time = "avg"
[kpi.band]
warn = 90
crit = 95

[[kpi]]
id = "b"
direction = "in_range"
[kpi.value]
selector = "temp"
over_time = "avg"
[kpi.band]
crit_low = 10
warn_low = 15
warn_high = 14
crit_high = 30
)toml",
                                     "kpis.toml", {});
  REQUIRE(loaded.ok());
  auto compiled = compile(loaded.config.kpis);
  CHECK(compiled.kpis.empty());
  REQUIRE(compiled.errors.size() == 3);
  std::vector<std::string> lines;
  for (const auto& e : compiled.errors) lines.push_back(e.to_string());
  std::sort(lines.begin(), lines.end());
  CHECK(
      lines[0].starts_with("kpis.toml:17:1: kpi.b.band: for in_range, warn_high (14) must be "
                           "above warn_low (15)"));
  CHECK(lines[1].starts_with("kpis.toml:5:12: kpi.a.value.selector: invalid selector"));
  CHECK(lines[2].starts_with(
      "kpis.toml:7:1: kpi.a.band: for higher_is_better, warn (90) must be above crit (95)"));
}

TEST_CASE("kpi: lint warns about owners with too many KPIs and KPIs without owner or band") {
  std::string toml;
  for (int i = 0; i < 11; ++i) {
    toml +=
        kpi_toml("k" + std::to_string(i), "lower_is_better", "[kpi.band]\nwarn = 1\ncrit = 2\n");
  }
  toml +=
      "[[kpi]]\nid = \"orphan\"\ndirection = \"lower_is_better\"\n[kpi.value]\nselector = "
      "\"m\"\nover_time = \"avg\"\n";
  auto loaded = config::parse_config(toml, "kpis.toml", {});
  REQUIRE(loaded.ok());
  auto warnings = lint(loaded.config.kpis);
  std::vector<std::string> keys;
  for (const auto& w : warnings) keys.push_back(w.key);
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::string>{"kpi.k10.owner", "kpi.orphan.band", "kpi.orphan.owner"});
}

TEST_CASE("kpi: a sample for a KPI's series re-evaluates it at once, others wait for the timer") {
  const TimestampMs now = kMonday + 10 * kDay;
  Rig rig(now);
  rig.start_evaluator(kHour);  // the timer would not fire during this test
  rig.evaluator->set_kpis(
      compile_toml(kpi_toml("lat", "lower_is_better", "[kpi.band]\nwarn = 200\ncrit = 500\n")));
  rig.evaluator->run_once();
  CHECK(rig.view("lat").status == Health::kNoData);
  CHECK(std::isnan(rig.view("lat").value));

  rig.write("m", {{now - 1000, 150}});
  rig.evaluator->run_once();
  CHECK(rig.view("lat").status == Health::kOk);
  CHECK(rig.view("lat").value == 150);

  // Stored but not observed: nothing triggers an evaluation.
  rig.write("m", {{now - 500, 2000}}, {}, false);
  rig.evaluator->run_once();
  CHECK(rig.view("lat").value == 150);
  // A sample of another series does not either.
  rig.write("other", {{now - 400, 1}});
  rig.evaluator->run_once();
  CHECK(rig.view("lat").value == 150);
  // One for its series does.
  rig.write("m", {{now - 300, 2000}});
  rig.evaluator->run_once();
  CHECK(rig.view("lat").status == Health::kCrit);
  CHECK(rig.view("lat").value == Approx((150.0 + 2000 + 2000) / 3));
  // A new series the selector matches is picked up too.
  rig.write("m", {{now - 200, 100}}, {{"host", "b"}});
  rig.evaluator->run_once();
  CHECK(rig.view("lat").value == Approx((150.0 + 2000 + 2000) / 3 + 100));  // sum across
}

TEST_CASE("kpi: status follows the band for each direction") {
  const TimestampMs now = kMonday + 10 * kDay;
  Rig rig(now);
  rig.evaluator->set_kpis(compile_toml(
      kpi_toml("low", "lower_is_better", "window = \"1m\"\n[kpi.band]\nwarn = 10\ncrit = 20\n") +
      kpi_toml("high", "higher_is_better", "window = \"1m\"\n[kpi.band]\nwarn = 10\ncrit = 5\n") +
      kpi_toml("range", "in_range",
               "window = \"1m\"\n[kpi.band]\ncrit_low = 0\nwarn_low = 5\nwarn_high = 15\n"
               "crit_high = 20\n")));
  auto at = [&](double v) {
    const TimestampMs t = rig.clock.now_ms() + 2 * kMinute;  // the previous value left the window
    rig.clock.set_ms(t);
    rig.write("m", {{t, v}});
    rig.evaluator->run_once();
    return std::vector<Health>{rig.view("low").status, rig.view("high").status,
                               rig.view("range").status};
  };
  using H = Health;
  CHECK(at(3) == std::vector<H>{H::kOk, H::kCrit, H::kWarn});
  CHECK(at(7) == std::vector<H>{H::kOk, H::kWarn, H::kOk});
  CHECK(at(10) == std::vector<H>{H::kOk, H::kOk, H::kOk});  // on a threshold is not beyond it
  CHECK(at(12) == std::vector<H>{H::kWarn, H::kOk, H::kOk});
  CHECK(at(17) == std::vector<H>{H::kWarn, H::kOk, H::kWarn});
  CHECK(at(25) == std::vector<H>{H::kCrit, H::kOk, H::kCrit});
  CHECK(at(-1) == std::vector<H>{H::kOk, H::kCrit, H::kCrit});
}

TEST_CASE("kpi: no data when samples stop, and a zero denominator is no data, never NaN") {
  const TimestampMs now = kMonday + 10 * kDay;
  Rig rig(now);
  rig.evaluator->set_kpis(compile_toml(
      kpi_toml("lat", "lower_is_better", "window = \"10m\"\n[kpi.band]\nwarn = 200\ncrit = 500\n",
               "stale_after = \"1m\"\n") +
      R"toml(
[[kpi]]
id = "error_rate"
direction = "lower_is_better"
[kpi.value]
scale = 100
[kpi.value.numerator]
selector = "errors_total"
over_time = "increase"
[kpi.value.denominator]
selector = "requests_total"
over_time = "increase"
[kpi.band]
warn = 1
crit = 5
)toml"));
  rig.write("m", {{now, 100}});
  rig.write("errors_total", {{now - 60'000, 10}, {now, 12}});
  rig.write("requests_total", {{now - 60'000, 1000}, {now, 1100}});
  rig.evaluator->run_once();
  CHECK(rig.view("lat").status == Health::kOk);
  CHECK(rig.view("error_rate").value == Approx(2.0));
  CHECK(rig.view("error_rate").status == Health::kWarn);

  // Two minutes without samples: stale after 1m, though the 10m window still holds a value.
  rig.clock.set_ms(now + 2 * kMinute);
  rig.evaluator->run_once();
  CHECK(rig.view("lat").status == Health::kNoData);
  CHECK(rig.view("error_rate").status == Health::kWarn);  // its stale_after is its window

  // No requests in the window (now + 5m, now + 10m]: the denominator is 0.
  rig.clock.set_ms(now + 10 * kMinute);
  rig.write("errors_total", {{now + 8 * kMinute, 12}, {now + 10 * kMinute, 12}});
  rig.write("requests_total", {{now + 8 * kMinute, 1100}, {now + 10 * kMinute, 1100}});
  rig.evaluator->run_once();
  const auto v = rig.view("error_rate");
  CHECK(v.status == Health::kNoData);
  CHECK(std::isnan(v.value));
  const std::string scrape = rig.metrics.scrape();
  CHECK(scrape.find(R"(kpid_kpi_status{kpi="error_rate",owner="",status="no_data"} 1)") !=
        std::string::npos);
}

TEST_CASE("kpi: quantile, stddev and ewma baselines equal direct computations over the history") {
  const TimestampMs now = kMonday + 10 * kDay;
  Rig rig(now);
  const auto points = wavy(now);
  rig.write("m", points);
  REQUIRE(rig.store->maintain().is_ok());  // history comes from the 5m rollups
  const auto means = five_minute_means(points, now - 2 * kDay, now);
  REQUIRE(means.size() == 576);

  rig.evaluator->set_kpis(compile_toml(
      kpi_toml("q", "lower_is_better",
               "[kpi.baseline]\nmethod = \"quantile\"\nwindow = \"2d\"\nquantiles = [0.1, 0.9]\n") +
      kpi_toml("s", "lower_is_better",
               "[kpi.baseline]\nmethod = \"stddev\"\nwindow = \"2d\"\nk = 3\n") +
      kpi_toml("e", "lower_is_better",
               "[kpi.baseline]\nmethod = \"ewma\"\nwindow = \"2d\"\nalpha = 0.3\n")));
  rig.evaluator->run_once();

  const auto q = rig.view("q").baseline;
  REQUIRE(q.has_value());
  CHECK(q->range.lower == Approx(interpolated_quantile(means, 0.1)).epsilon(1e-9));
  CHECK(q->range.center == Approx(interpolated_quantile(means, 0.5)).epsilon(1e-9));
  CHECK(q->range.upper == Approx(interpolated_quantile(means, 0.9)).epsilon(1e-9));
  CHECK(q->trusted);  // two days of history, min_history 1d

  double mean = 0;
  for (double m : means) mean += m;
  mean /= static_cast<double>(means.size());
  double var = 0;
  for (double m : means) var += (m - mean) * (m - mean);
  const double sigma = std::sqrt(var / static_cast<double>(means.size()));
  const auto s = rig.view("s").baseline;
  REQUIRE(s.has_value());
  CHECK(s->range.center == Approx(mean).epsilon(1e-9));
  CHECK(s->range.upper == Approx(mean + 3 * sigma).epsilon(1e-9));

  double e_mean = means[0];
  double e_var = 0;
  for (size_t i = 1; i < means.size(); ++i) {
    const double diff = means[i] - e_mean;
    e_mean += 0.3 * diff;
    e_var = 0.7 * (e_var + 0.3 * diff * diff);
  }
  const auto e = rig.view("e").baseline;
  REQUIRE(e.has_value());
  CHECK(e->range.center == Approx(e_mean).epsilon(1e-9));
  CHECK(e->range.lower == Approx(e_mean - 2 * std::sqrt(e_var)).epsilon(1e-9));

  // The baseline is published.
  const std::string scrape = rig.metrics.scrape();
  CHECK(scrape.find(R"(kpid_kpi_baseline{bound="upper",kpi="s",owner="team"})") !=
        std::string::npos);
}

TEST_CASE("kpi: seasonal baseline follows a weekly pattern") {
  // Three weeks of a weekly cycle (busy weekday afternoons) that shifts from week to week
  // (+0, +10, +5, +5), one sample every 5 minutes; evaluated on a Monday at 14:30 of the
  // fourth week.
  const TimestampMs now = kMonday + 3 * kWeek + 14 * kHour + 30 * kMinute;
  Rig rig(now);
  std::vector<store::Point> points;
  for (TimestampMs t = kMonday + 60'000; t <= now; t += 5 * kMinute) {
    const int64_t week = (t - kMonday) / kWeek;
    const int64_t hour_of_week = ((t - kMonday) / kHour) % 168;
    const bool busy = hour_of_week < 120 && hour_of_week % 24 >= 12 && hour_of_week % 24 < 18;
    constexpr double kShift[] = {0, 10, 5, 5};
    points.push_back({t, (busy ? 500.0 : 100.0) + kShift[week]});
  }
  rig.write("m", points);
  REQUIRE(rig.store->maintain().is_ok());
  rig.evaluator->set_kpis(compile_toml(kpi_toml(
      "visits", "in_range", "[kpi.baseline]\nmethod = \"seasonal\"\nwindow = \"21d\"\nk = 2\n")));
  rig.evaluator->run_once();
  const auto b = rig.view("visits").baseline;
  REQUIRE(b.has_value());
  // Monday 14:00-15:00 in weeks 0, 1, 2 averaged 500, 510, 505 (the hour under way in week
  // 3 is not counted).
  const double sigma = std::sqrt((25.0 + 25 + 0) / 3);
  CHECK(b->range.center == Approx(505));
  CHECK(b->range.upper == Approx(505 + 2 * sigma));
  CHECK(b->range.lower == Approx(505 - 2 * sigma));
  CHECK(b->trusted);
  // The current busy value is normal; a quiet-hour value at this hour is anomalous (in_range:
  // either side).
  CHECK(rig.view("visits").status == Health::kOk);
  rig.clock.set_ms(now + 10 * kMinute);
  rig.write("m", {{now + 6 * kMinute, 100}, {now + 10 * kMinute, 100}});
  rig.evaluator->run_once();
  CHECK(rig.view("visits").status == Health::kAnomalous);
}

TEST_CASE("kpi: anomalous only on the bad side, and only once the baseline is trusted") {
  const TimestampMs now = kMonday + 10 * kDay;
  Rig rig(now);
  rig.write("m", wavy(now));
  REQUIRE(rig.store->maintain().is_ok());
  rig.evaluator->set_kpis(compile_toml(
      kpi_toml("lower", "lower_is_better",
               "[kpi.baseline]\nmethod = \"stddev\"\nwindow = \"2d\"\nmin_history = \"1d\"\n") +
      kpi_toml("higher", "higher_is_better",
               "[kpi.baseline]\nmethod = \"stddev\"\nwindow = \"2d\"\nmin_history = \"1d\"\n") +
      kpi_toml("young", "lower_is_better",
               "[kpi.baseline]\nmethod = \"stddev\"\nwindow = \"3d\"\nmin_history = \"3d\"\n")));
  rig.evaluator->run_once();
  CHECK(rig.view("lower").status == Health::kOk);
  CHECK_FALSE(rig.view("young").baseline->trusted);

  // A spike far above the range.
  rig.clock.set_ms(now + 5 * kMinute);
  rig.write("m", {{now + 5 * kMinute, 10'000}});
  rig.evaluator->run_once();
  CHECK(rig.view("lower").status == Health::kAnomalous);
  CHECK(rig.view("higher").status == Health::kOk);  // high is good for it
  CHECK(rig.view("young").status == Health::kOk);   // not trusted yet
}

TEST_CASE("kpi: thresholds are suggested from the normal operating range") {
  // Churn between 2.5% and 3.5% over a month: warn at its p95, crit as far again beyond it as
  // p95 is from the median.
  const TimestampMs now = kMonday + 40 * kDay;
  Rig rig(now);
  std::vector<store::Point> points;
  for (TimestampMs t = now - 30 * kDay + 60'000; t <= now; t += 5 * kMinute) {
    const double phase = static_cast<double>((t / (5 * kMinute)) % 101) / 100;  // 0..1
    points.push_back({t, 2.5 + phase});
  }
  rig.write("m", points);
  REQUIRE(rig.store->maintain().is_ok());
  rig.evaluator->set_kpis(compile_toml(kpi_toml("churn", "lower_is_better", "")));
  rig.evaluator->run_once();
  const auto v = rig.view("churn");
  REQUIRE(v.suggested.has_value());
  std::vector<double> values;
  for (const auto& p : points) values.push_back(p.value);
  const double p95 = interpolated_quantile(values, 0.95);
  const double p50 = interpolated_quantile(values, 0.5);
  CHECK(v.suggested->warn == Approx(p95).epsilon(0.01));
  CHECK(v.suggested->crit == Approx(p95 + (p95 - p50)).epsilon(0.01));
  CHECK(v.suggested->warn == Approx(3.45).epsilon(0.01));
  CHECK(v.suggested->crit == Approx(3.9).epsilon(0.01));
  CHECK_FALSE(v.baseline.has_value());  // none configured

  // Not enough history: no suggestion.
  Rig young(now);
  young.write("m", {{now - kHour, 3}, {now, 3}});
  young.evaluator->set_kpis(compile_toml(kpi_toml("churn", "lower_is_better", "")));
  young.evaluator->run_once();
  CHECK_FALSE(young.view("churn").suggested.has_value());
}

TEST_CASE("kpi: reload and restart keep status history, changed bands apply at once") {
  const TimestampMs now = kMonday + 10 * kDay;
  Rig rig(now);
  const std::string band_a = "window = \"1m\"\n[kpi.band]\nwarn = 200\ncrit = 500\n";
  rig.evaluator->set_kpis(compile_toml(kpi_toml("a", "lower_is_better", band_a) +
                                       kpi_toml("b", "lower_is_better", band_a)));
  rig.evaluator->run_once();  // no_data
  rig.write("m", {{now, 300}});
  rig.evaluator->run_once();  // warn
  REQUIRE(rig.view("a").status == Health::kWarn);
  const TimestampMs warn_since = rig.view("a").since;

  // Reload: a's band tightens (crit now), b goes, c comes.
  rig.clock.set_ms(now + 1000);
  const std::string band_tight = "window = \"1m\"\n[kpi.band]\nwarn = 100\ncrit = 250\n";
  rig.evaluator->set_kpis(compile_toml(kpi_toml("a", "lower_is_better", band_tight) +
                                       kpi_toml("c", "lower_is_better", band_tight)));
  rig.evaluator->run_once();
  CHECK(rig.view("a").status == Health::kCrit);
  CHECK(rig.view("c").status == Health::kCrit);
  CHECK_FALSE(rig.evaluator->get("b").has_value());
  auto history = rig.evaluator->history("a", 100);
  REQUIRE(history.is_ok());
  REQUIRE(history->size() == 3);
  CHECK((*history)[0].status == Health::kNoData);
  CHECK((*history)[1].status == Health::kWarn);
  CHECK((*history)[1].value == 300);
  CHECK((*history)[1].time == warn_since);
  CHECK((*history)[2].status == Health::kCrit);
  // The band change is kept for charts: before it, the old thresholds; after it, the new.
  auto series = rig.evaluator->series("a", now - 1000, now + 1000, 1000);
  REQUIRE(series.is_ok());
  REQUIRE(series->thresholds.size() == 2);
  CHECK(series->thresholds[0].first == "warn");
  CHECK(series->thresholds[0].second.front().value == 200);
  CHECK(series->thresholds[0].second.back().value == 100);

  // b comes back later: its history is still there.
  rig.evaluator->set_kpis(compile_toml(kpi_toml("b", "lower_is_better", band_a)));
  CHECK(rig.view("b").status == Health::kWarn);  // the last recorded status, before evaluating
  CHECK(rig.evaluator->history("b", 100)->size() == 2);

  // Restart: a new evaluator over the reopened store knows a's status and since.
  const TimestampMs crit_since = (*history)[2].time;
  rig.evaluator.reset();
  rig.engine.reset();
  REQUIRE(rig.store->close().is_ok());
  rig.store.reset();
  rig.open_store();
  rig.start_evaluator();
  rig.evaluator->set_kpis(compile_toml(kpi_toml("a", "lower_is_better", band_tight)));
  CHECK(rig.view("a").status == Health::kCrit);
  CHECK(rig.view("a").since == crit_since);
  rig.evaluator->run_once();
  CHECK(rig.view("a").since == crit_since);  // still crit: no new change recorded
  CHECK(rig.evaluator->history("a", 100)->size() == 3);
  CHECK(rig.evaluator->history("a", 1)->front().status == Health::kCrit);
}

TEST_CASE("kpi: the shipped example KPIs compile without warnings") {
  auto loaded = config::load_config(KPID_SOURCE_DIR "/config/kpid.toml", {});
  REQUIRE(loaded.ok());
  auto compiled = compile(loaded.config.kpis);
  CHECK(compiled.ok());
  CHECK(compiled.kpis.size() == 5);
  CHECK(lint(loaded.config.kpis).empty());
}

TEST_CASE("kpi: a stale marker is no value and no data: the series ended") {
  const TimestampMs now = kMonday + 10 * kDay;
  Rig rig(now);
  const std::string band = "window = \"10m\"\n[kpi.band]\nwarn = 200\ncrit = 500\n";
  rig.evaluator->set_kpis(
      compile_toml(kpi_toml("lat", "lower_is_better", band, "stale_after = \"2m\"\n") +
                   R"toml(
[[kpi]]
id = "last"
direction = "lower_is_better"
stale_after = "2m"
[kpi.value]
selector = "m"
over_time = "last"
window = "10m"
[[kpi]]
id = "gone"
direction = "lower_is_better"
[kpi.value]
selector = "g"
over_time = "last"
window = "10m"
)toml"));
  rig.write("m", {{now - 60'000, 150}, {now - 30'000, 300}});
  rig.evaluator->run_once();
  CHECK(rig.view("lat").value == Approx(225));
  CHECK(rig.view("lat").status == Health::kWarn);

  // The target goes away: Prometheus writes the marker. The window's samples still count (as
  // in PromQL's range functions), the marker is neither a NaN value nor fresh data.
  rig.clock.set_ms(now + 10'000);
  rig.write("m", {{now + 10'000, kStaleNaN}});
  rig.write("g", {{now + 10'000, kStaleNaN}});
  rig.evaluator->run_once();
  CHECK(rig.view("lat").value == Approx(225));
  CHECK(rig.view("lat").status == Health::kWarn);
  CHECK(rig.view("lat").last_sample == now - 30'000);
  CHECK(rig.view("last").value == 300);
  CHECK(rig.view("gone").status == Health::kNoData);
  CHECK(rig.view("gone").last_sample == 0);

  // stale_after counts from the last real sample: 2m after it, no data.
  rig.clock.set_ms(now - 30'000 + 2 * kMinute + 1);
  rig.evaluator->run_once();
  CHECK(rig.view("lat").status == Health::kNoData);
  CHECK(rig.view("last").status == Health::kNoData);

  // A restarted evaluator finds the newest stored sample the same way.
  rig.clock.set_ms(now + 20'000);
  rig.start_evaluator();
  rig.evaluator->set_kpis(
      compile_toml(kpi_toml("lat", "lower_is_better", band, "stale_after = \"2m\"\n")));
  rig.evaluator->run_once();
  CHECK(rig.view("lat").last_sample == now - 30'000);
  CHECK(rig.view("lat").value == Approx(225));
}

TEST_CASE("kpi: a sample stamped slightly ahead of the clock counts at once") {
  const TimestampMs now = kMonday + 10 * kDay;
  Rig rig(now);
  rig.evaluator->set_kpis(compile_toml(
      kpi_toml("lat", "lower_is_better", "window = \"1m\"\n[kpi.band]\nwarn = 200\ncrit = 500\n")));
  rig.write("m", {{now - 1000, 100}});
  rig.evaluator->run_once();
  CHECK(rig.view("lat").status == Health::kOk);
  rig.write("m", {{now + 2000, 1000}});  // a client clock 2 s fast
  rig.evaluator->run_once();
  CHECK(rig.view("lat").status == Health::kCrit);
  // Far ahead counts as 10 s ahead: that window holds the two earlier samples, not this one.
  rig.write("m", {{now + kHour, 5000}});
  rig.evaluator->run_once();
  CHECK(rig.view("lat").value == Approx(550));
  CHECK(rig.view("lat").last_sample == now + 10'000);
  // Nor does it hold off staleness until its own time: stale 1m (the window) after now + 10 s.
  rig.clock.set_ms(now + 10'000 + kMinute + 1);
  rig.evaluator->run_once();
  CHECK(rig.view("lat").status == Health::kNoData);
}

TEST_CASE("kpi: new series are matched against every KPI that can select them") {
  const TimestampMs now = kMonday + 10 * kDay;
  Rig rig(now);
  rig.evaluator->set_kpis(compile_toml(R"toml([[kpi]]
id = "host_a"
direction = "lower_is_better"
[kpi.value]
selector = 'm{host="a"}'
over_time = "last"

[[kpi]]
id = "regex_only"
direction = "lower_is_better"
[kpi.value]
selector = '{job=~"api.*"}'
over_time = "last"

[[kpi]]
id = "ratio"
direction = "lower_is_better"
[kpi.value.numerator]
selector = 'errors{host!="c"}'
over_time = "last"
[kpi.value.denominator]
selector = 'm{host="b"}'
over_time = "last"
)toml"));
  rig.write("m", {{now, 1}}, {{"host", "a"}});
  rig.write("m", {{now, 2}}, {{"host", "b"}});
  rig.write("x", {{now, 3}}, {{"job", "api-eu"}});
  rig.write("errors", {{now, 4}}, {{"host", "d"}});
  rig.write("errors", {{now, 100}}, {{"host", "c"}});
  rig.evaluator->run_once();
  CHECK(rig.view("host_a").value == 1);
  CHECK(rig.view("regex_only").value == 3);
  CHECK(rig.view("ratio").value == 2);  // 4 / 2
  CHECK(rig.view("host_a").last_sample == now);
  // A later sample of an already matched series still reaches only its KPIs.
  rig.write("m", {{now + 1, 7}}, {{"host", "b"}});
  rig.evaluator->run_once();
  CHECK(rig.view("ratio").value == Approx(4.0 / 7));
  CHECK(rig.view("host_a").value == 1);
}

TEST_CASE("kpi: a reload recomputes baselines, so a backfill is read at once") {
  const TimestampMs now = kMonday + 10 * kDay;
  Rig rig(now);
  const std::string toml =
      kpi_toml("lower", "lower_is_better",
               "[kpi.baseline]\nmethod = \"stddev\"\nwindow = \"2d\"\nmin_history = \"1d\"\n"
               "refresh = \"1h\"\n");
  rig.evaluator->set_kpis(compile_toml(toml));
  rig.write("m", {{now, 100}});
  rig.evaluator->run_once();
  REQUIRE(rig.view("lower").baseline.has_value());
  CHECK_FALSE(rig.view("lower").baseline->trusted);  // no history yet

  // Two days of history arrive at once; the hourly refresh is far off, a reload is not.
  rig.write("m", wavy(now));
  REQUIRE(rig.store->maintain().is_ok());
  rig.evaluator->run_once();
  CHECK_FALSE(rig.view("lower").baseline->trusted);
  rig.evaluator->set_kpis(compile_toml(toml));
  rig.evaluator->run_once();
  CHECK(rig.view("lower").baseline->trusted);
}

// --- [kpi.value] expr ------------------------------------------------------------------------

TEST_CASE("kpi: a value expression compiles with its selectors, longest range and interval") {
  auto kpis = compile_toml(R"toml([[kpi]]
id = "availability"
direction = "higher_is_better"
interval = "30s"
[kpi.value]
expr = 'sum(rate(req_total{code!~"5.."}[5m])) / sum(rate(req_total[10m])) * 100'

[[kpi]]
id = "p95"
direction = "lower_is_better"
[kpi.value]
expr = 'histogram_quantile(0.95, sum by (le) (rate(lat_bucket{route="/checkout"}[5m])))'

[[kpi]]
id = "queue"
direction = "lower_is_better"
[kpi.value]
expr = 'scalar(max(queue_depth))'
)toml");
  REQUIRE(kpis.size() == 3);
  CHECK(kpis[0].promql() ==
        R"(sum(rate(req_total{code!~"5.."}[5m])) / sum(rate(req_total[10m])) * 100)");
  CHECK(kpis[0].selectors.size() == 2);
  CHECK(kpis[0].window() == 10 * kMinute);
  CHECK(kpis[0].stale_after == 10 * kMinute);
  CHECK(kpis[0].interval == 30'000);
  CHECK(kpis[1].selectors.size() == 1);
  CHECK(kpis[1].window() == 5 * kMinute);
  CHECK_FALSE(kpis[1].interval.has_value());
  CHECK(kpis[2].window() == 5 * kMinute);  // no range: the lookback
  CHECK(compile_toml(R"toml([[kpi]]
id = "sub"
direction = "lower_is_better"
[kpi.value]
expr = 'max_over_time(sum(rate(x[5m]))[2h:1m])'
)toml")[0]
            .window() == 120 * kMinute);
}

TEST_CASE("kpi: compile rejects value expressions that do not parse or can yield several series") {
  auto expr_error = [](const std::string& expr) {
    auto loaded = config::parse_config(
        "[[kpi]]\nid = \"k\"\ndirection = \"higher_is_better\"\n[kpi.value]\nexpr = '" + expr +
            "'\n",
        "kpis.toml", {});
    REQUIRE(loaded.ok());
    auto compiled = compile(loaded.config.kpis);
    CHECK(compiled.kpis.size() + compiled.errors.size() == 1);
    return compiled.errors.empty() ? std::string() : compiled.errors.front().to_string();
  };
  CHECK(expr_error("sum(rate(x[5m])")
            .starts_with("kpis.toml:5:8: kpi.k.value.expr: invalid PromQL: 1:16: parse error:"));
  CHECK(expr_error("http_requests_total").find("can yield several series") != std::string::npos);
  CHECK(expr_error("rate(x[5m])").find("can yield several series") != std::string::npos);
  CHECK(expr_error("sum by (route) (rate(x[5m]))").find("can yield several series") !=
        std::string::npos);
  CHECK(expr_error("x[5m]") ==
        "kpis.toml:5:8: kpi.k.value.expr: must be an instant vector or a scalar, got range "
        "vector");
  CHECK(expr_error("vector(1) * 2").find("reads no series") != std::string::npos);
  // One series: aggregations without groups, histogram_quantile over by (le), one side of a
  // one-to-one match being one series, scalars.
  CHECK(expr_error("sum(x) / sum(y)").empty());
  CHECK(expr_error("avg without () (sum(x))").empty());
  CHECK(expr_error("histogram_quantile(0.9, sum by (le) (rate(b[5m])))").empty());
  CHECK(expr_error("histogram_quantile(0.9, sum by (le, route) (rate(b[5m])))").find("several") !=
        std::string::npos);
  CHECK(expr_error("histogram_quantile(0.9, topk by (le) (2, rate(b[5m])))").find("several") !=
        std::string::npos);
  CHECK(expr_error("rate(x[5m]) / on() sum(rate(x[5m]))").empty());
  CHECK(expr_error("scalar(x) * 3").empty());
  CHECK(expr_error("topk(1, rate(x[5m]))").empty());
  CHECK(expr_error("topk(3, rate(x[5m]))").find("several") != std::string::npos);
  CHECK(expr_error("count_values(\"v\", x)").find("several") != std::string::npos);
  CHECK(expr_error("quantile(0.9, x)").empty());
  CHECK(expr_error("sum(x) or vector(0)").empty());
  CHECK(expr_error("x or vector(0)").find("several") != std::string::npos);
  CHECK(expr_error("sum(x) unless on() (sum(y) > 3)").empty());
  CHECK(expr_error("max(rate(x[5m]) * on(job) group_left(team) info)").empty());
  CHECK(expr_error("rate(x[5m]) * on(job) group_left(team) sum by (job) (info)").find("several") !=
        std::string::npos);
  CHECK(expr_error("max_over_time(sum(rate(x[5m]))[1h:1m])").empty());
  CHECK(expr_error("abs(max(x) - 10)").empty());
}

TEST_CASE("kpi: a value expression is marked by samples of any series it reads") {
  const TimestampMs now = kMonday + 10 * kDay;
  Rig rig(now);
  rig.start_evaluator(kHour);  // only samples trigger evaluations here
  rig.evaluator->set_kpis(compile_toml(R"toml([[kpi]]
id = "error_ratio"
direction = "lower_is_better"
[kpi.value]
expr = 'sum(last_over_time(errors[5m])) / sum(last_over_time(requests[5m])) * 100'
[kpi.band]
warn = 1
crit = 5
)toml"));
  rig.evaluator->run_once();
  CHECK(rig.view("error_ratio").status == Health::kNoData);
  rig.write("errors", {{now - 2000, 2}});
  rig.write("requests", {{now - 2000, 100}});
  rig.evaluator->run_once();
  CHECK(rig.view("error_ratio").value == Approx(2));
  CHECK(rig.view("error_ratio").status == Health::kWarn);
  // A sample of the second selector's series alone re-evaluates it.
  rig.write("requests", {{now - 1000, 20}});
  rig.evaluator->run_once();
  CHECK(rig.view("error_ratio").value == Approx(10));
  CHECK(rig.view("error_ratio").status == Health::kCrit);
  // A zero denominator is +Inf in PromQL: that is a value (and a breach), as Prometheus says.
  rig.write("requests", {{now - 500, 0}});
  rig.evaluator->run_once();
  CHECK(std::isinf(rig.view("error_ratio").value));
}

TEST_CASE("kpi: a KPI's own interval re-evaluates it without samples") {
  const TimestampMs now = kMonday + 10 * kDay;
  Rig rig(now);
  rig.start_evaluator(kHour);
  rig.evaluator->set_kpis(compile_toml(R"toml([[kpi]]
id = "fast"
direction = "lower_is_better"
interval = "10s"
stale_after = "1h"
[kpi.value]
expr = 'sum(count_over_time(m[1m]))'

[[kpi]]
id = "slow"
direction = "lower_is_better"
stale_after = "1h"
[kpi.value]
expr = 'sum(count_over_time(m[1m]))'
)toml"));
  rig.write("m", {{now - 1000, 1}, {now - 500, 1}}, {}, false);
  rig.evaluator->run_once();
  CHECK(rig.view("fast").value == 2);
  CHECK(rig.view("slow").value == 2);
  // Nothing observed; 70 s on, the window has moved past both samples.
  rig.clock.set_ms(now + 70'000);
  rig.evaluator->run_once();
  CHECK(std::isnan(rig.view("fast").value));
  CHECK(rig.view("slow").value == 2);  // its timer (1h here) has not come round
}
