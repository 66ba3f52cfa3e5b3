// kpid_bench: measures a running kpid over loopback HTTP.
//
//  1. Ingest: N keep-alive connections POST /write?precision=ms bodies of B Telegraf-like
//     lines ("bench,host=hH,region=rR usage=12.5,idle=80i,busy=3.2 TS", 3 samples a line)
//     over S tag sets, until a fixed number of samples is sent (or a time cap is hit).
//     Bodies are generated before the clock starts. Every response must be 204.
//  2. Queries: Q sequential requests of each kind (instant, range of one series, range of
//     ~100 series, /api/v1/series), each checked for 200 and "status":"success".
//
// It only talks to 127.0.0.1. See bench/README.md and bench/run.sh.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <latch>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "bench_text.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr int kFieldsPerLine = 3;  // usage, idle, busy

const char* const kUsage = R"(Usage: kpid_bench --port PORT [OPTIONS]

Benchmarks a running kpid on 127.0.0.1:PORT: HTTP ingest throughput, then query latency.

Ingest (POST /write?precision=ms, keep-alive, every response must be 204):
  --connections N        concurrent client connections                 (default 4)
  --lines-per-request B  lines per POST body                           (default 5000)
  --series S             distinct tag sets (host x region); each line carries 3 fields
                         (usage, idle, busy), so 3*S series are stored (default 10000)
  --regions R            regions per host: tag set i is host=h(i/R), region=r(i%R)
                                                                       (default 10)
  --samples T            total samples (fields) to send; rounded up to whole scrapes
                         of all S tag sets                             (default 5000000)
  --interval-ms I        scrape interval between a series' samples     (default 10000)
  --max-seconds D        stop ingest after D seconds even if T is not reached
                                                                       (default 300)
Queries (sequential, one keep-alive connection, each must be 200 + "success"):
  --queries Q            queries of each kind                          (default 200)
  --range-points P       aim for ~P points per range-query series      (default 1000)
  --multi-host-regex RE  host regex of the multi-series range query and of
                         /api/v1/series                                (default h1[0-9])
  --query-max-seconds D  stop a kind after D seconds                   (default 120)
  --no-queries           ingest only
General:
  --port PORT            kpid's HTTP port on 127.0.0.1 (required)
  --ready-timeout D      wait up to D seconds for GET /readyz = 200    (default 30)
  --timeout D            abort the whole run (exit 3) after D seconds   (default 900)
  --help                 print this help and exit
)";

struct Options {
  uint16_t port = 0;
  int connections = 4;
  int lines_per_request = 5000;
  int series = 10000;
  int regions = 10;
  int64_t samples = 5'000'000;
  int64_t interval_ms = 10'000;
  double max_seconds = 300;
  int queries = 200;
  int range_points = 1000;
  std::string multi_host_regex = "h1[0-9]";
  double query_max_seconds = 120;
  bool no_queries = false;
  double ready_timeout = 30;
  double timeout = 900;
};

// The flag's value as a positive number of seconds.
double parse_seconds(kpid_bench::Flags& f) {
  const std::string text = f.value();
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !(v > 0) || !std::isfinite(v)) {
    f.fail(f.flag() + " needs a positive number of seconds, got \"" + text + "\"");
  }
  return v;
}

