#pragma once
// The alerting unit tests' rig: a state store (that fails writes on demand), an outbox with a
// fake transport and an alerter on a fake clock, driven by hand, and the configs they use.

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "kpid/alert/alerter.h"
#include "kpid/alert/outbox.h"
#include "kpid/alert/rules.h"
#include "kpid/config/config.h"
#include "kpid/kpi/definition.h"
#include "kpid/store/rocksdb_store.h"
#include "support/failing_state_store.h"
#include "support/fake_clock.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

namespace kpid::alert::test_rig {

using kpi::Health;

inline constexpr TimestampMs kStart = 1'700'000'000'000;
inline constexpr TimestampMs kSecond = 1'000;
inline constexpr TimestampMs kMinute = 60 * kSecond;

inline const std::string kBase = R"toml(
[alerting]
repeat_interval = "10m"
retry_initial = "1s"
retry_max = "8s"
notification_max_age = "1h"

[[receiver]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:1/hook"
secret = "s3cret"

[[receiver]]
name = "pd"
type = "pagerduty"
url = "http://127.0.0.1:1/v2/enqueue"
routing_key = "R0UTE"
severities = ["critical"]

[[receiver]]
name = "am"
type = "alertmanager"
url = "http://127.0.0.1:1/"
resend_interval = "1m"

[[kpi]]
id = "latency"
name = "Checkout latency"
owner = "payments"
unit = "ms"
direction = "lower_is_better"
[kpi.value]
selector = "latency"
over_time = "last"
[kpi.band]
warn = 100
crit = 200
)toml";

inline const std::string kCritRule = R"toml(
[[kpi.alert]]
condition = "crit"
for = "1m"
clear_for = "30s"
hysteresis = 20
runbook_url = "https://runbooks/latency"
labels = { team = "{{owner}}-oncall" }
annotations = { dashboard = "https://dash/{{kpi}}" }
)toml";

// Fires and resolves at once; severity info goes to the webhook and Alertmanager only.
inline const std::string kWarnRule = R"toml(
[[kpi.alert]]
condition = "warn"
severity = "info"
)toml";

inline const std::string kConfig = kBase + kCritRule;
inline const std::string kWarnConfig = kBase + kWarnRule;
inline const std::string kBothConfig = kBase + kCritRule + kWarnRule;

// The value of a counter or gauge in the text exposition, or -1.
inline double metric(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

struct Sent {
  std::string receiver;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  boost::json::value json() const { return boost::json::parse(body); }
  std::string header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return {};
  }
  // The webhook's "event", or PagerDuty's "event_action", or "am" for Alertmanager.
  std::string event() const {
    auto j = json();
    if (j.is_array()) return "am";
    if (const auto* e = j.as_object().if_contains("event")) return std::string(e->as_string());
    return std::string(j.as_object().at("event_action").as_string());
  }
};

class FakeTransport final : public Transport {
 public:
  Result<net::OutboundResponse> send(const Receiver& receiver,
                                     const OutboundRequest& request) override {
    if (down) return Status::unavailable("connect failed: Connection refused");
    sent.push_back({receiver.name, request.body, request.headers});
    return net::OutboundResponse{status, "{}"};
  }
  std::vector<Sent> to(const std::string& receiver) const {
    std::vector<Sent> out;
    for (const auto& s : sent) {
      if (s.receiver == receiver) out.push_back(s);
    }
    return out;
  }
  bool down = false;
  int status = 200;
  std::vector<Sent> sent;
};

// A state store, an outbox with a fake transport and an alerter on a fake clock, driven by
// hand: evaluations go in with evaluate(), rounds run with step().
struct Rig {
  explicit Rig(const std::string& toml = kConfig) {
    clock.set_ms(kStart);
    auto loaded = config::parse_config(toml, "kpid.toml", {});
    std::string errors;
    for (const auto& e : loaded.errors) errors += e.to_string() + "\n";
    INFO(errors);
    REQUIRE(loaded.ok());
    cfg = loaded.config;
    auto compiled = kpi::compile(cfg.kpis);
    REQUIRE(compiled.ok());
    for (auto& d : compiled.kpis) definitions.push_back(std::make_shared<kpi::Definition>(d));
    auto setup = compile_alerting(cfg);
    for (const auto& e : setup.errors) errors += e.to_string() + "\n";
    INFO(errors);
    REQUIRE(setup.ok());
    rules = setup.rules;
    receivers = setup.receivers;
    store = testing::open_test_store(dir.path() + "/data", clock);
    state = std::make_unique<testing::FailingStateStore>(*store);
    start();
  }

  void start() {
    outbox =
        std::make_unique<Outbox>(*state, receivers, &metrics, clock,
                                 OutboxOptions{cfg.alerting.notification_max_age,
                                               cfg.alerting.retry_initial, cfg.alerting.retry_max},
                                 &transport);
    REQUIRE(outbox->load().is_ok());
    alerter = std::make_unique<Alerter>(
        *state, *outbox, &metrics, clock,
        AlerterOptions{"http://kpid.test:9470", 1'000, cfg.alerting.resolved_retention, false});
    REQUIRE(alerter->load().is_ok());
    alerter->set_rules(rules);
  }

  // A restart: new outbox and alerter over the same store.
  void restart() {
    alerter.reset();
    outbox.reset();
    start();
  }

  // `first_sample`: when the KPI first had data (0: never).
  void evaluate(double value, kpi::Health status, TimestampMs first_sample = kStart) {
    kpi::KpiView view;
    view.definition = definitions.at(0);
    view.value = value;
    view.status = status;
    view.first_sample = first_sample;
    view.evaluated_at = clock.now_ms();
    alerter->evaluated(view);
    alerter->run_once();
    outbox->deliver_due();
  }
  void at(TimestampMs t) { clock.set_ms(t); }
  void tick() {
    alerter->run_once();
    outbox->deliver_due();
  }

  std::vector<AlertView> alerts(const std::string& state = "") const {
    AlertFilter f;
    f.state = state;
    return alerter->list(f);
  }

  testing::TempDir dir;
  testing::FakeClock clock;
  metrics::Metrics metrics;
  config::Config cfg;
  std::vector<std::shared_ptr<const kpi::Definition>> definitions;
  std::vector<Rule> rules;
  std::vector<Receiver> receivers;
  std::unique_ptr<store::RocksDbStore> store;
  std::unique_ptr<testing::FailingStateStore> state;  // over `store`: fails writes on demand
  FakeTransport transport;
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<Alerter> alerter;
};

}  // namespace kpid::alert::test_rig
