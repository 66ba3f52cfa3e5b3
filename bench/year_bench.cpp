// year_bench: generates a long history (by default a year of 10,000 series at 10 s, the kinds
// peer_load sends: 40% two-decimal random walks, 30% counters, 15% constants, 15% noisy floats;
// deterministic seed) and backfills it into a data dir through RocksDbStore::append, opened
// in-process. Series-major per day: each append holds one day (8,640 samples) of a group of
// series, days oldest first, so every 2-hour window of a series arrives in one append. Windows
// already past raw retention go straight into rollups (see README "Storage"); the newest
// retention.raw days are stored raw as usual. Prints samples/s; bench/year.sh runs it.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "kpid/core/labels.h"
#include "kpid/store/rocksdb_store.h"
#include "splitmix.h"

using namespace kpid;

namespace {

const char* const kUsage = R"(Usage: year_bench --data-dir DIR [OPTIONS]
  --series N        series (default 10000)
  --days D          days of history (default 365)
  --end-ago-days A  the history ends A days before now, on a 2-hour boundary (default 0)
  --interval-ms MS  sample interval (default 10000)
  --group G         series per append (default 50)
  --seed S          generator seed (default 1)
  --compact         a full compaction at the end (timed apart)
Series: bench_gauge / bench_counter / bench_const / bench_noise {host="hNNNNN"}; host h00000
is a gauge.
)";

struct Options {
  std::string data_dir;
  int series = 10'000;
  int days = 365;
  int end_ago_days = 0;
  int64_t interval = 10'000;
  int group = 50;
  uint64_t seed = 1;
  bool compact = false;
};

using kpid_bench::Rng;

enum class Kind { Gauge, Counter, Const, Noise };

// Per 100 series: 40 gauges, 30 counters, 15 constants, 15 noise.
Kind kind_of(int i) {
  const int r = i % 100;
  if (r < 40) return Kind::Gauge;
  if (r < 70) return Kind::Counter;
  if (r < 85) return Kind::Const;
  return Kind::Noise;
}

const char* name_of(Kind k) {
  switch (k) {
    case Kind::Gauge: return "bench_gauge";
    case Kind::Counter: return "bench_counter";
    case Kind::Const: return "bench_const";
    case Kind::Noise: return "bench_noise";
  }
  return "";
}

struct Series {
  store::SeriesId id = 0;
  Kind kind = Kind::Gauge;
  Rng rng{0};
  int64_t cents = 0;  // gauge, const: value in hundredths
  int64_t sigma = 0;  // gauge: step size in hundredths
  int64_t count = 0;  // counter
  int64_t rate = 0;   // counter: mean increment
  double centre = 0;  // noise
};

