// PromQL over HTTP against the real binary: functions, aggregations, arithmetic and vector
// matching in /api/v1/query and /api/v1/query_range, value types, errors, and promtool.

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <string>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

constexpr int64_t kMinute = 60'000;

// Two counters (instance a: +1/s, b: +2/s) and a gauge, every 15 s from t-1h to t+30m.
void write_counters(const Kpid& k, int64_t t) {
  std::string body;
  for (int64_t ts = t - 60 * kMinute + 15'000; ts <= t + 30 * kMinute; ts += 15'000) {
    const int64_t s = (ts - (t - 60 * kMinute)) / 1000;
    const std::string at = " " + std::to_string(ts) + "\n";
    body += "req_total,job=api,instance=a value=" + std::to_string(s) + at;
    body += "req_total,job=api,instance=b value=" + std::to_string(2 * s) + at;
    body += "temp,room=x value=" + std::to_string(20 + (s / 15) % 5) + at;
  }
  k.write_ok(body, "ms");
}

// The value of a query that yields exactly one element.
double value_at(const Kpid& k, const std::string& q, int64_t ms) {
  const auto v = k.query_at_ms(q, ms);
  INFO("query " << q << " at " << fmt_seconds(ms));
  REQUIRE(v.size() == 1);
  return num(v[0].value);
}

// instance -> value of an instant vector.
std::map<std::string, double> by_instance(const std::vector<InstantSample>& v) {
  std::map<std::string, double> out;
  for (const auto& s : v) {
    const auto it = s.metric.find("instance");
    out[it == s.metric.end() ? "" : it->second] = num(s.value);
  }
  return out;
}

json::value error_body(const HttpResponse& r, int status, std::string_view type) {
  INFO("response " << r.status << ": " << tail(r.body, 2000));
  CHECK(r.status == status);
  json::value v;
  REQUIRE_NOTHROW(v = r.json());
  CHECK(v.at("status") == "error");
  CHECK(v.at("errorType") == json::string(type));
  return v;
}

CommandResult promtool(const std::vector<std::string>& args) {
  std::vector<std::string> argv{kPromtoolBinary};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

}  // namespace

TEST_CASE("promql: Grafana's 1+1 test query is a scalar", "[promql]") {
  Kpid k;
  k.start();
  const auto r = k.get("/api/v1/query?" + form({{"query", "1+1"}, {"time", "1700000000"}}));
  CHECK(r.status == 200);
  CHECK(r.body ==
        R"({"status":"success","data":{"resultType":"scalar","result":[1700000000,"2"]}})");
  // Without a time: now.
  const auto now = k.get("/api/v1/query?query=1%2B1");
  INFO(now.body);
  REQUIRE(now.status == 200);
  const auto v = now.json();
  CHECK(v.at("data").at("resultType") == "scalar");
  CHECK(v.at("data").at("result").as_array()[1] == "2");
  // Other scalars and a string.
  CHECK(k.get("/api/v1/query?" + form({{"query", "2 ^ 3 ^ 2 - 0.5"}, {"time", "1700000000.5"}}))
            .body ==
        R"({"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"511.5"]}})");
  CHECK(k.get("/api/v1/query?" + form({{"query", "-1/0"}, {"time", "10"}})).body ==
        R"({"status":"success","data":{"resultType":"scalar","result":[10,"-Inf"]}})");
  CHECK(k.get("/api/v1/query?" + form({{"query", "\"hi\""}, {"time", "10"}})).body ==
        R"({"status":"success","data":{"resultType":"string","result":[10,"hi"]}})");
}

