// Prometheus HTTP API subset: instant/range queries, matchers, series/labels endpoints, POST
// forms, lookback, errors.

#include <cmath>
#include <set>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

void write_fixture(const Kpid& k, int64_t t) {
  const std::string ts = " " + std::to_string(t) + "\n";
  k.write_ok("qa,host=a,dc=x value=1" + ts +       //
                 "qa,host=b,dc=x value=2" + ts +   //
                 "qa,host=c,dc=y value=3" + ts +   //
                 "qa,host=ab,dc=y value=4" + ts +  //
                 "qb,host=a value=5" + ts,
             "ms");
}

// "name/host" for each result, as a set.
std::set<std::string> ids(const std::vector<InstantSample>& v) {
  std::set<std::string> out;
  for (const auto& s : v) {
    const auto n = s.metric.find("__name__");
    const auto h = s.metric.find("host");
    out.insert((n == s.metric.end() ? "?" : n->second) + "/" +
               (h == s.metric.end() ? "?" : h->second));
  }
  return out;
}

json::value success_data(const HttpResponse& r) {
  INFO("response " << r.status << ": " << tail(r.body, 2000));
  REQUIRE(r.status == 200);
  json::value v;
  REQUIRE_NOTHROW(v = r.json());
  REQUIRE(v.at("status") == "success");
  return v.at("data");
}

}  // namespace

TEST_CASE("query: the four matcher types and bare matchers select the right series", "[query]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  write_fixture(k, t);

  const std::vector<std::pair<std::string, std::set<std::string>>> cases = {
      {"qa", {"qa/a", "qa/b", "qa/c", "qa/ab"}},
      {R"(qa{host="a"})", {"qa/a"}},
      {R"(qa{host!="a"})", {"qa/b", "qa/c", "qa/ab"}},
      {R"(qa{host=~"a"})", {"qa/a"}},  // regexes are fully anchored
      {R"(qa{host=~"a.*"})", {"qa/a", "qa/ab"}},
      {R"(qa{host=~"a|b"})", {"qa/a", "qa/b"}},
      {R"(qa{host!~"a.*"})", {"qa/b", "qa/c"}},
      {R"(qa{host!~"b"})", {"qa/a", "qa/c", "qa/ab"}},
      {R"(qa{dc="x", host!="a"})", {"qa/b"}},
      {R"(qa{dc="y",host=~".+b"})", {"qa/ab"}},
      {R"(qa{host="zzz"})", {}},
      {R"(qa{nolabel=""})", {"qa/a", "qa/b", "qa/c", "qa/ab"}},
      {R"({host="a"})", {"qa/a", "qb/a"}},
      {R"({__name__="qb"})", {"qb/a"}},
      {R"({__name__=~"q.*", host=~"a"})", {"qa/a", "qb/a"}},
      {R"({__name__!="qa", host=~".+"})", {"qb/a"}},
  };
  for (const auto& [sel, expected] : cases) {
    INFO("selector " << sel);
    const auto v = k.query_at_ms(sel, t);
    CHECK(ids(v) == expected);
    CHECK(v.size() == expected.size());
  }
  // Labels come back complete, and values as strings.
  const auto v = k.query_at_ms(R"(qa{host="c"})", t);
  REQUIRE(v.size() == 1);
  CHECK(v[0].metric == LabelMap{{"__name__", "qa"}, {"dc", "y"}, {"host", "c"}});
  CHECK(v[0].value == "3");
}

