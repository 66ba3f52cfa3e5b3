#include "kpid/app/app.h"

#include <signal.h>
#include <unistd.h>

#include <prometheus/counter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>
#include <tuple>

#include "kpid/alert/alerter.h"
#include "kpid/alert/outbox.h"
#include "kpid/app/systemd.h"
#include "kpid/core/deadline.h"
#include "kpid/datasource/source.h"
#include "kpid/forward/forwarder.h"
#include "kpid/forward/own_series.h"
#include "kpid/ingest/delta_accumulator.h"
#include "kpid/ingest/line_listener.h"
#include "kpid/ingest/metric_metadata.h"
#include "kpid/ingest/write_pipeline.h"
#include "kpid/kpi/definition.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/metrics/metrics.h"
#include "kpid/net/tls.h"
#include "kpid/query/engine.h"
#include "kpid/query/promql.h"
#include "kpid/query/work_pool.h"
#include "kpid/rules/alerter_bridge.h"
#include "kpid/rules/evaluator.h"
#include "kpid/server/http_server.h"
#include "kpid/server/routes.h"
#include "kpid/store/rocksdb_store.h"
#include "kpid/version.h"
#include "pid_file.h"
#include "shard_filter.h"
#include "shutdown_backstop.h"

namespace kpid::app {

namespace net = boost::asio;

namespace {

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("kpid");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

// Where people reach this kpid, for links in notifications: alerting.external_url, else the
// HTTP listener's host and the port it bound.
// Admin actions are recorded beside the data unless auth.audit_log says where.
std::string audit_log_path(const config::Config& c) {
  return c.auth.audit_log.empty() ? c.storage.data_dir + "/audit.log" : c.auth.audit_log;
}

std::string external_url(const config::Config& c, uint16_t bound_port) {
  if (!c.alerting.external_url.empty()) return c.alerting.external_url;
  auto address = parse_host_port(c.http.listen);
  std::string host = address ? address->host : "127.0.0.1";
  if (host == "0.0.0.0" || host == "::") host = "localhost";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return (c.http.tls.enabled() ? "https://" : "http://") + host + ":" + std::to_string(bound_port);
}

void log_warnings(const std::vector<config::ConfigError>& warnings) {
  for (const auto& w : warnings) spdlog::warn("config: {}", w.to_string());
}

// Loads each configured certificate and key as the listener will, so a missing file, a bad PEM
// or a key of another certificate is an error at its key before anything starts.
std::vector<config::ConfigError> check_tls_files(const config::Config& c) {
  std::vector<config::ConfigError> errors;
  for (const auto& [section, tls] :
       {std::pair{"http.tls", &c.http.tls}, std::pair{"line.tls", &c.line.tls}}) {
    if (!tls->enabled()) continue;
    kpid::net::TlsFile failed = kpid::net::TlsFile::kNone;
    auto context = kpid::net::load_server_context(*tls, &failed);
    if (context) continue;
    const bool key = failed == kpid::net::TlsFile::kKey;
    const SourcePos& pos = key ? tls->key_file_pos : tls->cert_file_pos;
    errors.push_back({pos.file, pos.line, pos.column,
                      std::string(section) + (key ? ".key_file" : ".cert_file"),
                      context.status().message()});
  }
  return errors;
}

}  // namespace

// Loads the config and compiles its KPIs; every error of both is in `errors`.
namespace {

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

// Anyone who reaches an open kpid can read and change everything, so beyond loopback it needs
// tokens; the TCP line protocol carries none, so it stays on loopback. auth.allow_unauthenticated
// says the network is trusted otherwise.
void check_exposure(const config::Config& c, const auth::TokenSet& tokens,
                    std::vector<config::ConfigError>& errors) {
  if (c.auth.allow_unauthenticated) return;
  auto http = parse_host_port(c.http.listen);
  if (http && !is_loopback(http->host) && tokens.empty()) {
    errors.push_back({c.source, 0, 0, "http.listen",
                      "listens on " + c.http.listen +
                          ", beyond loopback, without any token: "
                          "add [[auth.token]] tables or auth.tokens_file, or set "
                          "auth.allow_unauthenticated = true for a network you trust"});
  }
  auto line = parse_host_port(c.line.listen);
  if (!c.line.listen.empty() && line && !is_loopback(line->host)) {
    errors.push_back({c.source, 0, 0, "line.listen",
                      "listens on " + c.line.listen +
                          ", beyond loopback, but the TCP line "
                          "protocol carries no token: send remote samples to HTTP /write with a "
                          "write token, or set auth.allow_unauthenticated = true for a network you "
                          "trust"});
  }
}

}  // namespace

LoadedConfig load_all(const CommandLine& command_line) {
  LoadedConfig out;
  auto loaded = config::load_config(command_line.config_path, command_line.overrides);
  out.errors = std::move(loaded.errors);
  out.config = std::move(loaded.config);
  // The loader keeps only KPIs without errors; compiling those finds the rest (band order,
  // selectors), so one run reports every error.
  auto compiled = kpi::compile(out.config.kpis);
  out.errors.insert(out.errors.end(), compiled.errors.begin(), compiled.errors.end());
  auto alerting = alert::compile_alerting(out.config);
  out.errors.insert(out.errors.end(), alerting.errors.begin(), alerting.errors.end());
  out.rules = std::move(alerting.rules);
  out.receivers = std::move(alerting.receivers);
  auto policies = okr::compile_policies(out.config);
  out.errors.insert(out.errors.end(), policies.errors.begin(), policies.errors.end());
  out.okr_policies = std::move(policies.policies);
  auto slos = slo::compile(out.config, compiled.kpis);
  out.errors.insert(out.errors.end(), slos.errors.begin(), slos.errors.end());
  auto slo_policies = okr::compile_slo_policies(out.config, slos.slos);
  out.errors.insert(out.errors.end(), slo_policies.errors.begin(), slo_policies.errors.end());
  out.slo_okr_policies = std::move(slo_policies.policies);
  out.slos = std::move(slos.slos);
  for (auto& r : slos.rules) out.rules.push_back(std::move(r));
  if (auto tokens = auth::TokenSet::load(out.config.auth, out.errors)) {
    out.tokens = std::move(*tokens);
  }
  // [[remote_write]]: urls and the selectors of match and drop.
  for (const auto& rw : out.config.remote_write) {
    if (auto s = forward::check(rw); !s) {
      const size_t colon = rw.source.rfind(':');
      const int line = colon == std::string::npos ? 0 : std::atoi(rw.source.c_str() + colon + 1);
      const std::string file = colon == std::string::npos ? rw.source : rw.source.substr(0, colon);
      const std::string& m = s.message();
      const size_t key_end = m.find(':');
      out.errors.push_back({file, line, 1, "remote_write." + rw.name + "." + m.substr(0, key_end),
                            m.substr(key_end + 2)});
    }
  }
  check_exposure(out.config, out.tokens, out.errors);
  // [rules]: Prometheus rule files, refused where promtool refuses them.
  out.rule_groups = rules::load_rule_files(out.config.rules.paths, out.errors);
  if (const std::string& name = out.config.rules.datasource;
      !name.empty() && std::none_of(out.config.datasources.begin(), out.config.datasources.end(),
                                    [&](const auto& d) { return d.name == name; })) {
    const SourcePos& p = out.config.rules.datasource_pos;
    out.errors.push_back({p.file, p.line, p.column, "rules.datasource",
                          "no [[datasource]] named \"" + name + "\" is defined"});
  }
  out.tls_file_errors = check_tls_files(out.config);
  out.errors.insert(out.errors.end(), out.tls_file_errors.begin(), out.tls_file_errors.end());
  config::sort_errors(out.errors);
  out.kpis = std::move(compiled.kpis);
  out.warnings = kpi::lint(out.config.kpis);
  return out;
}

namespace {

// A band its own recent history would put in warn or crit more than half the time is a band
// that will page people for business as usual.
void warn_about_breached_bands(const LoadedConfig& loaded, std::vector<config::ConfigError>& out) {
  store::StoreOptions options = loaded.config.storage;
  options.read_only = true;
  options.background = false;
  std::error_code ec;
  if (!std::filesystem::exists(options.data_dir + "/CURRENT", ec)) return;  // no data yet
  auto store = store::RocksDbStore::open(options, nullptr);
  if (!store) {
    out.push_back(
        {"", 0, 0, "storage.data_dir", "history not checked: " + store.status().message()});
    return;
  }
  query::Engine engine(**store, loaded.config.query);
  const TimestampMs now = SystemClock().now_ms();
  for (const auto& kpi : loaded.kpis) {
    if (!kpi.band) continue;
    const DurationMs window = kpi.baseline ? kpi.baseline->window : kpi::BaselineSpec{}.window;
    auto history = kpi::value_history(engine, kpi, now - window, now);
    if (!history) continue;
    auto fraction = kpi::breach_fraction(kpi.direction, *kpi.band, *history);
    if (!fraction || *fraction <= 0.5) continue;
    SourcePos pos;
    for (const auto& c : loaded.config.kpis) {
      if (c.id == kpi.id) pos = c.band ? c.band->pos : c.pos;
    }
    char share[16];
    std::snprintf(share, sizeof share, "%.0f%%", *fraction * 100);
    out.push_back({pos.file, pos.line, pos.column, "kpi." + kpi.id + ".band",
                   "its own history would breach this band " + std::string(share) +
                       " of the time (" + std::to_string(history->size()) +
                       " values over the last " + format_duration(window) + ")"});
  }
}

}  // namespace

LoadedConfig load_and_check(const CommandLine& command_line) {
  auto loaded = load_all(command_line);
  if (loaded.errors.empty()) warn_about_breached_bands(loaded, loaded.warnings);
  return loaded;
}

int check_config(const CommandLine& command_line, std::ostream& out, std::ostream& err) {
  const auto loaded = load_and_check(command_line);
  for (const auto& e : loaded.errors) err << e.to_string() << "\n";
  if (!loaded.errors.empty()) {
    err << "configuration has " << loaded.errors.size() << " error"
        << (loaded.errors.size() == 1 ? "" : "s") << "\n";
    return 1;
  }
  for (const auto& w : loaded.warnings) err << "warning: " << w.to_string() << "\n";
  out << "configuration OK"
      << (command_line.config_path.empty() ? " (built-in defaults)"
                                           : ": " + command_line.config_path)
      << " (" << loaded.kpis.size() << " KPI" << (loaded.kpis.size() == 1 ? "" : "s") << ", ";
  if (!loaded.slos.empty()) {
    out << loaded.slos.size() << " SLO" << (loaded.slos.size() == 1 ? "" : "s") << ", ";
  }
  if (!loaded.rule_groups.empty()) {
    size_t n = 0;
    for (const auto& g : loaded.rule_groups) n += g.rules.size();
    out << loaded.rule_groups.size() << " rule group" << (loaded.rule_groups.size() == 1 ? "" : "s")
        << " with " << n << " Prometheus rule" << (n == 1 ? "" : "s") << ", ";
  }
  out << loaded.rules.size() << " alert rule" << (loaded.rules.size() == 1 ? "" : "s") << ", "
      << loaded.receivers.size() << " receiver" << (loaded.receivers.size() == 1 ? "" : "s");
  if (!loaded.warnings.empty()) {
    out << ", " << loaded.warnings.size() << " warning" << (loaded.warnings.size() == 1 ? "" : "s");
  }
  out << ")\n";
  return 0;
}

namespace {

// The running services, built in dependency order and torn down in reverse.
class Daemon {
 public:
  explicit Daemon(const CommandLine& command_line) : command_line_(command_line) {}