Options parse_options(int argc, char** argv) {
  Options o;
  bool have_port = false;
  kpid_bench::Flags f("kpid_bench", argc, argv, 1);
  while (f.next()) {
    const std::string& flag = f.flag();
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else if (flag == "--no-queries") {
      o.no_queries = true;
    } else if (flag == "--port") {
      o.port = f.integer<uint16_t>(1, 65535);
      have_port = true;
    } else if (flag == "--connections") {
      o.connections = f.integer(1, 256);
    } else if (flag == "--lines-per-request") {
      o.lines_per_request = f.integer(1, 1'000'000);
    } else if (flag == "--series") {
      o.series = f.integer(1, 10'000'000);
    } else if (flag == "--regions") {
      o.regions = f.integer(2, 1000);
    } else if (flag == "--samples") {
      o.samples = f.integer<int64_t>(1, 1'000'000'000);
    } else if (flag == "--interval-ms") {
      o.interval_ms = f.integer<int64_t>(1, 86'400'000);
    } else if (flag == "--max-seconds") {
      o.max_seconds = parse_seconds(f);
    } else if (flag == "--queries") {
      o.queries = f.integer(1, 1'000'000);
    } else if (flag == "--range-points") {
      o.range_points = f.integer(2, 10'000);
    } else if (flag == "--multi-host-regex") {
      o.multi_host_regex = f.value();
    } else if (flag == "--query-max-seconds") {
      o.query_max_seconds = parse_seconds(f);
    } else if (flag == "--ready-timeout") {
      o.ready_timeout = parse_seconds(f);
    } else if (flag == "--timeout") {
      o.timeout = parse_seconds(f);
    } else {
      f.fail("unknown option " + f.arg());
    }
  }
  if (!have_port) f.fail("--port is required");
  if (o.series < 2 * o.regions) {
    f.fail("--series must be at least 2 * --regions so that host h1, region r1 exists");
  }
  return o;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

using HttpClient = kpid_bench::HttpClient;

// ---------------------------------------------------------------------------------------
// Formatting helpers.

// Milliseconds as Prometheus' decimal seconds, e.g. 1700000000123 -> "1700000000.123".
std::string unix_seconds(int64_t ms) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000));
  return buf;
}

