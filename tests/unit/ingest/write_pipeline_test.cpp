#include <catch2/catch.hpp>

#include <limits>

#include "kpid/ingest/write_pipeline.h"
#include "kpid/store/rocksdb_store.h"
#include "support/fake_clock.h"
#include "support/temp_dir.h"

using namespace kpid;
using namespace kpid::ingest;

namespace {

struct Fixture {
  testing::TempDir dir;
  metrics::Metrics metrics;
  // Samples near 1970 stay raw: the store rolls up windows past raw retention at once.
  std::unique_ptr<store::RocksDbStore> store =
      std::move(store::RocksDbStore::open(
                    store::StoreOptions{.data_dir = dir.path(),
                                        .retention = {.raw = 100 * 365 * 86'400'000LL}},
                    &metrics))
          .value();
  IngestMetrics ingest_metrics{metrics.registry()};
  testing::FakeClock clock;
  WritePipeline pipeline{*store, ingest_metrics, clock};

  // name{...} -> points, via the store's select.
  std::vector<store::Point> points(const char* name, const char* label = nullptr,
                                   const char* value = nullptr) {
    std::vector<LabelMatcher> m = {
        std::move(LabelMatcher::create(MatchType::kEqual, "__name__", name)).value()};
    if (label)
      m.push_back(std::move(LabelMatcher::create(MatchType::kEqual, label, value)).value());
    auto refs = store->select(m);
    std::vector<store::Point> out;
    for (auto& r : refs) {
      REQUIRE(store
                  ->read(r.id, std::numeric_limits<int64_t>::min(),
                         std::numeric_limits<int64_t>::max(), out)
                  .is_ok());
    }
    return out;
  }
};

}  // namespace

TEST_CASE("precision names of InfluxDB 1.x and 2.x") {
  CHECK(*parse_precision("") == Precision::kNanoseconds);
  CHECK(*parse_precision("ns") == Precision::kNanoseconds);
  CHECK(*parse_precision("n") == Precision::kNanoseconds);
  CHECK(*parse_precision("us") == Precision::kMicroseconds);
  CHECK(*parse_precision("u") == Precision::kMicroseconds);
  CHECK(*parse_precision("ms") == Precision::kMilliseconds);
  CHECK(*parse_precision("s") == Precision::kSeconds);
  CHECK(*parse_precision("m") == Precision::kMinutes);
  CHECK(*parse_precision("h") == Precision::kHours);
  auto bad = parse_precision("sec");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("\"sec\"") != std::string::npos);
}

