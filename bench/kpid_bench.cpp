// kpid_bench: measures a running kpid over loopback HTTP.
//
//  1. Ingest: N keep-alive connections POST /write?precision=ms bodies of B Telegraf-like
//     lines ("bench,host=hH,region=rR usage=12.5,idle=80i,busy=3.2 TS", 3 samples a line)
//     over S tag sets, until a fixed number of samples is sent (or a time cap is hit).
//     Bodies are generated before the clock starts. Every response must be 204.
//  2. Queries: Q sequential requests of each kind (instant, range of one series, range of
//     ~100 series, /api/v1/series), each checked for 200 and "status":"success".
//
// With --duration D it runs the streaming (soak) mode instead: ingest for D seconds, paced to
// --rate samples/s per 100 ms tick (or as fast as it can with --rate 0), stamped with the
// wall clock, while one connection queries at --query-rate and another writes --probes
// alerting probe series; errors are counted instead of ending the run (bench/soak.sh).
//
// It only talks to 127.0.0.1. See bench/README.md and bench/run.sh.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iomanip>
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
Streaming (soak) mode, instead of the two phases above (see bench/soak.sh):
  --duration D           stream for D seconds: each connection owns tag sets c, c+N, ...
                         and sends them scrape after scrape, stamped with the wall clock;
                         --samples, --interval-ms, --max-seconds and --queries are ignored.
                         Errors (non-2xx, broken connections) are counted, not fatal.
  --rate R               pace ingest to R samples/s in 100 ms ticks; 0 = as fast as
                         possible (to measure the maximum)                (default 0)
  --query-rate Q         queries/s on one more connection, cycling through instant,
                         range, range ~10 series, /api/v1/kpis, /api/v1/alerts (default 0)
  --probes P             one more connection writes P probe series once a second:
                         soak_probe,probe=J value=500 (breach) or 50      (default 0)
  --probe-period S       probe J breaches for the first --probe-breach of every S-second
                         cycle, cycles staggered by S/P                   (default 60)
  --probe-breach F       fraction of the cycle spent breaching            (default 0.3)
  --progress-seconds S   print a progress line every S seconds           (default 10)
General:
  --port PORT            kpid's HTTP port on 127.0.0.1 (required)
  --ready-timeout D      wait up to D seconds for GET /readyz = 200    (default 30)
  --timeout D            abort the whole run (exit 3) after D seconds   (default 900;
                         with --duration: D + 300)
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
  bool timeout_given = false;
  // Streaming (soak) mode when duration > 0.
  double duration = 0;
  int64_t rate = 0;
  double query_rate = 0;
  int probes = 0;
  double probe_period = 60;
  double probe_breach = 0.3;
  double progress_seconds = 10;
};

// The flag's value as a positive number (`what` names it in the error).
double parse_positive(kpid_bench::Flags& f, const char* what = "number of seconds") {
  const std::string text = f.value();
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !(v > 0) || !std::isfinite(v)) {
    f.fail(f.flag() + " needs a positive " + what + ", got \"" + text + "\"");
  }
  return v;
}

