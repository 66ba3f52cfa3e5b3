// slo_bench: the cost of keeping 1,000 SLOs current (see bench/README.md, "SLOs: 1,000 over
// 10,000 series").
//
//   slo_bench [--services N] [--instances I] [--history-days D] [--rounds R] ...
//
// A RocksDbStore in a temporary dir holds http_requests_total{service, code, instance}:
// N services x code "200" | "500" x I instances (10,000 counters by default), D days of samples
// (every 10 s in the last 6 hours, sparser before: see Data) written through the WritePipeline
// (kpid's write path) and made into chunks and rollups by the store's maintain(). One SLO per
// service, objective 99.9 over 30d, with the three default burn-rate alerts:
//   good  = sum(http_requests_total{service="sK",code="200"})
//   total = sum(http_requests_total{service="sK"})
// i.e. each SLO reads its service's 2 x I series. An slo::Tracker (no background thread) runs on
// a fake clock on the 30 s grid: a first run_once() fills every ledger from the store (timed as
// the start-up fill; with 30 days of history the ledgers are then as full as they get), then R
// rounds each write the next 30 s of samples (untimed; maintain() every other round, as kpid's
// 60 s checkpoint) and time run_once(), which evaluates all SLOs, in this thread's CPU time, the
// process's CPU time and wall time. For comparison, the same rounds time two 5-minute KPIs per
// service over the same series with kpi::evaluate_value.
//
// Everything is in this process; the temporary dir is removed on exit (Ctrl-C included).
#include <sys/resource.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "bench_text.h"

#include "kpid/config/config.h"
#include "kpid/ingest/write_pipeline.h"
#include "kpid/kpi/definition.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/metrics/metrics.h"
#include "kpid/query/engine.h"
#include "kpid/slo/definition.h"
#include "kpid/slo/tracker.h"
#include "kpid/store/rocksdb_store.h"

#include "scratch.h"

namespace {

using namespace kpid;
using Steady = std::chrono::steady_clock;
using kpid_bench::append_int;
using kpid_bench::fixed;
using kpid_bench::percentiles;

const char* const kUsage = R"(Usage: slo_bench [OPTIONS]

  --services N       services, one SLO each                                  (default 1000)
  --instances I      instances per service and code: each SLO reads 2 x I series
                                                                             (default 5)
  --history-days D   days of samples written before the run: every 10 s in the last 6 h,
                     every 150 s back to 3 days, every 30 min before       (default 30)
  --rounds R         timed rounds of 30 s after the start-up fill            (default 20)
  --no-kpis          skip the comparison with 5-minute KPIs
  --timeout S        abort (exit 3, temp dir removed) after S seconds        (default 900)
  --help             this text
The temporary data dir is made under $TMPDIR (default /tmp) and removed on exit.
)";

constexpr int64_t kScrapeMs = 10'000;
constexpr int64_t kRoundMs = 30'000;

using kpid_bench::die;
using kpid_bench::g_stop;
using kpid_bench::TempDir;

struct Options {
  int services = 1000;
  int instances = 5;
  double history_days = 30;
  int rounds = 20;
  bool kpis = true;
  double timeout = 900;
};

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (a == "--no-kpis") {
      o.kpis = false;
      continue;
    }
    if (i + 1 >= argc) die("option " + std::string(a) + " needs a value\n" + kUsage, 2);
    const std::string v = argv[++i];
    double x = 0;
    try {
      size_t used = 0;
      x = std::stod(v, &used);
      if (used != v.size()) throw std::invalid_argument(v);
    } catch (const std::exception&) {
      die("option " + std::string(a) + ": not a number: " + v, 2);
    }
    auto at_least = [&](double min) {
      if (!(x >= min)) die("option " + std::string(a) + " must be >= " + fixed(min, 2), 2);
    };
    if (a == "--services") {
      at_least(1);
      o.services = static_cast<int>(x);
    } else if (a == "--instances") {
      at_least(1);
      o.instances = static_cast<int>(x);
    } else if (a == "--history-days") {
      at_least(0.25);
      o.history_days = x;
    } else if (a == "--rounds") {
      at_least(1);
      o.rounds = static_cast<int>(x);
    } else if (a == "--timeout") {
      at_least(1);
      o.timeout = x;
    } else {
      die("unknown option " + std::string(a) + "\n" + kUsage, 2);
    }
  }
  return o;
}

// A settable clock: the tracker, the store's retention and the write path all read it.
class BenchClock final : public Clock {
 public:
  int64_t now_ns() const override { return ns_.load(); }
  void set_ms(TimestampMs ms) { ns_.store(ms * 1'000'000); }