TEST_CASE("query: instant query time formats and the 5m lookback", "[query]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  write_fixture(k, t);

  SECTION("decimal seconds; value timestamp is the evaluation time") {
    const auto v = k.query(R"(qb)", fmt_seconds(t) + ".5");
    REQUIRE(v.size() == 1);
    CHECK(v[0].t == Approx(static_cast<double>(t) / 1000.0 + 0.5));
    CHECK(num(v[0].value) == 5);
  }
  SECTION("no time means now") {
    k.write_ok("nowq value=8\n");
    const auto r = k.get("/api/v1/query?" + form({{"query", "nowq"}}));
    INFO(r.body);
    REQUIRE(r.status == 200);
    const auto v = r.json();
    REQUIRE(v.at("data").at("result").as_array().size() == 1);
    const auto& pair = v.at("data").at("result").as_array()[0].at("value").as_array();
    CHECK(pair[1] == "8");
    const double ts = pair[0].is_double() ? pair[0].as_double()
                                          : static_cast<double>(pair[0].to_number<int64_t>());
    CHECK(std::abs(ts * 1000 - static_cast<double>(now_ms())) < 10'000);
  }
  SECTION("RFC 3339") {
    const auto v = k.query("qb", fmt_rfc3339(t + 1000));
    REQUIRE(v.size() == 1);
    CHECK(std::llround(v[0].t * 1000) == t + 1000);
  }
  SECTION("inside and outside the lookback window") {
    require_value_at(k, "qb", t + 299'000, 5);
    require_empty_at(k, "qb", t + 301'000);
    require_empty_at(k, "qb", t - 1'000);
  }
}

TEST_CASE("query: /series, /labels and /label/NAME/values", "[query]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  write_fixture(k, t);

  SECTION("series with one match[] and a time range") {
    const auto data =
        success_data(k.get("/api/v1/series?" + form({{"match[]", R"(qa{dc="x"})"},
                                                     {"start", fmt_seconds(t - 60'000)},
                                                     {"end", fmt_seconds(t + 60'000)}})));
    REQUIRE(data.is_array());
    std::set<LabelMap> got;
    for (const auto& e : data.as_array()) {
      LabelMap m;
      for (const auto& [kk, vv] : e.as_object()) m[std::string(kk)] = std::string(vv.as_string());
      got.insert(m);
    }
    CHECK(got == std::set<LabelMap>{{{"__name__", "qa"}, {"dc", "x"}, {"host", "a"}},
                                    {{"__name__", "qa"}, {"dc", "x"}, {"host", "b"}}});
  }
  SECTION("series with several match[] is the union, without duplicates") {
    const auto data = success_data(k.get(
        "/api/v1/series?" +
        form({{"match[]", "qb"}, {"match[]", R"(qa{host="c"})"}, {"match[]", R"({host="a"})"}})));
    REQUIRE(data.is_array());
    CHECK(data.as_array().size() == 3);  // qb{a}, qa{c}, qa{a}
  }
  SECTION("series outside the time range is empty") {
    const auto data =
        success_data(k.get("/api/v1/series?" + form({{"match[]", "qa"},
                                                     {"start", fmt_seconds(t - 7'200'000)},
                                                     {"end", fmt_seconds(t - 3'600'000)}})));
    CHECK(data.as_array().empty());
  }
  SECTION("labels are sorted names") {
    const auto data = success_data(k.get("/api/v1/labels"));
    CHECK(data == json::array{"__name__", "dc", "host"});
  }
  SECTION("label values are sorted") {
    CHECK(success_data(k.get("/api/v1/label/host/values")) == json::array{"a", "ab", "b", "c"});
    CHECK(success_data(k.get("/api/v1/label/__name__/values")) == json::array{"qa", "qb"});
    CHECK(success_data(k.get("/api/v1/label/dc/values")) == json::array{"x", "y"});
    CHECK(success_data(k.get("/api/v1/label/nosuch/values")) == json::array{});
  }
}

TEST_CASE("query: POST with a form body works like GET", "[query]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  write_fixture(k, t);
  const Headers ct{{"Content-Type", "application/x-www-form-urlencoded"}};

  SECTION("query") {
    const auto data = success_data(k.post(
        "/api/v1/query", form({{"query", R"(qa{host=~"a|c"})"}, {"time", fmt_seconds(t)}}), ct));
    CHECK(data.at("resultType") == "vector");
    CHECK(data.at("result").as_array().size() == 2);
  }
  SECTION("query_range") {
    const auto data = success_data(k.post("/api/v1/query_range",
                                          form({{"query", "qb"},
                                                {"start", fmt_seconds(t)},
                                                {"end", fmt_seconds(t + 20'000)},
                                                {"step", "10s"}}),
                                          ct));
    CHECK(data.at("resultType") == "matrix");
    REQUIRE(data.at("result").as_array().size() == 1);
    const auto& values = data.at("result").as_array()[0].at("values").as_array();
    REQUIRE(values.size() == 3);
    CHECK(values[2].as_array()[1] == "5");
  }
  SECTION("series") {
    const auto data = success_data(
        k.post("/api/v1/series", form({{"match[]", R"(qa{dc="y"})"}, {"match[]", "qb"}}), ct));
    CHECK(data.as_array().size() == 3);
  }
}

TEST_CASE("query: errors are 400 bad_data", "[query][errors]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  write_fixture(k, t);
  const std::string now = fmt_seconds(t);

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bad selector (empty value)",
       "/api/v1/query?" + form({{"query", "qa{host=}"}, {"time", now}})},
      {"bad selector (unterminated)",
       "/api/v1/query?" + form({{"query", R"(qa{host="a")"}, {"time", now}})},
      {"bad selector (bad regex)",
       "/api/v1/query?" + form({{"query", R"(qa{host=~"("})"}, {"time", now}})},
      {"bad selector (garbage)", "/api/v1/query?" + form({{"query", "{}}"}, {"time", now}})},
      {"missing query", "/api/v1/query?" + form({{"time", now}})},
      {"bad time", "/api/v1/query?" + form({{"query", "qa"}, {"time", "yesterday"}})},
      {"range: missing query",
       "/api/v1/query_range?" + form({{"start", now}, {"end", now}, {"step", "10"}})},
      {"range: bad step",
       "/api/v1/query_range?" +
           form({{"query", "qa"}, {"start", now}, {"end", now}, {"step", "abc"}})},
      {"range: zero step",
       "/api/v1/query_range?" +
           form({{"query", "qa"}, {"start", now}, {"end", now}, {"step", "0"}})},
      {"range: end before start", "/api/v1/query_range?" + form({{"query", "qa"},
                                                                 {"start", now},
                                                                 {"end", fmt_seconds(t - 60'000)},
                                                                 {"step", "10"}})},
      {"range: bad start",
       "/api/v1/query_range?" +
           form({{"query", "qa"}, {"start", "x"}, {"end", now}, {"step", "10"}})},
      {"range: too many points",
       "/api/v1/query_range?" + form({{"query", "qa"},
                                      {"start", fmt_seconds(t - 86'400'000)},
                                      {"end", now},
                                      {"step", "1"}})},
      {"selector matching everything",
       "/api/v1/query?" + form({{"query", R"({host=~".*"})"}, {"time", now}})},
      {"series: no match[]", "/api/v1/series"},
      {"series: bad selector", "/api/v1/series?" + form({{"match[]", "qa{"}})},
  };
  for (const auto& [what, target] : cases) {
    INFO(what << ": GET " << target);
    require_bad_data(k.get(target));
  }
  // The server is fine afterwards.
  require_value_at(k, "qb", t, 5);
}

TEST_CASE("query: configured lookback_delta and max_points_per_series", "[query][config]") {
  Kpid k({.config_toml = "[query]\nlookback_delta = \"1m\"\nmax_points_per_series = 100\n"});
  k.start();
  const int64_t t = base_ms();
  write_fixture(k, t);
  require_value_at(k, "qb", t + 59'000, 5);
  require_empty_at(k, "qb", t + 61'000);

  // 100 points is allowed, 101 is not. Steps at t+1s, t+3s, ... avoid the lookback boundary.
  const auto r = k.query_range("qb", fmt_seconds(t + 1000), fmt_seconds(t + 1000 + 99 * 2000), "2");
  REQUIRE(r.size() == 1);
  CHECK(r[0].values.size() == 30);  // t+1s .. t+59s lie within the 1m lookback
  require_bad_data(k.get("/api/v1/query_range?" + form({{"query", "qb"},
                                                        {"start", fmt_seconds(t + 1000)},
                                                        {"end", fmt_seconds(t + 1000 + 100 * 2000)},
                                                        {"step", "2"}})));
}