TEST_CASE("timestamps convert to milliseconds, flooring sub-millisecond units") {
  CHECK(*to_milliseconds(1'700'000'000'123'456'789, Precision::kNanoseconds) == 1'700'000'000'123);
  CHECK(*to_milliseconds(-1, Precision::kNanoseconds) == -1);
  CHECK(*to_milliseconds(-1'000'000, Precision::kNanoseconds) == -1);
  CHECK(*to_milliseconds(1'500, Precision::kMicroseconds) == 1);
  CHECK(*to_milliseconds(7, Precision::kMilliseconds) == 7);
  CHECK(*to_milliseconds(2, Precision::kSeconds) == 2'000);
  CHECK(*to_milliseconds(2, Precision::kMinutes) == 120'000);
  CHECK(*to_milliseconds(1, Precision::kHours) == 3'600'000);
  CHECK_FALSE(to_milliseconds(std::numeric_limits<int64_t>::max(), Precision::kSeconds).is_ok());
}

TEST_CASE("a body's lines become samples named after measurement and field") {
  Fixture f;
  auto r = f.pipeline.write(
      "cpu,host=a usage=1.5,idle=2i 1000\n"
      "cpu,host=a value=7 1000\n"
      "# a comment\n"
      "\n"
      "mem,host=a free=3u,ok=t,label=\"x y\" 2000\r\n",
      Precision::kSeconds, Protocol::kHttp);
  REQUIRE(r.storage.is_ok());
  CHECK(r.lines_rejected == 0);
  CHECK(r.lines_accepted == 3);
  CHECK(r.samples_written == 5);
  CHECK(r.string_fields == 1);
  CHECK(f.points("cpu_usage", "host", "a") == std::vector<store::Point>{{1'000'000, 1.5}});
  CHECK(f.points("cpu_idle") == std::vector<store::Point>{{1'000'000, 2}});
  CHECK(f.points("cpu") == std::vector<store::Point>{{1'000'000, 7}});
  CHECK(f.points("mem_free") == std::vector<store::Point>{{2'000'000, 3}});
  CHECK(f.points("mem_ok") == std::vector<store::Point>{{2'000'000, 1}});
  CHECK(f.points("mem_label").empty());
  auto text = f.metrics.scrape();
  CHECK(text.find("kpid_ingest_samples_total{protocol=\"http\"} 5") != std::string::npos);
  CHECK(text.find("kpid_ingest_string_fields_skipped_total{protocol=\"http\"} 1") !=
        std::string::npos);
}

TEST_CASE("bad lines are reported by line number while good lines are stored") {
  Fixture f;
  auto r = f.pipeline.write(
      "ok value=1 1\n"
      "bad\n"
      "ok value=3 3\n"
      "nan value=NaN 4\n"
      "ok value=5 5",
      Precision::kMilliseconds, Protocol::kTcp);
  REQUIRE(r.storage.is_ok());
  CHECK(r.lines_rejected == 2);
  CHECK(r.lines_accepted == 3);
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[0].line == 2);
  CHECK(r.errors[1].line == 4);
  CHECK(r.errors[1].message.find("NaN") != std::string::npos);
  CHECK(f.points("ok") == std::vector<store::Point>{{1, 1}, {3, 3}, {5, 5}});
  auto text = f.metrics.scrape();
  CHECK(
      text.find("kpid_ingest_lines_rejected_total{protocol=\"tcp\",reason=\"missing_fields\"} 1") !=
      std::string::npos);
  CHECK(text.find(
            "kpid_ingest_lines_rejected_total{protocol=\"tcp\",reason=\"unsupported_value\"} 1") !=
        std::string::npos);
}

TEST_CASE("error numbering starts at first_line and stops listing at max_errors") {
  Fixture f;
  auto r = f.pipeline.write("x\ny\nz\n", Precision::kNanoseconds, Protocol::kTcp, 2, 10);
  CHECK(r.lines_rejected == 3);
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[0].line == 10);
  CHECK(r.errors[1].line == 11);
}

TEST_CASE("lines without a timestamp get the receive time") {
  Fixture f;
  f.clock.set_ms(1'700'000'000'123);
  REQUIRE(f.pipeline.write("m value=1", Precision::kSeconds, Protocol::kHttp).storage.is_ok());
  CHECK(f.points("m") == std::vector<store::Point>{{1'700'000'000'123, 1}});
}

TEST_CASE("a timestamp that overflows after precision scaling rejects the line") {
  Fixture f;
  auto r = f.pipeline.write("m value=1 9223372036854775807", Precision::kHours, Protocol::kHttp);
  CHECK(r.lines_rejected == 1);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].message.find("out of range") != std::string::npos);
}

TEST_CASE("a tag that collides with another after sanitizing rejects the whole line") {
  Fixture f;
  auto r = f.pipeline.write("m,a-b=1,a_b=2 x=1,y=2 1", Precision::kSeconds, Protocol::kHttp);
  CHECK(r.lines_rejected == 1);
  CHECK(r.samples_written == 0);
  CHECK(
      f.store
          ->select(std::vector<LabelMatcher>{
              std::move(LabelMatcher::create(MatchType::kRegexMatch, "__name__", "m_.*")).value()})
          .size() <= 2);  // series may exist, but no samples
  CHECK(f.points("m_x").empty());
}