 private:
  std::atomic<int64_t> ns_{0};
};

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// User + system CPU of the whole process (RocksDB's threads included).
double process_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return s(u.ru_utime) + s(u.ru_stime);
}

// VmRSS or VmHWM of this process, in kB.
int64_t status_kb(std::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field)) return std::atoll(line.c_str() + field.size() + 1);
  }
  return -1;
}

// What one timed stretch cost: this thread's CPU, the process's CPU, wall time, in seconds.
struct Cost {
  double thread = 0, process = 0, wall = 0;
};

template <typename F>
Cost measure(F&& f) {
  const double t0 = thread_cpu_s();
  const double p0 = process_cpu_s();
  const auto w0 = Steady::now();
  f();
  return {thread_cpu_s() - t0, process_cpu_s() - p0,
          std::chrono::duration<double>(Steady::now() - w0).count()};
}

// --- the data ------------------------------------------------------------------------------
// Series (service s, code c, instance j) is number n = (s * 2 + c) * I + j. Scrapes sit on a
// grid from `base`: every 10 s in the last 6 hours before t0 and after it (the rounds), every
// 150 s from 3 days to 6 hours before t0 (two samples per 5-minute bucket, so the ledger's
// 5-minute buckets fill), every 30 min before that (two per hourly bucket); series n's sample
// of a scrape is `jitter(n)` (< 10 s) after it, spreading each scrape as real ones are. The
// counters grow with time: a "200" counter by 40..59 per 10 s, a "500" counter by 1 every
// 100..390 s (an error ratio of about 0.05% to 0.25%, around the 0.1% a 99.9 objective allows).
struct Data {
  int services;
  int instances;
  TimestampMs base;
  TimestampMs t0;

  int series() const { return services * 2 * instances; }
  static int64_t jitter(int n) { return (static_cast<int64_t>(n) * 7919) % kScrapeMs; }
  // The scrape after the one at `slot`.
  TimestampMs next_slot(TimestampMs slot) const {
    if (slot < t0 - 3 * 86'400'000LL) return slot + 1'800'000;
    if (slot < t0 - 6 * 3'600'000LL) return slot + 150'000;
    return slot + kScrapeMs;
  }

  void append_line(std::string& out, int n, TimestampMs ts) const {
    const int j = n % instances;
    const int c = (n / instances) % 2;
    const int s = n / instances / 2;
    const int64_t elapsed = ts - base;
    int64_t value = 0;
    if (c == 0) {
      value = 1000LL * s + elapsed * (40 + (s * 7 + j) % 20) / kScrapeMs;
    } else {
      value = elapsed / (kScrapeMs * (10 + (s + j) % 30));
    }
    out.append("http_requests,service=s");
    append_int(out, s);
    out.append(c == 0 ? ",code=200,instance=i" : ",code=500,instance=i");
    append_int(out, j);
    out.append(" total=");
    append_int(out, value);
    out.push_back(' ');
    append_int(out, ts);
    out.push_back('\n');
  }
};

void write_or_die(ingest::WritePipeline& pipeline, std::string_view body) {
  auto r = pipeline.write(body, ingest::Precision::kMilliseconds, ingest::Protocol::kHttp);
  if (!r.storage) die("write failed: " + r.storage.message());
  if (r.lines_rejected > 0) {
    die("write rejected " + std::to_string(r.lines_rejected) +
        " lines: " + (r.errors.empty() ? "" : r.errors.front().message));
  }
}

// Writes every sample stamped in (from, to], scrape by scrape, in posts of up to 5000 lines.
int64_t write_span(ingest::WritePipeline& pipeline, const Data& data, TimestampMs from,
                   TimestampMs to) {
  std::string body;
  int lines = 0;
  int64_t written = 0;
  for (TimestampMs slot = data.base; slot <= to && !g_stop.load(); slot = data.next_slot(slot)) {
    if (slot + kScrapeMs <= from) continue;
    for (int n = 0; n < data.series(); ++n) {
      const TimestampMs ts = slot + Data::jitter(n);
      if (ts <= from || ts > to) continue;
      data.append_line(body, n, ts);
      ++written;
      if (++lines == 5000) {
        write_or_die(pipeline, body);
        body.clear();
        lines = 0;
      }
    }
  }
  if (!body.empty()) write_or_die(pipeline, body);
  if (g_stop.load()) die("interrupted", 130);
  return written;
}

