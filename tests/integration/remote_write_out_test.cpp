// Remote write out against real receivers: a VictoriaMetrics and a Prometheus with its remote
// write receiver. What kpid acknowledges arrives, in order per series and without gaps, also
// when the receiver is away for a while and when kpid is killed with SIGKILL while the receiver
// is down (the durable queue, read back at restart).

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "harness.h"

using namespace kpid_it;
using namespace std::chrono_literals;

namespace {

namespace json = boost::json;

// The raw samples' timestamps of `rwout` per job, as the receiver on `port` answers
// rwout[1h] (Prometheus and VictoriaMetrics both give raw samples for it).
std::map<std::string, std::vector<int64_t>> stored(uint16_t port) {
  std::map<std::string, std::vector<int64_t>> out;
  auto r = http_request(port, "GET", "/api/v1/query?query=" + url_encode("rwout[1h]"));
  if (r.status != 200) return out;
  const json::value body = r.json();
  for (const auto& series : body.at("data").at("result").as_array()) {
    auto& ts = out[json::value_to<std::string>(series.at("metric").at("job"))];
    for (const auto& v : series.at("values").as_array()) {
      ts.push_back(static_cast<int64_t>(std::llround(v.as_array()[0].to_number<double>() * 1000)));
    }
  }
  return out;
}

// Whether the receiver holds exactly `expected` timestamps for each job, in increasing order.
bool holds(uint16_t port, const std::vector<int64_t>& expected, const char* what) {
  const auto got = stored(port);
  for (const char* job : {"a", "b"}) {
    auto it = got.find(job);
    if (it == got.end()) return false;
    std::vector<int64_t> ts = it->second;
    if (!std::is_sorted(ts.begin(), ts.end())) {
      FAIL(what << ": timestamps of job " << job << " out of order");
    }
    ts.erase(std::unique(ts.begin(), ts.end()), ts.end());  // at least once: a repeat is fine
    if (ts != expected) return false;
  }
  return true;
}

double pending(const Kpid& k, const char* destination) {
  return metric_value(k.metrics(), "kpid_remote_write_pending_samples",
                      {{"destination", destination}})
      .value_or(-1);
}

}  // namespace

TEST_CASE("remote write out: VictoriaMetrics and Prometheus get every acknowledged sample in order",
          "[remote_write_out]") {
  RealVictoriaMetrics vm;
  RealPrometheus prom("global: {}\n", {"--web.enable-remote-write-receiver"});
  const std::string queue = R"(
[remote_write.queue]
batch_send_deadline = "200ms"
min_backoff = "50ms"
max_backoff = "500ms"
max_samples_per_send = 7
max_shards = 4
)";
  // Another kpid takes remote write 2.0 (Prometheus 2.42 speaks 1.0 only).
  Kpid receiver;
  receiver.start();
  KpidOptions options;
  options.config_toml =
      "[[remote_write]]\nname = \"vm\"\nurl = \"" + vm.url() + "/api/v1/write\"\n" + queue +
      "\n[[remote_write]]\nname = \"prom\"\nurl = \"http://127.0.0.1:" + std::to_string(prom.port) +
      "/api/v1/write\"\n" + queue +
      "\n[[remote_write]]\nname = \"kpid\"\nprotocol = \"2.0\"\nurl = \"http://127.0.0.1:" +
      std::to_string(receiver.http_port()) + "/api/v1/write\"\n" + queue;
  Kpid k(options);
  k.start();

  const int64_t start = (now_ms() / 1000 - 600) * 1000;
  std::vector<int64_t> expected;
  int next = 0;
  // `n` points of two series, one second apart, each written (and acknowledged) on its own.
  auto write = [&](int n) {
    for (int i = 0; i < n; ++i, ++next) {
      const int64_t ts = start + next * 1000;
      const std::string body = "rwout,job=a value=" + std::to_string(next) + " " +
                               std::to_string(ts) + "\nrwout,job=b value=" + std::to_string(-next) +
                               " " + std::to_string(ts) + "\n";
      REQUIRE(k.write(body, "ms").status == 204);
      expected.push_back(ts);
    }
  };

  // Every receiver gets what kpid ingests; the kpid one in 2.0, with no fallback.
  write(20);
  REQUIRE(eventually(
      [&] { return pending(k, "vm") == 0 && pending(k, "prom") == 0 && pending(k, "kpid") == 0; },
      20s));
  vm.flush();
  CHECK(eventually([&] { return holds(vm.port, expected, "vm"); }, 10s));
  CHECK(eventually([&] { return holds(prom.port, expected, "prometheus"); }, 10s));
  CHECK(eventually([&] { return holds(receiver.http_port(), expected, "kpid (2.0)"); }, 10s));
  CHECK(metric_value(k.metrics(), "kpid_remote_write_protocol_fallbacks_total",
                     {{"destination", "kpid"}}) == 0);
  CHECK(metric_value(receiver.metrics(), "kpid_ingest_samples_total",
                     {{"protocol", "remote_write"}}) >= 40);

  // VictoriaMetrics away while kpid ingests: the queue holds the samples, retries, then sends
  // them all in order once it is back.
  vm.stop();
  write(20);
  REQUIRE(eventually([&] {
    return metric_value(k.metrics(), "kpid_remote_write_retries_total", {{"destination", "vm"}})
               .value_or(0) > 0;
  }));
  CHECK(pending(k, "vm") > 0);
  vm.start();
  REQUIRE(eventually([&] { return pending(k, "vm") == 0; }, 20s));
  vm.flush();
  CHECK(eventually([&] { return holds(vm.port, expected, "vm after its restart"); }, 10s));

  // kill -9 while VictoriaMetrics is down: every acknowledged sample is in the queue on disk and
  // arrives after kpid's restart.
  vm.stop();
  write(15);
  REQUIRE(pending(k, "vm") > 0);
  k.kill9();
  k.start();
  CHECK(pending(k, "vm") > 0);
  vm.start();
  REQUIRE(eventually([&] { return pending(k, "vm") == 0; }, 20s));
  vm.flush();
  CHECK(eventually([&] { return holds(vm.port, expected, "vm after kill -9"); }, 10s));
  CHECK(eventually([&] { return holds(prom.port, expected, "prometheus"); }, 10s));
  CHECK(eventually([&] { return holds(receiver.http_port(), expected, "kpid (2.0)"); }, 10s));
  CHECK(metric_value(k.metrics(), "kpid_remote_write_samples_dropped_total").value_or(0) == 0);
  CHECK(metric_value(k.metrics(), "kpid_remote_write_samples_failed_total").value_or(0) == 0);
}

