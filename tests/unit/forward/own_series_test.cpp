// kpid's own series for remote write: which families a kind takes, ALERTS as Prometheus writes
// it, and the writer's snapshots per destination (interval, stale markers for ended series).

#include <catch2/catch.hpp>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kpid/core/stale_marker.h"
#include "kpid/forward/forwarder.h"
#include "kpid/forward/own_series.h"
#include "kpid/ingest/remote_write.h"
#include "support/recording_receiver.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace kpid;
using namespace kpid::forward;

namespace {

using LabelMap = std::map<std::string, std::string>;

// "labels value" of every sample the receiver got, as a set (1.0 bodies).
std::multiset<std::string> received(const testing::RecordingReceiver& receiver) {
  std::multiset<std::string> out;
  for (const auto& request : receiver.requests()) {
    ingest::RemoteWriteDecoder decoder;
    ingest::RemoteWriteRequest decoded;
    REQUIRE(decoder.decode(request.body, ingest::RemoteWriteVersion::kV1, {}, decoded).is_ok());
    for (const auto& series : decoded.series) {
      std::string labels;
      for (const auto& l : series.labels) {
        labels += std::string(l.name) + "=" + std::string(l.value) + ",";
      }
      for (const auto& sample : series.samples) {
        out.insert(
            labels + " " +
            (is_stale_marker(sample.value) ? std::string("stale") : std::to_string(sample.value)));
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE(
    "own series: a kind takes its prefix's gauges and counters, ALERTS as Prometheus has it") {
  prometheus::Registry registry;
  prometheus::BuildGauge().Name("kpid_kpi_value").Register(registry).Add({{"kpi", "a"}}).Set(3);
  prometheus::BuildCounter()
      .Name("kpid_kpi_evaluations_total")
      .Register(registry)
      .Add({{"kpi", "a"}})
      .Increment(2);
  prometheus::BuildGauge().Name("kpid_slo_sli").Register(registry).Add({{"slo", "s"}}).Set(99);
  prometheus::BuildHistogram()
      .Name("kpid_kpi_seconds")
      .Register(registry)
      .Add({}, prometheus::Histogram::BucketBoundaries{1.0})
      .Observe(0.5);
  std::vector<OwnSeries> kpis;
  append_families(registry.Collect(), "kpid_kpi_", kpis);
  std::map<LabelMap, double> got;
  for (const auto& s : kpis) got[s.labels] = s.value;
  CHECK(got == std::map<LabelMap, double>{
                   {{{"__name__", "kpid_kpi_value"}, {"kpi", "a"}}, 3},
                   {{{"__name__", "kpid_kpi_evaluations_total"}, {"kpi", "a"}}, 2}});

  const OwnSeries alert =
      alert_series("KpiCrit", "firing", {{"kpi", "a"}, {"alertname", "other"}, {"severity", "x"}});
  CHECK(alert.labels == LabelMap{{"__name__", "ALERTS"},
                                 {"alertname", "KpiCrit"},
                                 {"alertstate", "firing"},
                                 {"kpi", "a"},
                                 {"severity", "x"}});
  CHECK(alert.value == 1);
}

TEST_CASE("own series: each destination gets its kinds on its interval, ended series go stale") {
  testing::TempDir dir;
  SystemClock clock;
  auto db = testing::open_test_store(dir.path(), clock);
  metrics::Metrics m;
  testing::RecordingReceiver alerts_sink;
  testing::RecordingReceiver kpis_sink;
  auto make = [](const std::string& name, const std::string& url, std::vector<std::string> send,
                 DurationMs interval) {
    RemoteWriteOptions o;
    o.name = name;
    o.url = url + "/api/v1/write";
    o.timeout = 2'000;
    o.send = std::move(send);
    o.self_interval = interval;
    o.queue.batch_send_deadline = 1;
    return o;
  };
  const std::vector<RemoteWriteOptions> destinations = {
      make("alerts", alerts_sink.url(), {"alerts"}, 1'000),
      make("kpis", kpis_sink.url(), {"kpis", "samples"}, 10'000)};
  auto forwarder = Forwarder::create(destinations, *db, *db, m, clock);
  REQUIRE(forwarder.is_ok());
  Forwarder& f = **forwarder;
  REQUIRE(f.load().is_ok());

  bool firing = true;
  std::map<Origin, int> asked;
  OwnSeriesWriter writer(
      f, *db, destinations,
      [&](Origin origin) {
        ++asked[origin];
        std::vector<OwnSeries> out;
        if (origin == Origin::kKpis)
          out.push_back({{{"__name__", "kpid_kpi_value"}, {"kpi", "a"}}, 7});
        if (origin == Origin::kAlerts && firing) {
          out.push_back(alert_series("KpiCrit", "firing", {{"kpi", "a"}}));
        }
        return out;
      },
      clock);
  REQUIRE(writer.active());

  // Both due at once; 1 s later only "alerts" (the alert has resolved: a stale marker).
  REQUIRE(writer.run_once(100'000).is_ok());
  firing = false;
  REQUIRE(writer.run_once(101'000).is_ok());
  REQUIRE(writer.run_once(102'000).is_ok());  // nothing left to mark stale
  CHECK(asked[Origin::kKpis] == 1);
  CHECK(asked[Origin::kAlerts] == 3);
  CHECK(asked.count(Origin::kSlos) == 0);
  CHECK(f.pending_samples("alerts") == 2);
  CHECK(f.pending_samples("kpis") == 1);

  f.start();
  REQUIRE(alerts_sink.wait_for(1, std::chrono::seconds(10)));
  REQUIRE(kpis_sink.wait_for(1, std::chrono::seconds(10)));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((f.pending_samples("alerts") != 0 || f.pending_samples("kpis") != 0) &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  f.stop();
  CHECK(received(alerts_sink) ==
        std::multiset<std::string>{
            "__name__=ALERTS,alertname=KpiCrit,alertstate=firing,kpi=a, 1.000000",
            "__name__=ALERTS,alertname=KpiCrit,alertstate=firing,kpi=a, stale"});
  CHECK(received(kpis_sink) ==
        std::multiset<std::string>{"__name__=kpid_kpi_value,kpi=a, 7.000000"});
}