double parse_seconds(kpid_bench::Flags& f) { return parse_positive(f); }

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
      o.timeout_given = true;
    } else if (flag == "--duration") {
      o.duration = parse_seconds(f);
    } else if (flag == "--rate") {
      o.rate = f.integer<int64_t>(0, 1'000'000'000);
    } else if (flag == "--query-rate") {
      o.query_rate = parse_positive(f, "number of queries per second");
    } else if (flag == "--probes") {
      o.probes = f.integer(0, 10'000);
    } else if (flag == "--probe-period") {
      o.probe_period = parse_seconds(f);
    } else if (flag == "--probe-breach") {
      o.probe_breach = parse_positive(f, "fraction");
      if (o.probe_breach >= 1) f.fail("--probe-breach needs a fraction below 1");
    } else if (flag == "--progress-seconds") {
      o.progress_seconds = parse_seconds(f);
    } else {
      f.fail("unknown option " + f.arg());
    }
  }
  if (!have_port) f.fail("--port is required");
  if (o.duration > 0 && !o.timeout_given) o.timeout = o.duration + 300;
  if (o.duration > 0 && o.series < o.connections) {
    f.fail("--series must be at least --connections: each connection owns its tag sets");
  }
  if (o.duration == 0 && (o.rate > 0 || o.query_rate > 0 || o.probes > 0)) {
    f.fail("--rate, --query-rate and --probes need --duration");
  }
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
  return kpid_bench::split_bodies(
      o.connections, w.scrapes, w.series, o.lines_per_request, 72,
      [&](std::string& out, int i, int64_t k) { append_line(out, w, i, k); });
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
            << " hosts x " << o.regions << " regions) x " << kFieldsPerLine
            << " fields = " << static_cast<int64_t>(o.series) * kFieldsPerLine << " series; "
            << w.scrapes << " scrapes per series every "
            << fixed(static_cast<double>(w.interval_ms) / 1000, 3) << " s (span "
            << fixed(static_cast<double>(w.last_ms - w.first_ms) / 1000, 0) << " s of data)\n";

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
  std::cout << "  generated " << planned_requests << " bodies, " << planned_lines
            << " lines = " << planned_lines * kFieldsPerLine << " samples, "
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
  std::cout << "RESULT ingest requests/s  " << fixed(static_cast<double>(all.size()) / elapsed, 1)
            << "\n";
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
      if (reply.status != 200 || reply.body.find("\"status\":\"success\"") == std::string::npos ||
          series == 0) {
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
                  << points << " points, first time " << row.series << " / " << row.points << "\n";
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
                r.name.c_str(), r.n, r.p.p50, r.p.p90, r.p.p99, r.p.max, r.series, points.c_str(),
                r.bytes);
  }
  std::fflush(stdout);
  return true;
}

// ---------------------------------------------------------------------------------------
// Streaming (soak) mode: paced ingest, concurrent queries and alerting probes for a fixed
// time. Failures are counted, not fatal: a soak wants to know how many there were.

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Failed requests by kind, with the first few messages for the report.
struct ErrorLog {
  int64_t non_2xx = 0;
  int64_t connection = 0;   // refused, reset, closed mid-reply
  int64_t not_success = 0;  // queries: 200 without "status":"success"
  std::vector<std::string> first;

  int64_t total() const { return non_2xx + connection + not_success; }
  void keep(std::string message) {
    if (first.size() < 5) first.push_back(std::move(message));
  }
  void add(const ErrorLog& other) {
    non_2xx += other.non_2xx;
    connection += other.connection;
    not_success += other.not_success;
    for (const auto& m : other.first) keep(m);
  }
};

// What the progress line reads while the threads run.
struct StreamCounters {
  std::atomic<int64_t> lines{0};
  std::atomic<int64_t> write_errors{0};
  std::atomic<int64_t> queries{0};
  std::atomic<int64_t> query_errors{0};
};

struct WriterResult {
  int64_t lines = 0;  // acknowledged (2xx)
  int64_t bytes = 0;
  int64_t requests = 0;
  ErrorLog errors;
  std::vector<double> latencies_ms;  // of the 2xx replies
};

// One request; the reply, or nullopt after a broken connection (counted). The client then
// reconnects on its next request, after a pause so that a dead server is not hammered.
std::optional<HttpClient::Reply> request_counted(HttpClient& client, http::verb verb,
                                                 const std::string& target, std::string_view body,
                                                 ErrorLog& errors, double& ms) {
  auto q0 = Clock::now();
  try {
    auto reply = client.request(verb, target, body);
    ms = std::chrono::duration<double, std::milli>(Clock::now() - q0).count();
    return reply;
  } catch (const std::exception& e) {
    ++errors.connection;
    errors.keep(std::string(http::to_string(verb)) + " " + target.substr(0, 200) + ": " + e.what());
    client.close();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return std::nullopt;
  }
}

