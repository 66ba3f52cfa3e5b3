// kpid-demo: feeds a running kpid (config/demo/kpid.toml) the demo shop's metrics. It backfills
// days of history, has kpid compute the rollups, then writes live points and plays an incident,
// telling in plain words what kpid makes of it (breaches, alerts, OKR drafts) by polling its API.

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "kpid/core/status.h"
#include "kpid/core/text.h"
#include "kpid/core/time.h"
#include "kpid/demo/generator.h"
#include "kpid/net/http_client.h"

namespace json = boost::json;

namespace kpid::demo {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int64_t kDayMs = 86'400'000;

// The KPIs of config/demo/kpis.toml this program's story is about.
constexpr std::string_view kLatencyKpi = "checkout_latency_p95";
constexpr std::string_view kDemoKpis[] = {"checkout_latency_p95", "checkout_error_rate",
                                          "signup_conversion", "support_first_response",
                                          "monthly_churn"};

const char* kUsage = R"(Usage: kpid-demo [OPTIONS]

Feeds a running kpid (started with config/demo/kpid.toml) a small web shop's business
metrics: checkout latency per route and region, checkout requests and errors, the signup
funnel, support's first response time and monthly churn, with daily and weekly seasonality
and noise. First it backfills --days of history (then asks kpid to compute the rollups),
then it writes live points every --interval; after a calm of --incident-after it plays an
incident (a payment-provider slowdown: checkout latency far past its crit threshold, errors
rising, conversion dipping) for --incident-duration, then recovers. Meanwhile it polls kpid's
API and says what happens: baselines trusted, status changes, alerts, OKR drafts, with the
URLs to look at. It runs until Ctrl-C (or --live-for).

Options:
  --url URL                     kpid's HTTP address (default http://127.0.0.1:9470)
  --days N                      days of history to backfill, 0-366 (default 30; 0: none)
  --step DURATION               backfill resolution, 1s-1h (default 1m)
  --batch N                     lines per write request while backfilling (default 5000)
  --interval DURATION           live: how often every series gets a point, 100ms-1m
                                (default 1s)
  --incident-after DURATION     live: calm this long before the incident (default 10s)
  --incident-duration DURATION  how long the incident lasts (default 3m; 0s: no incident)
  --live-for DURATION           stop after this long live (default: until Ctrl-C)
  --wait DURATION               how long to wait for kpid to be ready (default 10s)
  --seed N                      noise seed: the same seed gives the same data (default 1)
  --reload-pid PID              after the backfill, send kpid (this process id) SIGHUP: a
                                reload recomputes the baselines from the backfilled history
                                at once instead of at their next refresh
  --help                        print this help and exit

Durations are like 500ms, 10s, 3m, 1h. Exit status: 0 when stopped by Ctrl-C or SIGTERM or
after --live-for, 1 when kpid cannot be reached or refuses the data, 2 on bad usage.
)";

struct Options {
  std::string url = "http://127.0.0.1:9470";
  int64_t days = 30;
  DurationMs step = 60'000;
  int64_t batch = 5000;
  DurationMs interval = 1'000;
  DurationMs incident_after = 10'000;
  DurationMs incident_duration = 180'000;
  DurationMs live_for = 0;  // 0: until a signal
  DurationMs wait = 10'000;
  uint64_t seed = 1;
  int64_t reload_pid = 0;  // 0: none
  bool help = false;
};

Result<int64_t> parse_int(std::string_view flag, std::string_view text, int64_t lo, int64_t hi) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi) {
    return Status::invalid_argument(std::string(flag) + ": expected an integer from " +
                                    std::to_string(lo) + " to " + std::to_string(hi) + ", got '" +
                                    std::string(text) + "'");
  }
  return v;
}

Result<DurationMs> parse_flag_duration(std::string_view flag, std::string_view text, DurationMs lo,
                                       DurationMs hi) {
  auto d = parse_duration(text);
  if (!d) return Status::invalid_argument(std::string(flag) + ": " + d.status().message());
  if (*d < lo || *d > hi) {
    return Status::invalid_argument(std::string(flag) + ": expected " + format_duration(lo) +
                                    " to " + format_duration(hi) + ", got '" + std::string(text) +
                                    "'");
  }
  return *d;
}

