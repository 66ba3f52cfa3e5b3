#pragma once
// Integration test harness: runs the real kpid binary on ephemeral loopback ports with a private
// temp data dir, and talks to it over HTTP (Beast) and TCP (Asio).
//
// Every object here cleans up after itself: TempDir removes its tree, Kpid SIGKILLs and reaps a
// still-running child (by PID only) and, when the current test case has failed, prints the tail
// of kpid's log to stderr first.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

namespace kpid_it {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline constexpr const char* kKpidBinary = KPID_BINARY;
inline constexpr const char* kPromtoolBinary = PROMTOOL_BINARY;

// ---------------------------------------------------------------------------------------------
// Files and directories

// A unique directory (mkdtemp under $TMPDIR or /tmp), removed recursively on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

void write_file(const std::string& path, std::string_view content);
std::string read_file(const std::string& path);  // "" when missing
std::string tail(std::string_view text, size_t max_bytes = 4000);
bool contains(std::string_view haystack, std::string_view needle);
bool icontains(std::string_view haystack, std::string_view needle);

// ---------------------------------------------------------------------------------------------
// Time helpers

int64_t now_ms();
// Unix seconds with millisecond decimals, e.g. "1700000000.001"; whole seconds print as
// "1700000000".
std::string fmt_seconds(int64_t ms);
// RFC 3339 in UTC with milliseconds, e.g. "2023-11-14T22:13:20.000Z".
std::string fmt_rfc3339(int64_t ms);
// A whole-hour timestamp about one to two hours in the past, in ms. Test data goes around it.
int64_t base_ms();

// Polls `pred` every `interval` until it is true or `timeout` passes; returns the last result.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s,
                std::chrono::milliseconds interval = 20ms);

// ---------------------------------------------------------------------------------------------
// Encodings

std::string gzip(std::string_view data);
std::string url_encode(std::string_view s);
// "a=1&b=2" from pairs, each key and value URL-encoded.
std::string form(const std::vector<std::pair<std::string, std::string>>& params);

// ---------------------------------------------------------------------------------------------
// HTTP

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::string header(const std::string& lower_name) const;
  // Parses the body as JSON; throws on bad JSON.
  boost::json::value json() const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// A keep-alive HTTP/1.1 client for one loopback port. Reconnects when the server closed the
