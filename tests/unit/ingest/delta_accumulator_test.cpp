#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "kpid/ingest/delta_accumulator.h"

using namespace kpid;
using namespace kpid::ingest;

namespace {

// The state store in memory; `fail` makes writes fail, as a full disk would.
class MemoryState final : public store::StateStore {
 public:
  bool fail = false;
  std::map<std::string, std::string, std::less<>> records;

  Status write_state(std::span<const std::pair<std::string, std::string>> puts,
                     std::span<const std::string> erase) override {
    if (fail) return Status::io_error("disk full");
    for (const auto& k : erase) records.erase(k);
    for (const auto& [k, v] : puts) records[k] = v;
    return Status::ok();
  }
  Result<std::optional<std::string>> get_state(std::string_view key) const override {
    auto it = records.find(key);
    return it == records.end() ? std::optional<std::string>() : std::optional(it->second);
  }
  Status scan_state(
      std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& visit) const override {
    for (auto it = records.lower_bound(prefix);
         it != records.end() && it->first.starts_with(prefix); ++it) {
      if (!visit(it->first, it->second)) break;
    }
    return Status::ok();
  }
  Status scan_state_reverse(
      std::string_view,
      const std::function<bool(std::string_view, std::string_view)>&) const override {
    return Status::ok();
  }
};

const RemoteLabel kLabels[] = {{"job", "shop"}};

OtlpDelta sum_delta(int64_t end_s, double value, int64_t start_s = 0) {
  OtlpDelta d;
  d.kind = OtlpDelta::Kind::kSum;
  d.name = "jobs_total";
  d.labels = kLabels;
  d.start_ns = start_s * 1'000'000'000;
  d.end_ns = end_s * 1'000'000'000;
  d.value = value;
  return d;
}

// The series a batch produced: name{le} -> value.
std::map<std::string, double> series_of(OtlpSeriesBuilder& builder) {
  RemoteWriteRequest request;
  std::vector<size_t> points;
  builder.finish(request, points);
  std::map<std::string, double> out;
  for (const auto& s : request.series) {
    std::string key(s.labels[0].value);
    for (const auto& l : s.labels) {
      if (l.name == "le") key += "{le=" + std::string(l.value) + "}";
    }
    out[key] = s.samples[0].value;
  }
  builder.clear();
  return out;
}

const auto kAll = [](size_t) { return true; };

// Adds `d` in a batch of its own and commits it; returns the stream's series, or the refusal.
std::map<std::string, double> add_one(DeltaAccumulator& acc, const OtlpDelta& d,
                                      std::string* refused = nullptr) {
  OtlpSeriesBuilder builder;
  auto batch = acc.begin();
  std::string why = batch.add(d, builder);
  if (refused != nullptr) *refused = why;
  REQUIRE(batch.commit(kAll).is_ok());
  return series_of(builder);
}

}  // namespace

TEST_CASE("delta accumulator: sums add up per stream, a duplicate or late delta is refused") {
  MemoryState state;
  DeltaAccumulator acc(state);
  CHECK(add_one(acc, sum_delta(10, 5)).at("jobs_total") == 5);
  CHECK(add_one(acc, sum_delta(20, 3, 10)).at("jobs_total") == 8);

  std::string refused;
  CHECK(add_one(acc, sum_delta(20, 3, 10), &refused).empty());  // the same point again
  CHECK(refused.find("duplicate or out-of-order delta") != std::string::npos);
  CHECK(add_one(acc, sum_delta(15, 1, 10), &refused).empty());  // older than the last
  CHECK(!refused.empty());

  // A gap (start after the last end: the sender lost deltas) still adds.
  CHECK(add_one(acc, sum_delta(40, 2, 30), &refused).at("jobs_total") == 10);
  CHECK(refused.empty());

  // Another label set is another stream.
  OtlpDelta other = sum_delta(40, 1);
  const RemoteLabel other_labels[] = {{"job", "other"}};
  other.labels = other_labels;
  CHECK(add_one(acc, other).at("jobs_total") == 1);
  CHECK(acc.streams() == 2);
}

