// peer_load: the one HTTP client bench/peers uses for kpid, VictoriaMetrics and InfluxDB, so
// that all three get the same data, the same batches, the same concurrency and the same
// client cost. It only talks to 127.0.0.1. Modes:
//
//   ingest    generate the data set (deterministic, seeded) and POST it as line protocol, or
//             (--wire remote_write|otlp) as Prometheus remote write 1.0 or OTLP protobuf
//             bodies of the same samples;
//             every reply must be 2xx; prints the samples/s of the whole send
//   query     one warm-up + N timed GETs of a query; checks the series count of each reply
//   request   one request; prints the status and body; exits 1 unless 2xx (or --accept)
//   wait      polls a path until it answers 2xx
//   free-port prints a TCP port that was free on 127.0.0.1 a moment ago
//   lines     prints the data set to stdout (in --order), e.g. to look at it
//
// See bench/README.md ("Side by side with VictoriaMetrics and InfluxDB") and bench/peers.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <latch>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <snappy.h>

#include "bench_common.h"
#include "bench_text.h"
#include "otlp/metrics_service_v1.pb.h"
#include "prometheus/remote_write_v1.pb.h"
#include "splitmix.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

namespace {

using kpid_bench::append_int;
using kpid_bench::fixed;
using kpid_bench::percent_encode;

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

const char* const kUsage = R"(Usage: peer_load MODE --port PORT [OPTIONS]

Modes:
  ingest     POST the generated data set to PATH (every reply must be 2xx)
  query      GET PATH once (warm-up) then --reps times; each reply must hold --expect-series
  request    one request (--method GET|POST); prints the status line then the body
  wait       poll GET PATH until 2xx (up to --timeout seconds)
  free-port  print a TCP port free on 127.0.0.1 (no --port needed)
  lines      print the data set as line protocol, in --order (no --port needed)

Common:
  --port PORT          server's HTTP port on 127.0.0.1
  --path PATH          request path, e.g. /write or /api/v1/query_range
  --param K=V          query-string parameter, percent-encoded here (repeatable)
  --timeout S          abort after S seconds (exit 3)                      (default 3600)

Data set (ingest, lines):
  --series N           series                                             (default 10000)
  --points P           samples per series                                 (default 1440)
  --interval S         seconds between a series' samples                  (default 10)
  --end T              Unix seconds of the last scrape       (default now - 60, rounded)
  --seed X             PRNG seed                                          (default 1)
  --concurrency C      connections; connection c sends series c, c+C, ... (default 4)
  --batch-lines B      lines (samples) per request body                   (default 5000)
  --names-per-kind K   metric names per kind of series: 1 gives bench_gauge, bench_counter,
                       bench_const, bench_noise; K > 1 gives bench_gauge_0 .. _<K-1> (and
                       so on), group g's series named _<g % K>, so that many series do not
                       all share four names                               (default 1)
  --tag K=V            one more tag on every series, after host (repeatable): a new value
                       makes a new set of series, as pods replaced by new ones do
  --order O            time-major | series-major: the order of the lines, nothing else.
                       time-major: each connection sends all its series at t0, then at t1,
                       ... (like scrapes); series-major: all points of its first series,
                       then all of the next, ... (like a backfill; a body may span two
                       series). lines: all series at t0, ... or series 0, then 1, ...
                                                                          (default time-major)
  --wire W             line | remote_write | otlp: the ingest body format, built before the
                       clock starts (remote write: snappy protobuf WriteRequest, one series
                       per sample; otlp: ExportMetricsServiceRequest, a Gauge per metric name,
                       a data point per sample)                           (default line)
  --busy-retries N     a body answered 503 (pushback) is sent again after --busy-wait-ms, up
                       to N times, then given up and counted (not a failure) (default 0)
  --busy-wait-ms MS    wait before sending a 503'd body again                (default 1000)

Query:
  --format F           prom | influx | prom-list: Prometheus API JSON with data.result,
                       InfluxDB 1.x /query JSON, or Prometheus API JSON whose data is a
                       list (/api/v1/series, /api/v1/label/NAME/values)
  --expect-series N    every reply must have exactly N series, each with >= 1 point
                       (prom-list: N entries in data)
  --reps N             timed repetitions after one warm-up                (default 20)

Request:
  --method GET|POST    (default GET)
  --accept STATUS      also exit 0 for this non-2xx status (repeatable)
)";

