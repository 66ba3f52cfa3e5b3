#include "kpid/server/routes.h"

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <optional>
#include <utility>

#include <boost/json.hpp>

#include "handlers.h"
#include "kpid/net/run_on.h"

namespace kpid::server {

namespace http = boost::beast::http;
using detail::json_error;
using detail::make_response;

namespace {

// Handler names: a closed set, so the request metrics have bounded cardinality.
enum class Route {
  kWriteV1,
  kWriteV2,
  kRemoteWrite,
  kOtlpMetrics,
  kInfluxPing,
  kInfluxQuery,
  kMetadata,
  kQuery,
  kQueryRange,
  kSeries,
  kLabels,
  kLabelValues,
  kMetrics,
  kHealthz,
  kReadyz,
  kAdminCompact,
  kAdminBackup,
  kAdminBackups,
  kReload,
  kKpis,
  kKpi,
  kKpiSeries,
  kAlerts,
  kAlert,
  kAlertAck,
  kSilences,
  kSilence,
  kOkrs,
  kOkr,
  kOkrAction,
  kDashboard,
  kDashboardAsset,
  kQueryExemplars,
  kBuildInfo,
  kTsdbStatus,
  kFormatQuery,
  kParseQuery,
  kSlos,
  kSlo,
  kSloRules,
  kRules,
  kCluster,
  kOther,
  kCount
};
constexpr std::array<const char*, static_cast<size_t>(Route::kCount)> kRouteNames = {
    "/write",
    "/api/v2/write",
    "/api/v1/write",
    "/v1/metrics",
    "/ping",
    "/query",
    "/api/v1/metadata",
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/label/:name/values",
    "/metrics",
    "/healthz",
    "/readyz",
    "/api/v1/admin/compact",
    "/api/v1/admin/backup",
    "/api/v1/admin/backups",
    "/-/reload",
    "/api/v1/kpis",
    "/api/v1/kpis/:id",
    "/api/v1/kpis/:id/series",
    "/api/v1/alerts",
    "/api/v1/alerts/:id",
    "/api/v1/alerts/:id/ack",
    "/api/v1/silences",
    "/api/v1/silences/:id",
    "/api/v1/okrs",
    "/api/v1/okrs/:id",
    "/api/v1/okrs/:id/:action",
    "/",
    "/ui/:file",
    "/api/v1/query_exemplars",
    "/api/v1/status/buildinfo",
    "/api/v1/status/tsdb",
    "/api/v1/format_query",
    "/api/v1/parse_query",
    "/api/v1/slos",
    "/api/v1/slos/:id",
    "/api/v1/slos/:id/rules",
    "/api/v1/rules",
    "/api/v1/cluster",
    "other"};

Route route_of(std::string_view path) {
  if (path == "/write") return Route::kWriteV1;
  if (path == "/api/v2/write") return Route::kWriteV2;
  if (path == "/api/v1/write") return Route::kRemoteWrite;
  if (path == "/v1/metrics") return Route::kOtlpMetrics;
  if (path == "/ping") return Route::kInfluxPing;
  if (path == "/query") return Route::kInfluxQuery;
  if (path == "/api/v1/metadata") return Route::kMetadata;
  if (path == "/api/v1/query") return Route::kQuery;
  if (path == "/api/v1/query_range") return Route::kQueryRange;
  if (path == "/api/v1/query_exemplars") return Route::kQueryExemplars;
  if (path == "/api/v1/status/buildinfo") return Route::kBuildInfo;
  if (path == "/api/v1/status/tsdb") return Route::kTsdbStatus;
  if (path == "/api/v1/series") return Route::kSeries;
  if (path == "/api/v1/format_query") return Route::kFormatQuery;
  if (path == "/api/v1/parse_query") return Route::kParseQuery;
  if (path == "/api/v1/labels") return Route::kLabels;
  if (path.starts_with("/api/v1/label/") && path.ends_with("/values")) return Route::kLabelValues;
  if (path == "/metrics") return Route::kMetrics;
  if (path == "/healthz") return Route::kHealthz;
  if (path == "/readyz") return Route::kReadyz;
  if (path == "/api/v1/admin/compact") return Route::kAdminCompact;
  if (path == "/api/v1/admin/backup") return Route::kAdminBackup;
  if (path == "/api/v1/admin/backups") return Route::kAdminBackups;
  if (path == "/-/reload") return Route::kReload;
  if (path == "/api/v1/kpis") return Route::kKpis;
  if (path.starts_with("/api/v1/kpis/")) {
    return path.ends_with("/series") ? Route::kKpiSeries : Route::kKpi;
  }
  if (path == "/api/v1/alerts") return Route::kAlerts;
  if (path.starts_with("/api/v1/alerts/")) {
    return path.ends_with("/ack") ? Route::kAlertAck : Route::kAlert;
  }
  if (path == "/api/v1/silences") return Route::kSilences;
  if (path.starts_with("/api/v1/silences/")) return Route::kSilence;
  if (path == "/api/v1/okrs") return Route::kOkrs;
  if (path.starts_with("/api/v1/okrs/")) {
    return path.substr(13).find('/') == std::string_view::npos ? Route::kOkr : Route::kOkrAction;
  }
  if (path == "/api/v1/cluster") return Route::kCluster;
  if (path == "/api/v1/slos") return Route::kSlos;
  if (path == "/api/v1/rules") return Route::kRules;
  if (detail::slo_rules_id(path)) return Route::kSloRules;
  if (path.starts_with("/api/v1/slos/")) return Route::kSlo;
  if (path == "/") return Route::kDashboard;
  if (path.starts_with("/ui/")) return Route::kDashboardAsset;
  return Route::kOther;
}

// The role a request needs; nullopt for none (the dashboard's static files, unknown paths).
// Reading needs read; writing samples write; anything that changes alerts, silences, OKRs,
// storage or the configuration admin.
std::optional<auth::Role> required_role(Route route, http::verb method) {
  const bool reading = method == http::verb::get || method == http::verb::head;
  switch (route) {
    case Route::kWriteV1:
    case Route::kWriteV2:
    case Route::kRemoteWrite:
    case Route::kOtlpMetrics:
    case Route::kInfluxQuery: return auth::Role::kWrite;  // the handshake of writing clients
    case Route::kAdminCompact:
    case Route::kAdminBackup:
    case Route::kAdminBackups:  // backup paths and sizes are the operator's business
    case Route::kReload:
    case Route::kAlertAck:
    case Route::kOkrAction: return auth::Role::kAdmin;
    case Route::kOkr:
    case Route::kSilences:
    case Route::kSilence: return reading ? auth::Role::kRead : auth::Role::kAdmin;
    case Route::kDashboard:
    case Route::kDashboardAsset:
    case Route::kInfluxPing:  // unauthenticated in InfluxDB too
    case Route::kOther: return std::nullopt;
    default: return auth::Role::kRead;
  }
}

// The credentials a request carries: its Authorization header, or for InfluxDB 1.x routes the
// `p` (password) parameter of the query string, the token, as InfluxDB 1.x clients may send it.
std::string authorization_of(Route route, const Request& request) {
  const std::string_view header = request[http::field::authorization];
  if (!header.empty() || (route != Route::kWriteV1 && route != Route::kInfluxQuery)) {
    return std::string(header);
  }
  const detail::Params params(request, true);
  const std::string* password = params.get("p");
  return password != nullptr && !password->empty() ? "Bearer " + *password : std::string();
}

// The write API a route serves (for OTLP, as the request's Content-Type says), if it is a
// write route.
std::optional<detail::WriteApi> write_api(Route route, const Request& request) {
  switch (route) {
    case Route::kWriteV1: return detail::WriteApi::kV1;
    case Route::kWriteV2: return detail::WriteApi::kV2;
    case Route::kRemoteWrite: return detail::WriteApi::kRemote;
    case Route::kOtlpMetrics: return detail::otlp_api(request);
    default: return std::nullopt;
  }
}

// Routes whose work may be long (evaluating queries, scanning series, reading long histories,
// compacting, backing up): they run on a pool, never on a network thread.
bool on_pool(Route route) {
  switch (route) {
    case Route::kQuery:
    case Route::kQueryRange:
    case Route::kSeries:
    case Route::kLabels:
    case Route::kLabelValues:
    case Route::kQueryExemplars:
    case Route::kFormatQuery:
    case Route::kParseQuery:
    case Route::kTsdbStatus:
    case Route::kKpi:
    case Route::kKpiSeries:
    case Route::kAdminCompact:
    case Route::kAdminBackup:
    case Route::kAdminBackups: return true;
    default: return false;
  }
}

// Writes the heads to chunks, recomputes pending rollups and compacts every column family,
// so retention applies at once and disk usage reflects the data. Blocks until done (or until
// the store closes, which cancels it).
Response compact(const Request& request, const std::function<Status()>& run_compaction) {
  if (request.method() != http::verb::post) {
    auto r =
        json_error(request, http::status::method_not_allowed, "use POST for /api/v1/admin/compact");
    r.set(http::field::allow, "POST");
    return r;
  }
  const auto start = std::chrono::steady_clock::now();
  if (auto s = run_compaction(); !s) {
    // Cancelled by a stop, or storage not taking writes: not done, and worth a retry.
    if (s.code() == StatusCode::kUnavailable) {
      auto r = json_error(request, http::status::service_unavailable,
                          "compaction not done: " + s.message());
      r.set(http::field::retry_after, "10");
      return r;
    }
    return json_error(request, http::status::internal_server_error,
                      "compaction failed: " + s.message());
  }
  spdlog::info("compaction requested over HTTP finished in {:.1f} s",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return make_response(request, http::status::no_content, "", "");
}

// A pooled route's work, on a pool worker. It uses only what the app owns (`services` is a
// copy), never the router: a compaction, which no cancel flag stops, may outlive the router
// at shutdown, until closing the store cancels it.
Response run_pooled(Route route, const Request& request, const RouterServices& services,
                    const detail::QueryBudget& budget) {
  std::string_view path = detail::request_path(request);
  if (route == Route::kAdminCompact) return compact(request, services.compact);
  if (route == Route::kAdminBackup || route == Route::kAdminBackups) {
    return detail::handle_backup_api(request, route == Route::kAdminBackups, services);
  }
  if (route == Route::kKpi || route == Route::kKpiSeries) {
    return detail::handle_kpi_api(request, path.substr(std::string_view("/api/v1/kpis").size()),
                                  services.kpis, services.clock);
  }
  if (route == Route::kTsdbStatus) return detail::handle_tsdb_status(request, services.store);
  return detail::handle_prom_api(request, path.substr(std::string_view("/api/v1/").size()),
                                 services.engine, services.clock, budget);
}

// The "author" of a JSON body, for the audit log; "" when there is none.
std::string author_of(const Request& request) {
  boost::system::error_code ec;
  auto body = boost::json::parse(request.body(), ec);
  if (ec || !body.is_object()) return {};
  const auto* a = body.get_object().if_contains("author");
  return a != nullptr && a->is_string() ? std::string(a->get_string()) : std::string();
}

}  // namespace

struct Router::Impl {
  explicit Impl(RouterServices s)
      : services(std::move(s)),
        pipelines(services.store, services.ingest_metrics, services.clock,
                  services.observer != nullptr ? services.observer : &services.kpis),
        limiter(services.rate_limit, services.rate_limit_burst) {
    auto& registry = services.metrics.registry();
    rate_limited = &prometheus::BuildCounter()
                        .Name("kpid_http_rate_limited_total")
                        .Help(
                            "HTTP requests refused with 429 because their client went over "
                            "http.rate_limit.")
                        .Register(registry)
                        .Add({});
    requests = &prometheus::BuildCounter()
                    .Name("kpid_http_requests_total")
                    .Help("HTTP requests answered, by handler and status code.")
                    .Register(registry);
    auto& durations = prometheus::BuildHistogram()
                          .Name("kpid_http_request_duration_seconds")
                          .Help("Time to handle an HTTP request (after it was read), by handler.")
                          .Register(registry);
    static const prometheus::Histogram::BucketBoundaries kBuckets = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    for (size_t i = 0; i < kRouteNames.size(); ++i) {
      duration[i] = &durations.Add({{"handler", kRouteNames[i]}}, kBuckets);
    }
  }

