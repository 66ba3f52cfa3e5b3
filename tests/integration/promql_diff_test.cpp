// The differential test of kpid's PromQL: the same data set (promql_diff_data.h) backfilled into
// a real Prometheus 2.42 (promtool tsdb create-blocks-from openmetrics, stale-marker series by
// remote write) and remote-written into kpid; every query of promql_diff/queries.txt runs as an
// instant query at several times and as range queries with several start/end/step combinations
// against both, and the answers must be equal: status, errorType and HTTP code, resultType,
// series labels exactly, timestamps, values within 1e-9 relative (NaN = NaN, ±Inf equal). A
// difference fails the test unless README's "Differences from Prometheus" table lists its query.
//
// KPID_PROMQL_DIFF_REPORT=1 prints every difference (not only the first few), and
// KPID_PROMQL_DIFF_ONLY=substring runs only the queries that contain it.

#include <snappy.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "harness.h"
#include "prometheus/remote_write_v1.pb.h"
#include "promql_diff_data.h"

using namespace kpid_it;
namespace json = boost::json;
namespace pb = kpid::wire::prometheus::v1;
namespace diff = kpid_it::promql_diff;

namespace {

constexpr const char* kPrometheusBinary = PROMETHEUS_BINARY;
constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;  // Prometheus' stale marker

const Headers kRemoteWriteHeaders = {{"Content-Type", "application/x-protobuf"},
                                     {"Content-Encoding", "snappy"},
                                     {"X-Prometheus-Remote-Write-Version", "0.1.0"}};

std::string remote_write_body(const std::vector<const diff::Series*>& series) {
  pb::WriteRequest request;
  for (const diff::Series* s : series) {
    auto* ts = request.add_timeseries();
    for (const auto& [name, value] : s->labels) {  // std::map: sorted by name, as required
      auto* l = ts->add_labels();
      l->set_name(name);
      l->set_value(value);
    }
    for (const auto& sample : s->samples) {
      auto* out = ts->add_samples();
      out->set_timestamp(sample.t_ms);
      double v = sample.value;
      if (sample.stale) std::memcpy(&v, &kStaleNaNBits, sizeof v);
      out->set_value(v);
    }
  }
  const std::string raw = request.SerializeAsString();
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

// Remote-writes `series` in batches, REQUIREing 204 (or 200) for each.
void remote_write(uint16_t port, const std::vector<const diff::Series*>& series,
                  const std::string& who) {
  constexpr size_t kBatch = 8;
  for (size_t i = 0; i < series.size(); i += kBatch) {
    const std::vector<const diff::Series*> batch(
        series.begin() + static_cast<long>(i),
        series.begin() + static_cast<long>(std::min(series.size(), i + kBatch)));
    const HttpResponse r = http_request(port, "POST", "/api/v1/write", remote_write_body(batch),
                                        kRemoteWriteHeaders, 30s);
    INFO(who << " remote write: " << r.status << " " << tail(r.body, 2000));
    REQUIRE((r.status == 204 || r.status == 200));
  }
}

// ---------------------------------------------------------------------------------------------
// Queries and evaluations

struct Query {
  int line = 0;
  std::string text;      // as in the file (what README's table names)
  std::string expanded;  // with ${S+N} replaced by the data's start + N seconds
};

// "${S}" and "${S+N}"/"${S-N}" (N seconds) become Unix seconds relative to the data's start.
std::string expand(const std::string& text, int64_t start_s) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t open = text.find("${S", pos);
    if (open == std::string::npos) break;
    const size_t close = text.find('}', open);
    if (close == std::string::npos) break;
    out += text.substr(pos, open - pos);
    const std::string inner = text.substr(open + 3, close - open - 3);  // "", "+N" or "-N"
    const int64_t delta = inner.empty() ? 0 : std::stoll(inner);
    out += std::to_string(start_s + delta);
    pos = close + 1;
  }
  return out + text.substr(pos);
}

std::vector<Query> load_queries(const std::string& path, int64_t start_s) {
  std::istringstream in(read_file(path));
  std::vector<Query> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    const size_t last = line.find_last_not_of(" \t\r");
    const std::string text = line.substr(first, last - first + 1);
    out.push_back({n, text, expand(text, start_s)});
  }
  return out;
}