  int run() {
    auto loaded = load_all(command_line_);
    if (!loaded.errors.empty()) {
      for (const auto& e : loaded.errors) std::cerr << e.to_string() << "\n";
      std::cerr << "kpid: not started: the configuration has errors\n";
      return 1;
    }
    // Shards ([cluster] shard, --shard): this instance keeps only what its shard owns.
    cluster_state_ = keep_owned(loaded.config.cluster.shard, loaded);
    config_ = loaded.config;
    kpis_ = std::move(loaded.kpis);
    rules_ = std::move(loaded.rules);
    receivers_ = std::move(loaded.receivers);
    okr_policies_ = std::move(loaded.okr_policies);
    slos_ = std::move(loaded.slos);
    slo_okr_policies_ = std::move(loaded.slo_okr_policies);
    rule_groups_ = std::move(loaded.rule_groups);
    token_count_ = loaded.tokens.size();
    tokens_ = std::move(loaded.tokens);
    setup_logging(config_.log.level);
    spdlog::info("kpid {} starting (config: {}, {} KPIs)", kVersion,
                 config_.source.empty() ? "built-in defaults" : config_.source, kpis_.size());
    log_warnings(loaded.warnings);
    log_shard(cluster_state_);

    // Signals are taken synchronously by this thread; every thread started later inherits
    // the mask, so none of them is interrupted.
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    if (!start()) {
      shutdown();
      return 1;
    }
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGHUP) {
        std::ignore = reload_now();
        continue;
      }
      spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
    return shutdown() ? 0 : 1;
  }