std::vector<slo::Definition> make_slos(int services) {
  std::vector<slo::Definition> out;
  out.reserve(services);
  for (int s = 0; s < services; ++s) {
    slo::Definition d;
    d.id = "availability_s" + std::to_string(s);
    d.name = "Service s" + std::to_string(s) + " availability";
    d.owner = "team" + std::to_string(s % 20);
    d.objective = 99.9;
    d.window_text = "30d";
    d.window = 30 * 86'400'000LL;
    d.interval = kRoundMs;
    d.kind = slo::SliKind::kEvents;
    const std::string svc = "service=\"s" + std::to_string(s) + "\"";
    d.good = "sum(http_requests_total{" + svc + ",code=\"200\"})";
    d.total = "sum(http_requests_total{" + svc + "})";
    d.alerts = slo::default_alerts(d.id);
    out.push_back(std::move(d));
  }
  return out;
}

// Two 5-minute KPIs per service over the same series: the request rate, and the error ratio
// (what the SLO's 5m burn rate measures, as a KPI would compute it).
std::vector<kpi::Definition> make_kpis(int services) {
  std::ostringstream toml;
  for (int s = 0; s < services; ++s) {
    const std::string sel = "http_requests_total{service=\"s" + std::to_string(s) + "\"";
    toml << "[[kpi]]\nid = \"rate_s" << s << "\"\nowner = \"bench\"\n"
         << "direction = \"higher_is_better\"\n[kpi.value]\nexpr = 'sum(rate(" << sel
         << "}[5m]))'\n[kpi.band]\nwarn = 10\ncrit = 1\n\n";
    toml << "[[kpi]]\nid = \"errors_s" << s << "\"\nowner = \"bench\"\n"
         << "direction = \"lower_is_better\"\n[kpi.value]\nexpr = 'sum(rate(" << sel
         << ",code=\"500\"}[5m])) / sum(rate(" << sel << "}[5m]))'\n"
         << "[kpi.band]\nwarn = 0.001\ncrit = 0.01\n\n";
  }
  auto loaded = config::parse_config(toml.str(), "slo_bench.toml", {});
  if (!loaded.ok()) die("generated config: " + loaded.errors.front().to_string());
  auto compiled = kpi::compile(loaded.config.kpis);
  if (!compiled.ok()) die("generated KPIs: " + compiled.errors.front().to_string());
  return std::move(compiled.kpis);
}

std::string us(double seconds, int decimals = 1) { return fixed(seconds * 1e6, decimals); }
std::string ms(double seconds, int decimals = 2) { return fixed(seconds * 1e3, decimals); }

