// Shards and HA replicas with the real kpid binary.
//
// Shards: two instances over one config with --shard 0/2 and 1/2 evaluate disjoint sets of
// KPIs whose union is every KPI; GET /api/v1/cluster, kpictl cluster and the kpid_cluster_*
// metrics say who owns what.
//
// HA: two replicas with the same config (their own data dirs) get the same samples and send to
// one webhook sink (a RecordingReceiver) and one real Alertmanager (Debian's
// prometheus-alertmanager, whose own webhook goes to a second RecordingReceiver). After
// deduplication by Idempotency-Key the sink has one notification per event, and Alertmanager
// notifies once per group; one replica is killed with SIGKILL mid-incident and the survivor's
// resolution arrives exactly once.

#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"
#include "support/recording_receiver.h"

using namespace kpid_it;
namespace json = boost::json;
using kpid::testing::ReceivedRequest;
using kpid::testing::RecordingReceiver;

namespace {

constexpr const char* kKpictlBinary = KPICTL_BINARY;
constexpr const char* kAlertmanagerBin = ALERTMANAGER_BINARY;

std::string kpi_toml(const std::string& id, const std::string& extra = "") {
  return "[[kpi]]\nid = \"" + id + "\"\nname = \"" + id +
         "\"\nowner = \"payments\"\nunit = \"ms\"\ndirection = \"lower_is_better\"\n"
         "stale_after = \"1h\"\ninterval = \"1s\"\n[kpi.value]\nselector = '" +
         id + "'\nover_time = \"last\"\nwindow = \"1h\"\n[kpi.band]\nwarn = 100\ncrit = 200\n" +
         extra;
}

std::set<std::string> kpi_ids(const Kpid& k) {
  std::set<std::string> ids;
  const json::value data = require_api_data(k.get("/api/v1/kpis"));
  for (const auto& v : data.as_array()) ids.insert(json_str(v, "id"));
  return ids;
}

// An Alertmanager on a free loopback port, clustering off, sending every group at once (and
// its resolution) to `webhook_url`.
class Alertmanager {
 public:
  explicit Alertmanager(const std::string& webhook_url) : port_(free_port()) {
    write_file(dir_.file("am.yml"),
               "route:\n  receiver: hook\n  group_by: ['alertname', 'kpi']\n"
               "  group_wait: 0s\n  group_interval: 1s\n"
               "  repeat_interval: 1h\nreceivers:\n  - name: hook\n"
               "    webhook_configs:\n      - url: '" +
                   webhook_url + "'\n        send_resolved: true\n");
    std::filesystem::create_directories(dir_.file("am-data"));
    process_ = std::make_unique<BackgroundProcess>(
        "alertmanager",
        std::vector<std::string>{kAlertmanagerBin, "--config.file=" + dir_.file("am.yml"),
                                 "--storage.path=" + dir_.file("am-data"),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                 "--cluster.listen-address="},
        dir_.file("alertmanager.log"));
    const bool ready = eventually(
        [&] {
          if (!process_->running()) return true;
          try {
            return http_request(port_, "GET", "/-/ready", {}, {}, 2s).status == 200;
          } catch (const std::exception&) {
            return false;
          }
        },
        20s, 50ms);
    INFO("alertmanager log:\n" << tail(process_->log(), 4000));
    REQUIRE(ready);
    REQUIRE(process_->running());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  TempDir dir_;
  uint16_t port_;
  std::unique_ptr<BackgroundProcess> process_;
};

// The webhook sink after deduplication: each Idempotency-Key once, with its event.
std::map<std::string, std::string> by_key(const RecordingReceiver& sink) {
  std::map<std::string, std::string> out;
  for (const auto& r : sink.requests()) {
    auto it = r.headers.find("idempotency-key");
    if (it == r.headers.end()) continue;
    json::value body = json::parse(r.body);
    out[it->second] = json_str(body, "event");
  }
  return out;
}

size_t count_event(const std::map<std::string, std::string>& keys, const std::string& event) {
  size_t n = 0;
  for (const auto& [key, e] : keys) n += e == event ? 1 : 0;
  return n;
}

size_t raw_count(const RecordingReceiver& sink, const std::string& event) {
  size_t n = 0;
  for (const auto& r : sink.requests()) {
    auto it = r.headers.find("x-kpid-event");
    if (it != r.headers.end() && it->second == event) ++n;
  }
  return n;
}

// Alertmanager's webhook payloads with `status` ("firing", "resolved").
size_t am_notifications(const RecordingReceiver& sink, const std::string& status) {
  size_t n = 0;
  for (const auto& r : sink.requests()) {
    json::value v;
    try {
      v = json::parse(r.body);
    } catch (const std::exception&) {
      continue;
    }
    if (json_str(v, "status") == status) ++n;
  }
  return n;
}

std::string describe(const RecordingReceiver& sink) {
  std::ostringstream out;
  for (const auto& r : sink.requests()) {
    auto key = r.headers.find("idempotency-key");
    out << "\n  " << r.method << " " << r.target
        << " key=" << (key == r.headers.end() ? "-" : key->second) << " " << tail(r.body, 300);
  }
  return out.str();
}

}  // namespace

TEST_CASE("cluster: two shards over one config split the KPIs, each listed once", "[cluster]") {
  std::string toml;
  std::set<std::string> all;
  for (int i = 0; i < 12; ++i) {
    const std::string id = "kpi_" + std::to_string(i);
    toml += kpi_toml(id);
    all.insert(id);
  }
  // SLOs over a KPI's status follow that KPI to its shard.
  for (int i = 0; i < 4; ++i) {
    toml += "[[slo]]\nid = \"slo_" + std::to_string(i) +
            "\"\nobjective = 99\nwindow = \"28d\"\n[slo.time_slices]\nkpi = \"kpi_" +
            std::to_string(i) + "\"\n";
  }
  // Rule groups are sharded by "<file base name>:<group name>".
  TempDir rules_dir;
  std::string yaml = "groups:\n";
  for (int i = 0; i < 6; ++i) {
    yaml += "  - name: g" + std::to_string(i) + "\n    rules:\n      - record: g" +
            std::to_string(i) + ":one\n        expr: vector(1)\n";
  }
  write_file(rules_dir.file("groups.yml"), yaml);
  toml += "[rules]\nfiles = [\"" + rules_dir.file("groups.yml") + "\"]\n";
  Kpid zero({.config_toml = "[cluster]\nshard = \"1/2\"\n" + toml,  // the flag overrides it
             .extra_args = {"--shard", "0/2"}});
  Kpid one({.config_toml = "[cluster]\nshard = \"1/2\"\n" + toml});
  zero.start();
  one.start();

  const auto ids_zero = kpi_ids(zero);
  const auto ids_one = kpi_ids(one);
  CHECK_FALSE(ids_zero.empty());
  CHECK_FALSE(ids_one.empty());
  std::set<std::string> both;
  for (const auto& id : ids_zero) CHECK(ids_one.count(id) == 0);
  both.insert(ids_zero.begin(), ids_zero.end());
  both.insert(ids_one.begin(), ids_one.end());
  CHECK(both == all);

  const json::value cluster = require_api_data(zero.get("/api/v1/cluster"));
  CHECK(json_str(cluster, "shard") == "0/2");
  REQUIRE(cluster.at("kpis").as_array().size() == all.size());
  for (const auto& k : cluster.at("kpis").as_array()) {
    const bool owned = k.at("owned").as_bool();
    CHECK(owned == (ids_zero.count(json_str(k, "id")) == 1));
    CHECK(k.at("shard").to_number<int>() == (owned ? 0 : 1));
  }
  std::map<std::string, int64_t> kpi_shard;
  for (const auto& k : cluster.at("kpis").as_array()) {
    kpi_shard[json_str(k, "id")] = k.at("shard").to_number<int64_t>();
  }
  REQUIRE(cluster.at("slos").as_array().size() == 4);
  for (const auto& slo : cluster.at("slos").as_array()) {
    const std::string id = json_str(slo, "id");
    CHECK(slo.at("shard").to_number<int64_t>() == kpi_shard.at("kpi_" + id.substr(4)));
  }
  const json::value cluster_one = require_api_data(one.get("/api/v1/cluster"));
  REQUIRE(cluster.at("rule_groups").as_array().size() == 6);
  REQUIRE(cluster_one.at("rule_groups").as_array().size() == 6);
  std::set<std::string> groups_zero;
  for (size_t i = 0; i < 6; ++i) {
    const auto& g0 = cluster.at("rule_groups").as_array()[i];
    const auto& g1 = cluster_one.at("rule_groups").as_array()[i];
    CHECK(json_str(g0, "id") == "groups:g" + std::to_string(i));
    CHECK(g0.at("owned").as_bool() != g1.at("owned").as_bool());
    if (g0.at("owned").as_bool()) groups_zero.insert(json_str(g0, "id").substr(7));
  }
  // Only the owned groups are evaluated (and listed by the Prometheus rules API).
  std::set<std::string> listed;
  const json::value rules = require_api_data(zero.get("/api/v1/rules"));
  for (const auto& g : rules.at("groups").as_array()) listed.insert(json_str(g, "name"));
  CHECK(listed == groups_zero);
  const std::string metrics = zero.metrics();
  CHECK(metric_value(metrics, "kpid_cluster_shard_info", {{"shard", "0/2"}}) == 1.0);
  CHECK(metric_value(metrics, "kpid_cluster_owned", {{"kind", "kpi"}}) ==
        static_cast<double>(ids_zero.size()));

  const CommandResult ctl = run_command(
      {kKpictlBinary, "--url", "http://127.0.0.1:" + std::to_string(one.http_port()), "cluster"});
  INFO(ctl.out << ctl.err);
  CHECK(ctl.exit_code == 0);
  CHECK(contains(ctl.out, "shard 1/2: owns " + std::to_string(ids_one.size()) + " KPIs"));
  CHECK(contains(ctl.out, *ids_one.begin()));
  CHECK_FALSE(contains(ctl.out, *ids_zero.begin() + " "));

  // A reload re-reads [cluster] shard; the flag's shard stays.
  one.write_config("[cluster]\nshard = \"0/2\"\n" + toml);
  zero.write_config(toml);
  for (Kpid* k : {&zero, &one}) CHECK(k->post("/-/reload", "").status == 200);
  CHECK(kpi_ids(one) == ids_zero);
  CHECK(kpi_ids(zero) == ids_zero);

  // A bad --shard stops kpid at the start, naming the flag.
  const CommandResult bad =
      run_command({kKpidBinary, "--check-config", "--config", one.config_path(), "--shard", "2/2"});
  CHECK(bad.exit_code == 1);
  CHECK(contains(bad.err, "--shard: shard \"2/2\": the index must be below the count"));
}

TEST_CASE("ha: two replicas send each event once after deduplication, also when one dies",
          "[cluster][ha][alertmanager]") {
  RecordingReceiver sink;
  RecordingReceiver am_sink;
  Alertmanager am(am_sink.url() + "/am");
  const std::string toml =
      "[alerting]\nexternal_url = \"https://kpid.example\"\nretry_initial = \"50ms\"\n"
      "retry_max = \"500ms\"\n"
      "[[receiver]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"" +
      sink.url() + "/hook\"\n[[receiver]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"" +
      am.url() + "\"\n" +
      kpi_toml("checkout_latency",
               "[[kpi.alert]]\ncondition = \"crit\"\nname = \"CheckoutSlow\"\n"
               "[kpi.okr]\nenabled = true\nafter = \"0s\"\nseverities = [\"critical\"]\n"
               "related = [\"checkout_errors\"]\n") +
      kpi_toml("checkout_errors");
  Kpid a({.config_toml = toml});
  Kpid b({.config_toml = toml});
  a.start();
  b.start();

  // The same samples to both, as a load balancer that mirrors writes would give them.
  const int64_t t0 = now_ms();
  const std::string breach = "checkout_latency value=250 " + std::to_string(t0);
  a.write_ok(breach, "ms");
  b.write_ok(breach, "ms");

  // Both fire and both send; the sink sees one firing and one OKR draft per key.
  {
    INFO(describe(sink));
    REQUIRE(eventually([&] { return raw_count(sink, "alert.firing") == 2; }, 10s, 50ms));
    REQUIRE(eventually([&] { return raw_count(sink, "okr.draft_opened") == 2; }, 10s, 50ms));
  }
  auto keys = by_key(sink);
  INFO(describe(sink));
  CHECK(count_event(keys, "alert.firing") == 1);
  CHECK(count_event(keys, "okr.draft_opened") == 1);
  const json::array alerts_a = get_alerts(a, "state=firing");
  const json::array alerts_b = get_alerts(b, "state=firing");
  REQUIRE(alerts_a.size() == 1);
  REQUIRE(alerts_b.size() == 1);
  CHECK(json_str(alerts_a[0], "episode") == json_str(alerts_b[0], "episode"));
  CHECK(alerts_a[0].at("labels") == alerts_b[0].at("labels"));
  // The OKR draft has the same id on both replicas.
  const json::value okrs_a = require_api_data(a.get("/api/v1/okrs"));
  const json::value okrs_b = require_api_data(b.get("/api/v1/okrs"));
  REQUIRE(okrs_a.as_array().size() == 1);
  REQUIRE(okrs_b.as_array().size() == 1);
  CHECK(json_str(okrs_a.as_array()[0], "id") == json_str(okrs_b.as_array()[0], "id"));

  // Alertmanager merges both replicas' alert (same labels) into one notification of the group.
  REQUIRE(eventually([&] { return am_notifications(am_sink, "firing") >= 1; }, 10s, 50ms));

  // One replica dies mid-incident; the survivor sees the recovery and resolves, once.
  a.kill9();
  b.write_ok("checkout_latency value=50 " + std::to_string(now_ms()), "ms");
  {
    INFO(describe(sink));
    REQUIRE(eventually([&] { return raw_count(sink, "alert.resolved") >= 1; }, 10s, 50ms));
  }
  REQUIRE(eventually([&] { return am_notifications(am_sink, "resolved") >= 1; }, 10s, 50ms));
  // A group_interval more: nothing else arrives from Alertmanager.
  std::this_thread::sleep_for(1500ms);
  INFO("alertmanager notifications:" << describe(am_sink));
  CHECK(am_notifications(am_sink, "firing") == 1);
  CHECK(am_notifications(am_sink, "resolved") == 1);
  keys = by_key(sink);
  CHECK(count_event(keys, "alert.firing") == 1);
  CHECK(count_event(keys, "alert.resolved") == 1);
  CHECK(count_event(keys, "okr.draft_opened") == 1);
}