 private:
  bool start() {
    store::StoreOptions options = config_.storage;
    // Test-only seam: RocksDB writes fail as a control file says (store/fault_injection.h).
    if (const char* control = std::getenv(store::kFaultInjectionEnv)) {
      options.fault_injection_file = control;
    }
    auto store = store::RocksDbStore::open(options, &metrics_);
    if (!store) {
      spdlog::critical("cannot open storage: {}", store.status().message());
      return false;
    }
    store_ = std::move(store).value();
    spdlog::info("storage open in {} ({} series, sync={})", config_.storage.data_dir,
                 store_->series_count(), config_.storage.sync);
    engine_ = std::make_unique<query::Engine>(*store_, config_.query, &metrics_);
    query_pool_ = std::make_unique<query::WorkPool>(query::pool_options(config_.query), &metrics_);
    // Compactions run apart from queries: they hold no query slot for minutes, and closing the
    // store (not the pool's cancel flag) is what stops one.
    maintenance_pool_ =
        std::make_unique<query::WorkPool>(query::WorkPoolOptions{1, 4, query::kQueryNice});
    // HTTP writes, at the network threads' priority: one worker per core, and a queue as long as
    // the connections that may each have a write in flight.
    ingest_pool_ = std::make_unique<query::WorkPool>(query::WorkPoolOptions{
        std::max(1u, std::thread::hardware_concurrency()),
        static_cast<size_t>(std::max<int64_t>(config_.http.max_connections, 1024)), 0});
    ingest_metrics_ = std::make_unique<ingest::IngestMetrics>(metrics_.registry());
    metric_metadata_ = std::make_unique<ingest::MetricMetadataStore>(*store_);
    if (auto s = metric_metadata_->load(); !s) {
      spdlog::critical("cannot read metric metadata: {}", s.message());
      return false;
    }
    otlp_deltas_ = std::make_unique<ingest::DeltaAccumulator>(
        *store_, static_cast<size_t>(config_.ingest.native_histogram_max_buckets));
    if (auto s = otlp_deltas_->load(); !s) {
      spdlog::critical("cannot read OTLP delta totals: {}", s.message());
      return false;
    }
    evaluator_ = std::make_unique<kpi::Evaluator>(*store_, *store_, *engine_, &metrics_, clock_);
    // --- [[datasource]]: the remote query APIs KPIs are evaluated on ---
    {
      std::map<std::string, datasource::Source*, std::less<>> by_name;
      for (const auto& options : config_.datasources) {
        auto source = datasource::Source::create(options, &metrics_);
        if (!source) {
          spdlog::critical("{}", source.status().message());
          return false;
        }
        by_name.emplace(options.name, source->get());
        sources_.push_back(std::move(source).value());
      }
      evaluator_->set_sources(std::move(by_name));
      evaluator_->set_history_store(store_.get());
    }
    if (!start_alerting()) return false;
    evaluator_->set_listener(alerter_.get());
    evaluator_->set_kpis(std::move(kpis_));
    slos_tracker_ = std::make_unique<slo::Tracker>(*engine_, *evaluator_, &metrics_, clock_);
    slo_alerts_ = std::make_unique<slo::AlerterBridge>(*alerter_);
    slos_tracker_->set_listener(slo_alerts_.get());
    // --- SLOs with `datasource`: their counter queries go to that source ---
    {
      std::map<std::string, slo::RemoteQueries, std::less<>> remote;
      for (const auto& source : sources_) {
        datasource::Source* s = source.get();
        remote.emplace(
            s->name(),
            slo::RemoteQueries{
                [s](std::string_view expr, TimestampMs t) { return s->instant(expr, t); },
                [s](std::string_view expr, TimestampMs start, TimestampMs end, DurationMs step) {
                  return s->range(expr, start, end, step);
                }});
      }
      slos_tracker_->set_sources(std::move(remote));
    }
    slos_tracker_->set_slos(std::move(slos_));
    // The planner (made before the tracker) reads its figures for [slo.okr].
    planner_->set_slo_tracker(slos_tracker_.get());
    planner_->set_slo_policies(std::move(slo_okr_policies_));
    start_rules();

    if (!start_remote_write()) return false;

    access_ = std::make_unique<auth::Access>(std::move(tokens_), config_.auth.open);
    auto audit = auth::AuditLog::open(audit_log_path(config_));
    if (!audit) {
      spdlog::critical("{}", audit.status().message());
      return false;
    }
    audit_ = std::move(*audit);
    spdlog::info("auth: {}; admin actions audited in {}",
                 access_->enabled() ? "tokens required (" + std::to_string(token_count_) + ")"
                                    : std::string("off, no token configured"),
                 audit_->path());
    server::RouterServices services{
        *store_,
        *engine_,
        *ingest_metrics_,
        metrics_,
        clock_,
        ready_,
        [this] { return http_ ? http_->max_body_bytes() : config_.http.max_body_bytes; },
        [this] { return store_->compact(); },
        *query_pool_,
        *maintenance_pool_,
        *ingest_pool_,
        *metric_metadata_,
        *otlp_deltas_,
        *evaluator_,
        *alerter_,
        *planner_,
        *slos_tracker_,
        *access_,
        *audit_,
        config_.http.rate_limit,
        config_.http.rate_limit_burst};
    services.ingest_options = config_.ingest;
    services.rules = rule_evaluator_.get();
    services.observer = forwarder_.get();
    services.backup_dir = store::backup_dir_of(config_.storage);
    services.backup = [this](const std::string& dir) { return store_->backup(dir); };
    services.list_backups = [](const std::string& dir) {
      return store::RocksDbStore::list_backups(dir);
    };
    router_ = std::make_unique<server::Router>(std::move(services));
    router_->set_reloader([this] { return reload_now(); });
    // Shards: GET /api/v1/cluster and the kpid_cluster_* metrics.
    cluster_ = std::make_unique<cluster::Cluster>(&metrics_);
    cluster_->set(std::move(cluster_state_));
    router_->set_cluster([this] { return cluster_->json(); });
    http_ = std::make_unique<server::HttpServer>(
        io_, config_.http, [this](const server::Request& r) { return router_->handle(r); },
        [this](const server::Request& h, uint64_t limit) { return router_->too_large(h, limit); },
        [this](const server::Request& h, std::string_view client) {
          return router_->admit(h, client);
        });
    if (auto s = http_->start(); !s) {
      spdlog::critical("{}", s.message());
      return false;
    }
    // Links in notifications need the bound port, so delivery starts only now.
    alerter_->set_external_url(external_url(config_, http_->local_port()));
    planner_->set_external_url(external_url(config_, http_->local_port()));
    outbox_->start();
    alerter_->start();
    planner_->start();
    slos_tracker_->start();
    rule_evaluator_->start();
    spdlog::info("alerting: {} receivers", receivers_.size());
    if (!config_.line.listen.empty()) {
      // TLS handshakes are bounded alike on both listeners.
      line_ = std::make_unique<ingest::LineListener>(io_, *store_, *ingest_metrics_, clock_,
                                                     config_.line, config_.http.request_timeout,
                                                     sample_observer());
      if (auto s = line_->start(); !s) {
        spdlog::critical("{}", s.message());
        return false;
      }
    }
    count_refused_connections();
    for (int i = 0; i < config_.http.threads; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
    ready_.store(true);
    if (!command_line_.pid_file.empty()) {
      auto pid_file = PidFile::write(command_line_.pid_file);
      if (!pid_file) {
        spdlog::critical("{}", pid_file.status().message());
        ready_.store(false);
        return false;
      }
      pid_file_.emplace(std::move(*pid_file));
    }
    spdlog::info("kpid ready");
    notifier_.ready(status_line());
    return true;
  }

  std::string status_line() const {
    return "serving HTTP on port " + std::to_string(http_->local_port()) + ", " +
           std::to_string(evaluator_->list().size()) + " KPIs";
  }

  // For the systemd watchdog: the HTTP threads run a posted task within a second.
  bool alive() {
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    net::post(io_, [done] { done->set_value(); });
    return future.wait_for(std::chrono::seconds(1)) == std::future_status::ready;
  }

  // Remote write out ([[remote_write]]): the queues left by the previous run are read before
  // any write, and every ingested batch goes through the forwarder (queued, then on to the
  // evaluator) so a write is acknowledged only once it is queued.
  bool start_remote_write() {
    if (config_.remote_write.empty()) return true;
    auto forwarder =
        forward::Forwarder::create(config_.remote_write, *store_, *store_, metrics_, clock_);
    if (!forwarder) {
      spdlog::critical("{}", forwarder.status().message());
      return false;
    }
    forwarder_ = std::move(*forwarder);
    if (auto s = forwarder_->load(); !s) {
      spdlog::critical("cannot read the remote write queues: {}", s.message());
      return false;
    }
    forwarder_->set_next(evaluator_.get());
    forwarder_->start();
    spdlog::info("remote write: {} destinations", config_.remote_write.size());
    start_own_series();
    return true;
  }

  // ---- Remote write of kpid's own series and recording-rule results (send = kpis, slos,
  // alerts, rules) ----
  // What rule groups write goes to the destinations sending "rules"; every destination's
  // self_interval, the kpid_kpi_* / kpid_slo_* series and ALERTS to those sending the kinds.
  void start_own_series() {
    if (rule_evaluator_ && forwarder_->wants(forward::Origin::kRules)) {
      forward::Forwarder* forwarder = forwarder_.get();
      rule_evaluator_->set_forward([forwarder](std::span<const store::Sample> samples) {
        return forwarder->enqueue(forward::Origin::kRules, samples);
      });
    }
    own_series_ = std::make_unique<forward::OwnSeriesWriter>(
        *forwarder_, *store_, config_.remote_write,
        [this](forward::Origin origin) { return own_series(origin); }, clock_);
    own_series_->start();
  }

  std::vector<forward::OwnSeries> own_series(forward::Origin origin) {
    std::vector<forward::OwnSeries> out;
    if (origin == forward::Origin::kKpis) {
      forward::append_families(metrics_.collect(), "kpid_kpi_", out);
    } else if (origin == forward::Origin::kSlos) {
      forward::append_families(metrics_.collect(), "kpid_slo_", out);
    } else if (origin == forward::Origin::kAlerts) {
      for (const alert::AlertView& v : alerter_->list(alert::AlertFilter{})) {
        const alert::Alert& a = v.alert;
        if (a.state != alert::State::kPending && a.state != alert::State::kFiring) continue;
        out.push_back(
            forward::alert_series(a.name, std::string(alert::state_name(a.state)), a.labels));
      }
    }
    return out;
  }

  // Who is told of ingested batches: the forwarder when remote write is on, else the evaluator.
  store::SampleObserver* sample_observer() {
    if (forwarder_) return forwarder_.get();
    return evaluator_.get();
  }

  // The outbox picks up what a previous run left undelivered; the alerter its open alerts.
  // Their threads start once the HTTP port is known.
  // ---- Prometheus rule files ([rules], rules module) ----
  // Groups evaluate against the local engine; what they record goes to the store and to the
  // KPI evaluator, as an ingested batch does.
  void start_rules() {
    rules::EvaluatorOptions options;
    options.default_interval = config_.rules.evaluation_interval;
    rule_alerts_ = std::make_unique<rules::AlerterBridge>(*alerter_);
    set_rules_source(config_.rules.datasource);
    rule_evaluator_ = std::make_unique<rules::RuleEvaluator>(
        *store_, evaluator_.get(),
        [this](const query::Expr& expr, std::string_view text, TimestampMs time) {
          return rules_query(expr, text, time);
        },
        rule_alerts_.get(), &metrics_, clock_, options);
    set_rule_groups(std::move(rule_groups_));
  }

  // [rules] datasource: rule queries go to that [[datasource]] (the expression as written in the
  // rule file), else to the local engine. Recording and ALERTS series are written locally either
  // way.
  void set_rules_source(const std::string& name) {
    std::lock_guard lock(rules_source_mutex_);
    rules_source_name_ = name;
  }
  Result<query::QueryResult> rules_query(const query::Expr& expr, std::string_view text,
                                         TimestampMs time) {
    std::string name;
    {
      std::lock_guard lock(rules_source_mutex_);
      name = rules_source_name_;
    }
    if (name.empty()) return engine_->instant(expr, time);
    for (const auto& source : sources_) {
      if (source->name() == name) return source->instant(text, time);
    }
    // Named by a reload that also added the [[datasource]]: sources are made at start.
    return Status::unavailable("datasource " + name + " is not running (restart kpid)");
  }

  // Alerts of groups that are gone (or not this instance's) resolve; the evaluator keeps the
  // state of groups that stay.
  void set_rule_groups(std::vector<rules::RuleGroup> groups) {
    alerter_->set_rule_groups(rule_evaluator_->set_groups(std::move(groups)));
  }

  bool start_alerting() {
    const alert::OutboxOptions outbox_options{config_.alerting.notification_max_age,
                                              config_.alerting.retry_initial,
                                              config_.alerting.retry_max};
    outbox_ =
        std::make_unique<alert::Outbox>(*store_, receivers_, &metrics_, clock_, outbox_options);
    if (auto s = outbox_->load(); !s) {
      spdlog::critical("cannot read the notification outbox: {}", s.message());
      return false;
    }
    alert::AlerterOptions options;
    options.resolved_retention = config_.alerting.resolved_retention;
    alerter_ = std::make_unique<alert::Alerter>(*store_, *outbox_, &metrics_, clock_, options);
    if (auto s = alerter_->load(); !s) {
      spdlog::critical("cannot read alerts: {}", s.message());
      return false;
    }
    alerter_->set_rules(std::move(rules_));
    planner_ = std::make_unique<okr::Planner>(
        *store_, *evaluator_, *alerter_, &metrics_, clock_,
        okr::PlannerOptions{config_.okr.max_open_per_owner, 1'000, true});
    if (auto s = planner_->load(); !s) {
      spdlog::critical("cannot read OKRs: {}", s.message());
      return false;
    }
    planner_->set_policies(std::move(okr_policies_));
    return true;
  }

  // The stop, against one deadline (shutdown_timeout) for all of it: stop accepting, let
  // in-flight requests finish (a write that cannot finish is not acknowledged), stop the
  // background modules and deliveries (undelivered notifications stay in the outbox), then
  // checkpoint and close storage. Each step logs how long it took. Returns false if something
  // could not be finished cleanly; whatever happens, the process is gone by the deadline.
  bool shutdown() {
    bool clean = true;
    const auto started = std::chrono::steady_clock::now();
    const DurationMs timeout = [&] {
      std::lock_guard lock(reload_mutex_);  // an HTTP reload may still be changing config_
      return config_.shutdown_timeout;
    }();
    const Deadline deadline = Deadline::after(timeout);
    ShutdownBackstop backstop(deadline, timeout);
    // Storage and the background modules need time after the network has drained: the
    // draining steps leave them this much of the deadline.
    const DurationMs closing_reserve = std::clamp<DurationMs>(timeout * 2 / 5, 100, 4'000);
    auto step = [&](const char* what, auto&& run) {
      backstop.entering(what);
      const auto begin = std::chrono::steady_clock::now();
      run();
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - begin;
      spdlog::info("shutdown: {} took {:.3f} s", what, took.count());
    };
    step("stop accepting", [&] {
      notifier_.stopping();
      ready_.store(false);
      if (http_) http_->listener().stop();
      if (line_) line_->listener().stop();
    });
    // Running queries stop at their next check (the pool's cancel flag) and answer 503; queued
    // ones are answered 503 unrun; RocksDB's compactions (an admin compaction's too) are
    // cancelled, so none of them holds the drain.
    step("cancel queries and background work", [&] {
      if (store_) store_->cancel_background_work();
      if (maintenance_pool_) maintenance_pool_->stop(std::chrono::steady_clock::now());
      if (!query_pool_ || query_pool_->stop(deadline.leaving(closing_reserve).when())) return;
      spdlog::warn("shutdown: work on the query pool is still running; waiting for it");
      // What it runs uses the modules stopped below: they wait for it (or the deadline's end).
      query_pool_->stop(deadline.when());
    });
    // Idle connections closed at once; requests and batches in flight get until the drain
    // deadline, then their connections are closed unanswered (a write that did not finish is
    // not acknowledged).
    step("finish in-flight requests", [&] {
      const Deadline drain = deadline.leaving(closing_reserve);
      const bool http_done = !http_ || http_->listener().drain(drain.when());
      const bool line_done = !line_ || line_->listener().drain(drain.when());
      if (http_done && line_done) return;
      spdlog::warn("shutdown: {} connections still busy at the drain deadline; closing them",
                   http_done ? "TCP" : (line_done ? "HTTP" : "HTTP and TCP"));
      // The closes run on the network threads, at once unless one is stuck in a request.
      const auto grace = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
      if (http_) http_->listener().abort(grace);
      if (line_) line_->listener().abort(grace);
    });
    step("stop network threads", [&] {
      // The writes it runs use the router (destroyed below); after the drain, none is left
      // unless a connection was aborted, and a write that did not finish was not acknowledged.
      if (ingest_pool_) ingest_pool_->stop(deadline.when());
      work_.reset();
      io_.stop();
      for (auto& t : threads_) t.join();
      threads_.clear();
      line_.reset();
      http_.reset();
      router_.reset();
    });
    // The planner reads the evaluator and alerter; the evaluator tells the alerter, which feeds
    // the outbox: stopped in that order.
    step("stop OKR planning", [&] {
      if (planner_) planner_->stop(deadline);
    });
    step("stop own series", [&] {
      if (own_series_) own_series_->stop();
    });
    own_series_.reset();
    step("stop rule evaluation", [&] {
      if (rule_evaluator_) rule_evaluator_->stop(deadline);
    });
    rule_evaluator_.reset();
    rule_alerts_.reset();
    step("stop SLO tracking", [&] {
      if (slos_tracker_) slos_tracker_->stop(deadline);
    });
    step("stop KPI evaluation", [&] {
      // Requests to data sources in flight end at once.
      for (auto& source : sources_) source->cancel();
      if (evaluator_) evaluator_->stop(deadline);
    });
    step("stop alerting", [&] {
      if (alerter_) alerter_->stop(deadline);
    });
    step("stop notification delivery", [&] {
      if (outbox_) outbox_->stop(deadline);
    });
    // Unacknowledged samples stay queued for the next start.
    step("stop remote write", [&] {
      if (forwarder_) forwarder_->stop(deadline);
    });
    forwarder_.reset();
    slos_tracker_.reset();
    planner_.reset();
    evaluator_.reset();
    alerter_.reset();
    outbox_.reset();
    if (store_) {
      step("close storage", [&] {
        if (auto s = store_->close(deadline); !s) {
          spdlog::error("closing storage: {}", s.to_string());
          clean = false;
        }
      });
    }
    pid_file_.reset();  // gone once the store is closed
    backstop.finished();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
    spdlog::info("kpid stopped in {:.3f} s (shutdown_timeout {})", took.count(),
                 format_duration(timeout));
    spdlog::default_logger()->flush();
    return clean;
  }

  static void log_shard(const cluster::ClusterState& state) {
    if (state.shard.count <= 1) return;
    spdlog::info("shard {}: evaluating {} of {} KPIs and {} of {} SLOs", state.shard.text(),
                 state.owned_kpis(), state.kpis.size(), state.owned_slos(), state.slos.size());
  }

  // kpid_connections_refused_total{listener}: the listeners count, a scrape publishes.
  void count_refused_connections() {
    auto& family = prometheus::BuildCounter()
                       .Name("kpid_connections_refused_total")
                       .Help(
                           "Connections closed as soon as accepted because the listener had "
                           "max_connections open, by listener.")
                       .Register(metrics_.registry());
    auto* http = &family.Add({{"listener", "http"}});
    auto* line = &family.Add({{"listener", "line"}});
    metrics_.on_scrape([this, http, line] {
      if (http_) http->Increment(static_cast<double>(http_->listener().refused()) - http->Value());
      if (line_) line->Increment(static_cast<double>(line_->listener().refused()) - line->Value());
    });
  }

  // SIGHUP and POST /-/reload: one reload at a time, each told to systemd.
  server::ReloadOutcome reload_now() {
    std::lock_guard lock(reload_mutex_);
    notifier_.reloading();
    auto outcome = reload();
    notifier_.ready(status_line());
    return outcome;
  }

  server::ReloadOutcome reload() {
    server::ReloadOutcome outcome;
    outcome.config_path = command_line_.config_path;
    if (command_line_.config_path.empty()) {
      outcome.error = "kpid was started without --config: there is no file to reload";
      spdlog::info("reload: no config file given (--config); nothing to reload");
      return outcome;
    }
    auto loaded = load_all(command_line_);
    // A certificate pair that does not load keeps the running one (below); any other error
    // refuses the whole reload.
    if (loaded.errors.size() > loaded.tls_file_errors.size()) {
      for (const auto& e : loaded.errors) {
        spdlog::error("reload: {}", e.to_string());
        outcome.errors.push_back(e.to_string());
      }
      outcome.error = "reload rejected: " + std::to_string(loaded.errors.size()) + " error" +
                      (loaded.errors.size() == 1 ? "" : "s") + " in " + command_line_.config_path +
                      "; the running configuration is kept";
      spdlog::error("{}", outcome.error);
      return outcome;
    }
    const config::Config& next = loaded.config;
    // Shards: the flag's shard stays (it is in the overrides), the config's is re-read.
    auto cluster_state = keep_owned(next.cluster.shard, loaded);
    // Each module decides which of its keys a reload may change; the others are named here
    // and keep their running values until a restart.
    for (auto keys : {store::keys_needing_restart(config_.storage, next.storage),
                      server::keys_needing_restart(config_.http, next.http),
                      ingest::keys_needing_restart(config_.line, next.line),
                      ingest::keys_needing_restart(config_.ingest, next.ingest),
                      alert::keys_needing_restart(config_.alerting, config_.receivers,
                                                  next.alerting, next.receivers),
                      query::keys_needing_restart(config_.query, next.query),
                      okr::keys_needing_restart(config_.okr, next.okr),
                      auth::keys_needing_restart(config_.auth, next.auth),
                      datasource::keys_needing_restart(config_.datasources, next.datasources)}) {
      for (auto& key : keys) {
        spdlog::warn("reload: {} changed; it takes effect after a restart", key);
        outcome.restart_needed.push_back(std::move(key));
      }
    }
    for (auto& key : forward::keys_needing_restart(config_.remote_write, next.remote_write)) {
      spdlog::warn("reload: {} changed; it takes effect after a restart", key);
      outcome.restart_needed.push_back(std::move(key));
    }
    for (const auto& e : loaded.tls_file_errors) {
      spdlog::error("reload: {}; the running certificate and key are kept", e.to_string());
      outcome.warnings.push_back(e.to_string() + "; the running certificate and key are kept");
    }
    // New connections get the re-read pair, open ones keep theirs.
    auto reload_tls = [&](auto& listener, std::string_view section, kpid::net::TlsOptions& running,
                          const kpid::net::TlsOptions& wanted) {
      if (!running.enabled() || !wanted.enabled()) return;  // on or off needs a restart
      for (const auto& e : loaded.tls_file_errors) {
        if (e.key.starts_with(section)) return;  // logged above
      }
      if (auto s = listener.reload_tls(wanted.cert_file, wanted.key_file); !s) {
        spdlog::error("reload: {}; the running certificate and key are kept", s.message());
        outcome.warnings.push_back(s.message() + "; the running certificate and key are kept");
        return;
      }
      running.cert_file = wanted.cert_file;
      running.key_file = wanted.key_file;
      spdlog::info("reload: {} certificate and key re-read from {} and {}", section,
                   wanted.cert_file, wanted.key_file);
    };
    reload_tls(http_->listener(), "http.tls", config_.http.tls, next.http.tls);
    if (line_) reload_tls(line_->listener(), "line.tls", config_.line.tls, next.line.tls);

    spdlog::set_level(spdlog::level::from_str(next.log.level));
    http_->set_max_body_bytes(next.http.max_body_bytes);
    router_->set_rate_limit(next.http.rate_limit, next.http.rate_limit_burst);
    if (line_) line_->set_max_line_bytes(next.line.max_line_bytes);
    engine_->set_options(next.query);
    log_warnings(loaded.warnings);
    for (const auto& w : loaded.warnings) outcome.warnings.push_back(w.to_string());
    const size_t kpi_count = loaded.kpis.size();
    const size_t rule_count = loaded.rules.size();
    spdlog::info("reload: {} tokens", loaded.tokens.size());
    access_->set(std::move(loaded.tokens), next.auth.open);
    alerter_->set_rules(std::move(loaded.rules));
    planner_->set_policies(std::move(loaded.okr_policies));
    evaluator_->set_kpis(std::move(loaded.kpis));
    slos_tracker_->set_slos(std::move(loaded.slos));
    planner_->set_slo_policies(std::move(loaded.slo_okr_policies));
    spdlog::info("reload: {} rule groups", loaded.rule_groups.size());
    set_rules_source(next.rules.datasource);
    set_rule_groups(std::move(loaded.rule_groups));
    spdlog::info("reload: {} KPIs, {} alert rules", kpi_count, rule_count);
    log_shard(cluster_state);
    cluster_->set(std::move(cluster_state));
    // Keys that need a restart keep their running values, so later reloads compare right.
    config_.log = next.log;
    config_.http = server::reloaded(config_.http, next.http);
    config_.line = ingest::reloaded(config_.line, next.line);
    config_.shutdown_timeout = next.shutdown_timeout;
    config_.query = query::reloaded(config_.query, next.query);
    spdlog::info("configuration reloaded from {}", command_line_.config_path);
    outcome.reloaded = true;
    outcome.kpis = kpi_count;
    outcome.alert_rules = rule_count;
    return outcome;
  }

  const CommandLine& command_line_;
  config::Config config_;
  SystemClock clock_;
  metrics::Metrics metrics_;
  std::atomic<bool> ready_{false};
  SystemdNotifier notifier_{[this] { return alive(); }};
  net::io_context io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{
      net::make_work_guard(io_)};
  std::vector<std::thread> threads_;
  std::unique_ptr<store::RocksDbStore> store_;
  std::unique_ptr<query::Engine> engine_;
  std::unique_ptr<rules::AlerterBridge> rule_alerts_;     // [rules] alerts -> the alerter
  std::unique_ptr<rules::RuleEvaluator> rule_evaluator_;  // [rules]
  std::vector<rules::RuleGroup> rule_groups_;             // until the rule evaluator takes them
  // After io_ and store_: destroyed (their workers joined) before them.
  std::unique_ptr<query::WorkPool> query_pool_;
  std::unique_ptr<query::WorkPool> maintenance_pool_;
  std::unique_ptr<query::WorkPool> ingest_pool_;
  std::unique_ptr<ingest::IngestMetrics> ingest_metrics_;
  std::unique_ptr<ingest::MetricMetadataStore> metric_metadata_;
  std::unique_ptr<ingest::DeltaAccumulator> otlp_deltas_;
  std::vector<kpi::Definition> kpis_;  // until the evaluator takes them
  std::vector<alert::Rule> rules_;     // until the alerter takes them
  std::vector<alert::Receiver> receivers_;
  std::vector<okr::Policy> okr_policies_;         // until the planner takes them
  std::vector<slo::Definition> slos_;             // until the tracker takes them
  std::vector<okr::SloPolicy> slo_okr_policies_;  // until the planner takes them
  // [[datasource]] clients, made at start; they outlive the evaluator that queries them.
  std::vector<std::unique_ptr<datasource::Source>> sources_;
  std::mutex rules_source_mutex_;  // rules_source_name_: the rule thread reads, reload writes
  std::string rules_source_name_;
  std::unique_ptr<kpi::Evaluator> evaluator_;
  std::unique_ptr<alert::Outbox> outbox_;
  std::unique_ptr<alert::Alerter> alerter_;
  std::unique_ptr<okr::Planner> planner_;
  std::unique_ptr<slo::Tracker> slos_tracker_;
  std::unique_ptr<slo::AlerterBridge> slo_alerts_;
  auth::TokenSet tokens_;  // until access_ takes them
  size_t token_count_ = 0;
  std::unique_ptr<auth::Access> access_;
  std::unique_ptr<auth::AuditLog> audit_;
  std::unique_ptr<server::Router> router_;
  cluster::ClusterState cluster_state_;  // until cluster_ takes it
  std::unique_ptr<cluster::Cluster> cluster_;
  std::unique_ptr<server::HttpServer> http_;
  std::unique_ptr<ingest::LineListener> line_;
  std::mutex reload_mutex_;          // SIGHUP (main thread) and POST /-/reload (HTTP threads)
  std::optional<PidFile> pid_file_;  // --pid-file, from ready until stopped
  // Remote write out; null without [[remote_write]]. Stopped before the store closes.
  std::unique_ptr<forward::Forwarder> forwarder_;
  std::unique_ptr<forward::OwnSeriesWriter> own_series_;  // send = kpis, slos, alerts
};

}  // namespace

int run(const CommandLine& command_line) { return Daemon(command_line).run(); }

int hash_token(std::istream& in, std::ostream& out, std::ostream& err) {
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) {
    err << "kpid --hash-token: give the token on stdin (at least 16 characters; make one with "
           "openssl rand -hex 32)\n";
    return 1;
  }
  out << auth::hash_token(token) << "\n";
  return 0;
}

}  // namespace kpid::app