TEST_CASE("out-of-order writes, backfill and overwrites") {
  Fixture f;
  REQUIRE(
      f.pipeline.write("m value=3 3000\nm value=1 1000", Precision::kMilliseconds, Protocol::kHttp)
          .storage.is_ok());
  REQUIRE(
      f.pipeline.write("m value=2 2000\nm value=10 1000", Precision::kMilliseconds, Protocol::kHttp)
          .storage.is_ok());
  REQUIRE(f.pipeline.write("m value=-1 -31536000000", Precision::kMilliseconds, Protocol::kHttp)
              .storage.is_ok());
  CHECK(f.points("m") ==
        std::vector<store::Point>{{-31'536'000'000, -1}, {1000, 10}, {2000, 2}, {3000, 3}});
}

namespace {

// A store that fails every call, as a full or broken disk would.
class FailingStore final : public store::SampleStore {
 public:
  Result<store::SeriesId> resolve(std::string_view) override {
    return Status::unavailable("disk full");
  }
  Status append(std::span<const store::Sample>) override {
    return Status::unavailable("disk full");
  }
  std::vector<store::SeriesRef> select(std::span<const LabelMatcher>) const override { return {}; }
  Status read(store::SeriesId, TimestampMs, TimestampMs,
              std::vector<store::Point>&) const override {
    return Status::ok();
  }
  Result<bool> has_samples(store::SeriesId, TimestampMs, TimestampMs) const override {
    return false;
  }
  Status read_rollups(store::SeriesId, DurationMs, TimestampMs, TimestampMs,
                      std::vector<store::Rollup>&, bool) const override {
    return Status::unavailable("disk full");
  }
  TimestampMs raw_horizon() const override { return 0; }
  store::RetentionPolicy retention() const override { return {}; }
  std::vector<std::string> label_names() const override { return {}; }
  std::vector<std::string> label_values(std::string_view) const override { return {}; }
  size_t series_count() const override { return 0; }
  std::shared_ptr<const Labels> labels(store::SeriesId) const override { return nullptr; }
  uint64_t disk_usage_bytes() const override { return 0; }
};

}  // namespace

TEST_CASE("a failing store fails the whole write instead of blaming the lines") {
  FailingStore store;
  metrics::Metrics metrics;
  IngestMetrics ingest_metrics(metrics.registry());
  testing::FakeClock clock;
  WritePipeline pipeline(store, ingest_metrics, clock);
  auto r = pipeline.write("a value=1 1\nb value=2 2\n", Precision::kSeconds, Protocol::kHttp);
  REQUIRE_FALSE(r.storage.is_ok());
  CHECK(r.storage.code() == StatusCode::kUnavailable);
  CHECK(r.lines_rejected == 0);
  CHECK(r.errors.empty());
  CHECK(r.samples_written == 0);
}

TEST_CASE("a series refused by the cardinality guard rejects its line only") {
  testing::TempDir dir;
  metrics::Metrics metrics;
  store::StoreOptions options{.data_dir = dir.path()};
  options.limits.max_series = 1;
  auto store = std::move(store::RocksDbStore::open(options, &metrics)).value();
  IngestMetrics ingest_metrics(metrics.registry());
  testing::FakeClock clock;
  WritePipeline pipeline(*store, ingest_metrics, clock);
  auto r = pipeline.write("a value=1 1\nb value=2 2\na value=3 3\n", Precision::kSeconds,
                          Protocol::kHttp);
  REQUIRE(r.storage.is_ok());
  CHECK(r.lines_accepted == 2);
  CHECK(r.lines_rejected == 1);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 2);
  CHECK(r.errors[0].message.find("storage.max_series") != std::string::npos);
  CHECK(metrics.scrape().find("reason=\"series_limit\"") != std::string::npos);
  CHECK(store->series_count() == 1);
}

TEST_CASE("timestamps beyond the store's range reject their line") {
  Fixture f;
  auto r = f.pipeline.write("a value=1 4611686018427387905\na value=2 2\n",
                            Precision::kMilliseconds, Protocol::kHttp);
  CHECK(r.lines_rejected == 1);
  CHECK(r.lines_accepted == 1);
}

TEST_CASE("the series cache maps repeated lines to the same series, and different ones apart") {
  Fixture f;
  for (int round = 0; round < 3; ++round) {
    std::string body;
    for (int i = 0; i < 50; ++i) {
      body += "m,host=h" + std::to_string(i) + " a=" + std::to_string(round) + ",b=1 " +
              std::to_string(1000 + round) + "\n";
    }
    body += "  \tm,host=h7 a=9 " + std::to_string(2000 + round) + "\n";  // leading blanks
    body += "m,host=h\\ 7 a=8 " + std::to_string(2000 + round) + "\n";   // escaped space
    REQUIRE(f.pipeline.write(body, Precision::kSeconds, Protocol::kHttp).storage.is_ok());
  }
  CHECK(f.store->series_count() == 101);  // 50 hosts x 2 fields, plus "h 7"'s a
  CHECK(f.points("m_a", "host", "h7").size() == 6);
  CHECK(f.points("m_a", "host", "h 7").size() == 3);
  CHECK(f.points("m_b", "host", "h49").size() == 3);
}

TEST_CASE("raw_series_part stops at the first unescaped space") {
  CHECK(raw_series_part("m,a=b v=1") == "m,a=b");
  CHECK(raw_series_part("  m\\ x,a=b\\ c v=1") == "m\\ x,a=b\\ c");
  CHECK(raw_series_part("m") == "m");
  CHECK(raw_series_part(" ").empty());
}

TEST_CASE("lines of a cached series still report field errors and take new fields") {
  Fixture f;
  auto first = f.pipeline.write("m,host=a x=1 1\n", Precision::kSeconds, Protocol::kHttp);
  REQUIRE(first.lines_accepted == 1);
  // Same series text: the fast path parses only fields, errors come from the full parse.
  auto bad =
      f.pipeline.write("m,host=a x=1 1\nm,host=a x= 2\n", Precision::kSeconds, Protocol::kHttp);
  CHECK(bad.lines_accepted == 1);
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].line == 2);
  CHECK(bad.errors[0].message.find("x") != std::string::npos);
  // A field the series text has not had before becomes its own series.
  auto more = f.pipeline.write("m,host=a x=3 3\nm,host=a y=4 3\nm,host=a x=5,y=6 4\n",
                               Precision::kSeconds, Protocol::kHttp);
  CHECK(more.lines_accepted == 3);
  CHECK(f.points("m_y", "host", "a").size() == 2);
  CHECK(f.points("m_x", "host", "a").size() == 3);
}

