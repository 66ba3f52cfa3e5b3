#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "kpid/core/stale_marker.h"
#include "kpid/query/engine.h"
#include "kpid/rules/evaluator.h"
#include "kpid/store/rocksdb_store.h"
#include "support/fake_clock.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace kpid;

namespace {

struct Sink final : rules::AlertSink {
  void rule_evaluated(const rules::AlertRuleEvaluation& e) override { last = e.alerts; }
  std::vector<rules::RuleAlert> last;
};

struct Rig {
  explicit Rig(const std::string& yaml, rules::EvaluatorOptions options = {}) {
    clock.set_ms(10'000'000);
    store = testing::open_test_store(dir.path() + "/data", clock);
    engine = std::make_unique<query::Engine>(*store, query::QueryOptions{});
    std::vector<config::ConfigError> errors;
    auto groups = rules::parse_rule_file(yaml, "r.yml", errors);
    REQUIRE(errors.empty());
    options.background = false;
    evaluator = std::make_unique<rules::RuleEvaluator>(
        *store, nullptr,
        [this](const query::Expr& e, std::string_view, TimestampMs t) {
          return engine->instant(e, t);
        },
        &sink, nullptr, clock, options);
    evaluator->set_groups(std::move(groups));
  }

  void write(const std::string& key_text, TimestampMs t, double v) {
    auto labels = Labels::from([&] {
      std::vector<Label> l;
      size_t i = 0;
      while (i < key_text.size()) {
        size_t eq = key_text.find('=', i);
        size_t comma = key_text.find(',', eq);
        if (comma == std::string::npos) comma = key_text.size();
        l.push_back({key_text.substr(i, eq - i), key_text.substr(eq + 1, comma - eq - 1)});
        i = comma + 1;
      }
      return l;
    }());
    auto id = store->resolve(labels.value().encode());
    REQUIRE(id.is_ok());
    std::vector<store::Sample> s{{*id, t, v}};
    REQUIRE(store->append(s).is_ok());
  }

  // The query's value per series ("{...}" -> value) at t.
  std::map<std::string, double> query(const std::string& q, TimestampMs t) {
    auto r = engine->instant(q, t);
    REQUIRE(r.is_ok());
    std::map<std::string, double> out;
    for (const auto& s : r->series) out[s.labels->to_string()] = s.points.back().value;
    return out;
  }

  void run(TimestampMs t) { REQUIRE(evaluator->run_group("r:g", t).is_ok()); }

  testing::TempDir dir;
  testing::FakeClock clock;
  std::unique_ptr<store::RocksDbStore> store;
  std::unique_ptr<query::Engine> engine;
  Sink sink;
  std::unique_ptr<rules::RuleEvaluator> evaluator;
};

}  // namespace

