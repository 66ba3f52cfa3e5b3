#include "promql_diff_data.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <tuple>

namespace kpid_it::promql_diff {

namespace {

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// splitmix64: the same sequence on every platform, unlike std::*_distribution.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
  // Millisecond jitter in [2, 999]: never a whole second, nor 1 ms past one (subqueries are
  // compared 1 ms past whole seconds, see promql_diff_test.cpp).
  int64_t jitter() { return 2 + below(998); }

 private:
  uint64_t state_;
};

using Labels = std::map<std::string, std::string>;

struct Builder {
  DataSet& data;
  Rng rng;

  // Sample times every `interval` in [from, to) (offsets from the start), jittered.
  std::vector<int64_t> times(int64_t interval, int64_t from, int64_t to) {
    std::vector<int64_t> out;
    for (int64_t t = from; t < to; t += interval) out.push_back(data.start_ms + t + rng.jitter());
    return out;
  }
  Series& add(Labels labels) {
    data.series.push_back(Series{std::move(labels), {}});
    return data.series.back();
  }
  int64_t span() const { return data.end_ms - data.start_ms; }
};

void counters(Builder& b) {
  struct Spec {
    std::string job, instance, code;
    int64_t from, to;      // offsets
    int64_t reset_at;      // offset of a reset, or -1
    double rate_per_step;  // mean increment
  };
  const int64_t span = b.span();
  const std::vector<Spec> specs = {
      {"api", "a:9090", "200", 0, span, 95 * kMinute, 10},
      {"api", "a:9090", "500", 0, span, -1, 0.5},
      {"api", "b:9090", "200", 0, span, 35 * kMinute, 12},
      {"api", "b:9090", "500", 0, 150 * kMinute, -1, 0.25},  // ends mid-range
      {"api", "c:9090", "200", 70 * kMinute, span, -1, 3},   // starts mid-range
      {"web", "a:9090", "200", 0, span, 120 * kMinute, 7.5},
      {"web", "b:9090", "200", 0, span, -1, 4},
      {"web", "b:9090", "404", 0, span, 61 * kMinute, 1},
  };
  for (const auto& s : specs) {
    Series& series = b.add({{"__name__", "http_requests_total"},
                            {"job", s.job},
                            {"instance", s.instance},
                            {"code", s.code}});
    double v = static_cast<double>(b.rng.below(100));
    bool reset_done = false;
    for (const int64_t t : b.times(15 * kSecond, s.from, s.to)) {
      const double inc = s.rate_per_step * static_cast<double>(b.rng.below(200)) / 100.0;
      if (s.reset_at >= 0 && !reset_done && t - b.data.start_ms >= s.reset_at) {
        reset_done = true;
        v = inc;
      } else {
        v += inc;
      }
      series.samples.push_back({t, v});
    }
  }
  // Same labels as one http_requests_total series: a regex over __name__ then yields two
  // series with one label set once the name is dropped.
  Series& errors = b.add(
      {{"__name__", "http_errors_total"}, {"job", "api"}, {"instance", "a:9090"}, {"code", "500"}});
  double v = 0;
  for (const int64_t t : b.times(30 * kSecond, 0, span)) {
    v += static_cast<double>(b.rng.below(3));
    errors.samples.push_back({t, v});
  }
}

void gauges(Builder& b) {
  // Temperatures with gaps longer than the lookback.
  struct Spec {
    std::string instance, room;
    int64_t gap_from, gap_to;
    double base;
  };
  const std::vector<Spec> specs = {
      {"a:9090", "dc-1", 40 * kMinute, 52 * kMinute, 21.5},
      {"b:9090", "dc-1", 100 * kMinute, 131 * kMinute, 23.25},
      {"c:9090", "dc-2", 15 * kMinute, 16 * kMinute, -4.75},
      {"d:9090", "dc-2", -1, -1, 0.125},
  };
  for (const auto& s : specs) {
    Series& series = b.add(
        {{"__name__", "node_temperature_celsius"}, {"instance", s.instance}, {"room", s.room}});
    for (const int64_t t : b.times(30 * kSecond, 0, b.span())) {
      const int64_t off = t - b.data.start_ms;
      if (off >= s.gap_from && off < s.gap_to) continue;
      const double v = s.base + static_cast<double>(b.rng.below(2001) - 1000) / 128.0;
      series.samples.push_back({t, v});
    }
  }
  // NaN and ±Inf among ordinary values.
  const std::vector<std::string> kinds = {"nan", "inf", "ninf", "mixed"};
  for (size_t k = 0; k < kinds.size(); ++k) {
    Series& series = b.add({{"__name__", "weird_gauge"}, {"kind", kinds[k]}});
    int i = 0;
    for (const int64_t t : b.times(60 * kSecond, 0, b.span())) {
      double v = static_cast<double>(b.rng.below(1000)) / 10.0 - 20;
      ++i;
      if ((kinds[k] == "nan" || kinds[k] == "mixed") && i % 7 == 0) v = kNaN;
      if ((kinds[k] == "inf" || kinds[k] == "mixed") && i % 11 == 0) v = kInf;
      if ((kinds[k] == "ninf" || kinds[k] == "mixed") && i % 13 == 0) v = -kInf;
      series.samples.push_back({t, v});
    }
  }
  // Ties for topk/bottomk/sort, constant over time.
  const std::array<double, 5> tie_values = {10, 10, 5, 5, 7};
  for (size_t i = 0; i < tie_values.size(); ++i) {
    Series& series = b.add(
        {{"__name__", "ties_gauge"}, {"id", std::to_string(i + 1)}, {"group", i < 3 ? "x" : "y"}});
    for (const int64_t t : b.times(60 * kSecond, 0, b.span())) {
      series.samples.push_back({t, tie_values[i]});
    }
  }
  // Info series for joins: several per job (many-to-many on job), one per instance.
  const std::vector<std::tuple<std::string, std::string, std::string, std::string>> infos = {
      {"api", "a:9090", "linux", "eu-west-1"},    {"api", "b:9090", "linux", "us-east-1"},
      {"api", "c:9090", "windows", "eu-west-1"},  {"web", "a:9090", "linux", "eu-west-1"},
      {"web", "b:9090", "freebsd", "ap-south-1"},
  };
  for (const auto& [job, instance, os, region] : infos) {
    Series& series = b.add({{"__name__", "node_info"},
                            {"job", job},
                            {"instance", instance},
                            {"os", os},
                            {"region", region}});
    for (const int64_t t : b.times(60 * kSecond, 0, b.span())) series.samples.push_back({t, 1});
  }
  // Label values for label_replace, label_join and regex matchers.
  const std::vector<std::tuple<std::string, std::string, std::string>> services = {
      {"checkout-api-v2", "/api/v1/users", "prod"},
      {"checkout-web-v10", "/cart/items", "prod"},
      {"search-api-v1", "/api/v2/search", "staging"},
      {"Search.API", "", "dev"},
  };
  for (const auto& [service, path, env] : services) {
    Labels labels = {{"__name__", "service_status"}, {"service", service}, {"env", env}};
    if (!path.empty()) labels["path"] = path;
    Series& series = b.add(labels);
    for (const int64_t t : b.times(60 * kSecond, 0, b.span())) {
      series.samples.push_back({t, static_cast<double>(b.rng.below(5))});
    }
  }
}

void stale(Builder& b) {
  // Gauges and a counter that go stale (a stale marker) and come back: one pause longer than the
  // lookback, one shorter, and a final marker.
  struct Spec {
    std::string name, instance;
    bool counter;
  };
  const std::vector<Spec> specs = {
      {"stale_gauge", "x", false},
      {"stale_gauge", "y", false},
      {"stale_requests_total", "x", true},
  };
  const std::vector<std::pair<int64_t, int64_t>> pauses_x = {{40 * kMinute, 50 * kMinute},
                                                             {100 * kMinute, 103 * kMinute},
                                                             {150 * kMinute, 1000 * kMinute}};
  const std::vector<std::pair<int64_t, int64_t>> pauses_y = {{70 * kMinute, 71 * kMinute},
                                                             {130 * kMinute, 140 * kMinute}};
  for (const auto& s : specs) {
    Series& series = b.add({{"__name__", s.name}, {"instance", s.instance}});
    const auto& pauses = s.instance == "x" ? pauses_x : pauses_y;
    double v = 0;
    bool paused = false;
    for (const int64_t t : b.times(30 * kSecond, 0, b.span())) {
      const int64_t off = t - b.data.start_ms;
      const bool in_pause = std::any_of(pauses.begin(), pauses.end(), [&](const auto& p) {
        return off >= p.first && off < p.second;
      });
      if (in_pause) {
        if (!paused) series.samples.push_back({t, 0, true});
        paused = true;
        continue;
      }
      paused = false;
      const double r = static_cast<double>(b.rng.below(100));
      v = s.counter ? v + r : r / 4.0;
      series.samples.push_back({t, v});
    }
  }
}

void histograms(Builder& b) {
  const std::vector<std::string> les = {"0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"};
  // Share of observations per bucket (non-cumulative), per instance.
  const std::vector<std::array<int, 7>> weights = {{5, 20, 30, 25, 10, 5, 5},
                                                   {1, 4, 10, 30, 30, 20, 5}};
  const std::vector<std::string> instances = {"a:9090", "b:9090"};
  const int64_t span = b.span();
  for (size_t h = 0; h < instances.size(); ++h) {
    std::vector<Series*> buckets;
    // Stable addresses: reserve before taking pointers.
    b.data.series.reserve(b.data.series.size() + les.size() + 2);
    for (const auto& le : les) {
      buckets.push_back(&b.add({{"__name__", "request_duration_seconds_bucket"},
                                {"job", "api"},
                                {"instance", instances[h]},
                                {"le", le}}));
    }
    Series& sum = b.add(
        {{"__name__", "request_duration_seconds_sum"}, {"job", "api"}, {"instance", instances[h]}});
    Series& count = b.add({{"__name__", "request_duration_seconds_count"},
                           {"job", "api"},
                           {"instance", instances[h]}});
    std::array<double, 7> cum{};
    double total_sum = 0;
    for (const int64_t t : b.times(15 * kSecond, 0, span)) {
      const int n = static_cast<int>(b.rng.below(40));
      std::array<double, 7> add{};
      for (int i = 0; i < n; ++i) {
        int64_t pick = b.rng.below(100);
        size_t k = 0;
        while (k + 1 < add.size() && pick >= weights[h][k]) pick -= weights[h][k++];
        add[k] += 1;
        total_sum += (k == 0 ? 0.03 : std::stod(les[k - 1]) * 1.2);
      }
      double running = 0;
      for (size_t k = 0; k < add.size(); ++k) {
        running += add[k];
        cum[k] += running;
      }
      for (size_t k = 0; k < les.size(); ++k) {
        double v = cum[k];
        // Instance b's le="0.5" bucket lags behind le="0.25": not monotonic in le.
        if (h == 1 && les[k] == "0.5") v = std::floor(cum[2] * 0.9);
        buckets[k]->samples.push_back({t, v});
      }
      sum.samples.push_back({t, total_sum});
      count.samples.push_back({t, cum[6]});
    }
  }
  // A histogram without a +Inf bucket.
  const std::vector<std::string> rpc_les = {"0.1", "1", "10"};
  std::vector<double> rpc(rpc_les.size(), 0);
  b.data.series.reserve(b.data.series.size() + rpc_les.size());
  std::vector<Series*> rpc_series;
  for (const auto& le : rpc_les) {
    rpc_series.push_back(
        &b.add({{"__name__", "rpc_latency_seconds_bucket"}, {"job", "web"}, {"le", le}}));
  }
  for (const int64_t t : b.times(30 * kSecond, 0, span)) {
    double running = 0;
    for (size_t k = 0; k < rpc.size(); ++k) {
      running += static_cast<double>(b.rng.below(10));
      rpc[k] += running;
      rpc_series[k]->samples.push_back({t, rpc[k]});
    }
  }
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip form
  return std::string(buf, r.ptr);
}

std::string format_seconds(int64_t ms) {
  const int64_t s = ms / 1000;
  const int64_t frac = ms % 1000;
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%03lld", static_cast<long long>(frac));
  return std::to_string(s) + "." + buf;
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

bool Series::has_stale_markers() const {
  return std::any_of(samples.begin(), samples.end(), [](const Sample& s) { return s.stale; });
}

DataSet generate(int64_t start_ms, int hours) {
  DataSet data;
  data.start_ms = start_ms;
  data.end_ms = start_ms + hours * 3600 * kSecond;
  data.series.reserve(128);
  Builder b{data, Rng(19)};
  counters(b);
  gauges(b);
  stale(b);
  histograms(b);
  return data;
}

std::string openmetrics(const DataSet& data) {
  struct Line {
    int64_t t_ms;
    uint64_t order;  // a fixed shuffle of the series at one time
    std::string text;
  };
  std::vector<Line> lines;
  Rng rng(42);
  std::vector<uint64_t> order(data.series.size());
  for (auto& o : order) o = rng.next();
  for (size_t i = 0; i < data.series.size(); ++i) {
    const Series& s = data.series[i];
    if (s.has_stale_markers()) continue;
    std::string head = s.labels.at("__name__");
    std::string sep = "{";
    for (const auto& [name, value] : s.labels) {
      if (name == "__name__") continue;
      head += sep + name + "=\"" + escape_label(value) + "\"";
      sep = ",";
    }
    if (sep == ",") head += "}";
    for (const Sample& sample : s.samples) {
      lines.push_back(
          {sample.t_ms, order[i],
           head + " " + format_value(sample.value) + " " + format_seconds(sample.t_ms)});
    }
  }
  std::sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
    return std::tie(a.t_ms, a.order) < std::tie(b.t_ms, b.order);
  });
  std::string out;
  out.reserve(lines.size() * 80);
  for (const auto& l : lines) out += l.text + "\n";
  out += "# EOF\n";
  return out;
}

}  // namespace kpid_it::promql_diff