  void count(Route route, unsigned code) {
    requests
        ->Add(
            {{"handler", kRouteNames[static_cast<size_t>(route)]}, {"code", std::to_string(code)}})
        .Increment();
  }

  Response dispatch(Route route, const Request& request) {
    std::string_view path = detail::request_path(request);
    switch (route) {
      case Route::kHealthz:
        return make_response(request, http::status::ok, "ok\n", "text/plain; charset=utf-8");
      case Route::kReadyz: {
        if (!services.ready.load()) {
          return make_response(request, http::status::service_unavailable, "not ready\n",
                               "text/plain; charset=utf-8");
        }
        // Storage that cannot write (disk full, write error) makes kpid unready, saying why;
        // a write stall or a checkpoint backlog passes within seconds and does not.
        using Reason = store::Pushback::Reason;
        if (auto p = services.store.pushback();
            p.reason == Reason::kDiskFull || p.reason == Reason::kWriteError) {
          return make_response(
              request, http::status::service_unavailable,
              "not ready: " + std::string(store::pushback_name(p.reason)) + ": " + p.message + "\n",
              "text/plain; charset=utf-8");
        }
        return make_response(request, http::status::ok, "ready\n", "text/plain; charset=utf-8");
      }
      case Route::kMetrics:
        return make_response(request, http::status::ok, services.metrics.scrape(),
                             "text/plain; version=0.0.4; charset=utf-8");
      // Static, so served while starting too: the page itself says kpid is not ready yet.
      case Route::kDashboard:
      case Route::kDashboardAsset: return detail::handle_dashboard(request, path);
      case Route::kInfluxPing: return detail::handle_influx_ping(request);
      case Route::kInfluxQuery: return detail::handle_influx_query(request);
      case Route::kOther:
        return make_response(request, http::status::not_found,
                             "404 page not found: " + std::string(path) + "\n",
                             "text/plain; charset=utf-8");
      default: break;
    }
    if (!services.ready.load()) {
      auto r = json_error(request, http::status::service_unavailable,
                          "kpid is not ready (starting or shutting down)");
      r.set(http::field::retry_after, "1");
      return r;
    }
    // Bodies of both are limited once decompressed; histograms become classic buckets.
    const ingest::RemoteWriteLimits limits{
        services.max_body_bytes(),
        static_cast<size_t>(services.ingest_options.native_histogram_max_buckets)};
    if (route == Route::kRemoteWrite) {
      return detail::handle_remote_write(request, pipelines, services.metadata, limits);
    }
    if (route == Route::kOtlpMetrics) {
      return detail::handle_otlp_metrics(request, pipelines, services.metadata,
                                         services.otlp_deltas, limits);
    }
    if (route == Route::kMetadata) return detail::handle_metadata(request, services.metadata);
    if (route == Route::kBuildInfo) return detail::handle_buildinfo(request);
    if (route == Route::kWriteV1 || route == Route::kWriteV2) {
      return detail::handle_write(
          request, route == Route::kWriteV1 ? detail::WriteApi::kV1 : detail::WriteApi::kV2,
          pipelines, services.max_body_bytes(), services.ingest_options.db_label);
    }
    if (route == Route::kAdminCompact) return compact(request, services.compact);
    if (route == Route::kReload) return detail::handle_reload(request, reloader);
    if (route == Route::kCluster) return detail::handle_cluster(request, cluster);
    if (route == Route::kKpis || route == Route::kKpi || route == Route::kKpiSeries) {
      return detail::handle_kpi_api(request, path.substr(std::string_view("/api/v1/kpis").size()),
                                    services.kpis, services.clock);
    }
    if (route == Route::kAlerts || route == Route::kAlert || route == Route::kAlertAck) {
      return detail::handle_alert_api(
          request, path.substr(std::string_view("/api/v1/alerts").size()), services.alerts);
    }
    if (route == Route::kOkrs || route == Route::kOkr || route == Route::kOkrAction) {
      return detail::handle_okr_api(request, path.substr(std::string_view("/api/v1/okrs").size()),
                                    services.okrs);
    }
    if (route == Route::kRules) return detail::handle_rules_api(request, services.rules);
    if (route == Route::kSloRules) {
      return detail::handle_slo_rules(request, *detail::slo_rules_id(path), services.slos);
    }
    if (route == Route::kSlos || route == Route::kSlo) {
      return detail::handle_slo_api(request, path.substr(std::string_view("/api/v1/slos").size()),
                                    services.slos);
    }
    if (route == Route::kSilences || route == Route::kSilence) {
      return detail::handle_silence_api(request,
                                        path.substr(std::string_view("/api/v1/silences").size()),
                                        services.alerts, services.clock);
    }
    return detail::handle_prom_api(request, path.substr(std::string_view("/api/v1/").size()),
                                   services.engine, services.clock, budget_now());
  }

