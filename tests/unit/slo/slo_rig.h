#pragma once
// The SLO unit tests' rig: a store, a query engine, a KPI evaluator, an SLO tracker and an
// alerter (its outbox on a transport that drops everything) on a fake clock, with no background
// threads: tests write counters and step time by hand.

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "kpid/alert/alerter.h"
#include "kpid/alert/outbox.h"
#include "kpid/config/config.h"
#include "kpid/kpi/evaluator.h"
#include "kpid/query/engine.h"
#include "kpid/slo/definition.h"
#include "kpid/slo/tracker.h"
#include "kpid/store/rocksdb_store.h"
#include "support/fake_clock.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

namespace kpid::slo::test_rig {

inline constexpr TimestampMs kSecond = 1'000;
inline constexpr TimestampMs kMinute = 60 * kSecond;
inline constexpr TimestampMs kHour = 60 * kMinute;
inline constexpr TimestampMs kDay = 24 * kHour;
// A Monday 00:00 UTC, far from month ends.
inline constexpr TimestampMs kStart = 1'700'438'400'000;

class NoTransport final : public alert::Transport {
 public:
  Result<net::OutboundResponse> send(const alert::Receiver&,
                                     const alert::OutboundRequest&) override {
    return net::OutboundResponse{200, "{}"};
  }
};

struct CompiledConfig {
  config::Config config;
  std::vector<kpi::Definition> kpis;
  CompileResult slos;
};

// Parses and compiles `toml`; fails the test on any error.
inline CompiledConfig compile_toml(const std::string& toml) {
  CompiledConfig out;
  auto loaded = config::parse_config(toml, "kpid.toml", {});
  std::string errors;
  for (const auto& e : loaded.errors) errors += e.to_string() + "\n";
  INFO(errors);
  REQUIRE(loaded.ok());
  out.config = loaded.config;
  auto kpis = kpi::compile(out.config.kpis);
  REQUIRE(kpis.ok());
  out.kpis = kpis.kpis;
  out.slos = compile(out.config, out.kpis);
  for (const auto& e : out.slos.errors) errors += e.to_string() + "\n";
  INFO(errors);
  REQUIRE(out.slos.ok());
  return out;
}

struct Rig {
  explicit Rig(const std::string& toml, TimestampMs now = kStart) {
    clock.set_ms(now);
    compiled = compile_toml(toml);
    store = testing::open_test_store(dir.path() + "/data", clock);
    engine = std::make_unique<query::Engine>(*store, query::QueryOptions{});
    evaluator = std::make_unique<kpi::Evaluator>(*store, *store, *engine, &metrics, clock,
                                                 kpi::EvaluatorOptions{5'000, false});
    evaluator->set_kpis(compiled.kpis);
    outbox = std::make_unique<alert::Outbox>(*store, std::vector<alert::Receiver>{}, &metrics,
                                             clock, alert::OutboxOptions{}, &transport);
    REQUIRE(outbox->load().is_ok());
    alerter = std::make_unique<alert::Alerter>(
        *store, *outbox, &metrics, clock,
        alert::AlerterOptions{"http://kpid.test:9470", 1'000, 7 * kDay, false});
    REQUIRE(alerter->load().is_ok());
    alerter->set_rules(compiled.slos.rules);
    tracker =
        std::make_unique<Tracker>(*engine, *evaluator, &metrics, clock, TrackerOptions{false});
    bridge = std::make_unique<AlerterBridge>(*alerter);
    tracker->set_listener(bridge.get());
    tracker->set_slos(compiled.slos.slos);
  }

  // Stores a counter sample of metric `name` with `labels`.
  void write(const std::string& name, std::vector<Label> labels, TimestampMs t, double value) {
    labels.push_back({"__name__", name});
    auto id = store->resolve(Labels::from(labels).value().encode());
    REQUIRE(id.is_ok());
    const store::Sample sample{*id, t, value};
    REQUIRE(store->append(std::span(&sample, 1)).is_ok());
  }

  // Moves the clock to `t` and runs one round of the tracker and the alerter.
  void step(TimestampMs t) {
    clock.set_ms(t);
    evaluator->run_once();
    tracker->run_once();
    alerter->run_once();
  }

  SloView view(const std::string& id) const {
    auto v = tracker->get(id);
    REQUIRE(v.has_value());
    return *v;
  }

  std::vector<alert::AlertView> alerts(const std::string& slo) const {
    alert::AlertFilter f;
    f.slo = slo;
    return alerter->list(f);
  }

  testing::TempDir dir;
  testing::FakeClock clock;
  metrics::Metrics metrics;
  CompiledConfig compiled;
  std::unique_ptr<store::RocksDbStore> store;
  std::unique_ptr<query::Engine> engine;
  std::unique_ptr<kpi::Evaluator> evaluator;
  NoTransport transport;
  std::unique_ptr<alert::Outbox> outbox;
  std::unique_ptr<alert::Alerter> alerter;
  std::unique_ptr<Tracker> tracker;
  std::unique_ptr<AlerterBridge> bridge;
};

}  // namespace kpid::slo::test_rig
