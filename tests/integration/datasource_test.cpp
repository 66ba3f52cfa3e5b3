// KPIs evaluated on a remote data source: a real VictoriaMetrics and a real Prometheus hold the
// samples, kpid queries them. Each KPI's value must equal the engine's own answer to the KPI's
// query at the evaluation time; N distinct queries take ceil(N / batch_size) requests per
// interval; a source that goes away turns its KPIs unknown and raises exactly one
// datasource_down notification, and when it returns evaluation resumes without notifying again
// about a KPI alert that was firing all along.
#include <snappy.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <ctime>
#include <string>
#include <vector>

#include "harness.h"
#include "prometheus/remote_write_v1.pb.h"
#include "support/recording_receiver.h"

using namespace kpid_it;
namespace json = boost::json;
namespace pb = kpid::wire::prometheus::v1;
using kpid::testing::RecordingReceiver;

namespace {

// Samples every 15 s from 10 minutes ago to 1 minute ago: a gauge and two counters.
struct Point {
  std::string series;  // metric{labels}
  std::string name;
  double value;
  int64_t t;
};
std::vector<Point> test_points(int64_t now) {
  std::vector<Point> out;
  for (int i = 0; i <= 36; ++i) {
    const int64_t t = now - 600'000 + i * 15'000;
    out.push_back({"latency_ms{svc=\"a\"}", "latency_ms", 100.0 + i % 5, t});
    out.push_back({"requests_total{svc=\"a\"}", "requests_total", i * 10.0, t});
    out.push_back({"errors_total{svc=\"a\"}", "errors_total", i * 1.0, t});
  }
  return out;
}

std::string import_text(const std::vector<Point>& points) {
  std::string out;
  for (const auto& p : points) {
    out += p.series + " " + std::to_string(p.value) + " " + std::to_string(p.t) + "\n";
  }
  return out;
}

std::string remote_write(const std::vector<Point>& points) {
  pb::WriteRequest request;
  std::map<std::string, pb::TimeSeries*> by_series;
  for (const auto& p : points) {
    auto& ts = by_series[p.name];
    if (ts == nullptr) {
      ts = request.add_timeseries();
      for (auto [n, v] : {std::pair<std::string, std::string>{"__name__", p.name}, {"svc", "a"}}) {
        auto* l = ts->add_labels();
        l->set_name(n);
        l->set_value(v);
      }
    }
    auto* s = ts->add_samples();
    s->set_timestamp(p.t);
    s->set_value(p.value);
  }
  const std::string raw = request.SerializeAsString();
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

// Five KPIs with six distinct queries (the ratio has two), one of them a scalar expression.
std::string kpis(const std::string& source) {
  auto kpi = [&](const std::string& id, const std::string& value, const std::string& extra = "") {
    return "[[kpi]]\nid = \"" + id + "\"\ndirection = \"lower_is_better\"\ndatasource = \"" +
           source + "\"\ninterval = \"1s\"\n" + value + extra;
  };
  return kpi("avg_latency",
             "[kpi.value]\nselector = 'latency_ms{svc=\"a\"}'\nover_time = \"avg\"\n"
             "window = \"10m\"\nacross = \"max\"\n",
             "[kpi.baseline]\nwindow = \"1h\"\nmin_history = \"1m\"\n") +
         kpi("error_ratio",
             "[kpi.value]\nscale = 100\n[kpi.value.numerator]\nselector = "
             "'errors_total'\nover_time = \"increase\"\nwindow = \"10m\"\n"
             "[kpi.value.denominator]\nselector = 'requests_total'\nover_time = \"increase\"\n"
             "window = \"10m\"\n") +
         kpi("request_rate", "[kpi.value]\nexpr = 'sum(rate(requests_total[10m]))'\n") +
         kpi("peak_latency",
             "[kpi.value]\nexpr = 'scalar(max(max_over_time(latency_ms[10m])))'\n") +
         kpi("min_latency", "[kpi.value]\nexpr = 'min(min_over_time(latency_ms[10m]))'\n",
             "[kpi.band]\nwarn = 50\ncrit = 80\n[[kpi.alert]]\ncondition = \"crit\"\n");
}

const std::vector<std::string> kIds = {"avg_latency", "error_ratio", "request_rate", "peak_latency",
                                       "min_latency"};

json::object kpi_of(const Kpid& k, const std::string& id) {
  return require_api_data(k.get("/api/v1/kpis/" + id)).as_object();
}

int64_t parse_rfc3339_ms(const std::string& text) {
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  REQUIRE(rest != nullptr);
  int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  if (*rest == '.')
    ms += static_cast<int64_t>(std::lround(std::stod(std::string("0") + rest) * 1000));
  return ms;
}

// The engine's own answer to `query` at `ms` (one series or a scalar).
double engine_answer(uint16_t port, const std::string& query, int64_t ms) {
  const HttpResponse r = http_request(port, "POST", "/api/v1/query",
                                      form({{"query", query}, {"time", fmt_seconds(ms)}}),
                                      {{"Content-Type", "application/x-www-form-urlencoded"}});
  INFO(r.body);
  REQUIRE(r.status == 200);
  const json::value v = r.json();
  const auto& data = v.at("data").as_object();
  const json::value* point = nullptr;
  if (data.at("resultType").as_string() == "scalar") {
    point = &data.at("result");
  } else {
    REQUIRE(data.at("result").as_array().size() == 1);
    point = &data.at("result").as_array()[0].at("value");
  }
  return std::stod(std::string(point->as_array()[1].as_string()));
}

// Every KPI evaluated on the source equals the engine's answer at its evaluation time.
void check_values(const Kpid& k, uint16_t engine_port) {
  for (const auto& id : kIds) {
    INFO("kpi " << id);
    json::object view;
    REQUIRE(eventually([&] {
      view = kpi_of(k, id);
      return view.at("value").is_number();
    }));
    const double value = view.at("value").to_number<double>();
    const int64_t at = parse_rfc3339_ms(json_str(view, "evaluated_at"));
    CHECK(at % 1000 == 0);  // aligned to its 1 s interval
    const double expected = engine_answer(engine_port, json_str(view, "query"), at);
    CHECK(std::abs(value - expected) <= 1e-9 * std::max(1.0, std::abs(expected)));
  }
}

size_t events_of(const RecordingReceiver& hook, std::string_view event,
                 std::string_view alertname) {
  size_t n = 0;
  for (const auto& r : hook.requests()) {
    const json::value v = json::parse(r.body);
    if (json_str(v, "event") != event) continue;
    const auto& labels = v.at("alert").at("labels").as_object();
    if (labels.contains("alertname") && labels.at("alertname").as_string() == alertname) ++n;
  }
  return n;
}

std::string receiver_toml(const RecordingReceiver& hook) {
  return "[alerting]\nretry_initial = \"50ms\"\n[[receiver]]\nname = \"hook\"\ntype = "
         "\"webhook\"\nurl = \"" +
         hook.url() + "/hook\"\n";
}

}  // namespace

TEST_CASE(
    "datasource: KPIs on a real VictoriaMetrics, batched, unknown while it is down, one "
    "datasource_down",
    "[datasource]") {
  RealVictoriaMetrics vm({"-search.latencyOffset=0s"});
  const auto points = test_points(now_ms());
  REQUIRE(
      http_request(vm.port, "POST", "/api/v1/import/prometheus", import_text(points), {}).status ==
      204);
  vm.flush();
  RecordingReceiver hook;
  Kpid k({.config_toml = receiver_toml(hook) + "[[datasource]]\nname = \"vm\"\nurl = \"" +
                         vm.url() + "\"\nbatch_size = 4\ndown_for = \"2s\"\ntimeout = \"2s\"\n" +
                         kpis("vm")});
  k.start();

  check_values(k, vm.port);
  CHECK(json_str(kpi_of(k, "min_latency"), "status") == "crit");

  // 6 distinct queries, 4 per request: 2 requests for each round of the 5 KPIs.
  REQUIRE(eventually([&] {
    const std::string text = k.get("/metrics").body;
    const auto requests = metric_value(text, "kpid_datasource_requests_total",
                                       {{"datasource", "vm"}, {"kind", "instant"}});
    const auto evaluations =
        metric_value(text, "kpid_kpi_evaluations_total", {{"trigger", "timer"}});
    return requests && evaluations && *evaluations >= 15 && *requests * 5 == *evaluations * 2;
  }));

  // Each KPI's history (for its baseline and threshold suggestion) was read from the source once
  // (one query_range each) into kpid's own series; a refresh (a reload recomputes every history)
  // does not read it again.
  auto range_requests = [&] {
    return metric_value(k.get("/metrics").body, "kpid_datasource_requests_total",
                        {{"datasource", "vm"}, {"kind", "range"}})
        .value_or(0);
  };
  auto baseline_rounds = [&] {
    return metric_value(k.get("/metrics").body, "kpid_kpi_evaluations_total",
                        {{"trigger", "baseline"}})
        .value_or(0);
  };
  REQUIRE(eventually([&] { return baseline_rounds() >= 5; }));
  CHECK(range_requests() == 5);
  {
    const HttpResponse r =
        k.get("/api/v1/query?query=" + url_encode("kpid_kpi_value{kpi=\"avg_latency\"}"));
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(contains(r.body, "\"kpi\":\"avg_latency\""));
  }
  const double rounds = baseline_rounds();
  REQUIRE(k.post("/-/reload", "").status == 200);
  REQUIRE(eventually([&] { return baseline_rounds() >= rounds + 5; }));
  CHECK(range_requests() == 5);
  CHECK(kpi_of(k, "avg_latency").at("baseline").at("lower").is_number());

  // The crit KPI's alert fires once.
  REQUIRE(eventually([&] { return events_of(hook, "alert.firing", "min_latency_crit") == 1; }));

  vm.stop();
  for (const auto& id : kIds) {
    INFO("kpi " << id);
    REQUIRE(eventually([&] { return json_str(kpi_of(k, id), "status") == "unknown"; }));
  }
  REQUIRE(eventually([&] { return events_of(hook, "alert.firing", "datasource_down") == 1; }));
  {
    const auto firing = get_alerts(k, "state=firing");
    bool down = false;
    for (const auto& a : firing) {
      const auto& labels = a.at("labels").as_object();
      if (labels.at("alertname").as_string() != "datasource_down") continue;
      down = true;
      CHECK(labels.at("datasource").as_string() == "vm");
      CHECK(labels.at("severity").as_string() == "critical");
    }
    CHECK(down);
    CHECK(firing.size() == 2);  // datasource_down and the held KPI alert
  }
  const std::string metrics = k.get("/metrics").body;
  CHECK(metric_value(metrics, "kpid_datasource_up", {{"datasource", "vm"}}) == 0.0);
  CHECK(metric_value(metrics, "kpid_datasource_request_failures_total",
                     {{"datasource", "vm"}, {"reason", "connect"}})
            .value_or(0) > 0);
  CHECK(metric_value(metrics, "kpid_kpi_status", {{"kpi", "min_latency"}, {"status", "unknown"}}) ==
        1.0);

  vm.start();
  REQUIRE(eventually([&] { return json_str(kpi_of(k, "min_latency"), "status") == "crit"; }));
  REQUIRE(eventually([&] { return events_of(hook, "alert.resolved", "datasource_down") == 1; }));
  check_values(k, vm.port);
  // A few more rounds: the KPI alert that fired before the outage is not announced again.
  const size_t seen = hook.requests().size();
  REQUIRE(eventually([&] {
    const auto view = kpi_of(k, "min_latency");
    return parse_rfc3339_ms(json_str(view, "evaluated_at")) >=
           parse_rfc3339_ms(json_str(view, "since")) + 3000;
  }));
  CHECK(events_of(hook, "alert.firing", "min_latency_crit") == 1);
  CHECK(events_of(hook, "alert.firing", "datasource_down") == 1);
  CHECK(hook.requests().size() == seen);
  const auto open = get_alerts(k, "state=firing");
  REQUIRE(open.size() == 1);
  CHECK(open[0].at("labels").at("alertname").as_string() == "min_latency_crit");
}

TEST_CASE("datasource: KPIs on a real Prometheus equal its own answers", "[datasource]") {
  RealPrometheus prom("global: {}\n", {"--web.enable-remote-write-receiver"});
  const auto points = test_points(now_ms());
  REQUIRE(http_request(prom.port, "POST", "/api/v1/write", remote_write(points),
                       {{"Content-Type", "application/x-protobuf"},
                        {"Content-Encoding", "snappy"},
                        {"X-Prometheus-Remote-Write-Version", "0.1.0"}})
              .status == 204);
  Kpid k({.config_toml = "[[datasource]]\nname = \"prom\"\nurl = \"http://127.0.0.1:" +
                         std::to_string(prom.port) + "/\"\n" + kpis("prom")});
  k.start();
  check_values(k, prom.port);
  const std::string text = k.get("/metrics").body;
  CHECK(metric_value(text, "kpid_datasource_up", {{"datasource", "prom"}}) == 1.0);
  CHECK(
      metric_value(text, "kpid_datasource_request_duration_seconds_count", {{"datasource", "prom"}})
          .value_or(0) > 0);
}

TEST_CASE("datasource: an SLO and a rule group on a real VictoriaMetrics", "[datasource]") {
  RealVictoriaMetrics vm({"-search.latencyOffset=0s"});
  // The counters end 5 s ago, so the SLO's first live read still sees them.
  REQUIRE(http_request(vm.port, "POST", "/api/v1/import/prometheus",
                       import_text(test_points(now_ms() + 55'000)), {})
              .status == 204);
  vm.flush();
  TempDir rules_dir;
  write_file(rules_dir.file("vm.yml"),
             "groups:\n  - name: vm_rules\n    interval: 1s\n    rules:\n"
             "      - record: svc:requests:increase10m\n"
             "        expr: sum(increase(requests_total[10m]))\n");
  Kpid k({.config_toml = "[[datasource]]\nname = \"vm\"\nurl = \"" + vm.url() +
                         "\"\ntimeout = \"2s\"\n"
                         "[[slo]]\nid = \"api\"\nobjective = 99\nwindow = \"1h\"\n"
                         "interval = \"1s\"\ndatasource = \"vm\"\n[slo.events]\n"
                         "bad = 'errors_total'\ntotal = 'requests_total'\n"
                         "[rules]\nfiles = [\"" +
                         rules_dir.file("vm.yml") +
                         "\"]\ndatasource = \"vm\"\nevaluation_interval = \"1s\"\n"});
  k.start();

  // The SLO's good and total over its window equal VictoriaMetrics' increase() over that window
  // at the evaluation time: its history read from the source, then live reads.
  auto slo_matches_source = [&](double min_total) {
    return eventually([&] {
      const json::object slo = require_api_data(k.get("/api/v1/slos/api")).as_object();
      if (!slo.at("total").is_number() || slo.at("total").to_number<double>() < min_total) {
        return false;
      }
      CHECK(json_str(slo, "datasource") == "vm");
      CHECK(json_str(slo, "error").empty());
      const int64_t at = parse_rfc3339_ms(json_str(slo, "evaluated_at"));
      const double total = engine_answer(vm.port, "sum(increase(requests_total[1h]))", at);
      const double bad = engine_answer(vm.port, "sum(increase(errors_total[1h]))", at);
      INFO("slo " << json::serialize(slo));
      return std::abs(slo.at("total").to_number<double>() - total) < 1e-6 &&
             std::abs(slo.at("good").to_number<double>() - (total - bad)) < 1e-6;
    });
  };
  CHECK(slo_matches_source(360));
  // New samples in the source count live.
  REQUIRE(http_request(vm.port, "POST", "/api/v1/import/prometheus",
                       "requests_total{svc=\"a\"} 400 " + std::to_string(now_ms() - 500) +
                           "\nerrors_total{svc=\"a\"} 40 " + std::to_string(now_ms() - 500) + "\n",
                       {})
              .status == 204);
  vm.flush();
  CHECK(slo_matches_source(400));

  // The recording rule evaluated on the source, its output in kpid's own store.
  json::array samples;
  REQUIRE(eventually([&] {
    const HttpResponse r =
        k.get("/api/v1/query?query=" + url_encode("svc:requests:increase10m[30s]"));
    if (r.status != 200) return false;
    const json::value answer = r.json();
    const auto& result = answer.at("data").at("result").as_array();
    if (result.empty()) return false;
    samples = result[0].at("values").as_array();
    return !samples.empty();
  }));
  const auto& last = samples.back().as_array();
  const int64_t at = static_cast<int64_t>(std::llround(last[0].to_number<double>() * 1000));
  CHECK(std::stod(std::string(last[1].as_string())) ==
        Approx(engine_answer(vm.port, "sum(increase(requests_total[10m]))", at)));

  // A failing source: the SLO is unknown, naming it, with its figures kept.
  vm.stop();
  REQUIRE(eventually([&] {
    const json::object slo = require_api_data(k.get("/api/v1/slos/api")).as_object();
    return json_str(slo, "status") == "unknown" && contains(json_str(slo, "error"), "vm") &&
           slo.at("total").to_number<double>() >= 400;
  }));
}
