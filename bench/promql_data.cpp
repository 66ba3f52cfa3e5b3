// promql_data: the data set of bench/promql_peers (five dashboard queries in kpid,
// VictoriaMetrics and Prometheus), written in each system's import format so that all three
// hold the same samples. Deterministic: the same --end gives byte-identical samples. Modes:
//
//   openmetrics  write the data set as OpenMetrics text (seconds) to --out, for
//                `promtool tsdb create-blocks-from openmetrics`
//   send         POST it to 127.0.0.1:--port --path in bodies of --batch lines, as line
//                protocol (--format line, milliseconds: kpid's /write?precision=ms) or as
//                Prometheus text with millisecond timestamps (--format prom:
//                VictoriaMetrics' /api/v1/import/prometheus)
//
// The series (END is --end, a multiple of 1h):
//   http_requests_total{group, host, code}      10 000 counters: 1 000 hosts x 10 codes, 100
//                                                groups of 10 hosts; 4 h at 30 s. Series i
//                                                grows by 3 (i + 1) + u, u in [0, 1), per
//                                                scrape: rates are distinct and ordered, so
//                                                topk's choice is the same in every system.
//   host_info{host, team}                        1 000 gauges of 1 (20 teams); 4 h at 30 s
//   http_request_duration_seconds_bucket{instance, le}   500 cumulative bucket counters:
//                                                50 instances x 10 bounds; 4 h at 30 s
//   node_load{host}                              100 random walks; 30 days at 60 s
// Samples are sent time-major (every series at t, then t + 30 s...), as scrapes arrive.
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.h"

namespace {

constexpr int64_t kShortSpanS = 4 * 3600;
constexpr int64_t kLongSpanS = 30 * 86400;
constexpr int64_t kShortStepS = 30;
constexpr int64_t kLongStepS = 60;
constexpr int kHosts = 1000;
constexpr int kCodes = 10;
constexpr int kInstances = 50;
constexpr int kLoadSeries = 100;
constexpr std::array<std::string_view, kCodes> kCodeNames = {"200", "201", "204", "301", "304",
                                                             "400", "404", "429", "500", "503"};
constexpr std::array<double, 9> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
constexpr std::array<std::string_view, 10> kBoundNames = {"0.005", "0.01", "0.025", "0.05", "0.1",
                                                          "0.25",  "0.5",  "1",     "2.5",  "+Inf"};

const char* const kUsage = R"(Usage: promql_data MODE --end T [OPTIONS]

Modes:
  openmetrics  write the data set as OpenMetrics text to --out (for promtool)
  send         POST it to 127.0.0.1:--port --path, --batch lines per body (every reply 2xx)

Options:
  --end T          Unix seconds of the last sample; a multiple of 3600 (required)
  --out FILE       openmetrics: the file to write
  --port PORT      send: the server's HTTP port on 127.0.0.1
  --path PATH      send: e.g. /write?precision=ms or /api/v1/import/prometheus
  --format F       send: line (line protocol, ms) or prom (Prometheus text, ms)
  --batch N        send: lines per request body (default 20000)
)";

uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
double uniform(uint64_t& state) { return static_cast<double>(splitmix(state) >> 11) * 0x1.0p-53; }

enum class Format { kOpenMetrics, kLine, kProm };

// One sample in the chosen text format. Labels are given as name/value pairs in sorted order.
class Writer {
 public:
  explicit Writer(Format f) : format_(f) {}