struct Options {
  std::string mode;
  uint16_t port = 0;
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;
  double timeout = 3600;
  int series = 10000;
  int points = 1440;
  int interval = 10;
  int64_t end = 0;
  uint64_t seed = 1;
  int concurrency = 4;
  int batch_lines = 5000;
  int names_per_kind = 1;
  std::vector<std::pair<std::string, std::string>> tags;  // --tag, in order
  std::string wire = "line";
  bool series_major = false;
  std::string format = "prom";
  int expect_series = -1;
  int reps = 20;
  std::string method = "GET";
  std::vector<unsigned> accept;
  int busy_retries = 0;
  int busy_wait_ms = 1000;
};

Options parse_options(int argc, char** argv) {
  Options o;
  kpid_bench::Flags f("peer_load", argc, argv, 2);
  if (argc < 2) f.fail("a mode is required");
  o.mode = argv[1];
  if (o.mode == "--help" || o.mode == "-h") {
    std::cout << kUsage;
    std::exit(0);
  }
  const std::vector<std::string> modes = {"ingest", "query",     "request",
                                          "wait",   "free-port", "lines"};
  if (std::find(modes.begin(), modes.end(), o.mode) == modes.end()) {
    f.fail("unknown mode \"" + o.mode + "\"");
  }
  bool have_port = false;
  while (f.next()) {
    const std::string& flag = f.flag();
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else if (flag == "--port") {
      o.port = f.integer<uint16_t>(1, 65535);
      have_port = true;
    } else if (flag == "--path") {
      o.path = f.value();
    } else if (flag == "--param") {
      std::string kv = f.value();
      auto eq = kv.find('=');
      if (eq == std::string::npos) f.fail("--param needs K=V, got \"" + kv + "\"");
      o.params.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (flag == "--timeout") {
      o.timeout = f.integer(1, 86400);
    } else if (flag == "--series") {
      o.series = f.integer(1, 10'000'000);
    } else if (flag == "--points") {
      o.points = f.integer(1, 10'000'000);
    } else if (flag == "--interval") {
      o.interval = f.integer(1, 86400);
    } else if (flag == "--end") {
      o.end = f.integer<int64_t>(1, 4'000'000'000);
    } else if (flag == "--seed") {
      o.seed = f.integer<uint64_t>(0, UINT64_MAX);
    } else if (flag == "--concurrency") {
      o.concurrency = f.integer(1, 256);
    } else if (flag == "--batch-lines") {
      o.batch_lines = f.integer(1, 1'000'000);
    } else if (flag == "--wire") {
      o.wire = f.value();
      if (o.wire != "line" && o.wire != "remote_write" && o.wire != "otlp") {
        f.fail("--wire is line, remote_write or otlp");
      }
    } else if (flag == "--names-per-kind") {
      o.names_per_kind = f.integer(1, 100'000);
    } else if (flag == "--tag") {
      std::string kv = f.value();
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size() ||
          kv.find_first_of(", =\n", eq + 1) != std::string::npos || kv.find_first_of(", \n") < eq) {
        f.fail("--tag needs K=V with no ',', ' ' or '=' in either, got \"" + kv + "\"");
      }
      o.tags.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (flag == "--order") {
      const std::string order = f.value();
      if (order != "time-major" && order != "series-major") {
        f.fail("--order is time-major or series-major");
      }
      o.series_major = order == "series-major";
    } else if (flag == "--format") {
      o.format = f.value();
      if (o.format != "prom" && o.format != "influx" && o.format != "prom-list") {
        f.fail("--format is prom, influx or prom-list");
      }
    } else if (flag == "--expect-series") {
      o.expect_series = f.integer(0, 10'000'000);
    } else if (flag == "--reps") {
      o.reps = f.integer(1, 1'000'000);
    } else if (flag == "--method") {
      o.method = f.value();
      if (o.method != "GET" && o.method != "POST") f.fail("--method is GET or POST");
    } else if (flag == "--accept") {
      o.accept.push_back(f.integer<unsigned>(100, 599));
    } else if (flag == "--busy-retries") {
      o.busy_retries = f.integer<int>(0, 1'000'000);
    } else if (flag == "--busy-wait-ms") {
      o.busy_wait_ms = f.integer<int>(0, 600'000);
    } else {
      f.fail("unknown option " + f.arg());
    }
  }
  bool needs_port = o.mode != "free-port" && o.mode != "lines";
  if (needs_port && !have_port) f.fail("--port is required");
  if (needs_port && o.path.empty()) f.fail("--path is required");
  if (o.mode == "query" && o.expect_series < 0) f.fail("query needs --expect-series");
  if (o.end == 0) {
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    o.end = (now - 60) / o.interval * o.interval;
  }
  return o;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string target_of(const Options& o) {
  std::string t = o.path;
  char sep = t.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [k, v] : o.params) {
    t.push_back(sep);
    sep = '&';
    t += percent_encode(k);
    t.push_back('=');
    t += percent_encode(v);
  }
  return t;
}

using HttpClient = kpid_bench::HttpClient;

bool is_2xx(unsigned status) { return status >= 200 && status < 300; }

// ---------------------------------------------------------------------------------------
// The data set. Series i has tags group=g(i/100), host=h(i) and one kind, fixed by i % 20
// so that every group of 100 holds 40 gauges, 30 counters, 15 constants and 15 noise series;
// its metric name is the kind's, with "_<group % K>" appended when --names-per-kind K > 1.
// Each series has its own PRNG (seeded from --seed and i), so its values do not depend on
// --concurrency or --batch-lines. Sample k of every series is at end - (P-1-k)*interval,
// moved by +-1 s for 1% of samples (scrape jitter at second precision).

using kpid_bench::Rng;

enum class Kind : uint8_t { Gauge, Counter, Const, Noise };

Kind kind_of(int i) {
  int r = i % 20;
  if (r < 8) return Kind::Gauge;     // 40%
  if (r < 14) return Kind::Counter;  // 30%
  if (r < 17) return Kind::Const;    // 15%
  return Kind::Noise;                // 15%
}

std::string_view measurement_of(Kind k) {
  switch (k) {
    case Kind::Gauge: return "bench_gauge";
    case Kind::Counter: return "bench_counter";
    case Kind::Const: return "bench_const";
    case Kind::Noise: return "bench_noise";
  }
  return "bench";
}

void append_padded(std::string& out, int64_t v, int width) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  for (int n = static_cast<int>(end - buf); n < width; ++n) out.push_back('0');
  out.append(buf, end);
}

// Hundredths as a decimal with two places: -1234 -> "-12.34".
void append_cents(std::string& out, int64_t cents) {
  if (cents < 0) {
    out.push_back('-');
    cents = -cents;
  }
  append_int(out, cents / 100);
  out.push_back('.');
  out.push_back(static_cast<char>('0' + cents / 10 % 10));
  out.push_back(static_cast<char>('0' + cents % 10));
}

void append_double(std::string& out, double v) {  // shortest round-trip form
  char buf[40];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, end);
}

int digits(int64_t v) {
  int n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

struct SeriesState {
  Rng rng{0};
  Kind kind = Kind::Gauge;
  int64_t cents = 0;    // gauge: current value in hundredths; const: the value
  int64_t step = 0;     // gauge: sigma in hundredths; counter: mean increment
  int64_t counter = 0;  // counter: current value
  bool slow = false;    // counter: mostly idle
  double base = 0;      // noise: centre; const: the value if fractional
  bool const_frac = false;
};

struct DataSet {
  int series = 0, points = 0, interval = 0;
  int64_t end = 0;
  int host_width = 4, group_width = 2;
  std::vector<SeriesState> state;
  std::vector<std::string> prefix;  // "bench_gauge,group=g00,host=h0000 value="

  int64_t first() const { return end - static_cast<int64_t>(points - 1) * interval; }
};

DataSet make_dataset(const Options& o) {
  DataSet d;
  d.series = o.series;
  d.points = o.points;
  d.interval = o.interval;
  d.end = o.end;
  d.host_width = std::max(4, digits(o.series - 1));
  d.group_width = std::max(2, digits((o.series - 1) / 100));
  d.state.resize(static_cast<size_t>(o.series));
  d.prefix.resize(static_cast<size_t>(o.series));
  for (int i = 0; i < o.series; ++i) {
    auto& s = d.state[static_cast<size_t>(i)];
    s.rng.s = o.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(i) * 0xD1B54A32D192ED03ULL;
    s.rng.next();
    s.kind = kind_of(i);
    switch (s.kind) {
      case Kind::Gauge: {
        static constexpr int64_t kSigma[] = {1, 5, 20, 100, 500};
        s.cents = static_cast<int64_t>(s.rng.below(100'000));  // 0.00 .. 999.99
        s.step = kSigma[s.rng.below(5)];
        break;
      }
      case Kind::Counter:
        s.counter = static_cast<int64_t>(s.rng.below(1'000'000));
        s.step = 1 + static_cast<int64_t>(s.rng.below(2000));
        s.slow = s.rng.below(5) == 0;  // 20% of counters rarely move
        break;
      case Kind::Const: {
        uint64_t pick = s.rng.below(4);
        s.cents = pick == 0 ? 0 : pick == 1 ? 100 : static_cast<int64_t>(s.rng.below(100)) * 100;
        if (pick == 3) s.cents = static_cast<int64_t>(s.rng.below(100'000));  // 2 decimals
        break;
      }
      case Kind::Noise: s.base = 1 + s.rng.uniform() * 999; break;
    }
    std::string& p = d.prefix[static_cast<size_t>(i)];
    p.append(measurement_of(s.kind));
    if (o.names_per_kind > 1) {
      p.push_back('_');
      append_padded(p, i / 100 % o.names_per_kind, digits(o.names_per_kind - 1));
    }
    p.append(",group=g");
    append_padded(p, i / 100, d.group_width);
    p.append(",host=h");
    append_padded(p, i, d.host_width);
    for (const auto& [k, v] : o.tags) p.append(",").append(k).append("=").append(v);
    p.append(" value=");
  }
  return d;
}

// Appends series i's next sample (sample k); samples of one series must be taken in order.
void append_next(std::string& out, DataSet& d, int i, int k) {
  auto& s = d.state[static_cast<size_t>(i)];
  out.append(d.prefix[static_cast<size_t>(i)]);
  switch (s.kind) {
    case Kind::Gauge:
      if (k > 0) {
        s.cents += std::llround(s.rng.gauss() * static_cast<double>(s.step));
        if (s.cents < 0) s.cents = -s.cents;  // reflect at 0
      }
      append_cents(out, s.cents);
      break;
    case Kind::Counter:
      if (k > 0) {
        if (s.slow) {
          if (s.rng.below(10) == 0) s.counter += 1 + static_cast<int64_t>(s.rng.below(5));
        } else {
          s.counter += static_cast<int64_t>(s.rng.below(static_cast<uint64_t>(2 * s.step + 1)));
        }
      }
      append_int(out, s.counter);
      break;
    case Kind::Const: append_cents(out, s.cents); break;
    case Kind::Noise: append_double(out, s.base * (0.9 + 0.2 * s.rng.uniform())); break;
  }
  out.push_back(' ');
  int64_t ts = d.first() + static_cast<int64_t>(k) * d.interval;
  if (d.interval >= 3) {
    uint64_t j = s.rng.below(200);  // 1%: +-1 s
    if (j == 0) ts -= 1;
    if (j == 1) ts += 1;
  }
  append_int(out, ts);
  out.push_back('\n');
}

using kpid_bench::Body;

// One generated line, "name,tag=v,... value=V TS" (TS in seconds), taken apart.
struct ParsedSample {
  std::string_view name;
  std::vector<std::pair<std::string_view, std::string_view>> tags;
  double value = 0;
  int64_t seconds = 0;
};

// Calls `each(ParsedSample)` for every line of a generated body.
template <class Each>
void for_each_sample(std::string_view lines, Each&& each) {
  ParsedSample p;
  while (!lines.empty()) {
    const size_t nl = lines.find('\n');
    std::string_view line = lines.substr(0, nl);
    lines.remove_prefix(nl == std::string_view::npos ? lines.size() : nl + 1);
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    const size_t last_space = line.rfind(' ');
    const std::string_view series = line.substr(0, space);
    const std::string_view value = line.substr(space + 7, last_space - space - 7);  // "value="
    const std::string_view ts = line.substr(last_space + 1);
    const size_t comma = series.find(',');
    p.name = series.substr(0, comma);
    p.tags.clear();
    for (size_t at = comma; at != std::string_view::npos;) {
      const size_t next = series.find(',', at + 1);
      const std::string_view tag = series.substr(
          at + 1, next == std::string_view::npos ? std::string_view::npos : next - at - 1);
      const size_t eq = tag.find('=');
      p.tags.emplace_back(tag.substr(0, eq), tag.substr(eq + 1));
      at = next;
    }
    std::from_chars(value.data(), value.data() + value.size(), p.value);
    std::from_chars(ts.data(), ts.data() + ts.size(), p.seconds);
    each(p);
  }
}

// A body of generated lines as a remote write 1.0 request of the same samples: __name__ and
// the tags as labels, one series per sample, snappy-compressed.
std::string remote_write_body(std::string_view lines) {
  namespace pb = kpid::wire::prometheus::v1;
  pb::WriteRequest request;
  for_each_sample(lines, [&](const ParsedSample& p) {
    auto* out = request.add_timeseries();
    auto add_label = [&](std::string_view name, std::string_view v) {
      auto* l = out->add_labels();
      l->set_name(std::string(name));
      l->set_value(std::string(v));
    };
    add_label("__name__", p.name);
    for (const auto& [name, v] : p.tags) add_label(name, v);
    auto* sample = out->add_samples();
    sample->set_value(p.value);
    sample->set_timestamp(p.seconds * 1000);
  });
  const std::string raw = request.SerializeAsString();
  std::string compressed;
  snappy::Compress(raw.data(), raw.size(), &compressed);
  return compressed;
}

// A body of generated lines as an OTLP ExportMetricsServiceRequest of the same samples: one
// resource and scope, a Gauge per metric name, a data point per sample with the tags as
// attributes (kpid names them as the line protocol's series).
std::string otlp_body(std::string_view lines) {
  namespace pb = kpid::wire::otlp::v1;
  pb::ExportMetricsServiceRequest request;
  auto* scope = request.add_resource_metrics()->add_scope_metrics();
  std::vector<std::pair<std::string, pb::Gauge*>> gauges;
  for_each_sample(lines, [&](const ParsedSample& p) {
    pb::Gauge* gauge = nullptr;
    for (auto& [name, g] : gauges) {
      if (name == p.name) gauge = g;
    }
    if (gauge == nullptr) {
      auto* metric = scope->add_metrics();
      metric->set_name(std::string(p.name));
      gauge = metric->mutable_gauge();
      gauges.emplace_back(std::string(p.name), gauge);
    }
    auto* point = gauge->add_data_points();
    for (const auto& [name, v] : p.tags) {
      auto* kv = point->add_attributes();
      kv->set_key(std::string(name));
      kv->mutable_value()->set_string_value(std::string(v));
    }
    point->set_time_unix_nano(static_cast<uint64_t>(p.seconds) * 1'000'000'000u);
    point->set_as_double(p.value);
  });
  return request.SerializeAsString();
}

// Like kpid_bench::split_bodies (connection c owns series c, c+C, ...), but each connection
// sends all points of one series before the next; a body may span two series. Each series'
// samples are still taken in order, so the values are those of the time-major order.
std::vector<std::vector<Body>> split_bodies_series_major(const Options& o, DataSet& d) {
  std::vector<std::vector<Body>> per_conn(static_cast<size_t>(o.concurrency));
  for (int c = 0; c < o.concurrency; ++c) {
    auto& bodies = per_conn[static_cast<size_t>(c)];
    Body current;
    for (int i = c; i < d.series; i += o.concurrency) {
      for (int k = 0; k < d.points; ++k) {
        if (current.lines == 0) current.text.reserve(static_cast<size_t>(o.batch_lines) * 64);
        append_next(current.text, d, i, k);
        if (++current.lines == o.batch_lines) {
          bodies.push_back(std::move(current));
          current = Body{};
        }
      }
    }
    if (current.lines > 0) bodies.push_back(std::move(current));
  }
  return per_conn;
}

std::vector<std::vector<Body>> generate_bodies(const Options& o, DataSet& d) {
  auto per_conn = o.series_major
                      ? split_bodies_series_major(o, d)
                      : kpid_bench::split_bodies(o.concurrency, d.points, d.series, o.batch_lines,
                                                 64, [&](std::string& out, int i, int64_t k) {
                                                   append_next(out, d, i, static_cast<int>(k));
                                                 });
  if (o.wire != "line") {
    for (auto& bodies : per_conn) {
      for (auto& body : bodies) {
        body.text = o.wire == "otlp" ? otlp_body(body.text) : remote_write_body(body.text);
      }
    }
  }
  return per_conn;
}

// ---------------------------------------------------------------------------------------

int run_ingest(const Options& o) {
  DataSet d = make_dataset(o);
  auto gen0 = Clock::now();
  auto per_conn = generate_bodies(o, d);
  double gen_s = seconds_since(gen0);
  int64_t lines = 0, bytes = 0, requests = 0;
  for (const auto& bodies : per_conn) {
    for (const auto& b : bodies) {
      lines += b.lines;
      bytes += static_cast<int64_t>(b.text.size());
      ++requests;
    }
  }
  const std::string target = target_of(o);
  std::cout << "  ingest: " << o.series << " series x " << o.points << " points every "
            << o.interval << " s (" << d.first() << " .. " << d.end << ", "
            << (o.series_major ? "series-major" : "time-major") << ") = " << lines << " samples in "
            << requests << " bodies of <= " << o.batch_lines << " lines, "
            << fixed(static_cast<double>(bytes) / 1e6, 1) << " MB (generated in " << fixed(gen_s, 1)
            << " s, not timed); POST " << target << " on " << o.concurrency << " connections\n";

  struct ConnResult {
    int64_t lines = 0;
    int reconnects = 0;
    int64_t busy = 0;      // 503 answers
    int64_t given_up = 0;  // bodies still 503 after --busy-retries
    int64_t lines_given_up = 0;
    std::vector<double> latencies_ms;
    std::string error;
  };
  std::vector<ConnResult> results(static_cast<size_t>(o.concurrency));
  std::atomic<bool> stop{false};
  std::latch start(o.concurrency + 1);
  std::vector<std::thread> threads;
  for (int c = 0; c < o.concurrency; ++c) {
    threads.emplace_back([&, c] {
      auto& r = results[static_cast<size_t>(c)];
      const auto& bodies = per_conn[static_cast<size_t>(c)];
      std::optional<HttpClient> client;
      try {
        client.emplace(o.port, "peer_load");
        if (o.wire == "remote_write") {
          client->set_post_headers({{"Content-Type", "application/x-protobuf"},
                                    {"Content-Encoding", "snappy"},
                                    {"X-Prometheus-Remote-Write-Version", "0.1.0"}});
        } else if (o.wire == "otlp") {
          client->set_post_headers({{"Content-Type", "application/x-protobuf"}});
        }
        client->connect();  // not timed
      } catch (const std::exception& e) {
        r.error = std::string("connect: ") + e.what();
        stop = true;
      }
      start.arrive_and_wait();
      try {
        for (const auto& body : bodies) {
          if (stop) break;
          auto q0 = Clock::now();
          auto reply = client->request(http::verb::post, target, body.text);
          r.latencies_ms.push_back(
              std::chrono::duration<double, std::milli>(Clock::now() - q0).count());
          for (int retry = 0; reply.status == 503 && retry < o.busy_retries && !stop; ++retry) {
            ++r.busy;
            std::this_thread::sleep_for(std::chrono::milliseconds(o.busy_wait_ms));
            reply = client->request(http::verb::post, target, body.text);
          }
          if (reply.status == 503 && o.busy_retries > 0) {
            ++r.busy;
            ++r.given_up;
            r.lines_given_up += body.lines;
            continue;
          }
          if (!is_2xx(reply.status)) {
            r.error = "POST " + target + " answered " + std::to_string(reply.status) + ": " +
                      reply.body.substr(0, 2000);
            stop = true;
            break;
          }
          r.lines += body.lines;
        }
      } catch (const std::exception& e) {
        if (r.error.empty()) r.error = "POST " + target + ": " + e.what();
        stop = true;
      }
      if (client) r.reconnects = client->reconnects();
    });
  }
  auto t0 = Clock::now();
  start.arrive_and_wait();
  for (auto& t : threads) t.join();
  double elapsed = seconds_since(t0);

  int64_t sent = 0;
  int reconnects = 0;
  int64_t busy = 0, given_up = 0, lines_given_up = 0;
  bool failed = false;
  std::vector<double> all;
  for (size_t c = 0; c < results.size(); ++c) {
    if (!results[c].error.empty()) {
      std::cerr << "peer_load: FAILED on connection " << c << ": " << results[c].error << "\n";
      failed = true;
    }
    sent += results[c].lines;
    reconnects += results[c].reconnects;
    busy += results[c].busy;
    given_up += results[c].given_up;
    lines_given_up += results[c].lines_given_up;
    all.insert(all.end(), results[c].latencies_ms.begin(), results[c].latencies_ms.end());
  }
  if (failed) return 1;
  std::sort(all.begin(), all.end());
  auto pct = [&](double q) {
    auto idx = static_cast<size_t>(std::ceil(q / 100.0 * static_cast<double>(all.size())));
    return all[std::min(all.size() - 1, idx == 0 ? 0 : idx - 1)];
  };
  std::cout << "  all " << all.size()
            << (given_up > 0 ? " bodies answered (2xx or given up) in " : " replies 2xx in ")
            << fixed(elapsed, 2) << " s; request latency p50 " << fixed(pct(50), 1) << " ms, p99 "
            << fixed(pct(99), 1) << " ms"
            << (reconnects ? ", " + std::to_string(reconnects) + " reconnects" : "") << "\n";
  if (o.busy_retries > 0) {
    std::cout << "  503 answers " << busy << "; bodies given up after " << o.busy_retries
              << " retries " << given_up << " (" << lines_given_up << " samples not stored)\n";
    std::cout << "RESULT busy answers " << busy << " given_up_bodies " << given_up
              << " given_up_samples " << lines_given_up << "\n";
  }
  std::cout << "RESULT ingest samples " << sent << " seconds " << fixed(elapsed, 3)
            << " samples_per_s " << fixed(static_cast<double>(sent) / elapsed, 0) << "\n";
  return 0;
}

// Series and points in a reply; throws with the reason if it is not a successful answer.
struct Shape {
  int64_t series = 0;
  int64_t points = 0;
  int64_t empty_series = 0;
};

Shape shape_of(const Options& o, const std::string& body) {
  json::value v = json::parse(body);
  Shape s;
  auto count = [&](const json::value& values) {
    auto n = static_cast<int64_t>(values.as_array().size());
    ++s.series;
    s.points += n;
    if (n == 0) ++s.empty_series;
  };
  if (o.format == "prom-list") {
    const auto& obj = v.as_object();
    if (obj.at("status").as_string() != "success") throw std::runtime_error("status not success");
    // An entry is a label value or a label set: one "series" with one "point" each.
    s.series = s.points = static_cast<int64_t>(obj.at("data").as_array().size());
  } else if (o.format == "prom") {
    const auto& obj = v.as_object();
    if (obj.at("status").as_string() != "success") throw std::runtime_error("status not success");
    for (const auto& r : obj.at("data").at("result").as_array()) {
      // A range query's series hold "values"; an instant query's one "value".
      if (const auto* values = r.as_object().if_contains("values")) {
        count(*values);
      } else {
        count(json::array{r.at("value")});
      }
    }
  } else {
    for (const auto& r : v.at("results").as_array()) {
      if (auto* err = r.as_object().if_contains("error")) {
        throw std::runtime_error("error: " + json::serialize(*err));
      }
      if (auto* series = r.as_object().if_contains("series")) {
        for (const auto& ser : series->as_array()) count(ser.at("values"));
      }
    }
  }
  return s;
}

int run_query(const Options& o) {
  const std::string target = target_of(o);
  HttpClient client(o.port, "peer_load");
  client.connect();
  std::vector<double> ms;
  Shape first;
  size_t bytes = 0;
  for (int i = 0; i <= o.reps; ++i) {  // i == 0 is the warm-up
    auto q0 = Clock::now();
    auto reply = client.request(http::verb::get, target);
    double t = std::chrono::duration<double, std::milli>(Clock::now() - q0).count();
    Shape s;
    try {
      if (reply.status != 200) throw std::runtime_error("HTTP " + std::to_string(reply.status));
      s = shape_of(o, reply.body);
    } catch (const std::exception& e) {
      std::cerr << "peer_load: FAILED: GET " << target << ": " << e.what() << ": "
                << reply.body.substr(0, 2000) << "\n";
      return 1;
    }
    if (s.series != o.expect_series || s.empty_series != 0) {
      std::cerr << "peer_load: FAILED: GET " << target << " returned " << s.series << " series ("
                << s.empty_series << " without points), expected " << o.expect_series << ": "
                << reply.body.substr(0, 1000) << "\n";
      return 1;
    }
    if (i == 0) {
      first = s;
      bytes = reply.body.size();
      std::cout << "  query: GET " << target << "\n  warm-up " << fixed(t, 1) << " ms: " << s.series
                << " series, " << s.points << " points, " << bytes << " bytes\n";
      continue;
    }
    if (s.points != first.points) {
      std::cerr << "peer_load: FAILED: " << s.points << " points, warm-up had " << first.points
                << "\n";
      return 1;
    }
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double q) {
    auto idx = static_cast<size_t>(std::ceil(q / 100.0 * static_cast<double>(ms.size())));
    return ms[std::min(ms.size() - 1, idx == 0 ? 0 : idx - 1)];
  };
  std::cout << "RESULT query p50_ms " << fixed(pct(50), 2) << " p99_ms " << fixed(pct(99), 2)
            << " max_ms " << fixed(ms.back(), 2) << " reps " << ms.size() << " series "
            << first.series << " points " << first.points << " bytes " << bytes << "\n";
  return 0;
}

int run_request(const Options& o) {
  HttpClient client(o.port, "peer_load");
  client.connect();
  auto verb = o.method == "POST" ? http::verb::post : http::verb::get;
  auto reply = client.request(verb, target_of(o));
  std::cout << reply.status << "\n" << reply.body;
  if (!reply.body.empty() && reply.body.back() != '\n') std::cout << "\n";
  bool ok = is_2xx(reply.status) ||
            std::find(o.accept.begin(), o.accept.end(), reply.status) != o.accept.end();
  if (!ok) {
    std::cerr << "peer_load: " << o.method << " " << target_of(o) << " answered " << reply.status
              << ": " << reply.body.substr(0, 2000) << "\n";
  }
  return ok ? 0 : 1;
}

int run_wait(const Options& o) {
  auto t0 = Clock::now();
  std::string last = "no attempt";
  while (seconds_since(t0) < o.timeout) {
    try {
      HttpClient client(o.port, "peer_load");
      client.connect();
      auto reply = client.request(http::verb::get, target_of(o));
      if (is_2xx(reply.status)) return 0;
      last = "HTTP " + std::to_string(reply.status);
    } catch (const std::exception& e) {
      last = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::cerr << "peer_load: GET " << target_of(o) << " on 127.0.0.1:" << o.port << " not 2xx after "
            << o.timeout << " s: " << last << "\n";
  return 1;
}

int run_free_port() {
  net::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::address_v4::loopback(), 0));
  std::cout << acceptor.local_endpoint().port() << "\n";
  return 0;
}

int run_lines(const Options& o) {
  DataSet d = make_dataset(o);
  std::string out;
  auto flush = [&] {
    if (out.size() > (1 << 20)) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      out.clear();
    }
  };
  if (o.series_major) {
    for (int i = 0; i < d.series; ++i) {
      for (int k = 0; k < d.points; ++k) append_next(out, d, i, k);
      flush();
    }
  } else {
    for (int k = 0; k < d.points; ++k) {
      for (int i = 0; i < d.series; ++i) append_next(out, d, i, k);
      flush();
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  std::cout.setf(std::ios::unitbuf);
  std::thread([timeout = o.timeout, mode = o.mode] {
    std::this_thread::sleep_for(std::chrono::duration<double>(timeout));
    std::fprintf(stderr, "peer_load %s: FAILED: --timeout %.0f s reached, aborting\n", mode.c_str(),
                 timeout);
    std::fflush(stderr);
    std::_Exit(3);
  }).detach();
  try {
    if (o.mode == "ingest") return run_ingest(o);
    if (o.mode == "query") return run_query(o);
    if (o.mode == "request") return run_request(o);
    if (o.mode == "wait") return run_wait(o);
    if (o.mode == "free-port") return run_free_port();
    if (o.mode == "lines") return run_lines(o);
  } catch (const std::exception& e) {
    std::cerr << "peer_load " << o.mode << ": FAILED: " << e.what() << "\n";
    return 1;
  }
  return 2;
}