TEST_CASE("remote series seen before map to their series, new label sets to new ones") {
  Fixture f;
  const RemoteLabel up_a[] = {{"__name__", "up"}, {"job", "a"}};
  const RemoteLabel up_b[] = {{"job", "b"}, {"__name__", "up"}};  // any order, as sent
  const RemoteLabel up_ab[] = {{"__name__", "up"}, {"job", "ab"}};
  const RemoteSample s1[] = {{1000, 1}};
  const RemoteSample s2[] = {{2000, 2}};
  RemoteWriteRequest first;
  first.series = {{0, up_a, s1}, {1, up_b, s1}};
  WriteResult r = f.pipeline.write_remote(first, Protocol::kRemoteWrite);
  REQUIRE(r.storage.is_ok());
  CHECK(r.lines_accepted == 2);
  // The same series again (cached), and one whose labels run together alike.
  RemoteWriteRequest second;
  second.series = {{0, up_a, s2}, {1, up_ab, s2}, {2, up_b, s2}};
  r = f.pipeline.write_remote(second, Protocol::kRemoteWrite);
  REQUIRE(r.storage.is_ok());
  CHECK(r.lines_accepted == 3);
  CHECK(f.points("up", "job", "a").size() == 2);
  CHECK(f.points("up", "job", "b").size() == 2);
  CHECK(f.points("up", "job", "ab").size() == 1);
  CHECK(f.points("up").size() == 5);
}

TEST_CASE("series cache: once full it keeps what it holds instead of starting over") {
  ingest::SeriesCache cache(3);
  cache.remember("cpu,host=a", "v", 1);
  cache.remember("cpu,host=b", "v", 2);
  cache.remember("cpu,host=c", "v", 3);
  cache.remember("cpu,host=d", "v", 4);  // full: not taken
  CHECK(cache.size() == 3);
  CHECK(cache.find("cpu,host=a", "v") == std::optional<store::SeriesId>(1));
  CHECK(cache.find("cpu,host=c", "v") == std::optional<store::SeriesId>(3));
  CHECK_FALSE(cache.find("cpu,host=d", "v").has_value());
  cache.clear();
  cache.remember("cpu,host=d", "v", 4);
  CHECK(cache.find("cpu,host=d", "v") == std::optional<store::SeriesId>(4));
}