// The query texts in README's "Differences from Prometheus" table: the first cell of each row,
// between backticks (`\|` stands for `|`).
std::set<std::string> listed_differences(const std::string& readme) {
  std::set<std::string> out;
  const size_t section = readme.find("### Differences from Prometheus");
  if (section == std::string::npos) return out;
  const size_t next = readme.find("\n#", section + 4);
  std::istringstream in(
      readme.substr(section, next == std::string::npos ? std::string::npos : next - section));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| `", 0) != 0) continue;
    const size_t close = line.find("` |", 3);
    if (close == std::string::npos) continue;
    std::string q = line.substr(3, close - 3);
    for (size_t p; (p = q.find("\\|")) != std::string::npos;) q.replace(p, 2, "|");
    out.insert(q);
  }
  return out;
}

struct Eval {
  std::string name;  // for the report: "instant @S+45m" or "range S+3m..E+6m/37s"
  bool range = false;
  int64_t time_ms = 0;
  int64_t start_ms = 0, end_ms = 0, step_s = 0;
};

// Prometheus 2.x takes a subquery step at exactly t - offset - range, Prometheus 3 and kpid do
// not (README, "Differences from Prometheus"). Steps are multiples of the subquery's step, so a
// query with a subquery is evaluated 1 ms later (no sample is stamped at a millisecond part of
// 1, see promql_diff_data.cpp): no step falls on that boundary and the rest is compared.
Eval shifted_for(const std::string& query, Eval e) {
  static const std::regex subquery(R"(\[[^\]]*:[^\]]*\])");
  if (!std::regex_search(query, subquery)) return e;
  e.time_ms += 1;
  e.start_ms += 1;
  e.end_ms += 1;
  return e;
}

std::string rel(int64_t ms, int64_t start_ms) {
  const int64_t d = (ms - start_ms) / kSecond;
  return "S" + std::string(d < 0 ? "-" : "+") + std::to_string(std::llabs(d)) + "s";
}

// ---------------------------------------------------------------------------------------------
// Answers, compared

struct Point {
  int64_t t_ms = 0;
  std::string value;
};
struct Element {
  std::string labels;  // canonical "{a="1", b="2"}", sorted by name
  std::vector<Point> points;
};
struct Answer {
  int http = 0;
  std::string status;  // "success" or "error"
  std::string error_type;
  std::string error;
  std::string result_type;
  std::vector<Element> elements;  // in the server's order; scalars/strings: one, labels ""
  std::string raw;                // the body, when it could not be read
};

std::string canonical_labels(const json::object& metric) {
  std::map<std::string, std::string> sorted;
  for (const auto& [k, v] : metric) sorted[std::string(k)] = std::string(v.as_string());
  std::string out = "{";
  for (const auto& [k, v] : sorted) {
    if (out.size() > 1) out += ", ";
    out += k + "=\"" + v + "\"";
  }
  return out + "}";
}

Point read_point(const json::value& v) {
  const auto& a = v.as_array();
  const double t =
      a.at(0).is_double() ? a.at(0).as_double() : static_cast<double>(a.at(0).to_number<int64_t>());
  return {static_cast<int64_t>(std::llround(t * 1000)), std::string(a.at(1).as_string())};
}

Answer read_answer(const HttpResponse& r) {
  Answer a;
  a.http = r.status;
  try {
    const json::value v = r.json();
    a.status = std::string(v.at("status").as_string());
    if (a.status != "success") {
      if (const auto* t = v.as_object().if_contains("errorType"))
        a.error_type = std::string(t->as_string());
      if (const auto* e = v.as_object().if_contains("error")) a.error = std::string(e->as_string());
      return a;
    }
    const auto& data = v.at("data").as_object();
    a.result_type = std::string(data.at("resultType").as_string());
    const auto& result = data.at("result");
    if (a.result_type == "scalar" || a.result_type == "string") {
      a.elements.push_back({"", {read_point(result)}});
    } else if (a.result_type == "vector") {
      for (const auto& item : result.as_array()) {
        a.elements.push_back(
            {canonical_labels(item.at("metric").as_object()), {read_point(item.at("value"))}});
      }
    } else if (a.result_type == "matrix") {
      for (const auto& item : result.as_array()) {
        Element e{canonical_labels(item.at("metric").as_object()), {}};
        for (const auto& p : item.at("values").as_array()) e.points.push_back(read_point(p));
        a.elements.push_back(std::move(e));
      }
    }
  } catch (const std::exception& e) {
    a.status = "unreadable";
    a.raw = tail(r.body, 300) + " (" + e.what() + ")";
  }
  return a;
}

