#pragma once
// kpid's HTTP API: the routes, their metrics, and the services they call.
//   POST /write, /api/v2/write           line protocol (InfluxDB 1.x / 2.x)
//   POST /api/v1/write, /v1/metrics      Prometheus remote write 1.0 and 2.0, OTLP/HTTP metrics
//   GET|POST /api/v1/query, query_range  Prometheus instant and range queries
//   GET|POST /api/v1/series, labels, label/NAME/values
//   GET /metrics, /healthz, /readyz
//   POST /api/v1/admin/compact           seal heads, compute rollups, compact storage
//   POST /-/reload                       reload the config file, as SIGHUP does
//   GET /api/v1/kpis, /api/v1/kpis/ID, /api/v1/kpis/ID/series   KPIs, status history, charts
//   /api/v1/alerts, /api/v1/silences, /api/v1/okrs (and below)    alerts, silences, OKRs
//   GET / and /ui/FILE                   the dashboard (compiled in)

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>

#include "kpid/alert/alerter.h"
#include "kpid/auth/auth.h"
#include "kpid/core/time.h"
#include "kpid/ingest/delta_accumulator.h"
#include "kpid/ingest/metric_metadata.h"
#include "kpid/ingest/options.h"
#include "kpid/ingest/write_pipeline.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/metrics/metrics.h"
#include "kpid/net/rate_limiter.h"
#include "kpid/okr/planner.h"
#include "kpid/query/engine.h"
#include "kpid/query/work_pool.h"
#include "kpid/rules/evaluator.h"
#include "kpid/server/http_server.h"
#include "kpid/slo/tracker.h"
#include "kpid/store/rocksdb_store.h"
#include "kpid/store/sample_store.h"

namespace kpid::server {

// What the routes need; everything referenced must outlive the Router.
struct RouterServices {
  store::SampleStore& store;
  query::Engine& engine;
  ingest::IngestMetrics& ingest_metrics;
  metrics::Metrics& metrics;
  const Clock& clock;
  // True once storage is open and listeners are up, false again while shutting down.
  const std::atomic<bool>& ready;
  // The current request body limit, applied to decompressed bodies too.
  std::function<uint64_t()> max_body_bytes;
  // Full storage compaction (RocksDbStore::compact).
  std::function<Status()> compact;
  // Where queries, series and label scans, KPI details and charts, and compactions run (never
  // on a network thread); its cancel flag stops running queries at shutdown.
  query::WorkPool& pool;
  // Where compactions run: apart from queries, since only closing the store stops one.
  query::WorkPool& maintenance;
  // Where HTTP writes are parsed and stored: a write waiting for storage (a checkpoint holds
  // the heads for a moment) holds one of its workers, never a network thread, so health checks
  // and other requests are answered meanwhile.
  query::WorkPool& ingest;
  // Metric metadata from remote write, served by GET /api/v1/metadata.
  ingest::MetricMetadataStore& metadata;
  // Running totals of OTLP delta points (POST /v1/metrics).
  ingest::DeltaAccumulator& otlp_deltas;
  // The KPI evaluator: told of every stored batch, and read by the KPI API.
  kpi::Evaluator& kpis;
  // Alerts, acknowledgements and silences.
  alert::Alerter& alerts;
  // OKR drafts and their lifecycle.
  okr::Planner& okrs;
  // SLOs: their budgets, burn rates and history.
  const slo::Tracker& slos;
  // Who may do what (tokens and roles), and where admin actions are recorded.
  const auth::Access& access;
  auth::AuditLog& audit;
  // Requests per second each client address may make (http.rate_limit; 0: no limit), and how
  // many at once (http.rate_limit_burst; 0: the rate).
  double rate_limit = 0;
  double rate_limit_burst = 0;
  // Online backups (RocksDbStore::backup) into a directory, and the backups in a directory
  // (RocksDbStore::list_backups); a request without a directory means backup_dir
  // (storage.backup_dir). Unset: 503.
  std::string backup_dir{};
  std::function<Result<store::BackupInfo>(const std::string& dir)> backup{};
  std::function<Result<std::vector<store::BackupInfo>>(const std::string& dir)> list_backups{};
  // The [ingest] options (a restart changes them).
  ingest::IngestOptions ingest_options{};
  // The Prometheus rule groups for GET /api/v1/rules; null: none.
  const rules::RuleEvaluator* rules = nullptr;
  // When set, told of every stored batch in place of `kpis` before the write is answered (the
  // remote write queue, which passes each batch on to the KPI evaluator).
  store::SampleObserver* observer = nullptr;
};

// What a configuration reload did (POST /-/reload and SIGHUP run the same reload).
struct ReloadOutcome {
  bool reloaded = false;    // false: nothing was applied, the running configuration is kept
  std::string config_path;  // the file that was read
  std::string error;        // why it was not reloaded ("2 errors in kpid.toml"); "" when it was
  std::vector<std::string> errors;          // each "file:line:column: key: message"
  std::vector<std::string> warnings;        // applied all the same (also certificate pairs kept)
  std::vector<std::string> restart_needed;  // changed keys that keep their running value
  size_t kpis = 0;                          // after the reload
  size_t alert_rules = 0;
};

class Router {
 public:
  explicit Router(RouterServices services);
  ~Router();
  // Dispatches a request (HttpServer's Handler); never throws (an unexpected exception becomes
  // a 500). Queries, series and label scans, KPI details and charts, and compactions run on
  // the query pool (503 "unavailable" when its queue is full); the rest answer on the calling
  // strand.
  boost::asio::awaitable<Response> handle(const Request& request);
  // The 413 answer for a body over `limit`, counted like any other response.
  Response too_large(const Request& header, uint64_t limit);
  // Admission before the body is read (HttpServer's Admission): 429 past the client's request
  // rate (except /healthz and /readyz), 503 with Retry-After for a write while the store pushes
  // back.
  std::optional<Response> admit(const Request& header, std::string_view client);
  // New rate limits (config reload).
  void set_rate_limit(double rate, double burst);
  // What POST /-/reload runs (blocking, on the request's thread); until it is set, that endpoint
  // answers 503. Call before the server takes requests.
  void set_reloader(std::function<ReloadOutcome()> reload);
  // What GET /api/v1/cluster answers as its `data` (the JSON text of cluster::to_json_text);
  // until it is set, that endpoint answers 503. Call before the server takes requests.
  void set_cluster(std::function<std::string()> cluster);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpid::server