  template <size_t N>
  void sample(std::string_view name,
              const std::array<std::pair<std::string_view, std::string_view>, N>& labels,
              double value, int64_t t_s) {
    out_ += name;
    if (format_ == Format::kLine) {
      for (const auto& [k, v] : labels) {
        out_ += ',';
        out_ += k;
        out_ += '=';
        out_ += v;
      }
      out_ += " value=";
    } else {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        out_ += v;
        out_ += '"';
      }
      out_ += "} ";
    }
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, value);
    out_.append(buf, r.ptr);
    out_ += ' ';
    r = std::to_chars(buf, buf + sizeof buf, t_s);
    out_.append(buf, r.ptr);
    if (format_ != Format::kOpenMetrics) out_ += "000";  // milliseconds
    out_ += '\n';
    ++lines_;
  }

  std::string& text() { return out_; }
  int64_t lines() const { return lines_; }
  void clear() {
    out_.clear();
    lines_ = 0;
  }

 private:
  Format format_;
  std::string out_;
  int64_t lines_ = 0;
};

std::string padded(char prefix, int i, int width) {
  std::string s(1, prefix);
  std::string digits = std::to_string(i);
  s.append(static_cast<size_t>(width) - digits.size(), '0');
  return s + digits;
}

// The data set, generated step by step; `flush(writer)` is called whenever a body may be cut.
class DataSet {
 public:
  explicit DataSet(int64_t end) : end_(end) {
    for (int h = 0; h < kHosts; ++h) hosts_.push_back(padded('h', h, 4));
    for (int g = 0; g < kHosts / 10; ++g) groups_.push_back(padded('g', g, 2));
    for (int t = 0; t < 20; ++t) teams_.push_back(padded('t', t, 2));
    for (int i = 0; i < kInstances; ++i) instances_.push_back(padded('i', i, 2));
    for (int i = 0; i < kLoadSeries; ++i) load_hosts_.push_back(padded('n', i, 3));
    counters_.assign(static_cast<size_t>(kHosts * kCodes), 0);
    buckets_.assign(static_cast<size_t>(kInstances * 10), 0);
    loads_.assign(kLoadSeries, 0);
    for (int i = 0; i < kLoadSeries; ++i) loads_[static_cast<size_t>(i)] = 1 + i % 7;
  }

  template <typename Flush>
  void generate(Writer& w, Flush&& flush) {
    const int64_t long_start = end_ - kLongSpanS + kLongStepS;
    const int64_t short_start = end_ - kShortSpanS + kShortStepS;
    for (int64_t t = long_start; t <= end_; t += kShortStepS) {
      if (t % kLongStepS == 0) load_step(w, t);
      if (t >= short_start) short_step(w, t);
      flush(w);
    }
  }

 private:
  void load_step(Writer& w, int64_t t) {
    for (int i = 0; i < kLoadSeries; ++i) {
      double& v = loads_[static_cast<size_t>(i)];
      v = std::abs(v + (uniform(rng_) - 0.5) * 0.2);
      v = std::round(v * 100) / 100;
      w.sample("node_load",
               std::array<std::pair<std::string_view, std::string_view>, 1>{
                   {{"host", load_hosts_[static_cast<size_t>(i)]}}},
               v, t);
    }
  }

  void short_step(Writer& w, int64_t t) {
    for (int h = 0; h < kHosts; ++h) {
      const auto& host = hosts_[static_cast<size_t>(h)];
      const auto& group = groups_[static_cast<size_t>(h / 10)];
      for (int c = 0; c < kCodes; ++c) {
        const int i = h * kCodes + c;
        double& total = counters_[static_cast<size_t>(i)];
        total += 3.0 * (i + 1) + std::floor(uniform(rng_) * 100) / 100;
        w.sample(
            "http_requests_total",
            std::array<std::pair<std::string_view, std::string_view>, 3>{
                {{"code", kCodeNames[static_cast<size_t>(c)]}, {"group", group}, {"host", host}}},
            total, t);
      }
      w.sample("host_info",
               std::array<std::pair<std::string_view, std::string_view>, 2>{
                   {{"host", host}, {"team", teams_[static_cast<size_t>(h % 20)]}}},
               1, t);
    }
    for (int i = 0; i < kInstances; ++i) {
      // This scrape's requests of the instance, spread over the buckets (cumulative counts).
      const double requests = 20 + std::floor(uniform(rng_) * 20);
      double below = 0;
      for (size_t b = 0; b < kBoundNames.size(); ++b) {
        const double share =
            b < kBounds.size() ? 1 - std::exp(-kBounds[b] / (0.05 + 0.002 * i)) : 1.0;
        below = std::max(below, std::floor(requests * share));
        double& total = buckets_[static_cast<size_t>(i) * 10 + b];
        total += below;
        w.sample("http_request_duration_seconds_bucket",
                 std::array<std::pair<std::string_view, std::string_view>, 2>{
                     {{"instance", instances_[static_cast<size_t>(i)]}, {"le", kBoundNames[b]}}},
                 total, t);
      }
    }
  }

