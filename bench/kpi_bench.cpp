// kpi_bench: in-process benchmarks of the KPI evaluator (see bench/README.md, "KPIs").
//
//   kpi_bench kpis [--count N] [--hosts H]
//       Prints a TOML config of N realistic KPIs over kpid_bench's data set (bench_usage,
//       bench_idle, bench_busy{host,region}); bench/run.sh uses it for KPIS=N.
//   kpi_bench latency [--kpis N] [--reps R] [--scrape-interval-ms I] [--other-rate L] ...
//       Breach-to-status latency: a RocksDbStore in a temporary dir, a query::Engine, a
//       kpi::Evaluator (background thread, SystemClock) with N KPIs and a WritePipeline that
//       hands every stored batch to the evaluator, as kpid wires them. R times: write an ok
//       sample of the probe KPI, wait for status ok, then time from just before
//       WritePipeline::write of a breaching sample until Evaluator::get() shows crit.
//       Optional background ingest meanwhile: live scrapes of the KPIs' series, and/or a
//       stream of samples on series no KPI watches.
//   kpi_bench baseline [--days D] [--interval-s I] [--reps R] ...
//       One-year quantile baseline recompute: one series filled with D days of samples every
//       I s (ending now), store compact(), then R timed kpi::value_history(now - D, now) +
//       kpi::quantile_baseline() for KPIs with [kpi.baseline] method = "quantile".
//
// Everything is in this process; the temporary dir is removed on exit (Ctrl-C included).
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <numbers>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include "bench_text.h"

#include "kpid/config/config.h"
#include "kpid/ingest/write_pipeline.h"
#include "kpid/kpi/band.h"
#include "kpid/kpi/definition.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/metrics/metrics.h"
#include "kpid/query/engine.h"
#include "kpid/store/rocksdb_store.h"

#include "scratch.h"

