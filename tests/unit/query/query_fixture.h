#pragma once
// A RocksDB store in a temp dir with an Engine over it, and helpers that REQUIRE success.

#include <catch2/catch.hpp>
#include <cmath>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kpid/query/engine.h"
#include "kpid/store/rocksdb_store.h"
#include "support/temp_dir.h"

namespace kpid::testing {

// A whole day two days back: inside any raw retention measured from the real clock (a store may
// use it), and aligned to every rollup width.
inline TimestampMs base_time() {
  static const TimestampMs base = (SystemClock().now_ms() / 86'400'000 - 2) * 86'400'000;
  return base;
}

inline constexpr DurationMs kSec = 1000;
inline constexpr DurationMs kMin = 60 * kSec;
inline constexpr DurationMs kHour = 60 * kMin;

using LabelList = std::initializer_list<std::pair<const char*, const char*>>;

struct QueryFixture {
  TempDir dir;
  std::unique_ptr<store::RocksDbStore> store =
      std::move(store::RocksDbStore::open({dir.path(), false}, nullptr)).value();
  query::Engine engine{*store, query::QueryOptions{}};

  store::SeriesId add(LabelList labels, const std::vector<store::Point>& points) {
    LabelsBuilder b;
    for (const auto& [n, v] : labels) b.add(n, v);
    REQUIRE(b.finish().empty());
    auto id = store->resolve(b.key());
    REQUIRE(id.is_ok());
    std::vector<store::Sample> samples;
    for (const auto& p : points) samples.push_back({*id, p.timestamp, p.value});
    REQUIRE(store->append(samples).is_ok());
    return *id;
  }

  query::QueryResult instant(const std::string& q, TimestampMs t,
                             query::QueryStats* stats = nullptr) const {
    auto r = engine.instant(q, t, stats);
    INFO("query " << q << ": " << (r ? std::string("ok") : r.status().message()));
    REQUIRE(r.is_ok());
    return std::move(r).value();
  }

  query::QueryResult range(const std::string& q, TimestampMs start, TimestampMs end,
                           DurationMs step, query::QueryStats* stats = nullptr) const {
    auto r = engine.range(q, start, end, step, stats);
    INFO("query " << q << ": " << (r ? std::string("ok") : r.status().message()));
    REQUIRE(r.is_ok());
    REQUIRE(r->type == query::ValueType::kMatrix);
    return std::move(r).value();
  }

  // The message of a failing instant query.
  std::string error(const std::string& q, TimestampMs t = 0) const {
    auto r = engine.instant(q, t);
    INFO("query " << q);
    REQUIRE_FALSE(r.is_ok());
    return r.status().message();
  }

  // The value of a query that yields a scalar or a one-element vector.
  double value(const std::string& q, TimestampMs t) const {
    auto r = instant(q, t);
    INFO("query " << q);
    if (r.type == query::ValueType::kScalar) return r.scalar;
    REQUIRE(r.type == query::ValueType::kVector);
    REQUIRE(r.series.size() == 1);
    REQUIRE(r.series[0].points.size() == 1);
    return r.series[0].points[0].value;
  }
};

// "a=1,b=2" for a result series' labels, for compact assertions.
inline std::string label_text(const Labels& labels) {
  std::string out;
  for (const auto& l : labels.items()) {
    if (!out.empty()) out += ",";
    out += l.name + "=" + l.value;
  }
  return out;
}

// label text -> value of a one-point-per-series instant vector.
inline std::map<std::string, double> by_labels(const query::QueryResult& r) {
  REQUIRE(r.type == query::ValueType::kVector);
  std::map<std::string, double> out;
  for (const auto& s : r.series) {
    REQUIRE(s.points.size() == 1);
    out[label_text(*s.labels)] = s.points[0].value;
  }
  return out;
}

}  // namespace kpid::testing
