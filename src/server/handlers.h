#pragma once
// Route handlers, one function per endpoint family; private to the server module.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http_util.h"
#include "kpid/alert/alerter.h"
#include "kpid/ingest/delta_accumulator.h"
#include "kpid/ingest/metric_metadata.h"
#include "kpid/okr/planner.h"
#include "kpid/server/routes.h"
#include "kpid/slo/tracker.h"

namespace kpid::server::detail {

// Reuses write pipelines across requests so their parse buffers stay warm. Thread-safe.
class PipelinePool {
 public:
  PipelinePool(store::SampleStore& store, ingest::IngestMetrics& metrics, const Clock& clock,
               store::SampleObserver* observer)
      : store_(store), metrics_(metrics), clock_(clock), observer_(observer) {}
  std::unique_ptr<ingest::WritePipeline> acquire();
  void release(std::unique_ptr<ingest::WritePipeline> pipeline);
  store::SampleStore& store() { return store_; }
  ingest::IngestMetrics& metrics() { return metrics_; }

 private:
  store::SampleStore& store_;
  ingest::IngestMetrics& metrics_;
  const Clock& clock_;
  store::SampleObserver* observer_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<ingest::WritePipeline>> free_;
};

// Which write API a request came in by: InfluxDB 1.x (/write), 2.x (/api/v2/write),
// Prometheus remote write (/api/v1/write, plain-text errors as Prometheus answers them), or
// OTLP (/v1/metrics, errors as a google.rpc.Status in protobuf or JSON, as the request was).
enum class WriteApi { kV1, kV2, kRemote, kOtlpProtobuf, kOtlpJson };

// The ingest metrics' protocol of a write API.
ingest::Protocol protocol_of(WriteApi api);

// The OTLP write API of a request: protobuf for Content-Type application/x-protobuf, else
// JSON (which also answers a wrong Content-Type readably).
WriteApi otlp_api(const Request& request);

// A write's error answer in the shape InfluxDB clients of `api` read; `extra` is appended to
// the JSON object (",\"field\":...").
Response write_error(const Request& request, WriteApi api, boost::beast::http::status status,
                     std::string_view message, std::string_view extra = {});

// The InfluxDB version kpid's /ping reports (X-Influxdb-Version): 1.x clients accept it.
inline constexpr const char* kInfluxVersion = "1.8.10";

// GET|HEAD /ping: 204 with X-Influxdb-Version (200 with {"version"} when ?verbose=true).
Response handle_influx_ping(const Request& request);

// GET|POST /query: the InfluxQL handshake clients send (SHOW DATABASES, CREATE DATABASE) in
// InfluxDB's JSON shape; any other statement is a 400 naming it.
Response handle_influx_query(const Request& request);

// "application/x-protobuf;proto=prometheus.WriteRequest" -> its media type (lower case) and
// proto parameter.
std::pair<std::string, std::string> protobuf_content_type(std::string_view value);

enum class InflateResult { kOk, kTooLarge, kCorrupt };
// Decompresses a gzip (or zlib) body into `out`, refusing to grow past `limit` bytes.
InflateResult inflate_body(std::string_view in, uint64_t limit, std::string& out);

// The request's body in `body`, inflated into `inflated` when it is gzip-encoded (the limit
// applies to the inflated size); an error answer for a corrupt or too large gzip body or
// another Content-Encoding.
std::optional<Response> request_body(const Request& request, WriteApi api, uint64_t max_body_bytes,
                                     std::string_view& body, std::string& inflated);

// A write the store did not take, nothing of it stored: the store pushing back (disk full,
// stalled) is told as such, with its Retry-After; otherwise 503 (retry) or 500.
Response storage_failed(const Request& request, WriteApi api, const Status& storage,
                        PipelinePool& pipelines);

// POST /v1/metrics: OTLP/HTTP metrics (protobuf or JSON, optionally gzip); delta points are
// added up by `deltas`, metadata goes to `metadata`. `limits`: the body limit (applied to the
// inflated body too) and the exponential histograms' bucket limit.
Response handle_otlp_metrics(const Request& request, PipelinePool& pipelines,
                             ingest::MetricMetadataStore& metadata,
                             ingest::DeltaAccumulator& deltas,
                             const ingest::RemoteWriteLimits& limits);

// POST /api/v1/write: Prometheus remote write 1.0 and 2.0 (by Content-Type's proto=); the
// request's metadata goes to `metadata`. 2.0 answers carry X-Prometheus-Remote-Write-*-Written.
Response handle_remote_write(const Request& request, PipelinePool& pipelines,
                             ingest::MetricMetadataStore& metadata,
                             const ingest::RemoteWriteLimits& limits);

// GET /api/v1/metadata (`metric`, `limit`), in Prometheus' shape.
Response handle_metadata(const Request& request, const ingest::MetricMetadataStore& metadata);

// POST /write and /api/v2/write. With `db_label` set, the `db` (1.x) or `bucket` (2.x)
// parameter becomes that label of every point.
Response handle_write(const Request& request, WriteApi api, PipelinePool& pipelines,
                      uint64_t max_body_bytes, std::string_view db_label);

// The 503 for a write the store pushes back on (Retry-After from `pushback`); counted in
// kpid_ingest_pushback_total.
Response write_pushback(const Request& request, WriteApi api, const store::Pushback& pushback,
                        ingest::IngestMetrics& metrics);

// What limits one API query: query.timeout counted from when the request arrived (a `timeout`
// parameter may shorten it), query.max_samples, and the flag that cancels it (the query pool's,
// set at shutdown).
struct QueryBudget {
  std::chrono::steady_clock::time_point received;
  DurationMs timeout = 0;
  uint64_t max_samples = 0;
  const std::atomic<bool>* cancel = nullptr;
};

// The Prometheus query API; `endpoint` is the path after /api/v1/. Queries, series and label
// scans stop at `budget`'s limits with Prometheus' errors (503 timeout, 422 execution).
Response handle_prom_api(const Request& request, std::string_view endpoint,
                         const query::Engine& engine, const Clock& clock,
                         const QueryBudget& budget);

// /api/v1/format_query: Prometheus' pretty text of `query` (its Pretty(0)); a parse error is
// 400 bad_data "invalid parameter \"query\": ...".
Response handle_format_query(const Request& request, const Params& params);
// /api/v1/parse_query: the syntax tree of `query` as Prometheus' translateAST JSON; errors as
// format_query's.
Response handle_parse_query(const Request& request, const Params& params);

// GET /api/v1/status/buildinfo: kpid's version, revision, branch, build user and date, and its
// compiler (in Prometheus' goVersion field). Other methods: Prometheus' 405.
Response handle_buildinfo(const Request& request);

// GET /api/v1/status/tsdb (`limit`, default 10): the index's cardinality in Prometheus' shape
// (headStats; the top series counts by metric name and by label pair, label value counts and
// value bytes by label name). Other methods: Prometheus' 405.
Response handle_tsdb_status(const Request& request, const store::SampleStore& store);

// The KPI API; `rest` is the path after /api/v1/kpis ("", "/ID" or "/ID/series").
Response handle_kpi_api(const Request& request, std::string_view rest, const kpi::Evaluator& kpis,
                        const Clock& clock);

// The alert API; `rest` is the path after /api/v1/alerts ("", "/ID" or "/ID/ack").
Response handle_alert_api(const Request& request, std::string_view rest, alert::Alerter& alerts);

// The silence API; `rest` is the path after /api/v1/silences ("" or "/ID").
Response handle_silence_api(const Request& request, std::string_view rest, alert::Alerter& alerts,
                            const Clock& clock);

// The SLO API; `rest` is the path after /api/v1/slos ("" or "/ID").
Response handle_slo_api(const Request& request, std::string_view rest, const slo::Tracker& slos);

// The OKR API; `rest` is the path after /api/v1/okrs ("", "/ID" or "/ID/ACTION").
Response handle_okr_api(const Request& request, std::string_view rest, okr::Planner& okrs);

// POST (or PUT) /-/reload: runs `reload` and answers what it did: 200 with the outcome, 422
// bad_data with the errors when the configuration was refused.
// POST /api/v1/admin/backup (dir in the query or a JSON body {"dir": ...}; default
// storage.backup_dir): takes an online backup, answers its id, size and time.
// GET /api/v1/admin/backups (optional dir): lists a backup directory.
Response handle_backup_api(const Request& request, bool list, const RouterServices& services);

Response handle_reload(const Request& request, const std::function<ReloadOutcome()>& reload);

// GET /api/v1/cluster: this instance's shard and which shard owns each configured KPI and SLO
// (cluster_api.cpp); `cluster` gives the data's JSON text. 503 while it is unset.
Response handle_cluster(const Request& request, const std::function<std::string()>& cluster);

// The dashboard: GET or HEAD `path` "/" (the page) or "/ui/FILE" (its CSS and JavaScript), from
// the files built into kpid; 404 for other files, 405 for other methods.
Response handle_dashboard(const Request& request, std::string_view path);

// The SLO id of a rules path: "" for /api/v1/slos/rules (every SLO), ID for
// /api/v1/slos/ID/rules; nullopt for any other path.
std::optional<std::string_view> slo_rules_id(std::string_view path);

// GET|HEAD the rules paths: the SLOs (all, or the one `id` names) as a Prometheus rule file,
// 200 application/yaml; 404 in the API envelope for an unknown id, 405 for other methods.
// GET /api/v1/rules (rules_api.cpp): the Prometheus rule groups, as Prometheus answers.
Response handle_rules_api(const Request& request, const rules::RuleEvaluator* evaluator);

Response handle_slo_rules(const Request& request, std::string_view id, const slo::Tracker& slos);

}  // namespace kpid::server::detail