TEST_CASE("recording rules write their series, later rules see earlier ones", "[rules]") {
  Rig rig(R"(groups:
  - name: g
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {team: a}
      - record: job:up:twice
        expr: job:up:sum * 2
)");
  rig.write("__name__=up,job=a,instance=1", 10'000, 1);
  rig.write("__name__=up,job=a,instance=2", 10'000, 2);
  rig.write("__name__=up,job=b,instance=1", 10'000, 5);
  rig.run(20'000);
  CHECK(rig.query("job:up:sum", 20'000) ==
        std::map<std::string, double>{{"job:up:sum{job=\"a\", team=\"a\"}", 3},
                                      {"job:up:sum{job=\"b\", team=\"a\"}", 5}});
  CHECK(rig.query("job:up:twice", 20'000) ==
        std::map<std::string, double>{{"job:up:twice{job=\"a\", team=\"a\"}", 6},
                                      {"job:up:twice{job=\"b\", team=\"a\"}", 10}});
  auto status = rig.evaluator->status();
  REQUIRE(status.size() == 1);
  CHECK(status[0].rules[0].health == "ok");
  CHECK(status[0].last_evaluation == 20'000);

  // Job b is gone (its samples leave the lookback window): its recorded series ends stale.
  rig.write("__name__=up,job=a,instance=1", 400'000, 1);
  rig.run(400'000);
  CHECK(rig.query("job:up:sum", 400'000).size() == 1);
  std::vector<store::Point> points;
  for (const auto& ref : rig.store->select(std::vector<LabelMatcher>{
           LabelMatcher::create(MatchType::kEqual, "job", "b").value(),
           LabelMatcher::create(MatchType::kEqual, "__name__", "job:up:sum").value()})) {
    REQUIRE(rig.store->read(ref.id, 0, 500'000, points).is_ok());
  }
  REQUIRE(points.size() == 2);
  CHECK(is_stale_marker(points[1].value));
}

TEST_CASE("a group's limit fails a rule with more series, writing nothing", "[rules]") {
  Rig rig(R"(groups:
  - name: g
    limit: 1
    rules:
      - record: many
        expr: up
)");
  rig.write("__name__=up,job=a", 10'000, 1);
  rig.write("__name__=up,job=b", 10'000, 1);
  rig.run(20'000);
  CHECK(rig.query("many", 20'000).empty());
  auto status = rig.evaluator->status();
  CHECK(status[0].rules[0].health == "err");
  CHECK(status[0].rules[0].last_error == "exceeded limit of 1 with 2 series");
}

TEST_CASE("alerting rules go pending, fire after for, keep firing, resolve", "[rules]") {
  Rig rig(R"(groups:
  - name: g
    rules:
      - alert: High
        expr: load > 1
        for: 2s
        keep_firing_for: 2s
        labels:
          severity: page
          host: "{{ $labels.host }}-x"
        annotations:
          summary: "{{ $labels.host }} at {{ $value | humanize }}"
)");
  for (TimestampMs t = 10'000; t <= 12'000; t += 1000) rig.write("__name__=load,host=h", t, 1500);
  rig.run(10'000);
  REQUIRE(rig.sink.last.size() == 1);
  CHECK(rig.sink.last[0].state == rules::AlertState::kPending);
  CHECK(rig.sink.last[0].labels == std::map<std::string, std::string>{{"alertname", "High"},
                                                                      {"host", "h-x"},
                                                                      {"severity", "page"}});
  CHECK(rig.sink.last[0].annotations.at("summary") == "h at 1.5k");
  // Before the restore (the first evaluation), ALERTS is not written, as in Prometheus.
  CHECK(rig.query("ALERTS", 10'000).empty());
  rig.run(11'000);
  CHECK(rig.sink.last[0].state == rules::AlertState::kPending);
  CHECK(rig.query("ALERTS", 11'000) ==
        std::map<std::string, double>{
            {"ALERTS{alertname=\"High\", alertstate=\"pending\", host=\"h-x\", severity=\"page\"}",
             1}});
  CHECK(rig.query("ALERTS_FOR_STATE", 11'000).begin()->second == 10);
  rig.run(12'000);
  CHECK(rig.sink.last[0].state == rules::AlertState::kFiring);
  CHECK(rig.sink.last[0].fired_at == 12'000);
  CHECK(rig.query("ALERTS", 12'000).begin()->first.find("firing") != std::string::npos);
  // The condition stops at 13s; it keeps firing until 15s.
  rig.write("__name__=load,host=h", 13'000, 0);
  rig.run(13'000);
  CHECK(rig.sink.last[0].state == rules::AlertState::kFiring);
  rig.run(14'000);
  CHECK(rig.sink.last[0].state == rules::AlertState::kFiring);
  rig.run(15'000);
  CHECK(rig.sink.last[0].state == rules::AlertState::kInactive);
  CHECK(rig.sink.last[0].resolved_at == 15'000);
  CHECK(rig.query("ALERTS", 15'000).empty());
}

TEST_CASE("a restart restores for progress from ALERTS_FOR_STATE", "[rules]") {
  const std::string yaml = R"(groups:
  - name: g
    rules:
      - alert: Slow
        expr: load > 1
        for: 20m
)";
  rules::EvaluatorOptions options;
  Rig rig(yaml, options);
  const TimestampMs start = 1'000'000;
  for (TimestampMs t = start; t <= start + 600'000; t += 60'000) {
    rig.write("__name__=load,host=h", t, 2);
    rig.run(t);
  }
  // Pending for 10m of its 20m; kpid is down for 2m, then a new evaluator starts.
  const TimestampMs back = start + 720'000;
  rig.write("__name__=load,host=h", back, 2);
  std::vector<config::ConfigError> errors;
  rules::RuleEvaluator fresh(
      *rig.store, nullptr,
      [&](const query::Expr& e, std::string_view, TimestampMs t) {
        return rig.engine->instant(e, t);
      },
      &rig.sink, nullptr, rig.clock,
      [] {
        rules::EvaluatorOptions o;
        o.background = false;
        return o;
      }());
  fresh.set_groups(rules::parse_rule_file(yaml, "r.yml", errors));
  REQUIRE(fresh.run_group("r:g", back).is_ok());
  REQUIRE(rig.sink.last.size() == 1);
  // Active since start, shifted by the 2m down (the last ALERTS_FOR_STATE was at start + 10m).
  CHECK(rig.sink.last[0].active_at == start + 120'000);
  CHECK(rig.sink.last[0].state == rules::AlertState::kPending);
  rig.write("__name__=load,host=h", start + 1'260'000, 2);
  REQUIRE(fresh.run_group("r:g", start + 1'260'000).is_ok());
  CHECK(rig.sink.last[0].state == rules::AlertState::kPending);
  rig.write("__name__=load,host=h", start + 1'320'000, 2);
  REQUIRE(fresh.run_group("r:g", start + 1'320'000).is_ok());
  CHECK(rig.sink.last[0].state == rules::AlertState::kFiring);
}