double next_value(Series& s) {
  switch (s.kind) {
    case Kind::Gauge: {
      // A random walk in hundredths, reflected at 0 (sum of uniforms: roughly bell-shaped).
      const double g = s.rng.uniform() + s.rng.uniform() + s.rng.uniform() - 1.5;
      s.cents = std::llabs(s.cents + std::llround(g * 2 * static_cast<double>(s.sigma)));
      return static_cast<double>(s.cents) / 100;
    }
    case Kind::Counter:
      s.count += static_cast<int64_t>(s.rng.below(static_cast<uint64_t>(2 * s.rate + 1)));
      return static_cast<double>(s.count);
    case Kind::Const: return static_cast<double>(s.cents) / 100;
    case Kind::Noise: return s.centre * (0.9 + 0.2 * s.rng.uniform());
  }
  return 0;
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    auto number = [&](auto& out) {
      const char* v = value();
      if (v == nullptr) return false;
      out = static_cast<std::remove_reference_t<decltype(out)>>(std::strtoll(v, nullptr, 10));
      return true;
    };
    bool ok = true;
    if (a == "--data-dir") {
      const char* v = value();
      ok = v != nullptr;
      if (ok) o.data_dir = v;
    } else if (a == "--series") {
      ok = number(o.series);
    } else if (a == "--days") {
      ok = number(o.days);
    } else if (a == "--end-ago-days") {
      ok = number(o.end_ago_days);
    } else if (a == "--interval-ms") {
      ok = number(o.interval);
    } else if (a == "--group") {
      ok = number(o.group);
    } else if (a == "--seed") {
      ok = number(o.seed);
    } else if (a == "--compact") {
      o.compact = true;
    } else {
      ok = false;
    }
    if (!ok) return false;
  }
  return !o.data_dir.empty() && o.series > 0 && o.days > 0 && o.interval > 0 && o.group > 0;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  store::StoreOptions so;
  so.data_dir = o.data_dir;
  auto opened = store::RocksDbStore::open(so, nullptr);
  if (!opened) {
    std::fprintf(stderr, "open: %s\n", opened.status().to_string().c_str());
    return 1;
  }
  auto& db = **opened;

  std::vector<Series> series(static_cast<size_t>(o.series));
  for (int i = 0; i < o.series; ++i) {
    Series& s = series[static_cast<size_t>(i)];
    s.kind = kind_of(i);
    s.rng.s = o.seed * 0xD1B54A32D192ED03ULL + static_cast<uint64_t>(i);
    s.cents = static_cast<int64_t>(s.rng.below(100'000));
    s.sigma = 1 + static_cast<int64_t>(s.rng.below(100));
    s.count = static_cast<int64_t>(s.rng.below(1'000'000));
    s.rate = 1 + static_cast<int64_t>(s.rng.below(2000));
    s.centre = 1 + s.rng.uniform() * 999;
    char host[16];
    std::snprintf(host, sizeof host, "h%05d", i);
    LabelsBuilder b;
    b.add("__name__", name_of(s.kind));
    b.add("host", host);
    if (auto err = b.finish(); !err.empty()) {
      std::fprintf(stderr, "labels: duplicate %.*s\n", static_cast<int>(err.size()), err.data());
      return 1;
    }
    auto id = db.resolve(b.key());
    if (!id) {
      std::fprintf(stderr, "resolve: %s\n", id.status().to_string().c_str());
      return 1;
    }
    s.id = *id;
  }

  constexpr int64_t kDayMs = 86'400'000;
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t end = (now - o.end_ago_days * kDayMs) / store::kChunkSpan * store::kChunkSpan;
  const int64_t start = end - o.days * kDayMs;  // samples in (start, end]
  const int64_t per_day = kDayMs / o.interval;
  std::printf("year_bench: %d series, %d days, every %lld ms, ending %lld (%d days ago)\n",
              o.series, o.days, static_cast<long long>(o.interval), static_cast<long long>(end),
              o.end_ago_days);

  std::vector<store::Sample> batch;
  batch.reserve(static_cast<size_t>(o.group * per_day));
  uint64_t total = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto report_at = t0;
  for (int d = 0; d < o.days; ++d) {
    const int64_t day_start = start + d * kDayMs;
    for (int g = 0; g < o.series; g += o.group) {
      batch.clear();
      for (int i = g; i < std::min(o.series, g + o.group); ++i) {
        Series& s = series[static_cast<size_t>(i)];
        for (int64_t k = 1; k <= per_day; ++k) {
          batch.push_back({s.id, day_start + k * o.interval, next_value(s)});
        }
      }
      // A refused write (pushback: compactions behind) is retried after a pause.
      for (;;) {
        auto st = db.append(batch);
        if (st) break;
        if (st.code() != StatusCode::kUnavailable) {
          std::fprintf(stderr, "append: %s\n", st.to_string().c_str());
          return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      total += batch.size();
    }
    if (seconds_since(report_at) >= 10 || d + 1 == o.days) {
      report_at = std::chrono::steady_clock::now();
      const double s = seconds_since(t0);
      std::printf("day %d/%d: %llu samples in %.1f s, %.0f samples/s\n", d + 1, o.days,
                  static_cast<unsigned long long>(total), s, static_cast<double>(total) / s);
      std::fflush(stdout);
    }
  }
  const double ingest_s = seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  if (auto st = db.maintain(); !st) {
    std::fprintf(stderr, "maintain: %s\n", st.to_string().c_str());
    return 1;
  }
  const double maintain_s = seconds_since(t1);
  double compact_s = 0;
  if (o.compact) {
    const auto t2 = std::chrono::steady_clock::now();
    if (auto st = db.compact(); !st) {
      std::fprintf(stderr, "compact: %s\n", st.to_string().c_str());
      return 1;
    }
    compact_s = seconds_since(t2);
  }
  std::printf(
      "backfilled %llu samples in %.1f s: %.0f samples/s; rollups of the raw windows %.1f s, "
      "compaction %.1f s; dropped past every retention: %llu\n",
      static_cast<unsigned long long>(total), ingest_s, static_cast<double>(total) / ingest_s,
      maintain_s, compact_s, static_cast<unsigned long long>(db.expired_samples_dropped()));
  if (auto st = db.close(); !st) {
    std::fprintf(stderr, "close: %s\n", st.to_string().c_str());
    return 1;
  }
  return 0;
}