Result<Options> parse_options(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (auto eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      inline_value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    if (flag == "--help" || flag == "-h") {
      if (inline_value) return Status::invalid_argument(flag + " takes no value");
      o.help = true;
      continue;
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Status::invalid_argument(flag + " needs a value (see kpid-demo --help)");
    }
    constexpr DurationMs kYear = 366 * kDayMs;
    Status s;
    auto set_int = [&](int64_t& out, int64_t lo, int64_t hi) {
      auto v = parse_int(flag, value, lo, hi);
      if (v) out = *v;
      s = v.status();
    };
    auto set_duration = [&](DurationMs& out, DurationMs lo, DurationMs hi) {
      auto v = parse_flag_duration(flag, value, lo, hi);
      if (v) out = *v;
      s = v.status();
    };
    if (flag == "--url") {
      o.url = value;
    } else if (flag == "--days") {
      set_int(o.days, 0, 366);
    } else if (flag == "--step") {
      set_duration(o.step, 1'000, 3'600'000);
    } else if (flag == "--batch") {
      set_int(o.batch, static_cast<int64_t>(Generator::kLinesPerStep), 1'000'000);
    } else if (flag == "--interval") {
      set_duration(o.interval, 100, 60'000);
    } else if (flag == "--incident-after") {
      set_duration(o.incident_after, 0, kYear);
    } else if (flag == "--incident-duration") {
      set_duration(o.incident_duration, 0, kYear);
    } else if (flag == "--live-for") {
      set_duration(o.live_for, 0, kYear);
    } else if (flag == "--wait") {
      set_duration(o.wait, 0, 3'600'000);
    } else if (flag == "--reload-pid") {
      set_int(o.reload_pid, 1, INT32_MAX);
    } else if (flag == "--seed") {
      int64_t seed = 0;
      set_int(seed, 0, INT64_MAX);
      o.seed = static_cast<uint64_t>(seed);
    } else {
      return Status::invalid_argument("unknown option " + args[i] + " (see kpid-demo --help)");
    }
    if (!s) return s;
  }
  if (auto url = net::parse_url(o.url); !url) {
    return Status::invalid_argument("--url: " + url.status().message());
  } else if (url->tls) {
    return Status::invalid_argument("--url: the demo talks plain http to a local kpid");
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Output: stdout tells the story (flushed per line, so a log file follows it live); stderr
// has progress and problems.

void say(const char* format, ...) __attribute__((format(printf, 1, 2)));
void say(const char* format, ...) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::printf("[%02d:%02d:%02d] ", tm.tm_hour, tm.tm_min, tm.tm_sec);
  va_list args;
  va_start(args, format);
  std::vprintf(format, args);
  va_end(args);
  std::printf("\n");
  std::fflush(stdout);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TimestampMs wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// SIGINT and SIGTERM are blocked and taken synchronously, so stopping needs no handler and no
// global flag: waits between steps are sigtimedwait() calls that end early on a signal.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }

  // Waits up to `ms` (0: just looks); true once a stop signal has arrived.
  bool wait(DurationMs ms) {
    if (stopped_) return true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      const auto left = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                 deadline - std::chrono::steady_clock::now())
                                                 .count());
      timespec ts{static_cast<time_t>(left / 1'000'000'000),
                  static_cast<long>(left % 1'000'000'000)};
      const int sig = sigtimedwait(&set_, nullptr, &ts);
      if (sig > 0) return stopped_ = true;
      if (errno != EINTR || left == 0) return false;
    }
  }
  bool stopped() { return wait(0); }

 private:
  sigset_t set_;
  bool stopped_ = false;
};

// ---------------------------------------------------------------------------------------------
// kpid's API

double number_of(const json::value* v) {
  if (v == nullptr) return std::nan("");
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return std::nan("");
}

std::string string_of(const json::value& o, std::string_view key) {
  const json::value* v = o.is_object() ? o.as_object().if_contains(key) : nullptr;
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

const json::value* field(const json::value& o, std::string_view key) {
  return o.is_object() ? o.as_object().if_contains(key) : nullptr;
}

net::HttpClientOptions client_options(DurationMs timeout) {
  net::HttpClientOptions options;
  options.timeout = timeout;
  return options;
}

class Kpid {
 public:
  explicit Kpid(const net::Url& url)
      : url_(url.text),
        origin_(net::origin_of(url)),
        api_(url, client_options(30'000)),
        // A full compaction of a month of data takes a while.
        admin_(url, client_options(600'000)) {}

  const std::string& url() const { return url_; }

  // A request that got no answer: the whole URL with its path, the method, what failed.
  Status unreachable(std::string_view method, std::string_view target, const Status& s) const {
    std::string detail = s.message();
    const std::string said = std::string(method) + " " + origin_ + ": ";
    if (detail.starts_with(said)) detail.erase(0, said.size());
    return Status(s.code(), "cannot reach kpid at " + origin_ + std::string(target) + " (" +
                                std::string(method) + "): " + detail);
  }

  // Waits until GET /readyz answers 200, at most `wait`.
  Status wait_ready(DurationMs wait, StopSignals& signals) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait);
    for (;;) {
      auto r = api_.send("GET", "/readyz", "", {});
      Status last =
          r ? Status::unavailable("GET /readyz answered " + std::to_string(r->status)) : r.status();
      if (r && r->status == 200) return Status::ok();
      if (std::chrono::steady_clock::now() >= deadline || signals.wait(200)) {
        return unreachable("GET", "/readyz", last);
      }
      api_.close();
    }
  }

  // POST /write?precision=ms; every line must be stored.
  Status write(std::string_view body) {
    auto r = api_.send("POST", "/write?precision=ms", body,
                       {{"Content-Type", "text/plain; charset=utf-8"}});
    if (!r) return unreachable("POST", "/write?precision=ms", r.status());
    if (r->status != 204) {
      return Status::io_error("kpid at " + url_ + " refused the write (HTTP " +
                              std::to_string(r->status) + "): " + r->body.substr(0, 600));
    }
    return Status::ok();
  }

  // POST /api/v1/admin/compact: checkpoints heads and computes the rollups of backfilled windows.
  Status compact() {
    auto r = admin_.send("POST", "/api/v1/admin/compact", "", {});
    if (!r) return unreachable("POST", "/api/v1/admin/compact", r.status());
    if (r->status != 204) {
      return Status::io_error("POST /api/v1/admin/compact answered " + std::to_string(r->status) +
                              ": " + r->body.substr(0, 600));
    }
    return Status::ok();
  }

  // GET `target`: the "data" of a {"status":"success","data":...} answer.
  Result<json::value> get(const std::string& target) {
    auto r = api_.send("GET", target, "", {});
    if (!r) return unreachable("GET", target, r.status());
    if (r->status != 200) {
      return Status::io_error("GET " + target + " answered " + std::to_string(r->status) + ": " +
                              r->body.substr(0, 300));
    }
    boost::system::error_code ec;
    json::value v = json::parse(r->body, ec);
    const json::value* data = ec ? nullptr : field(v, "data");
    if (data == nullptr) return Status::io_error("GET " + target + ": not a kpid API answer");
    return *data;
  }

 private:
  std::string url_;
  std::string origin_;  // "http://host:port", to name whole URLs in messages
  net::HttpClient api_;
  net::HttpClient admin_;
};

// ---------------------------------------------------------------------------------------------
// The story: what kpid makes of the data, from its API.

class Narrator {
 public:
  void incident_started(std::chrono::steady_clock::time_point at) { incident_at_ = at; }

  // Polls KPIs, alerts and OKRs and says what changed. API errors are reported once per
  // change of message, not fatal: the writes say when kpid is gone.
  void poll(Kpid& kpid) {
    if (Status s = poll_kpis(kpid); !s) report(s);
    if (Status s = poll_alerts(kpid); !s) report(s);
    if (Status s = poll_okrs(kpid); !s) report(s);
  }

  const std::map<std::string, std::string>& statuses() const { return status_; }

  // The latency KPI's band, from kpid (NaN until known).
  double latency_crit() const { return latency_crit_; }

 private:
  std::string after_incident() const {
    if (!incident_at_) return "";
    return " (" + std::to_string(static_cast<int>(std::lround(seconds_since(*incident_at_)))) +
           " s into the incident)";
  }

  void report(const Status& s) {
    if (s.message() == last_error_) return;
    last_error_ = s.message();
    std::fprintf(stderr, "kpid-demo: polling kpid: %s\n", s.message().c_str());
  }

  static std::string value_text(const json::value& kpi) {
    const double v = number_of(field(kpi, "value"));
    if (!std::isfinite(v)) return "no value";
    std::string unit = string_of(kpi, "unit");
    return format_number(std::round(v * 100) / 100) + (unit.empty() ? "" : " " + unit);
  }

  Status poll_kpis(Kpid& kpid) {
    auto data = kpid.get("/api/v1/kpis");
    if (!data) return data.status();
    if (!data->is_array()) return Status::io_error("GET /api/v1/kpis: expected a list");
    size_t with_baseline = 0, trusted = 0;
    for (const auto& kpi : data->as_array()) {
      const std::string id = string_of(kpi, "id");
      const std::string status = string_of(kpi, "status");
      const std::string name = string_of(kpi, "name");
      if (id == kLatencyKpi) {
        if (const json::value* band = field(kpi, "band")) {
          latency_crit_ = number_of(field(*band, "crit"));
        }
      }
      if (const json::value* b = field(kpi, "baseline"); b != nullptr && b->is_object()) {
        ++with_baseline;
        if (const json::value* t = field(*b, "trusted"); t && t->is_bool() && t->as_bool()) {
          ++trusted;
        }
      }
      auto it = status_.find(id);
      if (it != status_.end() && it->second != status && status != "no_data" &&
          it->second != "no_data") {
        say("%s: %s -> %s (%s)%s", name.c_str(), it->second.c_str(), status.c_str(),
            value_text(kpi).c_str(), after_incident().c_str());
      }
      status_[id] = status;
    }
    if (!baselines_told_ && with_baseline > 0 && trusted == with_baseline) {
      baselines_told_ = true;
      say("baselines trusted for %zu KPIs (computed from the backfilled history); now:", trusted);
      for (const auto& kpi : data->as_array()) {
        const json::value* b = field(kpi, "baseline");
        std::string normal;
        if (b != nullptr && b->is_object()) {
          normal = ", normal " +
                   format_number(std::round(number_of(field(*b, "lower")) * 100) / 100) + "-" +
                   format_number(std::round(number_of(field(*b, "upper")) * 100) / 100);
        }
        say("  %-28s %-12s %s%s", string_of(kpi, "name").c_str(), value_text(kpi).c_str(),
            string_of(kpi, "status").c_str(), normal.c_str());
      }
    }
    return Status::ok();
  }

  Status poll_alerts(Kpid& kpid) {
    auto data = kpid.get("/api/v1/alerts");
    if (!data) return data.status();
    if (!data->is_array()) return Status::io_error("GET /api/v1/alerts: expected a list");
    // Newest first: tell them oldest first.
    const auto& alerts = data->as_array();
    for (auto it = alerts.rbegin(); it != alerts.rend(); ++it) {
      const std::string id = string_of(*it, "id");
      const std::string state = string_of(*it, "state");
      std::string& known = alert_state_[id];
      if (known == state) continue;
      known = state;
      std::string summary;
      if (const json::value* a = field(*it, "annotations")) summary = string_of(*a, "summary");
      if (summary.empty()) summary = string_of(*it, "kpi_name") + " " + string_of(*it, "condition");
      const std::string severity = string_of(*it, "severity");
      if (state == "pending") {
        say("alert pending (%s): %s%s", severity.c_str(), summary.c_str(),
            after_incident().c_str());
      } else if (state == "firing") {
        say("alert firing (%s): %s%s\n           %s", severity.c_str(), summary.c_str(),
            after_incident().c_str(), string_of(*it, "url").c_str());
      } else if (state == "resolved") {
        say("alert resolved: %s (%s)", string_of(*it, "name").c_str(),
            string_of(*it, "kpi_name").c_str());
      }
    }
    return Status::ok();
  }

  Status poll_okrs(Kpid& kpid) {
    auto data = kpid.get("/api/v1/okrs");
    if (!data) return data.status();
    if (!data->is_array()) return Status::io_error("GET /api/v1/okrs: expected a list");
    const auto& okrs = data->as_array();
    for (auto it = okrs.rbegin(); it != okrs.rend(); ++it) {
      const std::string id = string_of(*it, "id");
      if (!okrs_told_.insert(id).second) continue;
      say("OKR %s for %s%s: %s\n           %s", string_of(*it, "state").c_str(),
          string_of(*it, "owner").c_str(), after_incident().c_str(),
          string_of(*it, "objective").c_str(), string_of(*it, "url").c_str());
      if (const json::value* krs = field(*it, "key_results"); krs && krs->is_array()) {
        for (const auto& kr : krs->as_array()) {
          say("  %s  %s", string_of(kr, "id").c_str(), string_of(kr, "description").c_str());
        }
      }
    }
    return Status::ok();
  }

  std::optional<std::chrono::steady_clock::time_point> incident_at_;
  std::map<std::string, std::string> status_;
  std::map<std::string, std::string> alert_state_;
  std::set<std::string> okrs_told_;
  bool baselines_told_ = false;
  double latency_crit_ = std::nan("");
  std::string last_error_;
};

// ---------------------------------------------------------------------------------------------
// Phases

Status check_kpis(Kpid& kpid) {
  auto data = kpid.get("/api/v1/kpis");
  if (!data) return data.status();
  std::set<std::string> ids;
  if (data->is_array()) {
    for (const auto& kpi : data->as_array()) ids.insert(string_of(kpi, "id"));
  }
  std::string missing;
  for (std::string_view id : kDemoKpis) {
    if (!ids.contains(std::string(id))) missing += (missing.empty() ? "" : ", ") + std::string(id);
  }
  if (!missing.empty()) {
    std::fprintf(stderr,
                 "kpid-demo: warning: kpid at %s does not define %s: start it with "
                 "--config config/demo/kpid.toml to see the demo's KPIs, alerts and OKRs\n",
                 kpid.url().c_str(), missing.c_str());
  }
  return Status::ok();
}

// Writes the points of (from, to] every `step`, `batch` lines per request. Returns the time of
// the last point written (`from` when stopped before any).
Result<TimestampMs> backfill(Kpid& kpid, Generator& gen, const Options& o, TimestampMs from,
                             TimestampMs to, StopSignals& signals) {
  const auto started = std::chrono::steady_clock::now();
  const bool tty = isatty(STDERR_FILENO) == 1;
  const auto total = static_cast<size_t>((to - from) / o.step);
  size_t lines = 0;
  size_t pending = 0;  // lines in `body`
  size_t steps = 0;
  size_t next_report = total / 10;
  TimestampMs last = from;
  std::string body;
  body.reserve(static_cast<size_t>(o.batch) * 80);
  for (TimestampMs t = from + o.step; t <= to; t += o.step) {
    pending += gen.append_lines(t, o.step, body);
    ++steps;
    last = t;
    const bool final = t + o.step > to;
    if (pending < static_cast<size_t>(o.batch) && !final) continue;
    if (Status s = kpid.write(body); !s) return s;
    body.clear();
    lines += pending;
    pending = 0;
    const double days = static_cast<double>(t - from) / kDayMs;
    if (tty) {
      std::fprintf(stderr, "\rbackfill: %5.1f of %lld days, %zu lines, %.1f s ", days,
                   static_cast<long long>(o.days), lines, seconds_since(started));
    } else if (steps >= next_report || final) {
      std::fprintf(stderr, "backfill: %.1f of %lld days, %zu lines, %.1f s\n", days,
                   static_cast<long long>(o.days), lines, seconds_since(started));
      next_report += std::max<size_t>(total / 10, 1);
    }
    if (signals.stopped()) break;
  }
  if (tty) std::fprintf(stderr, "\n");
  const double secs = seconds_since(started);
  say("backfill: %lld days of history, %zu lines in %.1f s (%.0f lines/s)",
      static_cast<long long>(o.days), lines, secs,
      static_cast<double>(lines) / std::max(secs, 0.001));
  return last;
}

int run(const Options& o) {
  StopSignals signals;
  auto url = net::parse_url(o.url);  // checked by parse_options
  Kpid kpid(*url);
  if (Status s = kpid.wait_ready(o.wait, signals); !s) {
    if (signals.stopped()) return kExitOk;
    std::fprintf(stderr,
                 "kpid-demo: %s\n(is kpid running? scripts/demo.sh starts it, or run "
                 "build/src/kpid --config config/demo/kpid.toml)\n",
                 s.message().c_str());
    return kExitFailure;
  }
  if (Status s = check_kpis(kpid); !s) {
    std::fprintf(stderr, "kpid-demo: %s\n", s.message().c_str());
    return kExitFailure;
  }

  Generator gen(Model(o.seed));
  // Whole steps, so a rerun with the same seed writes the same points.
  const TimestampMs now = wall_now_ms();
  TimestampMs last = now / o.step * o.step - o.days * kDayMs;
  if (o.days > 0) {
    say("backfill: writing %lld days of history for the demo shop to %s ...",
        static_cast<long long>(o.days), kpid.url().c_str());
    auto b = backfill(kpid, gen, o, last, now / o.step * o.step, signals);
    if (!b) {
      std::fprintf(stderr, "kpid-demo: %s\n", b.status().message().c_str());
      return kExitFailure;
    }
    last = *b;
    if (signals.stopped()) return kExitOk;
    const auto started = std::chrono::steady_clock::now();
    if (Status s = kpid.compact(); !s) {
      std::fprintf(stderr, "kpid-demo: %s\n", s.message().c_str());
      return kExitFailure;
    }
    if (o.reload_pid > 0) {
      // kpid recomputes every baseline on a reload; the process is the caller's, by its id.
      if (::kill(static_cast<pid_t>(o.reload_pid), SIGHUP) != 0) {
        std::fprintf(stderr, "kpid-demo: --reload-pid %lld: %s\n",
                     static_cast<long long>(o.reload_pid), std::strerror(errno));
        return kExitFailure;
      }
      say("rollups computed in %.1f s (POST /api/v1/admin/compact); kpid (pid %lld) reloads "
          "and recomputes the baselines from them now",
          seconds_since(started), static_cast<long long>(o.reload_pid));
    } else {
      say("rollups computed in %.1f s (POST /api/v1/admin/compact); kpid recomputes the "
          "baselines from them at their next refresh (within a minute)",
          seconds_since(started));
    }
  } else {
    last = now - o.interval;
  }

  Narrator narrator;
  narrator.poll(kpid);
  if (o.incident_duration > 0) {
    say("live: writing every series every %s; the incident starts in %s. Watch %s/ or "
        "kpictl status",
        format_duration(o.interval).c_str(), format_duration(o.incident_after).c_str(),
        kpid.url().c_str());
  } else {
    say("live: writing every series every %s (no incident). Watch %s/ or kpictl status",
        format_duration(o.interval).c_str(), kpid.url().c_str());
  }
  const auto live_start = std::chrono::steady_clock::now();
  auto next_tick = live_start;
  auto next_poll = live_start + std::chrono::seconds(1);
  enum class Phase { kCalm, kIncident, kRecovered } phase = Phase::kCalm;
  TimestampMs incident_end = 0;
  std::string body;
  for (;;) {
    const auto tick = std::chrono::steady_clock::now();
    const TimestampMs t = std::max(wall_now_ms(), last + 1);
    const DurationMs live_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(tick - live_start).count();
    if (phase == Phase::kCalm && o.incident_duration > 0 && live_ms >= o.incident_after) {
      phase = Phase::kIncident;
      const Incident incident{.start = t, .duration = o.incident_duration};
      const double normal = gen.model().latency_p95_ms(Route::kCheckout, Region::kEu, t);
      gen.model().set_incident(incident);
      const double peak =
          gen.model().latency_p95_ms(Route::kCheckout, Region::kEu, t + incident.ramp);
      incident_end = t + o.incident_duration;
      narrator.incident_started(tick);
      const double crit = narrator.latency_crit();
      const std::string crit_text =
          std::isfinite(crit) ? " (crit above " + format_number(crit) + " ms)" : "";
      say("incident: the payment provider slows down for %s: checkout latency rising from "
          "~%.0f ms to ~%.0f ms%s, checkout errors rising, signup conversion dipping",
          format_duration(o.incident_duration).c_str(), normal, peak, crit_text.c_str());
    } else if (phase == Phase::kIncident && t >= incident_end) {
      phase = Phase::kRecovered;
      say("incident over: the payment provider recovered and checkout latency is back to "
          "normal; the KPI recovers as the incident leaves its 5-minute window, then the alert "
          "resolves");
    }
    body.clear();
    gen.append_lines(t, t - last, body);
    if (Status s = kpid.write(body); !s) {
      std::fprintf(stderr, "kpid-demo: %s\n", s.message().c_str());
      return kExitFailure;
    }
    last = t;
    if (std::chrono::steady_clock::now() >= next_poll) {
      narrator.poll(kpid);
      next_poll = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    }
    if (o.live_for > 0 && live_ms >= o.live_for) {
      say("live: stopping after %s (--live-for)", format_duration(o.live_for).c_str());
      return kExitOk;
    }
    next_tick += std::chrono::milliseconds(o.interval);
    const auto now_steady = std::chrono::steady_clock::now();
    if (next_tick < now_steady) next_tick = now_steady;  // behind: do not burst to catch up
    const DurationMs sleep =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now_steady).count();
    if (signals.wait(sleep)) {
      say("stopped");
      return kExitOk;
    }
  }
}

}  // namespace
}  // namespace kpid::demo

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto options = kpid::demo::parse_options(args);
  if (!options) {
    std::fprintf(stderr, "kpid-demo: %s\n", options.status().message().c_str());
    return kpid::demo::kExitUsage;
  }
  if (options->help) {
    std::fputs(kpid::demo::kUsage, stdout);
    return kpid::demo::kExitOk;
  }
  return kpid::demo::run(*options);
}