// POSTs a body; true on 2xx. Failures are counted in r.errors.
bool post_counted(HttpClient& client, const std::string& target, const std::string& body,
                  WriterResult& r) {
  double ms = 0;
  ++r.requests;
  auto reply = request_counted(client, http::verb::post, target, body, r.errors, ms);
  if (!reply) return false;
  if (reply->status / 100 != 2) {
    ++r.errors.non_2xx;
    r.errors.keep("POST " + target + " answered " + std::to_string(reply->status) + ": " +
                  reply->body.substr(0, 300));
    return false;
  }
  r.latencies_ms.push_back(ms);
  r.bytes += static_cast<int64_t>(body.size());
  return true;
}

// Connection c sends its tag sets (c, c+N, ...) scrape after scrape until `end`. Paced: by
// the end of 100 ms tick n it has sent (n+1) ticks' worth of lines, each tick's at its start
// in bodies of up to --lines-per-request; behind schedule it sends without pausing, so a
// server that cannot keep up shows as a lower achieved rate. Scrape k of a paced connection
// is stamped wall0 + k * (its scrape interval), unpaced ones with the wall clock; always
// later than the scrape before, so each series' samples arrive in time order.
void stream_writer(const Options& o, int c, Clock::time_point t0, Clock::time_point end,
                   int64_t wall0, StreamCounters& counters, WriterResult& r) {
  HttpClient client(o.port, "kpid_bench");
  const std::string target = "/write?precision=ms";
  const int mine = (o.series - c + o.connections - 1) / o.connections;
  const double lines_per_s =
      static_cast<double>(o.rate) / kFieldsPerLine / static_cast<double>(o.connections);
  const double lines_per_tick = lines_per_s / 10;
  const double scrape_ms = o.rate > 0 ? 1000.0 * mine / lines_per_s : 0;
  int j = 0;  // next tag set of this connection: c + j * N
  int64_t scrape = 0;
  int64_t ts = -1;
  int64_t attempted = 0;  // lines sent, acknowledged or not (the schedule counts them all)
  std::string body;
  r.latencies_ms.reserve(1 << 16);
  while (true) {
    const auto now = Clock::now();
    if (now >= end) break;
    int64_t n = o.lines_per_request;
    if (o.rate > 0) {
      const int64_t tick = (now - t0) / std::chrono::milliseconds(100);
      const auto due =
          static_cast<int64_t>(std::llround(lines_per_tick * static_cast<double>(tick + 1)));
      if (attempted >= due) {
        std::this_thread::sleep_until(
            std::min(end, t0 + std::chrono::milliseconds(100) * (tick + 1)));
        continue;
      }
      n = std::min(n, due - attempted);
    }
    body.clear();
    for (int64_t l = 0; l < n; ++l) {
      if (j == 0) {
        const int64_t base =
            o.rate > 0 ? wall0 + std::llround(static_cast<double>(scrape) * scrape_ms) : wall_ms();
        ts = std::max(ts + 1, base);
      }
      kpid_bench::append_bench_line(body, c + j * o.connections, scrape, o.regions, ts);
      if (++j == mine) {
        j = 0;
        ++scrape;
      }
    }
    attempted += n;
    if (post_counted(client, target, body, r)) {
      r.lines += n;
      counters.lines += n;
    } else {
      ++counters.write_errors;
    }
  }
}

// The probe series: once a second, `soak_probe,probe=J value=V` for every probe, V = 500
// while probe J is in the breaching part of its cycle, else 50, so KPIs with alert rules on
// them fire and resolve over and over. Returns the number of breach episodes started.
int64_t stream_prober(const Options& o, Clock::time_point t0, Clock::time_point end,
                      WriterResult& r, StreamCounters& counters) {
  HttpClient client(o.port, "kpid_bench-probe");
  std::vector<bool> breaching(static_cast<size_t>(o.probes), false);
  int64_t episodes = 0;
  std::string body;
  for (int64_t s = 0;; ++s) {
    const auto at = t0 + std::chrono::seconds(s);
    if (at >= end) break;
    std::this_thread::sleep_until(at);
    const std::string ts = std::to_string(wall_ms());
    body.clear();
    for (int p = 0; p < o.probes; ++p) {
      const double offset = o.probe_period * p / o.probes;
      const double phase =
          std::fmod(static_cast<double>(s) + offset, o.probe_period) / o.probe_period;
      const bool breach = phase < o.probe_breach;
      if (breach && !breaching[static_cast<size_t>(p)]) ++episodes;
      breaching[static_cast<size_t>(p)] = breach;
      body += "soak_probe,probe=" + std::to_string(p) + (breach ? " value=500 " : " value=50 ") +
              ts + "\n";
    }
    if (post_counted(client, "/write?precision=ms", body, r)) {
      r.lines += o.probes;
    } else {
      ++counters.write_errors;
    }
  }
  return episodes;
}