TEST_CASE("delta accumulator: several points of one stream in one request chain") {
  MemoryState state;
  DeltaAccumulator acc(state);
  OtlpSeriesBuilder builder;
  auto batch = acc.begin();
  CHECK(batch.add(sum_delta(10, 1), builder).empty());
  CHECK(batch.add(sum_delta(20, 2), builder).empty());
  CHECK(!batch.add(sum_delta(20, 2), builder).empty());
  REQUIRE(batch.commit(kAll).is_ok());
  RemoteWriteRequest request;
  std::vector<size_t> points;
  builder.finish(request, points);
  REQUIRE(request.series.size() == 2);
  CHECK(request.series[0].samples[0].value == 1);
  CHECK(request.series[1].samples[0].value == 3);
  CHECK(request.series[1].samples[0].timestamp_ms == 20'000);
}

TEST_CASE("delta accumulator: write, then apply, and totals survive a restart") {
  MemoryState state;
  {
    DeltaAccumulator acc(state);
    add_one(acc, sum_delta(10, 5));

    SECTION("a failed state write leaves the total where it was") {
      state.fail = true;
      OtlpSeriesBuilder builder;
      {
        auto batch = acc.begin();
        CHECK(batch.add(sum_delta(20, 3), builder).empty());
        auto s = batch.commit(kAll);
        CHECK(s.code() == StatusCode::kUnavailable);
        CHECK(s.message().find("disk full") != std::string::npos);
      }
      state.fail = false;
      // The retry of the same request gives the same value at the same time.
      CHECK(add_one(acc, sum_delta(20, 3)).at("jobs_total") == 8);
    }
    SECTION("points whose series were not stored do not advance the total") {
      OtlpSeriesBuilder builder;
      auto batch = acc.begin();
      CHECK(batch.add(sum_delta(20, 3), builder).empty());
      REQUIRE(batch.commit([](size_t) { return false; }).is_ok());
    }
  }
  DeltaAccumulator restarted(state);
  REQUIRE(restarted.load().is_ok());
  CHECK(restarted.streams() == 1);
  std::string refused;
  auto next = add_one(restarted, sum_delta(30, 1), &refused);
  CHECK(refused.empty());
  // 5 + 1, or 8 + 1 when the failed-write section's retry was committed.
  CHECK((next.at("jobs_total") == 6 || next.at("jobs_total") == 9));
}

TEST_CASE("delta accumulator: a corrupt record is an error at load") {
  MemoryState state;
  state.records["otlp_delta/x"] = "garbage";
  DeltaAccumulator acc(state);
  auto s = acc.load();
  CHECK(s.code() == StatusCode::kInternal);
  CHECK(s.message().find("corrupt OTLP delta state") != std::string::npos);
}

TEST_CASE("delta accumulator: explicit histograms add per bucket, new bounds start over") {
  MemoryState state;
  DeltaAccumulator acc(state);
  std::vector<double> bounds = {1, 5};
  std::vector<double> counts = {1, 2, 1};
  OtlpDelta d;
  d.kind = OtlpDelta::Kind::kHistogram;
  d.name = "lat_seconds";
  d.labels = kLabels;
  d.end_ns = 10'000'000'000;
  d.count = 4;
  d.sum = 10;
  d.has_sum = true;
  d.bounds = bounds;
  d.bucket_counts = counts;
  add_one(acc, d);
  d.end_ns = 20'000'000'000;
  auto second = add_one(acc, d);
  CHECK(second.at("lat_seconds_bucket{le=1}") == 2);
  CHECK(second.at("lat_seconds_bucket{le=5}") == 6);
  CHECK(second.at("lat_seconds_bucket{le=+Inf}") == 8);
  CHECK(second.at("lat_seconds_sum") == 20);
  CHECK(second.at("lat_seconds_count") == 8);

  std::vector<double> new_bounds = {2};
  std::vector<double> new_counts = {3, 0};
  d.bounds = new_bounds;
  d.bucket_counts = new_counts;
  d.count = 3;
  d.end_ns = 30'000'000'000;
  auto restarted = add_one(acc, d);
  CHECK(restarted.at("lat_seconds_bucket{le=2}") == 3);
  CHECK(restarted.at("lat_seconds_count") == 3);
}

TEST_CASE("delta accumulator: exponential histograms add at the coarser scale") {
  MemoryState state;
  DeltaAccumulator acc(state);
  std::vector<double> fine = {1, 1};  // scale 1, OTLP buckets 2 and 3: (2, 2.83], (2.83, 4]
  OtlpDelta d;
  d.kind = OtlpDelta::Kind::kExponentialHistogram;
  d.name = "size_bytes";
  d.labels = kLabels;
  d.end_ns = 10'000'000'000;
  d.scale = 1;
  d.count = 2;
  d.sum = 6;
  d.has_sum = true;
  d.positive_offset = 2;
  d.positive_counts = fine;
  add_one(acc, d);

  std::vector<double> coarse = {2};  // scale 0, OTLP bucket 1: (2, 4]
  d.scale = 0;
  d.positive_offset = 1;
  d.positive_counts = coarse;
  d.end_ns = 20'000'000'000;
  d.zero_count = 1;
  d.count = 3;
  auto total = add_one(acc, d);
  CHECK(total.at("size_bytes_bucket{le=4}") == 5);
  CHECK(total.at("size_bytes_bucket{le=2}") == 1);  // the zero bucket's observation
  CHECK(total.at("size_bytes_bucket{le=+Inf}") == 5);
  CHECK(total.at("size_bytes_count") == 5);
  CHECK(total.at("size_bytes_sum") == 12);

  // The total (no negative buckets: an empty list) comes back after a restart.
  DeltaAccumulator restarted(state);
  REQUIRE(restarted.load().is_ok());
  d.end_ns = 30'000'000'000;
  d.zero_count = 0;
  d.count = 2;
  CHECK(add_one(restarted, d).at("size_bytes_count") == 7);

  // Buckets far apart are summed at a scale coarse enough to hold both in few buckets.
  std::vector<double> far = {1};
  d.positive_offset = 1 << 29;
  d.positive_counts = far;
  d.end_ns = 40'000'000'000;
  d.count = 1;
  auto wide = add_one(restarted, d);
  CHECK(wide.at("size_bytes_count") == 8);
  CHECK(wide.size() < 200);
}