  // A query's budget counted from now, under the current (reloadable) query options.
  detail::QueryBudget budget_now() const {
    const query::QueryOptions options = services.engine.options();
    return {std::chrono::steady_clock::now(), options.timeout, options.max_samples,
            &services.pool.cancelled()};
  }

  // Runs a pooled route on the query (or maintenance) pool.
  boost::asio::awaitable<Response> dispatch_on_pool(Route route, const Request& request) {
    const detail::QueryBudget budget = budget_now();  // the timeout counts the wait too
    const bool maintenance = route == Route::kAdminCompact || route == Route::kAdminBackup ||
                             route == Route::kAdminBackups;
    // Named, not a temporary of the co_await expression: see net::run_on.
    auto work = [route, &request, copy = services, budget] {
      return run_pooled(route, request, copy, budget);
    };
    co_return co_await answer_on(maintenance ? services.maintenance : services.pool,
                                 std::move(work), route, request);
  }

  // Runs a write on the ingest pool. The app stops that pool before it destroys the router, so
  // the work may use the router's write pipelines.
  boost::asio::awaitable<Response> dispatch_write(Route route, const Request& request) {
    auto work = [this, route, &request] { return dispatch(route, request); };
    co_return co_await answer_on(services.ingest, std::move(work), route, request);
  }