struct QueryResult {
  std::vector<std::string> kinds;
  std::vector<std::vector<double>> ms;  // per kind, of the successful queries
  std::vector<int64_t> empty;           // successful, but no series (selector kinds only)
  int64_t planned = 0;
  int64_t skipped = 0;  // slots dropped because the previous query ran over by > 1 s
  ErrorLog errors;
};

// Queries at --query-rate on one keep-alive connection, cycling through the kinds, "now"
// moving with the data. A query that overruns delays the next; slots more than 1 s late are
// dropped (counted) rather than sent in a burst.
void stream_querier(const Options& o, Clock::time_point t0, Clock::time_point end, QueryResult& q,
                    StreamCounters& counters) {
  const std::string one = percent_encode(R"(bench_usage{host="h1",region="r1"})");
  const std::string host = percent_encode(R"(bench_usage{host="h1"})");
  q.kinds = {"instant 1 series", "range 1 series 5m", "range 1 host 5m", "kpis", "alerts"};
  q.ms.assign(q.kinds.size(), {});
  q.empty.assign(q.kinds.size(), 0);
  HttpClient client(o.port, "kpid_bench-query");
  const auto slot = std::chrono::duration<double>(1.0 / o.query_rate);
  for (int64_t n = 0;; ++n) {
    const auto at = t0 + std::chrono::duration_cast<Clock::duration>(slot * static_cast<double>(n));
    if (at >= end) break;
    ++q.planned;
    const auto now = Clock::now();
    if (now < at) {
      std::this_thread::sleep_until(at);
    } else if (now - at > std::chrono::seconds(1)) {
      ++q.skipped;
      continue;
    }
    const size_t kind = static_cast<size_t>(n % static_cast<int64_t>(q.kinds.size()));
    const int64_t now_ms = wall_ms();
    const std::string t = unix_seconds(now_ms), start = unix_seconds(now_ms - 300'000);
    std::string target;
    switch (kind) {
      case 0: target = "/api/v1/query?query=" + one + "&time=" + t; break;
      case 1:
        target = "/api/v1/query_range?query=" + one + "&start=" + start + "&end=" + t + "&step=5";
        break;
      case 2:
        target = "/api/v1/query_range?query=" + host + "&start=" + start + "&end=" + t + "&step=15";
        break;
      case 3: target = "/api/v1/kpis"; break;
      default: target = "/api/v1/alerts"; break;
    }
    double ms = 0;
    auto reply = request_counted(client, http::verb::get, target, {}, q.errors, ms);
    bool ok = false;
    if (reply && reply->status != 200) {
      ++q.errors.non_2xx;
      q.errors.keep("GET " + target + " answered " + std::to_string(reply->status) + ": " +
                    reply->body.substr(0, 300));
    } else if (reply && reply->body.find("\"status\":\"success\"") == std::string::npos) {
      ++q.errors.not_success;
      q.errors.keep("GET " + target + ": " + reply->body.substr(0, 300));
    } else if (reply) {
      ok = true;
      q.ms[kind].push_back(ms);
      if (kind <= 2 && reply->body.find("\"metric\":") == std::string::npos) ++q.empty[kind];
    }
    ++counters.queries;
    if (!ok) ++counters.query_errors;
  }
}

void print_errors(const char* what, const ErrorLog& e) {
  for (const auto& m : e.first) std::cerr << "kpid_bench: " << what << " error: " << m << "\n";
}

bool run_stream(const Options& o) {
  const bool paced = o.rate > 0;
  std::cout << "== streaming for " << fixed(o.duration, 0) << " s on 127.0.0.1:" << o.port
            << ": POST /write?precision=ms on " << o.connections << " connections, "
            << (paced ? "paced to " + std::to_string(o.rate) + " samples/s per 100 ms tick"
                      : std::string("as fast as possible"))
            << "\n  workload: " << o.series << " tag sets x " << kFieldsPerLine
            << " fields = " << static_cast<int64_t>(o.series) * kFieldsPerLine << " series, up to "
            << o.lines_per_request << " lines per body, stamped with the wall clock";
  if (paced) {
    std::cout << " (a scrape of all series every "
              << fixed(1000.0 * o.series * kFieldsPerLine / static_cast<double>(o.rate), 1)
              << " ms)";
  }
  std::cout << "\n";
  if (o.query_rate > 0) {
    std::cout << "  queries: " << fixed(o.query_rate, 1)
              << "/s on one connection, cycling: instant and 5-minute range of "
                 "bench_usage{host=\"h1\",region=\"r1\"}, 5-minute range of "
                 "bench_usage{host=\"h1\"}, "
                 "GET /api/v1/kpis, GET /api/v1/alerts\n";
  }
  if (o.probes > 0) {
    std::cout << "  probes: " << o.probes << " series soak_probe{probe=\"0..\"} once a second, "
              << "each breaching (500, else 50) for " << fixed(o.probe_breach * o.probe_period, 0)
              << " s of every " << fixed(o.probe_period, 0) << " s\n";
  }

  StreamCounters counters;
  std::vector<WriterResult> writers(static_cast<size_t>(o.connections));
  WriterResult probe;
  int64_t episodes = 0;
  QueryResult queries;
  const auto t0 = Clock::now();
  const int64_t wall0 = wall_ms();
  const auto seconds = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  const auto end = t0 + seconds(o.duration);
  std::vector<std::thread> threads;
  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back(
        [&, c] { stream_writer(o, c, t0, end, wall0, counters, writers[static_cast<size_t>(c)]); });
  }
  if (o.probes > 0) {
    threads.emplace_back([&] { episodes = stream_prober(o, t0, end, probe, counters); });
  }
  if (o.query_rate > 0) {
    threads.emplace_back([&] { stream_querier(o, t0, end, queries, counters); });
  }

  // Progress on this thread until the end; the figures are for the last interval.
  {
    int64_t last_lines = 0;
    auto last = t0;
    const auto every = seconds(o.progress_seconds);
    for (auto at = t0 + every; at < end; at += every) {
      std::this_thread::sleep_until(at);
      const auto now = Clock::now();
      const int64_t lines = counters.lines.load();
      const double dt = std::chrono::duration<double>(now - last).count();
      std::cout << "  [" << std::setw(5) << fixed(seconds_since(t0), 0) << " s] ingest "
                << fixed(static_cast<double>(lines - last_lines) * kFieldsPerLine / dt, 0)
                << " samples/s, write errors " << counters.write_errors.load() << ", queries "
                << counters.queries.load() << ", query errors " << counters.query_errors.load()
                << "\n";
      last_lines = lines;
      last = now;
    }
  }
  for (auto& t : threads) t.join();
  const double elapsed = seconds_since(t0);

  // Writes.
  int64_t lines = 0, bytes = 0, requests = 0;
  ErrorLog write_errors;
  std::vector<double> write_ms;
  for (const auto& w : writers) {
    lines += w.lines;
    bytes += w.bytes;
    requests += w.requests;
    write_errors.add(w.errors);
    write_ms.insert(write_ms.end(), w.latencies_ms.begin(), w.latencies_ms.end());
  }
  write_errors.add(probe.errors);
  const int64_t samples = lines * kFieldsPerLine;
  const double achieved = static_cast<double>(samples) / elapsed;
  const auto wp = percentiles(write_ms);
  std::cout << "  sent " << requests << " requests, " << samples << " samples, "
            << fixed(static_cast<double>(bytes) / 1e6, 1) << " MB acknowledged in "
            << fixed(elapsed, 1) << " s";
  if (o.probes > 0) {
    std::cout << "; probes: " << probe.requests << " requests, " << probe.lines << " samples";
  }
  std::cout << "\n";
  std::cout << "RESULT soak ingest samples/s  achieved " << fixed(achieved, 0);
  if (paced) {
    std::cout << "  target " << o.rate << "  ("
              << fixed(100.0 * achieved / static_cast<double>(o.rate), 1) << "% of target)";
  }
  std::cout << "\n";
  std::cout << "RESULT soak write errors      " << write_errors.total() << "  (non-2xx "
            << write_errors.non_2xx << ", connection " << write_errors.connection
            << "; probe writes included)\n";
  std::cout << "RESULT soak write latency ms  p50 " << fixed(wp.p50, 1) << "  p99 "
            << fixed(wp.p99, 1) << "  max " << fixed(wp.max, 1) << "\n";
  if (o.probes > 0) {
    std::cout << "RESULT soak probe breaches    " << episodes << " episodes started\n";
  }
  print_errors("write", write_errors);

  // Queries.
  kpid_bench::Percentiles qp;
  int64_t answered = 0, empty = 0;
  if (o.query_rate > 0) {
    std::vector<double> all;
    std::printf("RESULT soak query latency ms  %-20s %7s %8s %8s %8s %8s %6s\n", "kind", "n", "p50",
                "p90", "p99", "max", "empty");
    for (size_t k = 0; k < queries.kinds.size(); ++k) {
      all.insert(all.end(), queries.ms[k].begin(), queries.ms[k].end());
      empty += queries.empty[k];
      const auto p = percentiles(queries.ms[k]);
      std::printf("RESULT soak query latency ms  %-20s %7zu %8.2f %8.2f %8.2f %8.2f %6lld\n",
                  queries.kinds[k].c_str(), queries.ms[k].size(), p.p50, p.p90, p.p99, p.max,
                  static_cast<long long>(queries.empty[k]));
    }
    answered = static_cast<int64_t>(all.size());
    qp = percentiles(std::move(all));
    std::printf("RESULT soak query latency ms  %-20s %7lld %8.2f %8.2f %8.2f %8.2f %6lld\n", "all",
                static_cast<long long>(answered), qp.p50, qp.p90, qp.p99, qp.max,
                static_cast<long long>(empty));
    std::fflush(stdout);
    std::cout << "RESULT soak query errors      " << queries.errors.total() << "  (non-2xx "
              << queries.errors.non_2xx << ", connection " << queries.errors.connection
              << ", not success " << queries.errors.not_success << "); " << answered << " of "
              << queries.planned << " planned answered, " << queries.skipped
              << " dropped for running over\n";
    print_errors("query", queries.errors);
  }
  // The client shares the cores with kpid: what it used of them.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double client_cpu =
      static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
      static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  std::cout << "RESULT soak client cpu s      " << fixed(client_cpu, 1) << " ("
            << fixed(100 * client_cpu / elapsed, 0) << "% of one core)\n";
  // One line for scripts (bench/soak.sh reads it).
  std::cout << "SOAK seconds=" << fixed(elapsed, 1) << " target=" << o.rate
            << " achieved=" << fixed(achieved, 0) << " samples=" << samples
            << " write_requests=" << requests + probe.requests
            << " write_errors=" << write_errors.total() << " write_p50_ms=" << fixed(wp.p50, 2)
            << " write_p99_ms=" << fixed(wp.p99, 2) << " queries=" << answered
            << " query_planned=" << queries.planned << " query_skipped=" << queries.skipped
            << " query_errors=" << queries.errors.total() << " query_empty=" << empty
            << " query_p50_ms=" << fixed(qp.p50, 2) << " query_p99_ms=" << fixed(qp.p99, 2)
            << " query_max_ms=" << fixed(qp.max, 2) << " probe_episodes=" << episodes
            << " client_cpu_s=" << fixed(client_cpu, 1) << "\n";
  bool ok = write_errors.total() == 0 && queries.errors.total() == 0;
  if (paced && achieved < 0.95 * static_cast<double>(o.rate)) {
    std::cerr << "kpid_bench: achieved rate below 95% of the target\n";
    ok = false;
  }
  return ok;
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
    if (o.duration > 0) return run_stream(o) ? 0 : 1;
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