// connection. Throws std::runtime_error on network errors or timeout.
class HttpClient {
 public:
  explicit HttpClient(uint16_t port, std::chrono::milliseconds timeout = 10s);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse request(std::string_view method, std::string_view target, std::string_view body = {},
                       const Headers& headers = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection.
HttpResponse http_request(uint16_t port, std::string_view method, std::string_view target,
                          std::string_view body = {}, const Headers& headers = {},
                          std::chrono::milliseconds timeout = 10s);

// Sends `request` verbatim on a fresh connection and returns everything the server sends until
// it closes the connection or `timeout` passes (use "Connection: close").
std::string raw_http(uint16_t port, std::string_view request,
                     std::chrono::milliseconds timeout = 10s);
// The status code of a raw HTTP response ("HTTP/1.1 204 ..."), or 0.
int raw_status(std::string_view response);

// ---------------------------------------------------------------------------------------------
// TCP (line protocol port)

class TcpClient {
 public:
  explicit TcpClient(uint16_t port);
  ~TcpClient();
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;

  void send(std::string_view data);  // throws on error
  // True while the peer has not closed the connection (non-blocking check).
  bool peer_open();
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Commands

struct CommandResult {
  int exit_code = -1;  // exit status; 128+signal when killed by a signal; -1 on timeout
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with `stdin_data` on stdin; captures stdout and stderr.
CommandResult run_command(const std::vector<std::string>& argv, std::string_view stdin_data = {},
                          std::chrono::milliseconds timeout = 30s);

// ---------------------------------------------------------------------------------------------
// Ports and background processes (for helpers such as a real Prometheus)

// A currently free TCP port on 127.0.0.1 (bound to port 0, read back, closed). Another process
// may take it before the caller binds it; good enough for a test's loopback server.
uint16_t free_port();

// A long-running child process with stdout and stderr in `log_path`. On destruction it gets
// SIGTERM, then SIGKILL after a grace period, and is reaped (by PID only); then, when the current
// test case has failed, the tail of its log is printed to stderr.
class BackgroundProcess {
 public:
  BackgroundProcess(std::string name, const std::vector<std::string>& argv, std::string log_path);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  std::optional<int> exit_status() const { return exit_status_; }
  std::string log() const { return read_file(log_path_); }
  // SIGTERM, wait up to `timeout`, then SIGKILL; returns the exit status.
  int stop(std::chrono::milliseconds timeout = 10s);

 private:
  std::string name_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// A real Prometheus (Debian's, 2.42) on a free loopback port with a temporary data dir, ready
// (GET /-/ready) when constructed; stopped by PID when destroyed. `config_yaml` is its
// prometheus.yml, `extra_args` more flags (e.g. --web.enable-remote-write-receiver).
struct RealPrometheus {
  explicit RealPrometheus(const std::string& config_yaml = "global: {}\n",
                          const std::vector<std::string>& extra_args = {});

  TempDir dir;
  uint16_t port = 0;
  std::unique_ptr<BackgroundProcess> process;
};

// A real single-node VictoriaMetrics (Debian's victoria-metrics) on a free loopback port with a
// temporary data dir, ready (GET /health) when constructed; stopped by PID when destroyed. It
// takes remote write at /api/v1/write and answers the Prometheus query API at /api/v1/query and
// /api/v1/query_range. stop() and start() take it down and bring it back on the same port with
// the same data, for tests of a peer that is away for a while.
struct RealVictoriaMetrics {
  explicit RealVictoriaMetrics(const std::vector<std::string>& extra_args = {});
  void start();
  void stop();
  // Makes everything written so far visible to queries (VictoriaMetrics buffers recent writes
  // for about a second): GET /internal/force_flush.
  void flush() const;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }

  TempDir dir;
  uint16_t port = 0;
  std::vector<std::string> args;
  std::unique_ptr<BackgroundProcess> process;
};

// ---------------------------------------------------------------------------------------------
// Prometheus text format

struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
std::vector<MetricSample> parse_metrics(std::string_view text);
// Sum of samples named `name` whose labels include every pair in `labels`; nullopt when none.
std::optional<double> metric_value(std::string_view text, std::string_view name,
                                   const std::map<std::string, std::string>& labels = {});

// ---------------------------------------------------------------------------------------------
// Query results (Prometheus API shapes)

using LabelMap = std::map<std::string, std::string>;

struct InstantSample {
  LabelMap metric;
  double t = 0;
  std::string value;
};
struct RangeSeries {
  LabelMap metric;
  std::vector<std::pair<int64_t, std::string>> values;  // (timestamp ms, value)
};

// ---------------------------------------------------------------------------------------------
// The daemon under test

struct KpidOptions {
  std::optional<std::string> config_toml{};  // written to DIR/kpid.toml and passed as --config
  std::vector<std::string> extra_args{};
  bool pass_data_dir = true;
  bool pass_http_listen = true;      // --http-listen 127.0.0.1:0
  bool pass_line_listen = true;      // --line-listen 127.0.0.1:0
  bool expect_line_listener = true;  // wait for "line protocol listening on" in the log
  std::vector<std::string> env{};    // NAME=VALUE added to kpid's environment
};

class Kpid {
 public:
  explicit Kpid(KpidOptions options = {});
  ~Kpid();
  Kpid(const Kpid&) = delete;
  Kpid& operator=(const Kpid&) = delete;

  // Starts kpid (a restart reuses the data dir) and waits until /readyz answers 200.
  // REQUIREs success; on failure the message holds the log.
  void start();
  // SIGTERM, then waits up to `timeout`; on timeout SIGKILLs and FAILs. Returns the exit status
  // (128+signal when killed by a signal).
  int stop(std::chrono::milliseconds timeout = 15s);
  // Sends `sig` and waits up to `timeout` for exit, as stop(); no SIGKILL escalation on success.
  int signal_and_wait(int sig, std::chrono::milliseconds timeout = 15s);
  // SIGKILL and reap.
  void kill9();
  void send_signal(int sig);
  bool running();
  std::optional<int> exit_status() const { return exit_status_; }

  pid_t pid() const { return pid_; }
  uint16_t http_port() const { return http_port_; }
  uint16_t line_port() const { return line_port_; }
  const TempDir& dir() const { return dir_; }
  std::string data_dir() const { return dir_.file("data"); }
  std::string config_path() const { return dir_.file("kpid.toml"); }
  void write_config(std::string_view toml) const;

  // The log of the current (or last) run, and its tail.
  std::string log_path() const;
  std::string log() const;
  std::string log_tail(size_t max_bytes = 4000) const { return tail(log(), max_bytes); }

  // HTTP convenience (fresh connection each).
  HttpResponse get(std::string_view target, const Headers& headers = {}) const;
  HttpResponse post(std::string_view target, std::string_view body,
                    const Headers& headers = {}) const;
  // POST /write?precision=P (or /api/v2/write?org=o&bucket=b&precision=P when v2).
  HttpResponse write(std::string_view body, std::string_view precision = "", bool v2 = false,
                     bool gzipped = false) const;
  // write(), REQUIREing 204.
  void write_ok(std::string_view body, std::string_view precision = "", bool v2 = false) const;

  // GET /api/v1/query; REQUIREs 200 + success + resultType vector.
  std::vector<InstantSample> query(std::string_view selector, std::string_view time) const;
  std::vector<InstantSample> query_at_ms(std::string_view selector, int64_t ms) const {
    return query(selector, fmt_seconds(ms));
  }
  // GET /api/v1/query_range; REQUIREs 200 + success + resultType matrix.
  std::vector<RangeSeries> query_range(std::string_view selector, std::string_view start,
                                       std::string_view end, std::string_view step) const;
  std::string metrics() const;  // GET /metrics, REQUIREs 200

 private:
  void reap_if_exited();

  TempDir dir_;
  KpidOptions options_;
  pid_t pid_ = -1;
  int run_ = 0;
  uint16_t http_port_ = 0;
  uint16_t line_port_ = 0;
  std::optional<int> exit_status_;
};

// An API error answer: REQUIREs `status`, and checks the envelope {"status":"error",
// "errorType": type, "error": non-empty}.
void require_error(const HttpResponse& r, int status, std::string_view type);

// The JSON body of an API error response, checked for the Prometheus error shape.
void require_bad_data(const HttpResponse& r);

// Finds the instant sample whose metric equals `metric` exactly.
const InstantSample* find_sample(const std::vector<InstantSample>& v, const LabelMap& metric);

// The sample value string as a number (REQUIREs it parses).
double num(const std::string& value);

// Instant query at `ms`: REQUIREs exactly one series, with value `expected`; returns its labels.
LabelMap require_value_at(const Kpid& k, std::string_view selector, int64_t ms, double expected);
// Instant query at `ms`: REQUIREs an empty result.
void require_empty_at(const Kpid& k, std::string_view selector, int64_t ms);

// ---------------------------------------------------------------------------------------------
// Alerting helpers (the alert API and samples stamped "now")

// The current time in ms, strictly increasing across calls in this process (samples of a series
// written in quick succession must not share a timestamp).
int64_t unique_now_ms();
// Writes "`metric` value=`value` <unique_now_ms()>" with precision ms, REQUIREing 204.
void write_value_now(const Kpid& k, std::string_view metric, double value);
// The "data" of a successful API response: REQUIREs 200 and {"status":"success","data":...}.
boost::json::value require_api_data(const HttpResponse& r);
// GET /api/v1/alerts?`query` (query without the "?"): the data array.
boost::json::array get_alerts(const Kpid& k, std::string_view query = "");
// Polls GET `target` (an API returning a data array) until the array holds `count` items or
// `timeout` passes; returns the last array seen (empty when no answer was a success).
boost::json::array wait_for_items(const Kpid& k, std::string_view target, size_t count,
                                  std::chrono::milliseconds timeout = 10s);
// GET /api/v1/alerts/`id`, REQUIREing success: the alert with its timeline.
boost::json::object get_alert_detail(const Kpid& k, std::string_view id);
// o[key] as a string; "" when `v` is not an object, or the key is missing or not a string.
std::string json_str(const boost::json::value& v, std::string_view key);

}  // namespace kpid_it