  int64_t end_;
  uint64_t rng_ = 42;
  std::vector<std::string> hosts_, groups_, teams_, instances_, load_hosts_;
  std::vector<double> counters_, buckets_, loads_;
};

int run_openmetrics(int64_t end, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out) {
    std::cerr << "promql_data: cannot write " << path << "\n";
    return 1;
  }
  Writer w(Format::kOpenMetrics);
  int64_t lines = 0;
  DataSet data(end);
  data.generate(w, [&](Writer& writer) {
    if (writer.text().size() < (8u << 20)) return;
    out << writer.text();
    lines += writer.lines();
    writer.clear();
  });
  out << w.text() << "# EOF\n";
  lines += w.lines();
  if (!out.flush()) {
    std::cerr << "promql_data: writing " << path << " failed\n";
    return 1;
  }
  std::cout << "RESULT openmetrics samples " << lines << "\n";
  return 0;
}

int run_send(int64_t end, uint16_t port, const std::string& path, Format format, int64_t batch) {
  kpid_bench::HttpClient client(port, "promql_data");
  client.connect();
  Writer w(format);
  int64_t sent = 0;
  auto post = [&](Writer& writer) {
    if (writer.lines() == 0) return;
    auto reply = client.request(boost::beast::http::verb::post, path, writer.text());
    if (reply.status / 100 != 2) {
      std::cerr << "promql_data: FAILED: POST " << path << ": HTTP " << reply.status << ": "
                << reply.body.substr(0, 1000) << "\n";
      std::exit(1);
    }
    sent += writer.lines();
    writer.clear();
  };
  DataSet data(end);
  const auto started = std::chrono::steady_clock::now();
  data.generate(w, [&](Writer& writer) {
    if (writer.lines() >= batch) post(writer);
  });
  post(w);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "RESULT send samples " << sent << " seconds " << seconds << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string mode = argv[1];
  kpid_bench::Flags f("promql_data", argc, argv, 2);
  int64_t end = -1;
  std::string out, path, format = "line";
  uint16_t port = 0;
  int64_t batch = 20'000;
  while (f.next()) {
    if (f.flag() == "--end") {
      end = f.integer<int64_t>(kLongSpanS, int64_t{1} << 40);
    } else if (f.flag() == "--out") {
      out = f.value();
    } else if (f.flag() == "--port") {
      port = f.integer<uint16_t>(1, 65535);
    } else if (f.flag() == "--path") {
      path = f.value();
    } else if (f.flag() == "--format") {
      format = f.value();
    } else if (f.flag() == "--batch") {
      batch = f.integer<int64_t>(1, 10'000'000);
    } else {
      f.fail("unknown option " + f.arg());
    }
  }
  if (end < 0 || end % 3600 != 0) f.fail("--end must be Unix seconds, a multiple of 3600");
  if (mode == "openmetrics") {
    if (out.empty()) f.fail("openmetrics needs --out");
    return run_openmetrics(end, out);
  }
  if (mode == "send") {
    if (port == 0 || path.empty()) f.fail("send needs --port and --path");
    if (format != "line" && format != "prom") f.fail("--format is line or prom");
    return run_send(end, port, path, format == "line" ? Format::kLine : Format::kProm, batch);
  }
  f.fail("unknown mode " + mode);
}