bool same_value(const std::string& a, const std::string& b) {
  if (a == b) return true;
  const double x = std::strtod(a.c_str(), nullptr);
  const double y = std::strtod(b.c_str(), nullptr);
  if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
  if (std::isinf(x) || std::isinf(y)) return x == y;
  // 1e-9 relative; 1e-12 absolute near zero, where summation order leaves rounding residue.
  return std::fabs(x - y) <= 1e-9 * std::max(std::fabs(x), std::fabs(y)) ||
         std::fabs(x - y) <= 1e-12;
}

// Queries whose result order Prometheus defines: sort()/sort_desc() at the top.
bool ordered(const std::string& q) {
  return q.rfind("sort(", 0) == 0 || q.rfind("sort_desc(", 0) == 0;
}

std::string shorten(std::string s, size_t n = 160) {
  if (s.size() > n) s = s.substr(0, n) + "...";
  return s;
}

// "" when equal, else what differs, concisely.
std::string compare(const Answer& kpid, const Answer& prom, bool keep_order, int64_t start_ms) {
  if (kpid.status != prom.status) {
    const auto side = [](const Answer& a) {
      if (a.status == "success") return "success " + a.result_type;
      if (a.status == "error")
        return std::to_string(a.http) + " " + a.error_type + ": " + shorten(a.error, 120);
      return "unreadable " + a.raw;
    };
    return "kpid " + side(kpid) + " | prometheus " + side(prom);
  }
  if (kpid.status == "error") {
    if (kpid.error_type != prom.error_type || kpid.http != prom.http) {
      return "error kpid " + std::to_string(kpid.http) + " " + kpid.error_type + " (" +
             shorten(kpid.error, 100) + ") | prometheus " + std::to_string(prom.http) + " " +
             prom.error_type + " (" + shorten(prom.error, 100) + ")";
    }
    return "";
  }
  if (kpid.status != "success") return "both unreadable: " + kpid.raw;
  if (kpid.result_type != prom.result_type) {
    return "resultType kpid " + kpid.result_type + " | prometheus " + prom.result_type;
  }
  if (keep_order && kpid.elements.size() == prom.elements.size()) {
    // Ties may come in any order; the values must follow the same sequence.
    for (size_t i = 0; i < kpid.elements.size(); ++i) {
      if (!same_value(kpid.elements[i].points[0].value, prom.elements[i].points[0].value)) {
        return "order: element " + std::to_string(i) + " kpid " + kpid.elements[i].labels + " " +
               kpid.elements[i].points[0].value + " | prometheus " + prom.elements[i].labels + " " +
               prom.elements[i].points[0].value;
      }
    }
  }
  std::map<std::string, const Element*> k, p;
  for (const auto& e : kpid.elements) k[e.labels] = &e;
  for (const auto& e : prom.elements) p[e.labels] = &e;
  if (k.size() != kpid.elements.size())
    return "kpid answers one label set twice (" + std::to_string(kpid.elements.size()) +
           " elements)";
  std::vector<std::string> only_k, only_p;
  for (const auto& [l, e] : k)
    if (!p.count(l)) only_k.push_back(l);
  for (const auto& [l, e] : p)
    if (!k.count(l)) only_p.push_back(l);
  if (!only_k.empty() || !only_p.empty()) {
    std::string out = "series: " + std::to_string(k.size()) + " kpid, " + std::to_string(p.size()) +
                      " prometheus";
    if (!only_k.empty())
      out += "; only kpid: " + shorten(only_k[0], 120) +
             (only_k.size() > 1 ? " +" + std::to_string(only_k.size() - 1) : "");
    if (!only_p.empty())
      out += "; only prometheus: " + shorten(only_p[0], 120) +
             (only_p.size() > 1 ? " +" + std::to_string(only_p.size() - 1) : "");
    return out;
  }
  for (const auto& [labels, ke] : k) {
    const Element* pe = p.at(labels);
    const std::string where = labels.empty() ? "" : labels + " ";
    size_t i = 0;
    for (; i < ke->points.size() && i < pe->points.size(); ++i) {
      const Point& a = ke->points[i];
      const Point& b = pe->points[i];
      if (a.t_ms != b.t_ms) {
        return where + "timestamp kpid " + rel(a.t_ms, start_ms) + " | prometheus " +
               rel(b.t_ms, start_ms) + " (point " + std::to_string(i) + ")";
      }
      if (!same_value(a.value, b.value)) {
        return where + "value at " + rel(a.t_ms, start_ms) + ": kpid " + a.value +
               " | prometheus " + b.value;
      }
    }
    if (ke->points.size() != pe->points.size()) {
      const Point& extra = i < ke->points.size() ? ke->points[i] : pe->points[i];
      return where + "points: kpid " + std::to_string(ke->points.size()) + ", prometheus " +
             std::to_string(pe->points.size()) + " (first extra at " + rel(extra.t_ms, start_ms) +
             " in " + (i < ke->points.size() ? "kpid" : "prometheus") + ")";
    }
  }
  return "";
}

