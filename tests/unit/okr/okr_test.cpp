#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>

#include <boost/json.hpp>

#include "kpid/config/config.h"
#include "kpid/okr/okr.h"
#include "kpid/okr/planner.h"

using namespace kpid;
using namespace kpid::okr;

namespace {

KeyResult kr(KrDirection d, double start, double target, double current) {
  KeyResult k;
  k.id = "kr1";
  k.direction = d;
  k.start = start;
  k.target = target;
  k.current = current;
  return k;
}

}  // namespace

TEST_CASE("okr: progress is (current - start) / (target - start), clamped, in both directions") {
  // Reduce latency from 870 to 200.
  CHECK(progress(kr(KrDirection::kDecrease, 870, 200, 870)) == 0);
  CHECK(progress(kr(KrDirection::kDecrease, 870, 200, 535)) == Approx(0.5));
  CHECK(progress(kr(KrDirection::kDecrease, 870, 200, 200)) == 1);
  CHECK(progress(kr(KrDirection::kDecrease, 870, 200, 150)) == 1);  // beyond: clamped
  CHECK(progress(kr(KrDirection::kDecrease, 870, 200, 950)) == 0);  // worse: clamped
  // Increase conversion from 1.5 to 4.
  CHECK(progress(kr(KrDirection::kIncrease, 1.5, 4, 2.75)) == Approx(0.5));
  CHECK(progress(kr(KrDirection::kIncrease, 1.5, 4, 5)) == 1);
  CHECK(progress(kr(KrDirection::kIncrease, 1.5, 4, 1)) == 0);
  // Unknown current, and a start that already is the target.
  CHECK(progress(kr(KrDirection::kDecrease, 870, 200, std::nan(""))) == 0);
  CHECK(progress(kr(KrDirection::kDecrease, 200, 200, 190)) == 1);
  CHECK(progress(kr(KrDirection::kDecrease, 200, 200, 210)) == 0);
  CHECK(met(kr(KrDirection::kDecrease, 870, 200, 200)));
  CHECK_FALSE(met(kr(KrDirection::kDecrease, 870, 200, 201)));
}

TEST_CASE("okr: a guardrail scores 1 while held and 0 when broken") {
  CHECK(progress(kr(KrDirection::kStayBelow, 0.5, 1, 0.9)) == 1);
  CHECK(progress(kr(KrDirection::kStayBelow, 0.5, 1, 1)) == 1);
  CHECK(progress(kr(KrDirection::kStayBelow, 0.5, 1, 1.2)) == 0);
  CHECK(progress(kr(KrDirection::kStayAbove, 99.9, 99.5, 99.6)) == 1);
  CHECK(progress(kr(KrDirection::kStayAbove, 99.9, 99.5, 99.4)) == 0);
  CHECK_FALSE(met(kr(KrDirection::kStayAbove, 99.9, 99.5, 99.4)));
}

TEST_CASE("okr: the score is the mean of the key results, grades follow 0.7 / 0.4") {
  Okr o;
  CHECK(score(o) == 0);
  o.key_results = {kr(KrDirection::kDecrease, 870, 200, 535),  // 0.5
                   kr(KrDirection::kStayBelow, 0.5, 1, 0.5)};  // 1
  CHECK(score(o) == Approx(0.75));
  CHECK(grade(1.0) == "green");
  CHECK(grade(0.7) == "green");
  CHECK(grade(0.66) == "green");  // rounds to 0.7
  CHECK(grade(0.6) == "yellow");
  CHECK(grade(0.4) == "yellow");
  CHECK(grade(0.3) == "red");
  CHECK(grade(0) == "red");
}