int run(const Options& o) {
  TempDir tmp("slo-bench");
  spdlog::set_level(spdlog::level::warn);
  BenchClock clock;
  const int64_t history_ms = static_cast<int64_t>(o.history_days * 86'400'000);
  // The rounds end near the real time (so nothing is "in the future" for anyone), on the 30 s
  // grid; the history ends where the rounds begin.
  const TimestampMs real_now = SystemClock().now_ms() / kRoundMs * kRoundMs;
  const TimestampMs t0 = real_now - static_cast<int64_t>(o.rounds) * kRoundMs;
  const Data data{o.services, o.instances, t0 - history_ms, t0};
  clock.set_ms(t0);

  metrics::Metrics metrics;
  store::StoreOptions store_options;
  store_options.data_dir = tmp.path + "/data";
  store_options.clock = &clock;
  store_options.background = false;  // maintain() is called as kpid's checkpoints would run
  auto opened = store::RocksDbStore::open(store_options, &metrics);
  if (!opened) die("cannot open the store: " + opened.status().message());
  auto store = std::move(opened).value();
  query::Engine engine(*store, query::QueryOptions{}, &metrics);
  ingest::IngestMetrics ingest_metrics(metrics.registry());
  ingest::WritePipeline pipeline(*store, ingest_metrics, clock);

  std::cout << "== slo_bench: " << o.services << " SLOs (99.9 over 30d, 3 default burn alerts), "
            << data.series() << " counter series (" << o.services << " services x 2 codes x "
            << o.instances << " instances), each SLO over " << 2 * o.instances << " series; "
            << fixed(o.history_days, 2) << " days of history (10 s / 150 s / 30 min scrapes), then "
            << o.rounds << " rounds of 30 s\n";

  // The history an hour at a time (the clock following); maintain() makes the heads into chunks
  // and rollups after every 3.6 million samples (an hour of 10 s scrapes) and at the end.
  int64_t history_samples = 0, unmaintained = 0;
  double history_write_s = 0, history_maintain_s = 0;
  for (TimestampMs from = data.base - 1; from < t0;) {
    const TimestampMs to = std::min<TimestampMs>(t0, (from / 3'600'000 + 1) * 3'600'000);
    clock.set_ms(to);
    history_write_s += measure([&] {
                         const int64_t n = write_span(pipeline, data, from, to);
                         history_samples += n;
                         unmaintained += n;
                       }).wall;
    if (unmaintained >= 3'600'000 || to == t0) {
      history_maintain_s += measure([&] {
                              if (auto s = store->maintain(); !s) die("maintain: " + s.message());
                            }).wall;
      unmaintained = 0;
    }
    from = to;
  }
  std::cout << "  history: " << history_samples << " samples written in "
            << fixed(history_write_s, 1) << " s, maintain() (chunks, rollups) "
            << fixed(history_maintain_s, 1) << " s\n";

  kpi::EvaluatorOptions kpi_options;
  kpi_options.background = false;
  kpi::Evaluator kpis(*store, *store, engine, &metrics, clock, kpi_options);
  slo::TrackerOptions tracker_options;
  tracker_options.background = false;
  slo::Tracker tracker(engine, kpis, &metrics, clock, tracker_options);

  const int64_t rss_before = status_kb("VmRSS:");
  tracker.set_slos(make_slos(o.services));
  // The start-up fill: the first round takes every counter's value and fills the 5-minute and
  // hourly buckets of every ledger from the store.
  const Cost fill = measure([&] { tracker.run_once(); });
  const int64_t rss_filled = status_kb("VmRSS:");
  {
    const auto views = tracker.list();
    const size_t evaluated = std::count_if(views.begin(), views.end(), [&](const auto& v) {
      return v.evaluated_at == t0 && v.error.empty();
    });
    if (evaluated != views.size()) {
      die("the fill round evaluated " + std::to_string(evaluated) + " of " +
          std::to_string(views.size()) + " SLOs");
    }
  }

  std::vector<kpi::Definition> kpi_defs;
  if (o.kpis) kpi_defs = make_kpis(o.services);
  std::vector<double> round_thread, round_process, round_wall;
  std::vector<std::pair<int, int64_t>> rss_by_round;  // every 20th round
  std::vector<double> kpi_thread[2];                  // rate KPIs, error-ratio KPIs
  double write_wall = 0, maintain_wall = 0;
  int64_t written = 0;
  for (int r = 1; r <= o.rounds; ++r) {
    if (g_stop.load()) die("interrupted", 130);
    const TimestampMs t = t0 + r * kRoundMs;
    clock.set_ms(t);
    write_wall += measure([&] { written += write_span(pipeline, data, t - kRoundMs, t); }).wall;
    if (r % 2 == 0) {
      maintain_wall += measure([&] {
                         if (auto s = store->maintain(); !s) die("maintain: " + s.message());
                       }).wall;
    }
    const Cost c = measure([&] { tracker.run_once(); });
    round_thread.push_back(c.thread);
    round_process.push_back(c.process);
    round_wall.push_back(c.wall);
    if (r % 20 == 0) rss_by_round.push_back({r, status_kb("VmRSS:")});
    if (!kpi_defs.empty()) {
      // The rate KPIs (even ids) and the error-ratio KPIs (odd ids), timed apart.
      for (size_t kind = 0; kind < 2; ++kind) {
        size_t with_value = 0;
        const Cost k = measure([&] {
          for (size_t i = kind; i < kpi_defs.size(); i += 2) {
            auto v = kpi::evaluate_value(engine, kpi_defs[i], t);
            with_value += v && !std::isnan(*v);
          }
        });
        if (with_value != kpi_defs.size() / 2) {
          die("round " + std::to_string(r) + ": " + std::to_string(with_value) + " of " +
              std::to_string(kpi_defs.size() / 2) + " KPIs have a value");
        }
        kpi_thread[kind].push_back(k.thread);
      }
    }
  }
  const int64_t rss_end = status_kb("VmRSS:");
  const int64_t hwm_end = status_kb("VmHWM:");

  // Every SLO must have been evaluated in the last round, without an error, with events.
  const auto views = tracker.list();
  const TimestampMs last = t0 + static_cast<int64_t>(o.rounds) * kRoundMs;
  size_t ok = 0;
  double min_remaining = 1e9, max_remaining = -1e9, burn_1h_sum = 0;
  for (const auto& v : views) {
    if (v.evaluated_at != last || !v.error.empty() || !(v.window.total > 0)) continue;
    ++ok;
    min_remaining = std::min(min_remaining, v.budget_remaining);
    max_remaining = std::max(max_remaining, v.budget_remaining);
    burn_1h_sum += v.burn_rate(3'600'000);
  }
  if (ok != views.size()) {
    die(std::to_string(views.size() - ok) + " SLOs not evaluated with events in the last round");
  }
  const auto& sample = views.front();
  std::cout << "  " << sample.definition->id << " at the end: window total "
            << fixed(sample.window.total, 0) << ", good " << fixed(sample.window.good, 0)
            << ", SLI " << fixed(100 * sample.sli, 4) << "%, budget remaining "
            << fixed(sample.budget_remaining, 3) << ", burn 5m/1h/6h "
            << fixed(sample.burn_rate(300'000), 2) << "/" << fixed(sample.burn_rate(3'600'000), 2)
            << "/" << fixed(sample.burn_rate(21'600'000), 2) << "\n";
  std::cout << "  all " << views.size() << " SLOs: budget remaining " << fixed(min_remaining, 3)
            << " .. " << fixed(max_remaining, 3) << ", mean 1h burn rate "
            << fixed(burn_1h_sum / static_cast<double>(views.size()), 2) << "\n";
  std::cout << "  per round (untimed): " << written / o.rounds << " samples written in "
            << ms(write_wall / o.rounds, 1) << " ms; maintain() every other round, "
            << ms(maintain_wall / (o.rounds / 2 > 0 ? o.rounds / 2 : 1), 1) << " ms each\n";

  const double n = o.services;
  std::cout << "RESULT start-up fill (" << o.services << " SLOs) s  thread CPU "
            << fixed(fill.thread, 2) << "  process CPU " << fixed(fill.process, 2) << "  wall "
            << fixed(fill.wall, 2) << "  (" << ms(fill.thread / n, 2) << " ms CPU per SLO)\n";
  auto t = percentiles(round_thread);
  auto p = percentiles(round_process);
  auto w = percentiles(round_wall);
  std::cout << "RESULT round of " << o.services << " SLOs ms  thread CPU p50 " << ms(t.p50)
            << "  p99 " << ms(t.p99) << "  max " << ms(t.max) << "  | process CPU p50 " << ms(p.p50)
            << "  p99 " << ms(p.p99) << "  | wall p50 " << ms(w.p50) << "  p99 " << ms(w.p99)
            << "\n";
  std::cout << "RESULT share of one core (process CPU p50 / 30 s) " << fixed(p.p50 / 30, 4)
            << "  (p99 " << fixed(p.p99 / 30, 4) << ")\n";
  std::cout << "RESULT per SLO evaluation us  p50 " << us(t.p50 / n) << "  p99 " << us(t.p99 / n)
            << "  (thread CPU per round / " << o.services << ")\n";
  if (!kpi_defs.empty()) {
    const char* what[2] = {"sum(rate(x[5m])) over 10 series",
                           "sum(rate(x{code=\"500\"}[5m])) / sum(rate(x[5m])), 5 + 10 series"};
    for (size_t kind = 0; kind < 2; ++kind) {
      auto k = percentiles(kpi_thread[kind]);
      const double per = n;  // one KPI of each kind per service
      std::cout << "RESULT per 5m KPI evaluation us (" << what[kind] << ")  p50 " << us(k.p50 / per)
                << "  p99 " << us(k.p99 / per) << "  SLO / KPI " << fixed(t.p50 / k.p50, 2) << "\n";
    }
  }
  std::cout << "RESULT RSS kB  before the SLOs " << rss_before << "  after the fill " << rss_filled
            << "  at the end " << rss_end << "  peak " << hwm_end << "\n";
  std::cout << "  RSS kB after round";
  for (auto [r, kb] : rss_by_round) std::cout << " " << r << ": " << kb;
  std::cout << "\n";

  if (auto s = store->close(); !s) die("closing the store: " + s.message());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  kpid_bench::g_program = "slo_bench";
  Options o = parse_args(argc, argv);
  std::signal(SIGINT, kpid_bench::on_signal);
  std::signal(SIGTERM, kpid_bench::on_signal);
  // Watchdog: a hung run ends (temp dir removed) instead of running forever.
  std::thread([timeout = o.timeout] {
    const auto deadline = Steady::now() + std::chrono::duration<double>(timeout);
    while (Steady::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    die("timed out after " + fixed(timeout, 0) + " s", 3);
  }).detach();
  return run(o);
}
