// query_load_bench: does heavy query load slow down ingest and health checks? Against a
// running kpid (see bench/query_load.sh), in one run:
//   1. backfill: --history-series series of --history-days days at one sample an hour, then
//      POST /api/v1/admin/compact so their rollups exist (the heavy queries read a year of them);
//   2. phase "ingest alone" for --duration seconds: --writers connections POST line protocol as
//      fast as kpid takes it, one connection GETs /healthz every --healthz-ms, and one TCP
//      line-protocol connection sends a probe line every --probe-ms, timed until kpid counts it
//      stored (kpid_ingest_samples_total{protocol="tcp"} on /metrics);
//   3. phase "under query load": the same, while --query-clients clients each run heavy range
//      queries back to back: max_over_time({__name__=~".+"}[1d]) over the last --query-days days
//      at a step of one hour (every series, a year of 1h rollups).
// Prints ingest samples/s, /healthz and TCP probe p50/p99/max for each phase, and the queries'
// count, answers and latencies. Network only: Boost.Asio/Beast are header-only.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"

namespace {

using kpid_bench::HttpClient;
using Clock = std::chrono::steady_clock;
namespace http = boost::beast::http;
namespace asio = boost::asio;

const char* const kUsage = R"(Usage: query_load_bench --port PORT --line-port PORT [OPTIONS]
  --duration S          seconds per phase (ingest alone, then under query load)  (default 30)
  --writers N           HTTP ingest connections                                  (default 2)
  --lines-per-request N lines per ingest POST, one per series of the writer      (default 5000)
  --healthz-ms MS       one GET /healthz every MS                                (default 20)
  --probe-ms MS         one TCP probe line every MS                              (default 200)
  --query-clients N     clients running heavy range queries back to back         (default 16)
  --query-days D        the heavy queries' range, in days back from now          (default 365)
  --query-timeout S     the queries' `timeout` parameter                          (default 120)
  --history-series N    backfilled series for the heavy queries                  (default 200)
  --history-days D      days of hourly samples backfilled                        (default 365)
  --skip-backfill       the data dir already holds the history
)";

struct Options {
  uint16_t port = 0;
  uint16_t line_port = 0;
  int duration = 30;
  int writers = 2;
  int lines_per_request = 5000;
  int healthz_ms = 20;
  int probe_ms = 200;
  int query_clients = 16;
  int query_days = 365;
  int query_timeout = 120;
  int history_series = 200;
  int history_days = 365;
  bool backfill = true;
};

