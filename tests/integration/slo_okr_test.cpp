// The budget opens the OKR, end to end: the real kpid with an events SLO whose [slo.okr] opens at
// once; counters pushed over HTTP spend the error budget, and the draft appears in
// GET /api/v1/okrs?slo=ID with its SLO key results.

#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

const std::string kConfig = R"toml(
[[slo]]
id = "checkout"
name = "Checkout availability"
owner = "payments"
objective = 99
window = "28d"
interval = "1s"
[slo.events]
good = "req_good"
total = "req_total"
[slo.okr]
on = ["exhausted"]
after = "0s"
)toml";

double number(const json::value& o, std::string_view key) {
  const json::value* v = o.as_object().if_contains(key);
  if (v == nullptr) return std::nan("");
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  return std::nan("");
}

}  // namespace

TEST_CASE("slo okr: an exhausted error budget opens a draft in /api/v1/okrs?slo=", "[okr][slo]") {
  Kpid k({.config_toml = kConfig});
  k.start();

  // The counters' starting point, over a few evaluations; no OKR while the budget is whole.
  write_value_now(k, "req_total", 0);
  write_value_now(k, "req_good", 0);
  std::this_thread::sleep_for(2500ms);
  write_value_now(k, "req_total", 1000);
  write_value_now(k, "req_good", 1000);
  std::this_thread::sleep_for(1500ms);
  {
    const json::value data = require_api_data(k.get("/api/v1/okrs?slo=checkout"));
    REQUIRE(data.is_array());
    CHECK(data.as_array().empty());
  }

  // 500 bad requests of 1,500: the 1% budget is spent many times over.
  write_value_now(k, "req_total", 1500);
  write_value_now(k, "req_good", 1000);
  json::array okrs;
  const bool opened = eventually(
      [&] {
        const json::value data = require_api_data(k.get("/api/v1/okrs?slo=checkout"));
        okrs = data.as_array();
        return !okrs.empty();
      },
      10s, 100ms);
  INFO("GET /api/v1/okrs?slo=checkout: " << json::serialize(okrs));
  REQUIRE(opened);
  REQUIRE(okrs.size() == 1);
  const json::value& okr = okrs[0];
  CHECK(json_str(okr, "slo") == "checkout");
  CHECK(json_str(okr, "kpi").empty());
  CHECK(json_str(okr, "state") == "draft");
  CHECK(json_str(okr, "owner") == "payments");
  CHECK(json_str(okr, "objective") == "Restore Checkout availability reliability");
  const json::array& krs = okr.at("key_results").as_array();
  REQUIRE(krs.size() == 2);
  CHECK(json_str(krs[0], "kind") == "slo");
  CHECK(json_str(krs[0], "slo") == "checkout");
  CHECK(json_str(krs[0], "measure") == "budget_remaining");
  CHECK(number(krs[0], "start") < 0);
  CHECK(number(krs[0], "target") == 25);
  CHECK(contains(json_str(krs[0], "description"), "Error budget remaining from"));
  CHECK(json_str(krs[1], "kind") == "slo");
  CHECK(json_str(krs[1], "measure") == "burn_rate_1h");
  CHECK(number(krs[1], "start") > 1);
  CHECK(number(krs[1], "target") == 1);

  // The figures agree with the SLO's own.
  const json::value slo = require_api_data(k.get("/api/v1/slos/checkout"));
  const double remaining = number(slo.at("budget"), "remaining");
  CHECK(remaining <= 0);
  // Other SLOs' and KPIs' OKRs are filtered out.
  const json::value none = require_api_data(k.get("/api/v1/okrs?slo=other"));
  CHECK(none.as_array().empty());
}