size_t count_occurrences(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string_view::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

using kpid_bench::append_int;
using kpid_bench::fixed;
using kpid_bench::percent_encode;
using kpid_bench::Percentiles;
using kpid_bench::percentiles;

// ---------------------------------------------------------------------------------------
// The workload: tag set i is host=h(i/R),region=r(i%R); scrape k of it is at
// base + k*interval + offset(i), so every series' timestamps increase.

struct Workload {
  int series = 0;
  int regions = 0;
  int64_t scrapes = 0;  // samples per series
  int64_t interval_ms = 0;
  int64_t base_ms = 0;
  int64_t first_ms = 0;  // earliest timestamp in the data
  int64_t last_ms = 0;   // latest timestamp in the data

  int64_t offset(int i) const { return (static_cast<int64_t>(i) * 7919) % interval_ms; }
  int64_t timestamp(int i, int64_t scrape) const {
    return base_ms + scrape * interval_ms + offset(i);
  }
};

Workload make_workload(const Options& o) {
  Workload w;
  w.series = o.series;
  w.regions = o.regions;
  int64_t lines = (o.samples + kFieldsPerLine - 1) / kFieldsPerLine;
  w.scrapes = std::max<int64_t>(1, (lines + o.series - 1) / o.series);
  w.interval_ms = o.interval_ms;
  // End just before "now", on a whole second, so the data looks like recent scrapes.
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  w.base_ms = (now_ms / 1000) * 1000 - w.scrapes * w.interval_ms;
  w.first_ms = w.timestamp(0, 0);  // offset(0) == 0 is the smallest offset
  w.last_ms = w.base_ms;
  for (int i = 0; i < o.series; ++i) w.last_ms = std::max(w.last_ms, w.timestamp(i, w.scrapes - 1));
  return w;
}

void append_line(std::string& out, const Workload& w, int i, int64_t scrape) {
  kpid_bench::append_bench_line(out, i, scrape, w.regions, w.timestamp(i, scrape));
}

using kpid_bench::Body;

std::vector<std::vector<Body>> generate_bodies(const Options& o, const Workload& w) {
  return kpid_bench::split_bodies(o.connections, w.scrapes, w.series, o.lines_per_request, 72,
                                  [&](std::string& out, int i, int64_t k) {
                                    append_line(out, w, i, k);
                                  });
}

// ---------------------------------------------------------------------------------------

void wait_ready(const Options& o) {
  auto t0 = Clock::now();
  std::string last_error = "no attempt";
  while (seconds_since(t0) < o.ready_timeout) {
    try {
      HttpClient client(o.port, "kpid_bench");
      client.connect();
      auto reply = client.request(http::verb::get, "/readyz");
      if (reply.status == 200) return;
      last_error = "GET /readyz answered " + std::to_string(reply.status);
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("kpid on 127.0.0.1:" + std::to_string(o.port) + " not ready after " +
                           fixed(o.ready_timeout, 1) + " s: " + last_error);
}

struct ConnResult {
  std::vector<double> latencies_ms;
  int64_t lines = 0;
  int64_t bytes = 0;
  int reconnects = 0;
  std::string error;
};

bool run_ingest(const Options& o, const Workload& w) {
  std::cout << "== ingest: POST /write?precision=ms on 127.0.0.1:" << o.port << "\n";
  std::cout << "  workload: " << o.series << " tag sets (" << (o.series + o.regions - 1) / o.regions
            << " hosts x " << o.regions << " regions) x " << kFieldsPerLine << " fields = "
            << static_cast<int64_t>(o.series) * kFieldsPerLine << " series; " << w.scrapes
            << " scrapes per series every " << fixed(static_cast<double>(w.interval_ms) / 1000, 3)
            << " s (span " << fixed(static_cast<double>(w.last_ms - w.first_ms) / 1000, 0)
            << " s of data)\n";

  auto gen0 = Clock::now();
  auto per_conn = generate_bodies(o, w);
  double gen_s = seconds_since(gen0);
  int64_t planned_lines = 0, planned_bytes = 0, planned_requests = 0;
  for (const auto& bodies : per_conn) {
    for (const auto& b : bodies) {
      planned_lines += b.lines;
      planned_bytes += static_cast<int64_t>(b.text.size());
      ++planned_requests;
    }
  }
  std::cout << "  generated " << planned_requests << " bodies, " << planned_lines << " lines = "
            << planned_lines * kFieldsPerLine << " samples, "
            << fixed(static_cast<double>(planned_bytes) / 1e6, 1) << " MB in " << fixed(gen_s, 2)
            << " s before timing (client formatting: "
            << fixed(static_cast<double>(planned_lines) / gen_s, 0) << " lines/s)\n";

  std::vector<ConnResult> results(static_cast<size_t>(o.connections));
  std::atomic<bool> stop{false};
  std::atomic<bool> truncated{false};
  std::latch start(o.connections + 1);
  Clock::time_point t0;
  std::mutex t0_mutex;
  std::vector<std::thread> threads;
  const std::string target = "/write?precision=ms";

  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back([&, c] {
      auto& r = results[static_cast<size_t>(c)];
      const auto& bodies = per_conn[static_cast<size_t>(c)];
      r.latencies_ms.reserve(bodies.size());
      std::optional<HttpClient> client;
      try {
        client.emplace(o.port, "kpid_bench");
        client->connect();  // connection setup is not timed
      } catch (const std::exception& e) {
        r.error = std::string("connect: ") + e.what();
        stop = true;
      }
      start.arrive_and_wait();
      Clock::time_point begin;
      {
        std::lock_guard lock(t0_mutex);
        begin = t0;
      }
      try {
        for (const auto& body : bodies) {
          if (stop) break;
          if (seconds_since(begin) > o.max_seconds) {
            truncated = true;
            break;
          }
          auto q0 = Clock::now();
          auto reply = client->request(http::verb::post, target, body.text);
          double ms = std::chrono::duration<double, std::milli>(Clock::now() - q0).count();
          if (reply.status != 204) {
            r.error = "POST " + target + " answered " + std::to_string(reply.status) +
                      " (expected 204): " + reply.body.substr(0, 500);
            stop = true;
            break;
          }
          r.latencies_ms.push_back(ms);
          r.lines += body.lines;
          r.bytes += static_cast<int64_t>(body.text.size());
        }
      } catch (const std::exception& e) {
        r.error = std::string("POST ") + target + ": " + e.what();
        stop = true;
      }
      if (client) r.reconnects = client->reconnects();
    });
  }
  {
    std::lock_guard lock(t0_mutex);
    t0 = Clock::now();
  }
  start.arrive_and_wait();
  for (auto& t : threads) t.join();
  double elapsed = seconds_since(t0);

  std::vector<double> all;
  int64_t lines = 0, bytes = 0;
  int reconnects = 0;
  bool failed = false;
  for (size_t c = 0; c < results.size(); ++c) {
    const auto& r = results[c];
    if (!r.error.empty()) {
      std::cerr << "kpid_bench: FAILED on connection " << c << ": " << r.error << "\n";
      failed = true;
    }
    all.insert(all.end(), r.latencies_ms.begin(), r.latencies_ms.end());
    lines += r.lines;
    bytes += r.bytes;
    reconnects += r.reconnects;
  }
  if (failed) return false;
  int64_t samples = lines * kFieldsPerLine;
  auto p = percentiles(all);
  std::cout << "  sent " << all.size() << " requests, " << lines << " lines, " << samples
            << " samples, " << fixed(static_cast<double>(bytes) / 1e6, 1) << " MB over "
            << o.connections << " connections in " << fixed(elapsed, 3) << " s"
            << (reconnects ? " (" + std::to_string(reconnects) + " reconnects)" : "") << "\n";
  if (truncated) {
    std::cout << "  NOTE: stopped by --max-seconds " << fixed(o.max_seconds, 0) << " before all "
              << planned_requests << " requests were sent\n";
  }
  std::cout << "  all " << all.size() << " responses were 204\n";
  std::cout << "RESULT ingest samples/s   " << fixed(static_cast<double>(samples) / elapsed, 0)
            << "\n";
  std::cout << "RESULT ingest lines/s     " << fixed(static_cast<double>(lines) / elapsed, 0)
            << "\n";
  std::cout << "RESULT ingest requests/s  "
            << fixed(static_cast<double>(all.size()) / elapsed, 1) << "\n";
  std::cout << "RESULT ingest MB/s        " << fixed(static_cast<double>(bytes) / 1e6 / elapsed, 1)
            << "\n";
  std::cout << "RESULT ingest request latency ms  p50 " << fixed(p.p50, 1) << "  p99 "
            << fixed(p.p99, 1) << "  max " << fixed(p.max, 1) << "\n";
  return true;
}

// Prints kpid's own counters for the run, as a cross-check of what the client sent.
void print_server_counters(const Options& o) {
  HttpClient client(o.port, "kpid_bench");
  client.connect();
  auto reply = client.request(http::verb::get, "/metrics");
  if (reply.status != 200) {
    std::cout << "  (GET /metrics answered " << reply.status << ")\n";
    return;
  }
  std::string_view text = reply.body;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    bool wanted = (line.starts_with("kpid_ingest_samples_total") &&
                   line.find("protocol=\"http\"") != std::string_view::npos) ||
                  line.starts_with("kpid_ingest_lines_rejected_total") ||
                  line.starts_with("kpid_store_series");
    if (wanted) std::cout << "  server: " << line << "\n";
  }
}

struct QueryKind {
  std::string name;
  std::string target;
  std::string_view count_needle;  // one per series in the result
};

bool run_queries(const Options& o, const Workload& w) {
  const std::string one = R"(bench_usage{host="h1",region="r1"})";
  const std::string many = "bench_usage{host=~\"" + o.multi_host_regex + "\"}";
  const int64_t span = w.last_ms - w.first_ms;
  const int64_t step_ms = std::max<int64_t>(1, span / (o.range_points - 1));
  const std::string start = unix_seconds(w.first_ms);
  const std::string end = unix_seconds(w.last_ms);
  const std::string step = unix_seconds(step_ms);
  const std::vector<QueryKind> kinds = {
      {"instant 1 series", "/api/v1/query?query=" + percent_encode(one) + "&time=" + end,
       "\"metric\":"},
      {"range 1 series",
       "/api/v1/query_range?query=" + percent_encode(one) + "&start=" + start + "&end=" + end +
           "&step=" + step,
       "\"metric\":"},
      {"range ~100 series",
       "/api/v1/query_range?query=" + percent_encode(many) + "&start=" + start + "&end=" + end +
           "&step=" + step,
       "\"metric\":"},
      {"series match[]",
       "/api/v1/series?match%5B%5D=" + percent_encode(many) + "&start=" + start + "&end=" + end,
       "\"__name__\""},
  };

  std::cout << "== queries: " << o.queries << " sequential requests of each kind, one keep-alive "
            << "connection; range step " << step << " s over " << start << " .. " << end << "\n";
  for (const auto& k : kinds) std::cout << "  " << k.name << ": GET " << k.target << "\n";

  HttpClient client(o.port, "kpid_bench");
  client.connect();
  struct Row {
    std::string name;
    Percentiles p;
    size_t n = 0;
    size_t series = 0, points = 0, bytes = 0;
  };
  std::vector<Row> rows;
  for (const auto& k : kinds) {
    Row row{k.name, {}, 0, 0, 0, 0};
    std::vector<double> ms;
    auto k0 = Clock::now();
    for (int i = 0; i < o.queries; ++i) {
      if (seconds_since(k0) > o.query_max_seconds) {
        std::cout << "  NOTE: " << k.name << " stopped by --query-max-seconds after " << i
                  << " queries\n";
        break;
      }
      auto q0 = Clock::now();
      HttpClient::Reply reply;
      try {
        reply = client.request(http::verb::get, k.target);
      } catch (const std::exception& e) {
        std::cerr << "kpid_bench: FAILED: GET " << k.target << ": " << e.what() << "\n";
        return false;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - q0).count());
      size_t series = count_occurrences(reply.body, k.count_needle);
      size_t points = count_occurrences(reply.body, "\"]");
      if (reply.status != 200 ||
          reply.body.find("\"status\":\"success\"") == std::string::npos || series == 0) {
        std::cerr << "kpid_bench: FAILED: GET " << k.target << " answered " << reply.status
                  << " with " << series << " series: " << reply.body.substr(0, 500) << "\n";
        return false;
      }
      if (i == 0) {
        row.series = series;
        row.points = points;
        row.bytes = reply.body.size();
      } else if (series != row.series || points != row.points) {
        std::cerr << "kpid_bench: FAILED: " << k.name << " gave " << series << " series / "
                  << points << " points, first time " << row.series << " / " << row.points
                  << "\n";
        return false;
      }
    }
    row.n = ms.size();
    row.p = percentiles(std::move(ms));
    rows.push_back(row);
  }
  if (client.reconnects() > 0) std::cout << "  (" << client.reconnects() << " reconnects)\n";

  std::printf("RESULT query latency ms   %-18s %6s %8s %8s %8s %8s %7s %7s %9s\n", "kind", "n",
              "p50", "p90", "p99", "max", "series", "points", "bytes");
  for (const auto& r : rows) {
    // /api/v1/series returns label sets, not points.
    std::string points = r.name == kinds.back().name ? "-" : std::to_string(r.points);
    std::printf("RESULT query latency ms   %-18s %6zu %8.2f %8.2f %8.2f %8.2f %7zu %7s %9zu\n",
                r.name.c_str(), r.n, r.p.p50, r.p.p90, r.p.p99, r.p.max, r.series,
                points.c_str(), r.bytes);
  }
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  std::cout.setf(std::ios::unitbuf);

  // Bounded no matter what the server does: a watchdog ends the run.
  std::thread([timeout = o.timeout] {
    std::this_thread::sleep_for(std::chrono::duration<double>(timeout));
    std::fprintf(stderr, "kpid_bench: FAILED: --timeout %.0f s reached, aborting\n", timeout);
    std::fflush(stderr);
    std::_Exit(3);
  }).detach();

  try {
    wait_ready(o);
    Workload w = make_workload(o);
    if (!run_ingest(o, w)) return 1;
    print_server_counters(o);
    if (!o.no_queries && !run_queries(o, w)) return 1;
  } catch (const std::exception& e) {
    std::cerr << "kpid_bench: FAILED: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