Options parse_options(int argc, char** argv) {
  Options o;
  kpid_bench::Flags f("query_load_bench", argc, argv, 1);
  while (f.next()) {
    const std::string& flag = f.flag();
    if (flag == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (flag == "--port") {
      o.port = f.integer<uint16_t>(1, 65535);
    } else if (flag == "--line-port") {
      o.line_port = f.integer<uint16_t>(1, 65535);
    } else if (flag == "--duration") {
      o.duration = f.integer(1, 3600);
    } else if (flag == "--writers") {
      o.writers = f.integer(1, 64);
    } else if (flag == "--lines-per-request") {
      o.lines_per_request = f.integer(1, 1'000'000);
    } else if (flag == "--healthz-ms") {
      o.healthz_ms = f.integer(1, 60'000);
    } else if (flag == "--probe-ms") {
      o.probe_ms = f.integer(1, 60'000);
    } else if (flag == "--query-clients") {
      o.query_clients = f.integer(0, 1024);
    } else if (flag == "--query-days") {
      o.query_days = f.integer(1, 3650);
    } else if (flag == "--query-timeout") {
      o.query_timeout = f.integer(1, 3600);
    } else if (flag == "--history-series") {
      o.history_series = f.integer(1, 1'000'000);
    } else if (flag == "--history-days") {
      o.history_days = f.integer(1, 3650);
    } else if (flag == "--skip-backfill") {
      o.backfill = false;
    } else {
      f.fail("unknown option " + f.arg());
    }
  }
  if (o.port == 0 || o.line_port == 0) f.fail("--port and --line-port are required");
  return o;
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string fixed(double v, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << v;
  return out.str();
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Nearest-rank percentile of `v` (sorted in place); NaN when empty.
double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

std::string latency_line(std::vector<double> v) {
  if (v.empty()) return "no samples";
  const double p50 = percentile(v, 50);
  const double p99 = percentile(v, 99);
  return "n=" + std::to_string(v.size()) + " p50=" + fixed(p50, 2) + " ms p99=" + fixed(p99, 2) +
         " ms max=" + fixed(v.back(), 2) + " ms";
}

std::string percent_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// POSTs `body`; throws unless kpid answers 204.
void post_write(HttpClient& client, const std::string& body) {
  auto reply = client.request(http::verb::post, "/write?precision=ms", body);
  if (reply.status != 204) {
    throw std::runtime_error("POST /write answered " + std::to_string(reply.status) + ": " +
                             reply.body.substr(0, 300));
  }
}

void backfill(const Options& o) {
  const auto t0 = Clock::now();
  const int64_t hours = static_cast<int64_t>(o.history_days) * 24;
  const int64_t last_hour = wall_ms() / 3'600'000 * 3'600'000 - 3'600'000;
  HttpClient client(o.port, "query_load_bench-backfill");
  std::string body;
  int64_t lines = 0;
  // Hour by hour across all series, so each series' samples arrive in time order.
  for (int64_t h = 0; h < hours; ++h) {
    const std::string ts = std::to_string(last_hour - (hours - 1 - h) * 3'600'000);
    for (int s = 0; s < o.history_series; ++s) {
      body += "history,s=" + std::to_string(s) + " value=" + std::to_string((h * 7 + s) % 100) +
              " " + ts + "\n";
      if (++lines % 20'000 == 0) {
        post_write(client, body);
        body.clear();
      }
    }
  }
  if (!body.empty()) post_write(client, body);
  const double written_s = ms_since(t0) / 1000;
  // Seal heads and compute the rollups the heavy queries read.
  auto reply = client.request(http::verb::post, "/api/v1/admin/compact");
  if (reply.status != 204) {
    throw std::runtime_error("POST /api/v1/admin/compact answered " + std::to_string(reply.status) +
                             ": " + reply.body.substr(0, 300));
  }
  std::cout << "backfill: " << lines << " samples (" << o.history_series << " series x " << hours
            << " hours) in " << fixed(written_s, 1) << " s, compaction "
            << fixed(ms_since(t0) / 1000 - written_s, 1) << " s\n";
}

struct PhaseResult {
  int64_t samples = 0;
  double seconds = 0;
  std::vector<double> write_ms;
  std::vector<double> healthz_ms;
  std::vector<double> probe_ms;
  int64_t probe_lost = 0;  // not counted within 10 s
  int64_t queries_ok = 0;
  std::map<std::string, int64_t> query_errors;  // errorType (or status) -> count
  std::vector<double> query_ms;
  std::vector<std::string> errors;
  std::mutex mutex;
  void fail(const std::string& e) {
    std::lock_guard lock(mutex);
    if (errors.size() < 5) errors.push_back(e);
  }
};

// kpid_ingest_samples_total{protocol="tcp"} from a /metrics text; -1 when absent.
double tcp_samples(const std::string& metrics) {
  const std::string key = "kpid_ingest_samples_total{protocol=\"tcp\"} ";
  const auto at = metrics.find(key);
  if (at == std::string::npos) return -1;
  return std::strtod(metrics.c_str() + at + key.size(), nullptr);
}

// Writer w's k-th request stamps its series base_ms + k (k goes on across phases).
void run_phase(const Options& o, const char* name, bool query_load, int64_t base_ms,
               int64_t& next_step) {
  PhaseResult r;
  std::atomic<bool> queries_stop{false};
  std::vector<std::thread> threads;
  const int64_t step_base = next_step;
  std::atomic<int64_t> steps_done{step_base};  // the highest k written, plus one

  // Heavy queries first, so the load is on when the measured clients start.
  const int64_t now = wall_ms() / 3'600'000 * 3'600'000;
  const std::string heavy =
      "/api/v1/query_range?query=" + percent_encode("max_over_time({__name__=~\".+\"}[1d])") +
      "&start=" + std::to_string((now - o.query_days * 86'400'000LL) / 1000) +
      "&end=" + std::to_string(now / 1000) +
      "&step=3600&timeout=" + std::to_string(o.query_timeout);
  if (query_load) {
    for (int c = 0; c < o.query_clients; ++c) {
      threads.emplace_back([&] {
        HttpClient client(o.port, "query_load_bench-query");
        while (!queries_stop.load()) {
          const auto t0 = Clock::now();
          try {
            auto reply = client.request(http::verb::get, heavy);
            const double ms = ms_since(t0);
            std::lock_guard lock(r.mutex);
            if (reply.status == 200) {
              ++r.queries_ok;
              r.query_ms.push_back(ms);
            } else {
              std::string type = std::to_string(reply.status);
              if (auto at = reply.body.find("\"errorType\":\""); at != std::string::npos) {
                type += " " + reply.body.substr(at + 13, reply.body.find('"', at + 13) - at - 13);
              }
              ++r.query_errors[type];
              // A refused query (503 unavailable) comes back at once: don't spin on it.
              if (reply.status == 503) std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
          } catch (const std::exception& e) {
            r.fail(std::string("query: ") + e.what());
            client.close();
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }

  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::seconds(o.duration);
  // Writer w owns series ingest{writer=w,host=0..lines_per_request-1}.
  std::atomic<int64_t> samples{0};
  for (int w = 0; w < o.writers; ++w) {
    threads.emplace_back([&, w] {
      HttpClient client(o.port, "query_load_bench-write");
      std::string body;
      std::vector<double> latencies;
      for (int64_t k = step_base; Clock::now() < end; ++k) {
        body.clear();
        const std::string ts = std::to_string(base_ms + k);
        const std::string prefix = "ingest,writer=" + std::to_string(w) + ",host=h";
        const int lines = o.lines_per_request;
        for (int i = 0; i < lines; ++i) {
          body +=
              prefix + std::to_string(i) + " value=" + std::to_string(k % 1000) + " " + ts + "\n";
        }
        const auto s0 = Clock::now();
        try {
          post_write(client, body);
        } catch (const std::exception& e) {
          r.fail(std::string("write: ") + e.what());
          client.close();
          continue;
        }
        latencies.push_back(ms_since(s0));
        samples += lines;
        int64_t seen = steps_done.load();
        while (k + 1 > seen && !steps_done.compare_exchange_weak(seen, k + 1)) {
        }
      }
      std::lock_guard lock(r.mutex);
      r.write_ms.insert(r.write_ms.end(), latencies.begin(), latencies.end());
    });
  }
  threads.emplace_back([&] {
    HttpClient client(o.port, "query_load_bench-healthz");
    std::vector<double> latencies;
    for (auto at = t0; at < end; at += std::chrono::milliseconds(o.healthz_ms)) {
      std::this_thread::sleep_until(at);
      const auto s0 = Clock::now();
      try {
        auto reply = client.request(http::verb::get, "/healthz");
        if (reply.status != 200) r.fail("GET /healthz answered " + std::to_string(reply.status));
      } catch (const std::exception& e) {
        r.fail(std::string("healthz: ") + e.what());
        client.close();
        continue;
      }
      latencies.push_back(ms_since(s0));
    }
    std::lock_guard lock(r.mutex);
    r.healthz_ms = std::move(latencies);
  });
  threads.emplace_back([&] {
    // One TCP connection; each probe line is timed from its send until /metrics counts it.
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    HttpClient metrics(o.port, "query_load_bench-probe");
    std::vector<double> latencies;
    int64_t lost = 0;
    try {
      socket.connect({asio::ip::address_v4::loopback(), o.line_port});
      socket.set_option(asio::ip::tcp::no_delay(true));
      double counted = tcp_samples(metrics.request(http::verb::get, "/metrics").body);
      int64_t n = 0;
      for (auto at = t0; at < end; at += std::chrono::milliseconds(o.probe_ms)) {
        std::this_thread::sleep_until(at);
        // Stamped now (ns, TCP's default precision): later than any probe before it.
        const std::string line = "tcp_probe value=" + std::to_string(n++) + " " +
                                 std::to_string(wall_ms() * 1'000'000) + "\n";
        const auto s0 = Clock::now();
        asio::write(socket, asio::buffer(line));
        bool seen = false;
        while (ms_since(s0) < 10'000) {
          const double now_counted = tcp_samples(metrics.request(http::verb::get, "/metrics").body);
          if (now_counted > counted) {
            counted = now_counted;
            seen = true;
            break;
          }
        }
        if (seen) {
          latencies.push_back(ms_since(s0));
        } else {
          ++lost;
        }
      }
    } catch (const std::exception& e) {
      r.fail(std::string("tcp probe: ") + e.what());
    }
    std::lock_guard lock(r.mutex);
    r.probe_ms = std::move(latencies);
    r.probe_lost = lost;
  });
  // The measured clients end at `end`; the query clients after them.
  const size_t measured_from = query_load ? static_cast<size_t>(o.query_clients) : 0;
  for (size_t i = measured_from; i < threads.size(); ++i) threads[i].join();
  r.seconds = ms_since(t0) / 1000;
  r.samples = samples.load();
  queries_stop = true;
  for (size_t i = 0; i < measured_from; ++i) threads[i].join();
  next_step = steps_done.load();

  std::cout << "== " << name << " (" << fixed(r.seconds, 1) << " s)\n";
  std::cout << "RESULT " << name
            << " ingest: " << fixed(static_cast<double>(r.samples) / r.seconds, 0) << " samples/s ("
            << r.samples << " samples); POST latency " << latency_line(r.write_ms) << "\n";
  std::cout << "RESULT " << name << " /healthz: " << latency_line(r.healthz_ms) << "\n";
  std::cout << "RESULT " << name
            << " TCP probe (sent -> counted stored): " << latency_line(r.probe_ms)
            << ", not counted within 10 s: " << r.probe_lost << "\n";
  if (query_load) {
    std::cout << "  heavy queries: " << r.queries_ok << " answered 200, "
              << latency_line(r.query_ms);
    for (const auto& [type, count] : r.query_errors) std::cout << "; " << count << " x " << type;
    std::cout << "\n";
  }
  for (const auto& e : r.errors) std::cout << "  error: " << e << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  try {
    std::cout << "query_load_bench: kpid on 127.0.0.1:" << o.port << " (line " << o.line_port
              << "), " << o.duration << " s per phase, " << o.writers << " writers x "
              << o.lines_per_request << " lines, " << o.query_clients
              << " query clients over the last " << o.query_days << " days\n";
    if (o.backfill) backfill(o);
    // Live ingest, as services push: a minute behind now, 1 ms further per request, so the
    // samples go to each series' open head window. Old timestamps (a day back) made every
    // checkpoint recompute the rollups of an ever fuller closed window, which slowed the
    // second phase by itself: -45% with no query client at all.
    const int64_t base_ms = wall_ms() - 60'000;
    int64_t next_step = 0;
    run_phase(o, "ingest alone", false, base_ms, next_step);
    run_phase(o, "under query load", true, base_ms, next_step);
  } catch (const std::exception& e) {
    std::cerr << "query_load_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