namespace {

using namespace kpid;
using Steady = std::chrono::steady_clock;

const char* const kUsage = R"(Usage: kpi_bench MODE [OPTIONS]

Modes:
  kpis       print a TOML config of --count KPIs over kpid_bench's data set (for bench/run.sh)
             --count N        KPIs                                           (default 200)
             --hosts H        hosts of the data set (kpid_bench --series / --regions)
                                                                             (default 1000)
  latency    breach-to-status latency of one KPI among --kpis
             --kpis N         KPIs in the evaluator, the probe included      (default 200)
             --reps R         breaches measured                              (default 1000)
             --gap-ms G       random pause 0..G ms before each breach        (default 100)
             --series S       tag sets of the background data (10 regions per host): three
                              scrapes are written before measuring           (default 10000)
             --scrape-interval-ms I
                              background ingest: live scrapes of the S tag sets (the
                              KPIs' series) every I ms, spread evenly over I in posts of
                              --post-lines lines, stamped with the time of posting; 0 = none
                                                                             (default 0)
             --post-lines P   lines per post of those scrapes (10 = one host per post, as
                              one agent per host sends)                      (default 10)
             --other-rate L   background ingest: L samples/s on 10,000 tag sets no KPI
                              watches (kpid_bench's lines with measurement "other"), posts
                              of 5000 lines stamped now; 0 = none            (default 0)
             --probe-first    the probe KPI first in configuration order (default: last,
                              i.e. evaluated after all the others in a round)
  baseline   one-year quantile baseline recompute
             --days D         days of history                                (default 365)
             --interval-s I   seconds between samples                        (default 60)
             --reps R         timed recomputes per KPI after one first call  (default 20)
             --raw-days N     raw retention in days (kpid's default: 30; the older raw
                              chunks are dropped by compact(), as in a kpid with defaults)
                                                                             (default 30)
General:
  --timeout S    abort (exit 3, temp dir removed) after S seconds            (default 600)
  --help         this text
The temporary data dir is made under $TMPDIR (default /tmp) and removed on exit.
)";

using kpid_bench::die;
using kpid_bench::g_stop;
using kpid_bench::TempDir;

struct Options {
  std::string mode;
  int count = 200;
  int hosts = 1000;
  int kpis = 200;
  int reps = -1;  // per mode
  double gap_ms = 100;
  int series = 10000;
  double scrape_interval_ms = 0;
  int post_lines = 10;
  double other_rate = 0;
  bool probe_first = false;
  int days = 365;
  int interval_s = 60;
  int raw_days = 30;
  double timeout = 600;
};

Options parse_args(int argc, char** argv) {
  Options o;
  if (argc < 2) die(std::string("missing MODE\n") + kUsage, 2);
  o.mode = argv[1];
  if (o.mode == "--help" || o.mode == "-h") {
    std::cout << kUsage;
    std::exit(0);
  }
  if (o.mode != "kpis" && o.mode != "latency" && o.mode != "baseline") {
    die("unknown mode " + o.mode + "\n" + kUsage, 2);
  }
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (a == "--probe-first") {
      o.probe_first = true;
      continue;
    }
    if (i + 1 >= argc) die("option " + std::string(a) + " needs a value", 2);
    const std::string v = argv[++i];
    double x = 0;
    try {
      size_t used = 0;
      x = std::stod(v, &used);
      if (used != v.size()) throw std::invalid_argument(v);
    } catch (const std::exception&) {
      die("option " + std::string(a) + ": not a number: " + v, 2);
    }
    auto positive = [&](double min) {
      if (!(x >= min)) die("option " + std::string(a) + " must be >= " + std::to_string(min), 2);
    };
    if (a == "--count") {
      positive(1);
      o.count = static_cast<int>(x);
    } else if (a == "--hosts") {
      positive(1);
      o.hosts = static_cast<int>(x);
    } else if (a == "--kpis") {
      positive(1);
      o.kpis = static_cast<int>(x);
    } else if (a == "--reps") {
      positive(1);
      o.reps = static_cast<int>(x);
    } else if (a == "--gap-ms") {
      positive(0);
      o.gap_ms = x;
    } else if (a == "--series") {
      positive(10);
      o.series = static_cast<int>(x);
    } else if (a == "--scrape-interval-ms") {
      positive(0);
      o.scrape_interval_ms = x;
    } else if (a == "--post-lines") {
      positive(1);
      o.post_lines = static_cast<int>(x);
    } else if (a == "--other-rate") {
      positive(0);
      o.other_rate = x;
    } else if (a == "--days") {
      positive(1);
      o.days = static_cast<int>(x);
    } else if (a == "--interval-s") {
      positive(1);
      o.interval_s = static_cast<int>(x);
    } else if (a == "--raw-days") {
      positive(1);
      o.raw_days = static_cast<int>(x);
    } else if (a == "--timeout") {
      positive(1);
      o.timeout = x;
    } else
      die("unknown option " + std::string(a) + "\n" + kUsage, 2);
  }
  if (o.reps < 0) o.reps = o.mode == "baseline" ? 20 : 1000;
  return o;
}

// --- the KPI set ---------------------------------------------------------------------------
// KPI i watches one host of kpid_bench's data (10 regions each, so 10 series per term),
// spread evenly over the hosts, with a mix of reductions; owners team00..team19 (10 KPIs
// each, lint's limit). Each of kpid_bench's write batches (5000 tag sets spread over all
// hosts) touches about half of them.
std::string kpi_toml(int count, int hosts) {
  std::ostringstream out;
  out << "# " << count << " KPIs over kpid_bench's data set, generated by kpi_bench kpis\n";
  for (int i = 0; i < count; ++i) {
    const int host = static_cast<int>(static_cast<int64_t>(i) * hosts / count);
    const std::string h = "host=\"h" + std::to_string(host) + "\"";
    char owner[16];
    std::snprintf(owner, sizeof owner, "team%02d", i % 20);
    out << "\n[[kpi]]\nid = \"k" << i << "\"\nowner = \"" << owner << "\"\n";
    auto term = [&](const char* table, const std::string& metric, const char* over,
                    const char* across, const char* extra = "") {
      out << "[" << table << "]\nselector = '" << metric << "{" << h << "}'\n"
          << "over_time = \"" << over << "\"\n"
          << extra << "window = \"5m\"\n"
          << "across = \"" << across << "\"\n";
    };
    switch (i % 8) {
      case 0:  // usage: avg over 5m, worst region
        out << "direction = \"lower_is_better\"\n";
        term("kpi.value", "bench_usage", "avg", "max");
        out << "[kpi.band]\nwarn = 80\ncrit = 95\n";
        break;
      case 1:  // usage p95 over 5m, averaged over regions
        out << "direction = \"lower_is_better\"\n";
        term("kpi.value", "bench_usage", "quantile", "avg", "quantile = 0.95\n");
        out << "[kpi.band]\nwarn = 90\ncrit = 98\n";
        break;
      case 2:  // peak usage
        out << "direction = \"lower_is_better\"\n";
        term("kpi.value", "bench_usage", "max", "max");
        out << "[kpi.band]\nwarn = 99\ncrit = 99.95\n";
        break;
      case 3:  // idle: lowest over 5m and regions
        out << "direction = \"higher_is_better\"\n";
        term("kpi.value", "bench_idle", "min", "min");
        out << "[kpi.band]\nwarn = 90\ncrit = 85\n";
        break;
      case 4:  // busy: rate-like (per-second change, drops as resets), summed
        out << "direction = \"lower_is_better\"\n";
        term("kpi.value", "bench_busy", "rate", "sum");
        out << "[kpi.band]\nwarn = 50\ncrit = 100\n";
        break;
      case 5:  // busy average
        out << "direction = \"lower_is_better\"\n";
        term("kpi.value", "bench_busy", "avg", "avg");
        out << "[kpi.band]\nwarn = 15\ncrit = 18\n";
        break;
      case 6:  // idle: total increase over 5m
        out << "direction = \"lower_is_better\"\n";
        term("kpi.value", "bench_idle", "increase", "sum");
        out << "[kpi.band]\nwarn = 2000\ncrit = 5000\n";
        break;
      case 7:  // busy share of usage in percent (a ratio)
        out << "direction = \"in_range\"\n[kpi.value]\nscale = 100\n";
        term("kpi.value.numerator", "bench_busy", "sum", "sum");
        term("kpi.value.denominator", "bench_usage", "sum", "sum");
        out << "[kpi.band]\ncrit_low = 1\nwarn_low = 5\nwarn_high = 60\ncrit_high = 80\n";
        break;
    }
  }
  return out.str();
}

std::vector<kpi::Definition> compile_kpis(const std::string& toml) {
  auto loaded = config::parse_config(toml, "kpi_bench.toml", {});
  if (!loaded.ok()) die("generated config: " + loaded.errors.front().to_string());
  auto compiled = kpi::compile(loaded.config.kpis);
  if (!compiled.ok()) die("generated KPIs: " + compiled.errors.front().to_string());
  return std::move(compiled.kpis);
}

// --- shared helpers ------------------------------------------------------------------------

using kpid_bench::append_bench_line;
using kpid_bench::append_int;
using kpid_bench::fixed;
using kpid_bench::Percentiles;
using kpid_bench::percentiles;

double elapsed_us(Steady::time_point from, Steady::time_point to) {
  return std::chrono::duration<double, std::micro>(to - from).count();
}

void write_or_die(ingest::WritePipeline& pipeline, std::string_view body) {
  auto r = pipeline.write(body, ingest::Precision::kMilliseconds, ingest::Protocol::kHttp);
  if (!r.storage) die("write failed: " + r.storage.message());
  if (r.lines_rejected > 0) {
    die("write rejected " + std::to_string(r.lines_rejected) +
        " lines: " + (r.errors.empty() ? "" : r.errors.front().message));
  }
}

std::unique_ptr<store::RocksDbStore> open_store(const std::string& dir, metrics::Metrics* m,
                                                store::RetentionPolicy retention = {}) {
  store::StoreOptions options;
  options.data_dir = dir;
  options.retention = retention;
  auto s = store::RocksDbStore::open(options, m);
  if (!s) die("cannot open the store: " + s.status().message());
  return std::move(s).value();
}

// Lines of `text` (Prometheus exposition) starting with `prefix`.
void print_metric_lines(const std::string& text, std::string_view prefix) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(prefix)) std::cout << "  " << line << "\n";
  }
}