// kpid's own series and what its rules record, sent to a real VictoriaMetrics: a recording
// rule's result, the kpid_kpi_value of a KPI over it, and the ALERTS series of its alert.
TEST_CASE(
    "remote write out: kpid's KPI series, ALERTS and recording-rule results reach VictoriaMetrics",
    "[remote_write_out]") {
  RealVictoriaMetrics vm;
  TempDir rules_dir;
  write_file(rules_dir.file("own.yml"),
             "groups:\n  - name: own\n    interval: 1s\n    rules:\n      - record: "
             "own:latency\n        expr: vector(90)\n");
  KpidOptions options;
  options.config_toml =
      "[[kpi]]\nid = \"own_latency\"\ndirection = \"lower_is_better\"\ninterval = \"1s\"\n"
      "[kpi.value]\nexpr = 'max(own:latency)'\n[kpi.band]\nwarn = 50\ncrit = 80\n"
      "[[kpi.alert]]\ncondition = \"crit\"\n"
      "[rules]\nfiles = [\"" +
      rules_dir.file("own.yml") +
      "\"]\n"
      "[[remote_write]]\nname = \"vm\"\nurl = \"" +
      vm.url() +
      "/api/v1/write\"\nsend = [\"kpis\", \"alerts\", \"rules\"]\nself_interval = \"1s\"\n"
      "[remote_write.queue]\nbatch_send_deadline = \"100ms\"\n";
  Kpid k(options);
  k.start();
  // The raw samples VictoriaMetrics holds for `selector` (its export API: an instant query
  // would not see samples this recent), as JSON lines; whether a sample has `value`.
  auto has = [&](const std::string& selector, const std::string& value) {
    vm.flush();
    auto r = http_request(vm.port, "GET", "/api/v1/export?match[]=" + url_encode(selector));
    return r.status == 200 && (r.body.find("[" + value + ",") != std::string::npos ||
                               r.body.find("," + value + ",") != std::string::npos ||
                               r.body.find("[" + value + "]") != std::string::npos);
  };
  CHECK(eventually([&] { return has("kpid_kpi_value{kpi=\"own_latency\"}", "90"); }, 8s));
  CHECK(eventually([&] { return has("ALERTS{kpi=\"own_latency\",alertstate=\"firing\"}", "1"); },
                   8s));
  CHECK(eventually([&] { return has("own:latency", "90"); }, 8s));
  // Nothing was refused: every label set is one VictoriaMetrics takes.
  CHECK(metric_value(k.metrics(), "kpid_remote_write_samples_failed_total").value_or(0) == 0);
}
