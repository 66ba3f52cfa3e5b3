#pragma once
// A remote Prometheus-compatible query API ([[datasource]]) as kpid queries it: instant and
// range queries over HTTP (POST form to <url>/api/v1/query and /api/v1/query_range), answers
// parsed into the local engine's query::QueryResult, so whatever consumes the local engine's
// results (KPI values, SLO counters, rules) can consume a source's the same way.
//
// Failure is anything that does not give a complete answer: connection refused or lost, a
// timeout, a non-2xx status (4xx with the source's error text), status "error", an answer that
// is not the API's JSON, and a partial answer (VictoriaMetrics' "isPartial": true, a Prometheus
// or Thanos warning that says the answer is partial). Each is an error value naming the source
// and what failed, counted in kpid_datasource_request_failures_total{datasource,reason}.
//
// Metrics (registered on the registry it is given; families shared by every source):
//   kpid_datasource_requests_total{datasource,kind="instant|range"}
//   kpid_datasource_request_failures_total{datasource,reason="connect|timeout|http_5xx|
//     http_4xx|bad_response|partial"}
//   kpid_datasource_request_duration_seconds{datasource} (histogram)
//   kpid_datasource_up{datasource}: 1 while its last request succeeded (or none was made yet)

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/datasource/options.h"
#include "kpid/metrics/metrics.h"
#include "kpid/net/http_client.h"
#include "kpid/query/engine.h"

namespace kpid::datasource {

// Why a request failed: the failures metric's `reason`.
enum class Failure { kConnect, kTimeout, kHttp5xx, kHttp4xx, kBadResponse, kPartial };
// "connect", "timeout", "http_5xx", "http_4xx", "bad_response", "partial"
std::string_view failure_name(Failure f);

// A failed request: its class and the message (naming the source and what failed).
struct RequestError {
  Failure reason = Failure::kConnect;
  std::string message;
};

// Parses an answer of /api/v1/query or /api/v1/query_range (vector, matrix, scalar or string)
// given its HTTP status. nullopt in `error` means success. A series' labels keep __name__.
std::optional<RequestError> parse_answer(int http_status, std::string_view body,
                                         query::QueryResult& out);

// The label that tells the queries of a combined request apart (dropped from the split results).
inline constexpr std::string_view kQueryLabel = "__kpid_q";

// One request for several instant queries: each query q_n (a scalar one wrapped in vector())
// becomes label_replace(q_n, "__kpid_q", "n", "", ""), joined with `or`. `scalar[i]` says
// whether exprs[i] is a scalar expression.
std::string combine_queries(std::span<const std::string> exprs, const std::vector<bool>& scalar);
// Splits the combined answer back into one result per query (the __kpid_q label dropped; a
// scalar query's one series turned back into a scalar, NaN when missing). bad_response when a
// series carries no or an out-of-range __kpid_q.
Result<std::vector<query::QueryResult>> split_answer(query::QueryResult combined,
                                                     const std::vector<bool>& scalar,
                                                     TimestampMs time);

// Whether `expr` is a scalar expression (parsed with kpid's PromQL parser; false when it does
// not parse there: the source is left to judge it).
bool is_scalar_expr(std::string_view expr);

// Thread-safe; at most options.max_concurrency requests in flight at once (callers beyond that
// wait for a free connection).
class Source {
 public:
  // `metrics` may be null. Fails with invalid_argument on a bad url.
  static Result<std::unique_ptr<Source>> create(DatasourceOptions options,
                                                metrics::Metrics* metrics);
  ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  const DatasourceOptions& options() const { return options_; }
  const std::string& name() const { return options_.name; }

  // The query at `time`, as the local Engine::instant answers it (same result type).
  Result<query::QueryResult> instant(std::string_view expr, TimestampMs time);
  // The query at start, start + step, ... <= end (a matrix).
  Result<query::QueryResult> range(std::string_view expr, TimestampMs start, TimestampMs end,
                                   DurationMs step);
  // Every expression at `time`, one result per expression in order: duplicates are asked once,
  // the distinct ones combined batch_size per request (combine_queries), those requests run at
  // most max_concurrency at once. Fails (with the first failure) when any request failed.
  Result<std::vector<query::QueryResult>> instant_many(std::span<const std::string> exprs,
                                                       TimestampMs time);

  // Whether the last request succeeded (true before any), and since when it has been failing
  // without a success in between (0 while up).
  bool up() const { return failing_since_.load() == 0; }
  TimestampMs failing_since() const { return failing_since_.load(); }

  // Aborts requests in flight and fails later ones (kpid is stopping).
  void cancel();

 private:
  struct Metrics;
  Source(DatasourceOptions options, net::Url url, metrics::Metrics* metrics);
  Result<query::QueryResult> request(std::string_view path, std::string body, bool range);
  std::unique_ptr<net::HttpClient> acquire();
  void release(std::unique_ptr<net::HttpClient> client);
  // A request's outcome in memory only (up/down since, kpid_datasource_* metrics): nothing
  // durable to fail.
  void note_outcome(bool ok, std::optional<Failure> reason);

  DatasourceOptions options_;
  net::Url url_;
  std::string base_path_;  // the url's path without a trailing '/'
  std::unique_ptr<Metrics> metrics_;
  std::atomic<TimestampMs> failing_since_{0};

  std::mutex pool_mutex_;
  std::condition_variable pool_wake_;
  std::vector<std::unique_ptr<net::HttpClient>> idle_;
  size_t created_ = 0;
  std::vector<net::HttpClient*> busy_;  // for cancel()
  bool cancelled_ = false;
};

}  // namespace kpid::datasource