TEST_CASE("okr: periods follow the UTC calendar") {
  const TimestampMs nov22 = 1'795'392'000'000;  // 2026-11-22T00:00:00Z
  auto q = period_of("quarter", nov22);
  REQUIRE(q.is_ok());
  CHECK(q->start == 1'790'812'800'000);                          // 2026-10-01
  CHECK(q->end == 1'798'761'600'000);                            // 2027-01-01
  CHECK(period_of("month", nov22)->start == 1'793'491'200'000);  // 2026-11-01
  CHECK(period_of("half", nov22)->start == 1'782'864'000'000);   // 2026-07-01
  CHECK(period_of("year", nov22)->end == 1'798'761'600'000);
  CHECK(period_of("week", nov22).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("okr: records survive JSON, and the API's key results are checked") {
  Okr o;
  o.id = "7";
  o.kpi = "lat";
  o.state = OkrState::kActive;
  o.objective = "Restore checkout latency";
  o.owner = "payments";
  o.period_start = 1'790'812'800'000;
  o.period_end = 1'798'761'600'000;
  o.alerts = {"3", "9"};
  o.created_at = 1'795'392'000'000;
  o.accepted_at = 1'795'392'060'000;
  KeyResult manual = kr(KrDirection::kIncrease, 0, 1, 0.5);
  manual.id = "kr3";
  manual.kind = KrKind::kManual;
  manual.description = "Ship the cache";
  manual.checkins.push_back({1'795'392'100'000, "bob", 0.5, "half way", 0.8});
  o.key_results = {kr(KrDirection::kDecrease, 870, 200, 535), manual};
  o.history.push_back({1'795'392'060'000, "alice", "accepted"});
  o.next_kr = 4;
  auto back = okr_from_json(boost::json::parse(boost::json::serialize(to_json(o))).as_object());
  REQUIRE(back.is_ok());
  CHECK(back->state == OkrState::kActive);
  CHECK(back->alerts == o.alerts);
  REQUIRE(back->key_results.size() == 2);
  CHECK(back->key_results[1].checkins.at(0).confidence == 0.8);
  CHECK(back->key_results[1].kind == KrKind::kManual);
  CHECK(back->history.at(0).author == "alice");
  CHECK(back->next_kr == 4);
  CHECK(score(*back) == Approx(0.5));

  auto ok = key_result_from_json(
      boost::json::parse(
          R"({"description":"Cut p99","kpi":"lat","target":300,"direction":"decrease","start":900})")
          .as_object());
  REQUIRE(ok.is_ok());
  CHECK(ok->kind == KrKind::kKpi);
  auto bad = key_result_from_json(
      boost::json::parse(R"({"description":"x","target":1,"direction":"sideways"})").as_object());
  CHECK(bad.status().message().find("direction: unknown direction \"sideways\"") == 0);
  auto no_target = key_result_from_json(boost::json::parse(R"({"description":"x"})").as_object());
  CHECK(no_target.status().message().find("target: is required") == 0);

  const std::string md = to_markdown(*back, "http://kpid:9470/api/v1/okrs/7");
  CHECK(md.find("## Objective: Restore checkout latency") == 0);
  CHECK(md.find("| 2 | Ship the cache | 0 | 1 | 0.5 | 50% |") != std::string::npos);
  CHECK(md.find("2026-10-01 to 2026-12-31") != std::string::npos);
}

TEST_CASE("okr: [kpi.okr] config and its errors") {
  auto load = [](const std::string& okr) {
    return config::parse_config(R"toml(
[[kpi]]
id = "lat"
direction = "lower_is_better"
[kpi.value]
selector = "lat"
over_time = "last"
[kpi.band]
warn = 500
crit = 800
)toml" + okr + R"toml(
[[kpi]]
id = "err"
direction = "lower_is_better"
[kpi.value]
selector = "err"
over_time = "last"
)toml",
                                "kpid.toml", {});
  };
  auto good = load("[kpi.okr]\nafter = \"30m\"\nrelated = [\"err\"]\nperiod = \"month\"\n");
  REQUIRE(good.ok());
  auto setup = compile_policies(good.config);
  REQUIRE(setup.ok());
  REQUIRE(setup.policies.size() == 1);
  CHECK(setup.policies[0].after == 30 * 60'000);
  CHECK(setup.policies[0].severities == std::vector<std::string>{"critical"});
  CHECK(setup.policies[0].period == "month");
  CHECK(setup.policies[0].graduate_after == 7 * 86'400'000LL);

  auto no_related = load("[kpi.okr]\n");
  REQUIRE(no_related.errors.size() == 1);
  CHECK(no_related.errors[0].key == "kpi.lat.okr.related");

  auto unknown =
      load("[kpi.okr]\nrelated = [\"nope\", \"lat\"]\nobjective = \"Fix {{kpi.nam}}\"\n");
  REQUIRE(unknown.ok());
  auto errors = compile_policies(unknown.config).errors;
  REQUIRE(errors.size() == 3);
  CHECK(errors[0].key == "kpi.lat.okr.related");
  CHECK(errors[0].message == "no KPI with id \"nope\"");
  CHECK(errors[1].message == "a KPI cannot be its own guardrail");
  CHECK(errors[2].key == "kpi.lat.okr.objective");
  CHECK(errors[2].line == 13);

  auto bad = load("[kpi.okr]\nrelated = [\"err\"]\nperiod = \"week\"\nseverities = [\"fatal\"]\n");
  REQUIRE(bad.errors.size() == 2);
  CHECK(bad.errors[0].key == "kpi.lat.okr.period");
  CHECK(bad.errors[1].key == "kpi.lat.okr.severities");
}

TEST_CASE("okr: the shipped config has an OKR policy that compiles") {
  auto loaded = config::load_config(KPID_SOURCE_DIR "/config/kpid.toml", {});
  REQUIRE(loaded.ok());
  CHECK(loaded.config.okr.max_open_per_owner == 5);
  auto setup = compile_policies(loaded.config);
  INFO((setup.errors.empty() ? "" : setup.errors[0].to_string()));
  REQUIRE(setup.ok());
  REQUIRE(setup.policies.size() == 1);
  CHECK(setup.policies[0].kpi == "checkout_latency_p95");
  CHECK(setup.policies[0].related == std::vector<std::string>{"checkout_error_rate"});
}