// --- latency -------------------------------------------------------------------------------

int run_latency(const Options& o) {
  TempDir tmp("kpi-bench");
  // kpid logs every status change at info; so does this, to a file (the cost stays in).
  auto logger = spdlog::basic_logger_mt("kpi_bench", tmp.path + "/kpi_bench.log");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::info);

  metrics::Metrics metrics;
  auto store = open_store(tmp.path + "/data", &metrics);
  query::Engine engine(*store, query::QueryOptions{}, &metrics);
  ingest::IngestMetrics ingest_metrics(metrics.registry());
  SystemClock clock;
  kpi::Evaluator evaluator(*store, *store, engine, &metrics, clock);

  const int regions = 10;
  const int hosts = std::max(1, o.series / regions);
  // The probe: last value of one series, so one breaching sample flips it to crit. Last in
  // configuration order by default: evaluated after the others in a round.
  const std::string probe = R"(
[[kpi]]
id = "probe"
owner = "bench"
direction = "lower_is_better"
[kpi.value]
selector = 'probe_latency_ms{host="probe"}'
over_time = "last"
window = "5m"
across = "max"
[kpi.band]
warn = 80
crit = 95
)";
  const std::string others = o.kpis > 1 ? kpi_toml(o.kpis - 1, hosts) : "";
  const auto definitions = compile_kpis(o.probe_first ? probe + others : others + probe);
  evaluator.set_kpis(definitions);

  std::cout << "== kpi_bench latency: " << o.kpis << " KPIs (the probe "
            << (o.probe_first ? "first" : "last") << "), " << o.reps
            << " breaches, background data " << o.series << " tag sets (" << 3 * o.series
            << " series)";
  if (o.scrape_interval_ms > 0) {
    std::cout << ", live scrapes every " << fixed(o.scrape_interval_ms, 0) << " ms in posts of "
              << o.post_lines << " lines ("
              << fixed(3 * o.series * 1000.0 / o.scrape_interval_ms, 0) << " samples/s)";
  }
  if (o.other_rate > 0) {
    std::cout << ", " << fixed(o.other_rate, 0) << " samples/s on series no KPI watches";
  }
  std::cout << "\n";

  // Three scrapes (10 s apart, the last just before now) of the background data, so the other
  // KPIs have values (rate and increase need two samples) and are re-evaluated by the timer
  // every 5 s, as in kpid.
  ingest::WritePipeline pipeline(*store, ingest_metrics, clock, &evaluator);
  std::string body;
  int64_t scrape = 0;
  {
    const int64_t now = clock.now_ms();
    for (; scrape < 3; ++scrape) {
      for (int i = 0; i < o.series; ++i) {
        append_bench_line(body, i, scrape, regions,
                          now - (3 - scrape) * 10'000 + (i * 7919LL) % 10'000);
        if ((i + 1) % 5000 == 0 || i + 1 == o.series) {
          write_or_die(pipeline, body);
          body.clear();
        }
      }
    }
  }

  {
    // What one timer round costs: every KPI's value once, on this thread.
    const int64_t now = clock.now_ms();
    const auto r0 = Steady::now();
    size_t with_value = 0;
    for (const auto& d : definitions) {
      auto v = kpi::evaluate_value(engine, d, now);
      with_value += v && !std::isnan(*v);
    }
    std::cout << "  evaluating all " << definitions.size()
              << " KPIs once (as a timer round): " << fixed(elapsed_us(r0, Steady::now()) / 1000, 2)
              << " ms, " << with_value << " with a value\n";
  }

  // Background writers: each its own WritePipeline (as each kpid connection has), paced to
  // its rate; a writer that falls behind does not burst to catch up (its lateness is shown).
  std::atomic<bool> load_stop{false};
  struct Writer {
    std::string name;
    std::atomic<int64_t> samples{0};
    std::atomic<int64_t> late_ms{0};
    std::thread thread;
  };
  std::vector<std::unique_ptr<Writer>> writers;
  // `fill(body, now)` makes one post; one post every `period` seconds.
  auto start_writer = [&](std::string name, double period, int samples_per_post,
                          std::function<void(std::string&, int64_t)> fill) {
    auto w = std::make_unique<Writer>();
    w->name = std::move(name);
    Writer* writer = w.get();
    w->thread = std::thread([&, writer, period, samples_per_post, fill = std::move(fill)] {
      ingest::WritePipeline p(*store, ingest_metrics, clock, &evaluator);
      std::string b;
      auto next = Steady::now();
      while (!load_stop.load() && !g_stop.load()) {
        b.clear();
        fill(b, clock.now_ms());
        write_or_die(p, b);
        writer->samples.fetch_add(samples_per_post);
        next += std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(period));
        const auto now_steady = Steady::now();
        if (next > now_steady) {
          std::this_thread::sleep_until(next);
        } else {
          writer->late_ms.fetch_add(static_cast<int64_t>(
              std::chrono::duration<double, std::milli>(now_steady - next).count()));
          next = now_steady;
        }
      }
    });
    writers.push_back(std::move(w));
  };
  if (o.scrape_interval_ms > 0) {
    const int posts = (o.series + o.post_lines - 1) / o.post_lines;  // per scrape
    start_writer("live scrapes", o.scrape_interval_ms / 1000.0 / posts, 3 * o.post_lines,
                 [&, scrape, post = 0, posts](std::string& b, int64_t now) mutable {
                   for (int i = post * o.post_lines;
                        i < std::min(o.series, (post + 1) * o.post_lines); ++i) {
                     append_bench_line(b, i, scrape, regions, now);
                   }
                   if (++post == posts) {
                     post = 0;
                     ++scrape;
                   }
                 });
  }
  if (o.other_rate > 0) {
    const int lines = 5000;
    start_writer("other series", 3.0 * lines / o.other_rate, 3 * lines,
                 [&, next = 0, k = int64_t{0}](std::string& b, int64_t now) mutable {
                   for (int n = 0; n < lines; ++n) {
                     // kpid_bench's values under another measurement and field names.
                     const size_t at = b.size();
                     append_bench_line(b, next, k, regions, now);
                     b.replace(at, 5, "other");
                     if (++next == 10'000) {
                       next = 0;
                       ++k;
                     }
                   }
                 });
  }

  auto wait_for = [&](kpi::Health want, double value, double timeout_s) -> bool {
    const auto deadline = Steady::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
      auto v = evaluator.get("probe");
      if (v && v->status == want && (std::isnan(value) || v->value == value)) return true;
      if (Steady::now() > deadline || g_stop.load()) return false;
      std::this_thread::yield();
    }
  };

  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> gap(0, o.gap_ms);
  std::vector<double> latencies;
  latencies.reserve(o.reps);
  int64_t last_ts = 0;
  auto probe_body = [&](double value) {
    // Stamped with the current time, never ahead of it: wait for the next millisecond when
    // the previous sample has this one's.
    int64_t ts = clock.now_ms();
    while (ts <= last_ts) ts = clock.now_ms();
    last_ts = ts;
    std::string b = "probe,host=probe latency_ms=";
    b += fixed(value, 1);
    b.push_back(' ');
    append_int(b, ts);
    b.push_back('\n');
    return b;
  };
  int timeouts = 0;
  const auto run_start = Steady::now();
  std::vector<int64_t> load_before;
  for (auto& w : writers) load_before.push_back(w->samples.load());
  std::vector<double> ok_waits;
  for (int rep = 0; rep < o.reps && !g_stop.load(); ++rep) {
    const std::string ok_sample = probe_body(10);
    const auto w0 = Steady::now();
    write_or_die(pipeline, ok_sample);
    if (!wait_for(kpi::Health::kOk, 10, 30)) die("the probe did not become ok within 30 s");
    ok_waits.push_back(elapsed_us(w0, Steady::now()));
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(gap(rng)));
    const std::string breach = probe_body(99);
    const auto t0 = Steady::now();
    write_or_die(pipeline, breach);
    const bool ok = wait_for(kpi::Health::kCrit, NAN, 30);
    const auto t1 = Steady::now();
    if (!ok) {
      ++timeouts;
      continue;
    }
    latencies.push_back(elapsed_us(t0, t1));
  }
  const double run_seconds = std::chrono::duration<double>(Steady::now() - run_start).count();
  std::vector<int64_t> load_sent;
  for (size_t i = 0; i < writers.size(); ++i) {
    load_sent.push_back(writers[i]->samples.load() - load_before[i]);
  }
  load_stop.store(true);
  for (auto& w : writers) w->thread.join();
  if (g_stop.load()) die("interrupted", 130);

  auto p = percentiles(latencies);
  std::cout << "  " << latencies.size() << " breaches in " << fixed(run_seconds, 1) << " s"
            << (timeouts ? ", " + std::to_string(timeouts) + " NOT seen within 30 s" : "") << "\n";
  for (size_t i = 0; i < writers.size(); ++i) {
    const auto& w = *writers[i];
    std::cout << "  background ingest, " << w.name << ": " << load_sent[i] << " samples, "
              << fixed(static_cast<double>(load_sent[i]) / run_seconds, 0) << " samples/s"
              << (w.late_ms.load() > 0
                      ? " (behind its pace by " + std::to_string(w.late_ms.load()) + " ms in all)"
                      : "")
              << "\n";
  }
  int over_5ms = 0, over_1s = 0;
  for (double l : latencies) {
    over_5ms += l > 5000;
    over_1s += l > 1e6;
  }
  auto w = percentiles(ok_waits);
  int ok_over_1s = 0;
  for (double l : ok_waits) ok_over_1s += l > 1e6;
  std::cout << "  (ok sample -> ok status, not timed as a result: p50 " << fixed(w.p50, 0)
            << " us, max " << fixed(w.max, 0) << " us, " << ok_over_1s << " over 1 s)\n";
  std::cout << "  breaches seen only after more than 1 s (by the " << 5
            << " s timer, not the sample): " << over_1s << "\n";
  if (over_5ms > 0) {
    std::vector<double> slow;
    for (double l : latencies) {
      if (l > 5000) slow.push_back(l / 1000);
    }
    std::sort(slow.begin(), slow.end());
    std::cout << "  the breaches over 5 ms, ms:";
    for (double l : slow) std::cout << " " << fixed(l, 1);
    std::cout << "\n";
  }
  std::cout << "RESULT breach->crit latency us  p50 " << fixed(p.p50, 0) << "  p90 "
            << fixed(p.p90, 0) << "  p99 " << fixed(p.p99, 0) << "  max " << fixed(p.max, 0)
            << "  (" << over_5ms << " of " << latencies.size() << " over 5 ms)\n";
  const std::string text = metrics.scrape();
  print_metric_lines(text, "kpid_kpi_evaluations_total");
  evaluator.stop();
  if (auto s = store->close(); !s) die("closing the store: " + s.message());
  spdlog::drop_all();
  return timeouts == 0 ? 0 : 1;
}