std::string instant_target(const std::string& q, int64_t t_ms) {
  return "/api/v1/query?" + form({{"query", q}, {"time", fmt_seconds(t_ms)}});
}
std::string range_target(const std::string& q, const Eval& e) {
  return "/api/v1/query_range?" + form({{"query", q},
                                        {"start", fmt_seconds(e.start_ms)},
                                        {"end", fmt_seconds(e.end_ms)},
                                        {"step", std::to_string(e.step_s)}});
}

struct Difference {
  size_t query = 0;
  std::string eval;
  std::string what;
};

// Starts Prometheus on the data set; returns when it is ready.
struct PrometheusServer {
  TempDir dir;
  uint16_t port = 0;
  std::unique_ptr<BackgroundProcess> process;
};

}  // namespace

TEST_CASE("promql diff: kpid answers the query battery as Prometheus 2.42 does on the same data",
          "[promql][promql_diff][prometheus]") {
  const auto started = Clock::now();
  // Three hours ending about an hour ago, on whole hours: inside kpid's raw retention, and the
  // 1h and 5m evaluation times below meet its rollup paths.
  const int64_t start_ms = base_ms() - 3 * 3600 * kSecond;
  const diff::DataSet data = diff::generate(start_ms, 3);
  const int64_t end_ms = data.end_ms;
  size_t n_samples = 0;
  size_t on_whole_second = 0;  // must stay 0: such a sample could sit on a window's edge
  for (const auto& s : data.series) {
    n_samples += s.samples.size();
    for (const auto& sample : s.samples) on_whole_second += sample.t_ms % kSecond == 0 ? 1 : 0;
  }
  REQUIRE(on_whole_second == 0);

  // --- Prometheus: backfill, then the stale-marker series by remote write -------------------
  PrometheusServer prom;
  const std::string om = prom.dir.file("data.om");
  write_file(om, diff::openmetrics(data));
  std::filesystem::create_directories(prom.dir.file("tsdb"));
  {
    const CommandResult r = run_command(
        {kPromtoolBinary, "tsdb", "create-blocks-from", "openmetrics", om, prom.dir.file("tsdb")},
        {}, 60s);
    INFO("promtool: " << tail(r.out, 2000) << tail(r.err, 2000));
    REQUIRE(r.exit_code == 0);
  }
  prom.port = free_port();
  const std::string config = prom.dir.file("prometheus.yml");
  // No scrape jobs. The out-of-order window lets remote write append samples older than the
  // backfilled blocks' end (the head otherwise refuses them).
  write_file(config,
             "global:\n"
             "  evaluation_interval: 1m\n"
             "storage:\n"
             "  tsdb:\n"
             "    out_of_order_time_window: 1d\n");
  prom.process = std::make_unique<BackgroundProcess>(
      "prometheus",
      std::vector<std::string>{
          kPrometheusBinary, "--config.file=" + config,
          "--storage.tsdb.path=" + prom.dir.file("tsdb"), "--storage.tsdb.retention.time=100y",
          "--query.lookback-delta=5m", "--web.enable-remote-write-receiver",
          "--web.listen-address=127.0.0.1:" + std::to_string(prom.port), "--log.level=warn"},
      prom.dir.file("prometheus.log"));

  // --- kpid ----------------------------------------------------------------------------------
  // Normal priority: under SCHED_IDLE (the default) a busy machine would stall kpid's answers.
  Kpid k({.config_toml = "[query]\nworker_priority = \"normal\"\n"});
  k.start();
  std::vector<const diff::Series*> all, with_stale;
  for (const auto& s : data.series) {
    all.push_back(&s);
    if (s.has_stale_markers()) with_stale.push_back(&s);
  }
  remote_write(k.http_port(), all, "kpid");

  std::string why;
  REQUIRE(eventually(
      [&] {
        if (!prom.process->running()) {
          why = "prometheus exited: " + tail(prom.process->log(), 2000);
          return true;
        }
        try {
          const int st = http_request(prom.port, "GET", "/-/ready", {}, {}, 2s).status;
          why = "GET /-/ready returned " + std::to_string(st);
          return st == 200;
        } catch (const std::exception& e) {
          why = e.what();
          return false;
        }
      },
      30s, 50ms));
  INFO("prometheus start: " << why);
  REQUIRE(prom.process->running());
  remote_write(prom.port, with_stale, "prometheus");

  // The reference holds the whole data set, stale markers included.
  const auto count_series = [&](uint16_t port, const std::string& q, int64_t t) {
    const Answer a = read_answer(http_request(port, "GET", instant_target(q, t), {}, {}, 10s));
    INFO(q << " at " << rel(t, start_ms) << ": " << a.status << " " << a.error << a.raw);
    REQUIRE(a.status == "success");
    return a.elements.size();
  };
  CHECK(count_series(prom.port, "last_over_time({__name__=~\".+\"}[4h])", end_ms) ==
        data.series.size());
  CHECK(count_series(prom.port, "stale_gauge{instance=\"x\"}", start_ms + 39 * kMinute) == 1);
  CHECK(count_series(prom.port, "stale_gauge{instance=\"x\"}", start_ms + 41 * kMinute) == 0);

  // --- The battery -----------------------------------------------------------------------------
  std::vector<Query> queries =
      load_queries(std::string(KPID_SOURCE_DIR) + "/tests/integration/promql_diff/queries.txt",
                   start_ms / kSecond);
  REQUIRE(queries.size() >= 300);
  const char* only = std::getenv("KPID_PROMQL_DIFF_ONLY");
  const bool filtered = only != nullptr && *only != '\0';
  if (filtered) {
    std::erase_if(queries, [&](const Query& q) { return q.text.find(only) == std::string::npos; });
  }
  const std::set<std::string> allowed =
      listed_differences(read_file(std::string(KPID_SOURCE_DIR) + "/README.md"));

  const auto at = [&](int64_t offset_s) { return start_ms + offset_s * kSecond; };
  const auto setup_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  std::vector<Eval> evals;
  // Instant: in a gauge's gap and a stale pause, on a whole hour (1h rollups), after series
  // ended, and past the data's end (the lookback running out).
  for (const int64_t off : {45 * 60, 2 * 3600, 2 * 3600 + 32 * 60 + 17, 3 * 3600 + 4 * 60}) {
    evals.push_back({"instant @" + rel(at(off), start_ms), false, at(off), 0, 0, 0});
  }
  // Range: an odd step over resets, gaps, stale pauses and a series' start (S+30m..S+1h45m),
  // half an hour at one minute around a short stale pause and a gap, and 5m-aligned over
  // nearly everything (kpid's rollup path).
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> ranges = {
      {30 * 60, 105 * 60, 37},
      {95 * 60 + 13, 125 * 60 + 13, 60},
      {10 * 60, 2 * 3600 + 50 * 60, 300}};
  for (const auto& [from, to, step] : ranges) {
    evals.push_back({"range " + rel(at(from), start_ms) + ".." + rel(at(to), start_ms) + "/" +
                         std::to_string(step) + "s",
                     true, 0, at(from), at(to), step});
  }

  const size_t total = queries.size() * evals.size();
  std::vector<std::string> outcome(total);     // "" = equal
  std::vector<std::string> prom_error(total);  // Prometheus' errorType and message, if any
  std::atomic<size_t> next{0};
  std::atomic<bool> transport_failed{false};
  std::atomic<int64_t> kpid_us{0}, prom_us{0};  // time spent waiting for each, summed over workers
  std::string transport_error;
  std::mutex transport_mutex;
  const auto worker = [&] {
    try {
      HttpClient kc(k.http_port(), 30s);
      HttpClient pc(prom.port, 30s);
      for (size_t i; (i = next.fetch_add(1)) < total;) {
        const Query& q = queries[i / evals.size()];
        const Eval e = shifted_for(q.expanded, evals[i % evals.size()]);
        const std::string target =
            e.range ? range_target(q.expanded, e) : instant_target(q.expanded, e.time_ms);
        const auto t0 = Clock::now();
        const Answer ka = read_answer(kc.request("GET", target));
        const auto t1 = Clock::now();
        const Answer pa = read_answer(pc.request("GET", target));
        kpid_us += std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count();
        prom_us += std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t1).count();
        outcome[i] = compare(ka, pa, !e.range && ordered(q.expanded), start_ms);
        if (pa.status == "error") prom_error[i] = pa.error_type + ": " + pa.error;
      }
    } catch (const std::exception& ex) {
      std::lock_guard lock(transport_mutex);
      transport_failed = true;
      transport_error = ex.what();
      next = total;
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  INFO("transport: " << transport_error);
  REQUIRE_FALSE(transport_failed);
  REQUIRE(k.running());

  // --- Report ----------------------------------------------------------------------------------
  size_t equal = 0, allowed_diffs = 0;
  std::vector<Difference> unlisted;
  std::set<size_t> failing_queries, allowed_queries;
  for (size_t i = 0; i < total; ++i) {
    const size_t qi = i / evals.size();
    if (outcome[i].empty()) {
      ++equal;
    } else if (allowed.count(queries[qi].text)) {
      ++allowed_diffs;
      allowed_queries.insert(qi);
    } else {
      unlisted.push_back({qi, evals[i % evals.size()].name, outcome[i]});
      failing_queries.insert(qi);
    }
  }
  // Listed, but equal now or not in the battery (unknowable when filtered).
  std::set<std::string> stale_listed = filtered ? std::set<std::string>{} : allowed;
  for (const size_t qi : allowed_queries) stale_listed.erase(queries[qi].text);

  const bool full = std::getenv("KPID_PROMQL_DIFF_REPORT") != nullptr;
  std::ostringstream report;
  char ratio[32];
  std::snprintf(
      ratio, sizeof ratio, "%.2f%%",
      total == 0 ? 100.0 : 100.0 * static_cast<double>(equal) / static_cast<double>(total));
  report << "promql diff: " << queries.size() << " queries x " << evals.size()
         << " evaluations = " << total << "; equal " << equal << " (" << ratio
         << "), listed differences " << allowed_diffs << ", unlisted " << unlisted.size() << " in "
         << failing_queries.size() << " queries; " << data.series.size() << " series, " << n_samples
         << " samples; "
         << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()
         << " ms (setup " << setup_ms << " ms; answers: kpid " << kpid_us / 1000
         << " ms, prometheus " << prom_us / 1000 << " ms)\n";
  // One line per failing query (its first difference), then, in full mode, every difference.
  size_t shown = 0;
  for (const size_t qi : failing_queries) {
    if (!full && ++shown > 60) {
      report << "  ... and " << failing_queries.size() - 60
             << " more queries (KPID_PROMQL_DIFF_REPORT=1 for all)\n";
      break;
    }
    const auto differing = std::count_if(unlisted.begin(), unlisted.end(),
                                         [&](const Difference& d) { return d.query == qi; });
    report << "  line " << queries[qi].line << ": " << queries[qi].text << " (" << differing
           << " of " << evals.size() << " evaluations differ)\n";
    for (const auto& d : unlisted) {
      if (d.query != qi) continue;
      report << "      " << d.eval << ": " << d.what << "\n";
      if (!full) break;
    }
  }
  for (const auto& q : stale_listed)
    report << "  listed in README but not different: " << q << "\n";
  if (full) {
    // The queries Prometheus refuses, to check that the battery means it.
    for (size_t qi = 0; qi < queries.size(); ++qi) {
      const std::string& err = prom_error[qi * evals.size()];
      if (!err.empty())
        report << "  prometheus error, line " << queries[qi].line << ": " << queries[qi].text
               << " -> " << shorten(err, 140) << "\n";
    }
  }
  std::fputs(report.str().c_str(), stdout);
  std::fflush(stdout);
  INFO(report.str().substr(0, report.str().find('\n')) << " (differences above, on stdout)");
  CHECK(unlisted.empty());
  CHECK(stale_listed.empty());
}