TEST_CASE("promql: functions and aggregations in instant queries", "[promql]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  write_counters(k, t);

  // Per-second rates, extrapolated to the window: 1 and 2 (up to float rounding).
  const auto rates = k.query_at_ms("rate(req_total[5m])", t + 10 * kMinute);
  const auto by = by_instance(rates);
  REQUIRE(by.size() == 2);
  CHECK(by.at("a") == Approx(1));
  CHECK(by.at("b") == Approx(2));
  for (const auto& s : rates) CHECK(s.metric.count("__name__") == 0);
  CHECK(value_at(k, "sum(rate(req_total[5m]))", t + 10 * kMinute) == Approx(3));
  CHECK(value_at(k, "sum by (job) (rate(req_total[5m]))", t + 10 * kMinute + 7'000) == Approx(3));
  CHECK(value_at(k, "avg(rate(req_total[5m]))", t + 10 * kMinute) == Approx(1.5));
  require_value_at(k, "count(req_total)", t, 2);
  require_value_at(k, "max(req_total) - min(req_total)", t, 3600);
  // An hour of counter (from 1h rollups): increases of 3600 and 7200.
  const auto hour = by_instance(k.query_at_ms("increase(req_total[1h])", t));
  REQUIRE(hour.size() == 2);
  CHECK(hour.at("a") == Approx(3600));
  CHECK(hour.at("b") == Approx(7200));
  CHECK(value_at(k, "sum(increase(req_total[1h])) / 3600", t) == Approx(3));
  // The gauge cycles 20..24 every 15 s: over 5 minutes (20 samples) each value 4 times.
  require_value_at(k, "avg_over_time(temp[5m])", t, 22);
  require_value_at(k, "min_over_time(temp[5m])", t, 20);
  require_value_at(k, "max_over_time(temp[5m])", t, 24);
  require_value_at(k, "count_over_time(temp[5m])", t, 20);
  require_value_at(k, "sum_over_time(temp[5m])", t, 440);
  require_value_at(k, "quantile_over_time(0.5, temp[5m])", t, 22);
  require_value_at(k, "stdvar_over_time(temp[5m])", t, 2);
  CHECK(value_at(k, "stddev_over_time(temp[5m] offset 1m)", t + kMinute) == Approx(std::sqrt(2.0)));
  const auto last = k.query_at_ms("last_over_time(temp[5m])", t);
  REQUIRE(last.size() == 1);
  CHECK(last[0].metric.at("__name__") == "temp");  // last_over_time keeps the name
}

TEST_CASE("promql: vector matching, comparisons and errors over HTTP", "[promql]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  write_counters(k, t);

  CHECK(by_instance(k.query_at_ms(
            R"(req_total{instance="b"} / ignoring(instance) req_total{instance="a"})", t)) ==
        std::map<std::string, double>{{"", 2}});
  CHECK(by_instance(k.query_at_ms("req_total / req_total", t)) ==
        std::map<std::string, double>{{"a", 1}, {"b", 1}});
  CHECK(by_instance(k.query_at_ms("req_total > 5000", t)) ==
        std::map<std::string, double>{{"b", 7200}});
  CHECK(by_instance(k.query_at_ms("req_total > bool 5000", t)) ==
        std::map<std::string, double>{{"a", 0}, {"b", 1}});

  // Parse and type errors: 400 bad_data with the position.
  const auto bad = error_body(
      k.get("/api/v1/query?" + form({{"query", "rate(req_total)"}, {"time", fmt_seconds(t)}})), 400,
      "bad_data");
  CHECK(bad.at("error") ==
        "invalid parameter \"query\": 1:6: parse error: expected type range vector in call to "
        "function \"rate\", got instant vector");
  error_body(k.get("/api/v1/query?" +
                   form({{"query", "req_total and on(job) group_left req_total"}, {"time", "1"}})),
             400, "bad_data");
  error_body(k.get("/api/v1/query?" + form({{"query", "sum(req_total"}, {"time", "1"}})), 400,
             "bad_data");
  const auto range_type =
      error_body(k.get("/api/v1/query_range?" + form({{"query", "req_total[5m]"},
                                                      {"start", fmt_seconds(t)},
                                                      {"end", fmt_seconds(t + kMinute)},
                                                      {"step", "15"}})),
                 400, "bad_data");
  CHECK(range_type.at("error") ==
        "invalid parameter \"query\": invalid expression type \"range vector\" for range query, "
        "must be Scalar or instant Vector");
  // Evaluation errors: 422 execution, as Prometheus.
  const auto exec = error_body(
      k.get("/api/v1/query?" +
            form({{"query", "req_total + on(job) req_total"}, {"time", fmt_seconds(t)}})),
      422, "execution");
  CHECK(contains(std::string(exec.at("error").as_string()), "many-to-many matching not allowed"));
  // group_left whose "one" side is not unique, and a result labelset made twice.
  const auto dup = error_body(
      k.get("/api/v1/query?" + form({{"query", "req_total * on(job) group_left req_total"},
                                     {"time", fmt_seconds(t)}})),
      422, "execution");
  CHECK(dup.at("error") ==
        "found duplicate series for the match group {job=\"api\"} on the right hand-side of the "
        "operation: [{__name__=\"req_total\", instance=\"b\", job=\"api\"}, "
        "{__name__=\"req_total\", instance=\"a\", job=\"api\"}];many-to-many matching not "
        "allowed: matching labels must be unique on one side");
  // The server is fine afterwards.
  require_value_at(k, "count(req_total)", t, 2);
}

TEST_CASE("promql: subqueries, @, set operators and group_left over HTTP", "[promql]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  write_counters(k, t);

  // rate is 1/s and 2/s everywhere: so is its maximum over a subquery.
  const auto max_rate = by_instance(k.query_at_ms("max_over_time(rate(req_total[5m])[30m:1m])", t));
  REQUIRE(max_rate.size() == 2);
  CHECK(max_rate.at("a") == Approx(1));
  CHECK(max_rate.at("b") == Approx(2));
  // A bare subquery is a matrix (resultType "matrix"), its steps on multiples of 1m.
  const auto sub = k.get("/api/v1/query?" + form({{"query", "req_total{instance=\"a\"}[3m:1m]"},
                                                  {"time", fmt_seconds(t + 30'000)}}));
  REQUIRE(sub.status == 200);
  const auto data = sub.json().at("data");
  CHECK(data.at("resultType") == "matrix");
  REQUIRE(data.at("result").as_array().size() == 1);
  CHECK(data.at("result").as_array()[0].at("values").as_array().size() == 3);
  // @: the value at a fixed time, whatever the query time.
  CHECK(value_at(k, "req_total{instance=\"a\"} @ " + fmt_seconds(t), t + 10 * kMinute) ==
        value_at(k, "req_total{instance=\"a\"}", t));
  // Set operators keep __name__ and labels.
  const auto both = k.query_at_ms("req_total and on(instance) temp or req_total", t);
  CHECK(both.size() == 2);
  // group_left copies the "one" side's labels.
  const auto joined = k.query_at_ms("req_total * on() group_left(room) (temp * 0 + 1)", t);
  REQUIRE(joined.size() == 2);
  for (const auto& s : joined) CHECK(s.metric.at("room") == "x");
}

TEST_CASE("promql: range queries of functions and aggregations", "[promql]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  write_counters(k, t);

  // 5m-aligned steps: served from 5m rollups, exact.
  const auto sum = k.query_range("sum(rate(req_total[5m]))", fmt_seconds(t),
                                 fmt_seconds(t + 30 * kMinute), "5m");
  REQUIRE(sum.size() == 1);
  CHECK(sum[0].metric.empty());
  REQUIRE(sum[0].values.size() == 7);
  for (const auto& [ts, v] : sum[0].values) {
    INFO("at " << ts);
    CHECK(num(v) == Approx(3));
  }
  // Unaligned steps: raw samples, same answer.
  const auto raw = k.query_range("rate(req_total[2m])", fmt_seconds(t + 7'000),
                                 fmt_seconds(t + 20 * kMinute), "61");
  REQUIRE(raw.size() == 2);
  for (const auto& s : raw) {
    for (const auto& [ts, v] : s.values)
      CHECK(num(v) == Approx(s.metric.at("instance") == "a" ? 1 : 2));
  }
  // A scalar over a range: one series without labels.
  const auto scalar =
      k.query_range("time() - time() + 4", fmt_seconds(t), fmt_seconds(t + 60'000), "30s");
  REQUIRE(scalar.size() == 1);
  CHECK(scalar[0].metric.empty());
  REQUIRE(scalar[0].values.size() == 3);
  CHECK(scalar[0].values[1] == std::pair<int64_t, std::string>{t + 30'000, "4"});
  // Hourly steps over 1h rollups.
  const auto hourly = k.query_range("increase(req_total{instance=\"b\"}[1h])", fmt_seconds(t),
                                    fmt_seconds(t), "1h");
  REQUIRE(hourly.size() == 1);
  REQUIRE(hourly[0].values.size() == 1);
  CHECK(hourly[0].values[0].first == t);
  CHECK(num(hourly[0].values[0].second) == Approx(7200));
}

TEST_CASE("promql: promtool queries expressions", "[promql][promtool]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  write_counters(k, t);
  const std::string url = "http://127.0.0.1:" + std::to_string(k.http_port());

  const auto one = promtool({"query", "instant", url, "1+1"});
  INFO("stdout: " << one.out << "\nstderr: " << one.err);
  CHECK(one.exit_code == 0);
  CHECK(contains(one.out, "2 @["));

  const auto sum =
      promtool({"query", "instant", "--time=" + fmt_seconds(t), url, "sum by (job) (req_total)"});
  INFO("stdout: " << sum.out << "\nstderr: " << sum.err);
  CHECK(sum.exit_code == 0);
  CHECK(contains(sum.out, R"({job="api"} => 10800 @[)"));

  const auto range = promtool({"query", "range", "--start=" + fmt_seconds(t),
                               "--end=" + fmt_seconds(t + 10 * kMinute), "--step=5m", url,
                               "avg_over_time(temp[5m])"});
  INFO("stdout: " << range.out << "\nstderr: " << range.err);
  CHECK(range.exit_code == 0);
  CHECK(contains(range.out, R"({room="x"} =>)"));
  CHECK(contains(range.out, "22 @[" + fmt_seconds(t + 5 * kMinute) + "]"));
}

TEST_CASE("promql: histogram_quantile, sort and function errors over HTTP", "[promql]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  // Latency buckets every 15 s for 10 minutes: +1, +3, +4 per scrape in le 0.1, 1, +Inf.
  std::string body;
  for (int64_t i = 0; i <= 40; ++i) {
    const std::string at = " " + std::to_string(t - 10 * kMinute + i * 15'000) + "\n";
    body += "lat_bucket,route=/checkout,le=0.1 value=" + std::to_string(i) + at;
    body += "lat_bucket,route=/checkout,le=1 value=" + std::to_string(3 * i) + at;
    body += "lat_bucket,route=/checkout,le=+Inf value=" + std::to_string(4 * i) + at;
  }
  k.write_ok(body, "ms");
  // Rank 0.5 * 4 = 2 of the per-second rates lies in (0.1, 1]: 0.1 + 0.9 * (2 - 1) / 2.
  const auto p50 =
      k.query_at_ms("histogram_quantile(0.5, sum by (le, route) (rate(lat_bucket[5m])))", t);
  REQUIRE(p50.size() == 1);
  CHECK(p50[0].metric.at("route") == "/checkout");
  CHECK(p50[0].metric.count("le") == 0);
  CHECK(num(p50[0].value) == Approx(0.55));
  // sort_desc's order is the answer's order.
  const auto sorted = k.query_at_ms("sort_desc(lat_bucket)", t);
  REQUIRE(sorted.size() == 3);
  CHECK(sorted[0].metric.at("le") == "+Inf");
  CHECK(sorted[1].metric.at("le") == "1");
  CHECK(sorted[2].metric.at("le") == "0.1");
  // Evaluation errors are 422 execution; argument errors are parse errors, 400 bad_data.
  const auto replace =
      error_body(k.get("/api/v1/query?" +
                       form({{"query", "label_replace(lat_bucket, \"x\", \"\", \"le\", \"(\")"},
                             {"time", fmt_seconds(t)}})),
                 422, "execution");
  CHECK(replace.at("error") == "invalid regular expression in label_replace(): (");
  const auto hw = error_body(
      k.get("/api/v1/query?" +
            form({{"query", "holt_winters(lat_bucket[5m], 2, 0.5)"}, {"time", fmt_seconds(t)}})),
      422, "execution");
  CHECK(hw.at("error") == "invalid smoothing factor. Expected: 0 < sf < 1, got: 2.000000");
  const auto args =
      error_body(k.get("/api/v1/query?" + form({{"query", "round()"}, {"time", fmt_seconds(t)}})),
                 400, "bad_data");
  CHECK(contains(std::string(args.at("error").as_string()),
                 "expected at least 1 argument(s) in call to \"round\", got 0"));
}