// --- baseline ------------------------------------------------------------------------------

int run_baseline(const Options& o) {
  TempDir tmp("kpi-bench");
  spdlog::set_level(spdlog::level::warn);
  SystemClock clock;
  store::RetentionPolicy retention;
  retention.raw = static_cast<DurationMs>(o.raw_days) * 86'400'000LL;
  auto store = open_store(tmp.path + "/data", nullptr, retention);
  query::Engine engine(*store, query::QueryOptions{});
  metrics::Metrics metrics;
  ingest::IngestMetrics ingest_metrics(metrics.registry());
  ingest::WritePipeline pipeline(*store, ingest_metrics, clock);

  const int64_t interval = static_cast<int64_t>(o.interval_s) * 1000;
  const int64_t span = static_cast<int64_t>(o.days) * 86'400'000LL;
  const int64_t end = clock.now_ms() / 1000 * 1000;
  const int64_t n = span / interval;
  std::cout << "== kpi_bench baseline: 1 series, " << n << " samples (" << o.days << " d every "
            << o.interval_s << " s, ending now), raw retention " << o.raw_days << " d, " << o.reps
            << " timed recomputes per KPI\n";

  // A latency-like series: a daily and a weekly cycle plus noise, 2 decimals.
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0, 4);
  const auto fill0 = Steady::now();
  std::string body;
  const int batch = 50'000;
  for (int64_t k = 0; k < n && !g_stop.load(); ++k) {
    const int64_t ts = end - (n - 1 - k) * interval;
    const double day = 2 * std::numbers::pi * static_cast<double>(ts % 86'400'000) / 86'400'000.0;
    const double week =
        2 * std::numbers::pi * static_cast<double>(ts % 604'800'000) / 604'800'000.0;
    const double v = std::max(1.0, 120 + 40 * std::sin(day) + 15 * std::sin(week) + noise(rng));
    body += "svc,service=checkout latency_ms=";
    body += fixed(v, 2);
    body.push_back(' ');
    append_int(body, ts);
    body.push_back('\n');
    if ((k + 1) % batch == 0 || k + 1 == n) {
      write_or_die(pipeline, body);
      body.clear();
    }
  }
  if (g_stop.load()) die("interrupted", 130);
  const double fill_s = std::chrono::duration<double>(Steady::now() - fill0).count();
  const auto compact0 = Steady::now();
  if (auto s = store->compact(); !s) die("compact: " + s.message());
  const double compact_s = std::chrono::duration<double>(Steady::now() - compact0).count();
  std::cout << "  filled in " << fixed(fill_s, 1) << " s, compact() in " << fixed(compact_s, 1)
            << " s, data dir " << fixed(static_cast<double>(store->disk_usage_bytes()) / 1e6, 1)
            << " MB\n";

  const std::string toml = R"(
