// kill -9 at random moments under load, several rounds on one data dir: after every restart
// each acknowledged sample is there exactly once with its value, and nothing else is.
// The load mixes in-order writes (heads), backfill into sealed windows and overwrites, with a
// short checkpoint interval so kills land before, during and after checkpoints.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "harness.h"

using namespace kpid_it;

namespace {

constexpr int kWriters = 2;
constexpr int kSeriesPerWriter = 8;
constexpr int64_t kHour = 3'600'000;

// What a writer may find after a crash: the acknowledged value, or one written by a request
// that was in flight when kpid died (it may or may not have been applied).
struct Expected {
  std::optional<double> acked;
  std::set<double> maybe;
};

using SeriesModel = std::map<int64_t, Expected>;  // timestamp -> value(s)

struct Writer {
  int index;
  std::vector<SeriesModel> series = std::vector<SeriesModel>(kSeriesPerWriter);
  int64_t next_ts;
  std::mt19937_64 rng;
  std::string error;
  int requests = 0;

  Writer(int i, int64_t start) : index(i), next_ts(start), rng(1234 + i) {}

  std::string line(int s, int64_t ts, double v) const {
    return "crash,w=" + std::to_string(index) + ",s=" + std::to_string(s) +
           " value=" + std::to_string(v) + " " + std::to_string(ts) + "\n";
  }

  // One request: mostly new samples, sometimes backfill hours back, sometimes overwrites.
  void run(uint16_t port, const std::atomic<bool>& stop) {
    HttpClient c(port, 5s);
    while (!stop.load()) {
      std::string body;
      std::vector<std::tuple<int, int64_t, double>> batch;
      const int kind = static_cast<int>(rng() % 10);
      for (int s = 0; s < kSeriesPerWriter; ++s) {
        for (int k = 0; k < 25; ++k) {
          int64_t ts;
          if (kind == 0) {  // backfill: a few hours before the live data
            ts = next_ts - (2 + static_cast<int64_t>(rng() % 6)) * kHour -
                 static_cast<int64_t>(rng() % kHour);
          } else if (kind == 1 && !series[s].empty()) {  // overwrite something already written
            auto it = series[s].begin();
            std::advance(it, static_cast<long>(rng() % series[s].size()));
            ts = it->first;
          } else {
            ts = next_ts + k * 1000;
          }
          const double v = static_cast<double>(rng() % 100'000) / 100.0;
          batch.emplace_back(s, ts, v);
          body += line(s, ts, v);
        }
      }
      if (kind >= 2) next_ts += 25'000;
      // Before sending: each value becomes possible.
      for (auto& [s, ts, v] : batch) series[s][ts].maybe.insert(v);
      HttpResponse r;
      try {
        r = c.request("POST", "/write?precision=ms", body);
      } catch (const std::exception& e) {
        error = e.what();
        return;  // kpid was killed
      }
      if (r.status != 204) {
        error = "status " + std::to_string(r.status) + ": " + r.body;
        return;
      }
      ++requests;
      // Acknowledged: the last value per timestamp in this request is the one that holds.
      for (auto& [s, ts, v] : batch) {
        auto& e = series[s][ts];
        e.acked = v;
        e.maybe.clear();
      }
    }
  }
};

// Every sample of crash{w,s} (a field named "value" takes the measurement's name) within [from, to]
// via a range selector at an instant query.
std::map<int64_t, double> stored(const Kpid& k, int w, int s, int64_t from, int64_t to) {
  const int64_t range_s = (to - from) / 1000 + 1;
  const std::string q = "crash{w=\"" + std::to_string(w) + "\",s=\"" + std::to_string(s) + "\"}[" +
                        std::to_string(range_s) + "s]";
  const auto r = k.get("/api/v1/query?query=" + url_encode(q) + "&time=" + fmt_seconds(to));
  REQUIRE(r.status == 200);
  std::map<int64_t, double> out;
  const boost::json::value body = r.json();
  const auto& result = body.at("data").at("result").as_array();
  if (result.empty()) return out;
  REQUIRE(result.size() == 1);
  for (const auto& pair : result[0].at("values").as_array()) {
    const auto& a = pair.as_array();
    const auto ts = static_cast<int64_t>(std::llround(a[0].to_number<double>() * 1000));
    const bool fresh = out.emplace(ts, std::strtod(a[1].as_string().c_str(), nullptr)).second;
    CHECK(fresh);  // each timestamp once
  }
  return out;
}

}  // namespace

TEST_CASE("crash: kill -9 at random moments under load keeps every acknowledged sample once",
          "[crash][durability]") {
  KpidOptions options;
  options.config_toml = "[storage]\ncheckpoint_interval = \"1s\"\nhead_max_samples = 20000\n";
  Kpid k(options);
  const int64_t start = (now_ms() / kHour) * kHour - 10 * kHour;
  std::vector<Writer> writers;
  for (int w = 0; w < kWriters; ++w) writers.emplace_back(w, start + w * 7);
  std::mt19937_64 rng(99);

  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    k.start();
    std::atomic<bool> stop{false};
    {
      std::vector<std::jthread> threads;
      for (auto& w : writers) {
        w.error.clear();
        threads.emplace_back([&w, &k, &stop] { w.run(k.http_port(), stop); });
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 1500));
      k.kill9();
      stop = true;
    }
    for (auto& w : writers) {
      INFO("writer " << w.index << " ended with: " << w.error);
      CHECK(w.requests > 0);
    }
    k.start();
    for (auto& w : writers) {
      for (int s = 0; s < kSeriesPerWriter; ++s) {
        const auto got = stored(k, w.index, s, start - 10 * kHour, w.next_ts + kHour);
        size_t acked = 0;
        std::vector<std::string> problems;
        for (const auto& [ts, e] : w.series[s]) {
          auto it = got.find(ts);
          if (e.acked) ++acked;
          if (it == got.end()) {
            if (e.acked) problems.push_back("missing acknowledged sample at " + std::to_string(ts));
            continue;
          }
          const bool ok = (e.acked && *e.acked == it->second) || e.maybe.count(it->second) > 0;
          if (!ok) {
            problems.push_back("wrong value " + std::to_string(it->second) + " at " +
                               std::to_string(ts));
          }
        }
        for (const auto& [ts, v] : got) {
          if (w.series[s].count(ts) == 0)
            problems.push_back("never written: " + std::to_string(ts));
        }
        INFO("writer " << w.index << " series " << s << ": " << acked << " acknowledged, "
                       << got.size() << " stored; " << problems.size()
                       << " problems, first: " << (problems.empty() ? "" : problems.front()));
        CHECK(problems.empty());
        // What survived is the truth for the next round.
        for (auto it = w.series[s].begin(); it != w.series[s].end();) {
          auto g = got.find(it->first);
          it->second.maybe.clear();
          if (g != got.end()) {
            it->second.acked = g->second;
            ++it;
          } else if (!it->second.acked) {
            it = w.series[s].erase(it);
          } else {
            ++it;
          }
        }
      }
    }
    k.kill9();
  }
}