  // Runs `work` on `pool` and answers what it returns; the connection's strand waits without
  // being held. A full queue (or a stopping pool) answers 503 at once, as does a queued request
  // the pool dropped unrun because kpid is stopping.
  template <typename Work>
  static boost::asio::awaitable<Response> answer_on(query::WorkPool& pool, Work work, Route route,
                                                    const Request& request) {
    std::string refused;
    try {
      co_return co_await net::run_on(pool.executor(), std::move(work));
    } catch (const query::WorkRejected& e) {
      refused = e.what();
    } catch (const boost::system::system_error& e) {
      if (e.code() != boost::asio::error::operation_aborted) throw;
      refused = "kpid is shutting down: the request was not run";
    }
    Response r;
    if (auto api = write_api(route, request)) {
      r = detail::write_error(request, *api, http::status::service_unavailable,
                              "write not taken, nothing was stored: " + refused);
    } else {
      r = detail::api_error(request, http::status::service_unavailable, "unavailable", refused);
    }
    r.set(http::field::retry_after, "1");
    co_return r;
  }

  RouterServices services;
  std::function<ReloadOutcome()> reloader;
  std::function<std::string()> cluster;
  detail::PipelinePool pipelines;
  net::RateLimiter limiter;
  prometheus::Counter* rate_limited;
  prometheus::Family<prometheus::Counter>* requests;
  std::array<prometheus::Histogram*, kRouteNames.size()> duration{};
};

Router::Router(RouterServices services) : impl_(std::make_unique<Impl>(std::move(services))) {}
Router::~Router() = default;

boost::asio::awaitable<Response> Router::handle(const Request& request) {
  auto started = std::chrono::steady_clock::now();
  Route route = route_of(detail::request_path(request));
  Response response;
  const auto role = required_role(route, request.method());
  auth::Access::Decision decision;
  if (role) {
    decision = impl_->services.access.check(detail::request_path(request),
                                            authorization_of(route, request), *role);
  }
  try {
    if (decision.outcome == auth::Access::Outcome::kUnauthenticated) {
      response =
          detail::api_error(request, http::status::unauthorized, "unauthorized", decision.message);
      response.set(http::field::www_authenticate, "Bearer realm=\"kpid\"");
    } else if (decision.outcome == auth::Access::Outcome::kForbidden) {
      response = detail::api_error(request, http::status::forbidden, "forbidden", decision.message);
    } else if (on_pool(route) && impl_->services.ready.load()) {
      response = co_await impl_->dispatch_on_pool(route, request);
    } else if (write_api(route, request) && impl_->services.ready.load()) {
      response = co_await impl_->dispatch_write(route, request);
    } else {
      response = impl_->dispatch(route, request);
    }
  } catch (const std::exception& e) {
    spdlog::error("http {} {}: unexpected error: {}", std::string(request.method_string()),
                  std::string(request.target()), e.what());
    response = json_error(request, http::status::internal_server_error,
                          std::string("internal error: ") + e.what());
  }
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
  impl_->duration[static_cast<size_t>(route)]->Observe(elapsed.count());
  impl_->count(route, response.result_int());
  if (role == auth::Role::kAdmin) {
    // Who, what, when, and how it ended, before the answer goes out.
    impl_->services.audit.record(
        impl_->services.clock.now_ms(), decision.who.name.empty() ? "-" : decision.who.name,
        request.method_string(), request.target(), response.result_int(), author_of(request));
  }
  co_return response;
}

std::optional<Response> Router::admit(const Request& header, std::string_view client) {
  const Route route = route_of(detail::request_path(header));
  // Health probes stay answerable whatever a client sharing their address does.
  if (route != Route::kHealthz && route != Route::kReadyz) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now().time_since_epoch());
    if (const DurationMs wait = impl_->limiter.acquire(client, now.count()); wait > 0) {
      impl_->rate_limited->Increment();
      const DurationMs seconds = (wait + 999) / 1000;
      auto r = detail::api_error(header, http::status::too_many_requests, "too_many_requests",
                                 "client " + std::string(client) +
                                     " is over the request rate limit (http.rate_limit " +
                                     "per client); retry after " + std::to_string(seconds) + " s");
      r.set(http::field::retry_after, std::to_string(seconds));
      impl_->count(route, 429);
      return r;
    }
  }
  const auto api = write_api(route, header);
  if (api && header.method() == http::verb::post && impl_->services.ready.load()) {
    auto pushback = impl_->services.store.pushback();
    // A writer without the right token hears 401/403 as usual, not about storage.
    if (pushback && impl_->services.access
                            .check(detail::request_path(header), authorization_of(route, header),
                                   auth::Role::kWrite)
                            .outcome == auth::Access::Outcome::kAllowed) {
      auto r = detail::write_pushback(header, *api, pushback, impl_->services.ingest_metrics);
      impl_->count(route, 503);
      return r;
    }
  }
  return std::nullopt;
}

void Router::set_rate_limit(double rate, double burst) { impl_->limiter.set_limits(rate, burst); }

void Router::set_reloader(std::function<ReloadOutcome()> reload) {
  impl_->reloader = std::move(reload);
}

void Router::set_cluster(std::function<std::string()> cluster) {
  impl_->cluster = std::move(cluster);
}

Response Router::too_large(const Request& header, uint64_t limit) {
  auto response = json_error(header, http::status::payload_too_large,
                             "request body exceeds the limit of " + std::to_string(limit) +
                                 " bytes (http.max_body_bytes)");
  response.set(http::field::connection, "close");
  impl_->count(route_of(detail::request_path(header)), 413);
  return response;
}

}  // namespace kpid::server