[[kpi]]
id = "avg"
owner = "bench"
direction = "lower_is_better"
[kpi.value]
selector = 'svc_latency_ms{service="checkout"}'
over_time = "avg"
window = "5m"
across = "max"
[kpi.band]
warn = 250
crit = 400
[kpi.baseline]
method = "quantile"
window = "365d"
quantiles = [0.05, 0.95]

[[kpi]]
id = "p95"
owner = "bench"
direction = "lower_is_better"
[kpi.value]
selector = 'svc_latency_ms{service="checkout"}'
over_time = "quantile"
quantile = 0.95
window = "5m"
across = "max"
[kpi.band]
warn = 250
crit = 400
[kpi.baseline]
method = "quantile"
window = "365d"
quantiles = [0.05, 0.95]
)";
  const int64_t now = clock.now_ms();
  for (const auto& def : compile_kpis(toml)) {
    const DurationMs window = def.baseline->window;
    std::vector<double> ms;
    size_t points = 0;
    kpi::Baseline b;
    double first_ms = 0;
    for (int rep = 0; rep <= o.reps && !g_stop.load(); ++rep) {
      const auto t0 = Steady::now();
      auto history = kpi::value_history(engine, def, now - window, now);
      if (!history) die("value_history: " + history.status().message());
      auto baseline =
          kpi::quantile_baseline(*history, def.baseline->quantile_low, def.baseline->quantile_high);
      const auto t1 = Steady::now();
      if (!baseline) die("quantile_baseline: " + baseline.status().message());
      const double t = elapsed_us(t0, t1) / 1000;
      if (rep == 0) {
        first_ms = t;
      } else {
        ms.push_back(t);
      }
      points = history->size();
      b = *baseline;
    }
    if (g_stop.load()) die("interrupted", 130);
    auto p = percentiles(ms);
    std::cout << "  KPI " << def.id << ": " << def.promql() << ", baseline quantile "
              << def.baseline->quantile_low << "-" << def.baseline->quantile_high << " over "
              << format_duration(window) << "\n";
    std::cout << "    history " << points << " points; baseline lower " << fixed(b.lower, 2)
              << " center " << fixed(b.center, 2) << " upper " << fixed(b.upper, 2) << "\n";
    std::cout << "RESULT baseline recompute " << def.id << " ms  first " << fixed(first_ms, 2)
              << "  p50 " << fixed(p.p50, 2) << "  p99 " << fixed(p.p99, 2) << "  max "
              << fixed(p.max, 2) << "  (" << points << " history points)\n";
  }
  if (auto s = store->close(); !s) die("closing the store: " + s.message());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  kpid_bench::g_program = "kpi_bench";
  Options o = parse_args(argc, argv);
  if (o.mode == "kpis") {
    std::cout << kpi_toml(o.count, o.hosts);
    return 0;
  }
  std::signal(SIGINT, kpid_bench::on_signal);
  std::signal(SIGTERM, kpid_bench::on_signal);
  // Watchdog: a hung run ends (temp dir removed) instead of running forever.
  std::thread([timeout = o.timeout] {
    const auto deadline = Steady::now() + std::chrono::duration<double>(timeout);
    while (Steady::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    die("timed out after " + fixed(timeout, 0) + " s", 3);
  }).detach();
  return o.mode == "latency" ? run_latency(o) : run_baseline(o);
}
