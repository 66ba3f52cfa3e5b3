// /api/v1/format_query against a real Prometheus 2.42 (byte-identical answers for a battery of
// queries) and /api/v1/parse_query's JSON against the shape of Prometheus' translateAST.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "harness.h"

using namespace kpid_it;
using namespace std::chrono_literals;

namespace {

const std::string kLongSelector =
    R"(http_requests_total{job="apiserver",handler="/api/v1/query",code=~"5..",instance!~"test.*"})";
const std::string kLongSum = "sum by (job, instance) (rate(" + kLongSelector + "[5m]))";

// Every node type, operator and modifier; numbers, strings and durations in their many
// spellings; queries over 100 characters that Prometheus splits over lines.
std::vector<std::string> battery() {
  std::vector<std::string> q = {
      // numbers
      "1",
      "1.5",
      ".5",
      "1e6",
      "1E6",
      "1.5e-7",
      "0x10",
      "0X1f",
      "0755",
      "Inf",
      "-Inf",
      "+Inf",
      "NaN",
      "-1",
      "- 1",
      "+1",
      "123456",
      "1234567",
      "100000000",
      "0.0001",
      "0.00001",
      "123456789012345678901",
      "1e21",
      "-0",
      "1.0",
      "3.14159265358979",
      // strings
      R"("abc")",
      "'single'",
      "`raw\\n`",
      R"("a\"b\n\t\\")",
      R"("\u00e9\x41\101")",
      R"("\u00a0\u200b")",
      R"("<>&")",
      R"('it\'s')",
      // selectors
      "foo",
      "foo{}",
      R"(foo{a="b"})",
      R"(foo{a="b",c!="d",e=~"f.*",g!~"h"})",
      R"(foo{z="1", a="2"})",
      R"({__name__="foo"})",
      R"({__name__=~"foo|bar"})",
      R"({__name__="foo",a="b"})",
      R"(foo{a=""})",
      R"(foo{a="x\"y"})",
      "foo:bar:baz",
      // ranges, offsets, @
      "foo[5m]",
      "foo[90m]",
      "foo[1d]",
      "foo[3600s]",
      "foo[1h30m]",
      "foo[1001ms]",
      "foo[52w]",
      "foo[1y]",
      "foo[400d]",
      "foo[14d]",
      "foo offset 5m",
      "foo offset -5m",
      "foo offset 1w",
      "foo @ 100",
      "foo @ 1.5",
      "foo @ -5",
      "foo @ start()",
      "foo @ end()",
      "foo @ 100 offset 5m",
      "foo offset 5m @ 100",
      "foo[5m] offset 1h @ end()",
      R"(foo{a="b"}[5m] @ 1600000000.123)",
      // subqueries
      "foo[5m:]",
      "foo[30m:1m]",
      "rate(foo[5m])[30m:1m]",
      "rate(foo[5m])[30m:1m] offset 5m",
      "rate(foo[5m])[30m:1m] @ 100 offset 5m",
      "foo[5m:1m] @ start() offset 1m",
      "max_over_time(rate(foo[5m])[1h:5m])",
      "(foo + bar)[10m:]",
      "min_over_time(max_over_time(foo[5m:1m])[10m:2m])",
      // unary and parentheses
      "-foo",
      "+foo",
      "- (foo)",
      "-(1)",
      "--foo",
      "((foo))",
      "(1 + 2) * 3",
      "1 + (2 * 3)",
      "-foo ^ 2",
      "(-foo) ^ 2",
      // binary operators
      "1 + 2 * 3",
      "a + b",
      "a - b",
      "a * b",
      "a / b",
      "a % b",
      "a ^ b ^ c",
      "a atan2 b",
      "a == b",
      "a != b",
      "a > b",
      "a < b",
      "a >= b",
      "a <= b",
      "a == bool b",
      "a > bool 1",
      "1 < bool 2",
      "a and b",
      "a or b",
      "a unless b",
      "a and on() b",
      "a or ignoring(x) b",
      "a unless on(x, y) b",
      "a + on(x) b",
      "a + ignoring(x) b",
      "a + ignoring() b",
      "a + on() b",
      "a * on(x) group_left b",
      "a * on(x) group_left(y, z) b",
      "a * ignoring(x) group_right(y) b",
      "a > bool on(x) group_left(y) b",
      "a + ignoring() group_left b",
      "1 + on() group_left foo",
      "a + b * c - d / e",
      "(a + b) * (c - d)",
      "a or b and c unless d",
      // calls
      "time()",
      "pi()",
      "vector(1)",
      "scalar(foo)",
      "rate(foo[5m])",
      "irate(foo[1m])",
      "increase(foo[1h])",
      "delta(foo[5m])",
      "idelta(foo[5m])",
      "deriv(foo[5m])",
      "predict_linear(foo[1h], 3600)",
      "holt_winters(foo[10m], 0.5, 0.5)",
      "histogram_quantile(0.9, rate(foo_bucket[5m]))",
      "abs(-foo)",
      "round(foo)",
      "round(foo, 0.1)",
      "clamp(foo, 0, 1)",
      "clamp_min(foo, 0)",
      "clamp_max(foo, 1)",
      "minute()",
      "hour(foo)",
      "day_of_week()",
      "days_in_month(foo)",
      "timestamp(foo)",
      R"q(label_replace(foo, "dst", "$1", "src", "(.*)"))q",
      R"(label_join(foo, "dst", ",", "a", "b", "c"))",
      "sort(foo)",
      "sort_desc(foo)",
      "absent(foo)",
      "absent_over_time(foo[5m])",
      "quantile_over_time(0.5, foo[5m])",
      "changes(foo[5m])",
      "resets(foo[5m])",
      "present_over_time(foo[5m])",
      "last_over_time(foo[5m])",
      "stddev_over_time(foo[5m])",
      "ln(foo)",
      "exp(foo)",
      "sgn(foo)",
      "deg(foo)",
      "rad(foo)",
      "acosh(foo)",
      // aggregations
      "sum(foo)",
      "sum by (job) (foo)",
      "sum(foo) by (job)",
      "sum by (a, b) (foo)",
      "sum without (a, b) (foo)",
      "sum(foo) without (a)",
      "sum by () (foo)",
      "sum without () (foo)",
      "SUM BY (a) (foo)",
      "avg(foo)",
      "min(foo)",
      "max(foo)",
      "count(foo)",
      "group(foo)",
      "stddev(foo)",
      "stdvar(foo)",
      "topk(5, foo)",
      "bottomk by (job) (3, foo)",
      "quantile(0.9, foo)",
      R"(count_values("value", foo))",
      R"(count_values without (a) ("v", foo))",
      "sum by (b, a, b) (x)",
      "sum(rate(foo[5m])) by (job) / sum(rate(bar[5m])) by (job)",
      // comments and layout
      "foo # a comment",
      "sum(\n  foo\n)",
  };
  // Long queries: Prometheus' pretty printer splits them node by node.
  const std::vector<std::string> long_queries = {
      kLongSum,
      kLongSum + " / on (job) group_left (instance) " + kLongSum,
      "-(" + kLongSum + ")",
      "- " + kLongSum,
      "topk(5, " + kLongSum + ")",
      R"(count_values("x", )" + kLongSum + ")",
      kLongSum + "[30m:1m] offset 5m",
      "(" + kLongSum + ")[30m:1m]",
      "histogram_quantile(0.9, " + kLongSum + ")",
      kLongSum + " > bool 1",
      "1 + " + kLongSum,
      "-(1 + " + kLongSum + ")",
      "abs(" + kLongSum + ")",
      "time() + " + kLongSum,
      kLongSelector,
      kLongSelector + "[5m] offset 1h",
      "rate(" + kLongSelector + "[5m])",
      "rate(" + kLongSelector + "[5m]) + rate(" + kLongSelector +
          "[5m]) + max_over_time(foo[5m:1m])",
      "label_replace(" + kLongSum + R"q(, "dst", "$1", "src", "(.*)"))q",
      "sum by (job) (" + kLongSum + " * on (job) group_right () " + kLongSum + ") and " + kLongSum,
      "max_over_time(" + kLongSum + "[1h:5m]) unless ignoring (instance) " + kLongSum,
  };
  q.insert(q.end(), long_queries.begin(), long_queries.end());
  return q;
}

std::string data_string(const HttpResponse& r) {
  const auto v = r.json();
  return std::string(v.at("data").as_string());
}

}  // namespace

TEST_CASE("format_query: kpid's answers are Prometheus 2.42's, byte for byte",
          "[promql][format_query][prometheus]") {
  RealPrometheus prom;
  Kpid k;
  k.start();
  HttpClient pc(prom.port);
  HttpClient kc(k.http_port());
  const auto queries = battery();
  REQUIRE(queries.size() >= 80);
  size_t split = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    const std::string& q = queries[i];
    // GET and POST alternate: both must answer alike.
    HttpResponse pr, kr;
    if (i % 2 == 0) {
      const std::string target = "/api/v1/format_query?query=" + url_encode(q);
      pr = pc.request("GET", target);
      kr = kc.request("GET", target);
    } else {
      const std::string body = form({{"query", q}});
      const Headers h = {{"Content-Type", "application/x-www-form-urlencoded"}};
      pr = pc.request("POST", "/api/v1/format_query", body, h);
      kr = kc.request("POST", "/api/v1/format_query", body, h);
    }
    INFO("query: " << q);
    INFO("prometheus: " << pr.status << " " << pr.body);
    INFO("kpid:       " << kr.status << " " << kr.body);
    REQUIRE(pr.status == 200);
    CHECK(kr.status == pr.status);
    CHECK(kr.body == pr.body);
    if (pr.status == 200 && data_string(pr).find('\n') != std::string::npos) ++split;
  }
  CHECK(split >= 15);

  // Errors: the same status, type and message for what both parsers refuse alike.
  for (const std::string q : {"", "sum(", "1 +", "foo[5m", "rate(foo)"}) {
    const std::string target = "/api/v1/format_query?query=" + url_encode(q);
    const HttpResponse pr = pc.request("GET", target);
    const HttpResponse kr = kc.request("GET", target);
    INFO("query: " << q << "\nprometheus: " << pr.body << "\nkpid:       " << kr.body);
    CHECK(pr.status == 400);
    CHECK(kr.status == pr.status);
    CHECK(kr.body == pr.body);
  }
  // A query parameter absent: Prometheus parses "".
  CHECK(kc.request("GET", "/api/v1/format_query").body ==
        pc.request("GET", "/api/v1/format_query").body);
  // Other methods: 405 with the methods allowed.
  const HttpResponse put = kc.request("PUT", "/api/v1/format_query?query=1");
  CHECK(put.status == 405);
  CHECK(contains(put.header("allow"), "GET"));
  CHECK(contains(put.header("allow"), "POST"));
}

TEST_CASE("parse_query: the syntax tree as Prometheus' translateAST writes it",
          "[promql][parse_query]") {
  Kpid k;
  k.start();
  const auto tree = [&](const std::string& q) {
    const HttpResponse r = k.get("/api/v1/parse_query?query=" + url_encode(q));
    INFO("query: " << q << "\nbody: " << r.body);
    REQUIRE(r.status == 200);
    const auto v = r.json();
    REQUIRE(v.at("status") == "success");
    return boost::json::serialize(v.at("data"));
  };
  // Expected JSON written from Prometheus' web/api/v1 translateAST (Go marshals map keys
  // sorted; the metric name's matcher comes after the braces' matchers).
  CHECK(tree("1e3") == R"({"type":"numberLiteral","val":"1000"})");
  CHECK(tree("-Inf") == R"({"type":"numberLiteral","val":"-Inf"})");
  CHECK(tree(R"("a\nb")") == R"({"type":"stringLiteral","val":"a\nb"})");
  CHECK(tree(R"(foo{a="b"} offset 5m)") ==
        R"({"matchers":[{"name":"a","type":"=","value":"b"},)"
        R"({"name":"__name__","type":"=","value":"foo"}],"name":"foo","offset":300000,)"
        R"("startOrEnd":null,"timestamp":null,"type":"vectorSelector"})");
  CHECK(tree(R"({__name__=~"f.*"} @ 10)") ==
        R"({"matchers":[{"name":"__name__","type":"=~","value":"f.*"}],"name":"","offset":0,)"
        R"("startOrEnd":null,"timestamp":10000,"type":"vectorSelector"})");
  CHECK(tree("foo[5m] @ start() offset -1m") ==
        R"({"matchers":[{"name":"__name__","type":"=","value":"foo"}],"name":"foo",)"
        R"("offset":-60000,"range":300000,"startOrEnd":"start","timestamp":null,)"
        R"("type":"matrixSelector"})");
  CHECK(tree("-foo") ==
        R"({"expr":{"matchers":[{"name":"__name__","type":"=","value":"foo"}],"name":"foo",)"
        R"("offset":0,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},"op":"-",)"
        R"("type":"unaryExpr"})");
  CHECK(tree("(1)") == R"({"expr":{"type":"numberLiteral","val":"1"},"type":"parenExpr"})");
  CHECK(tree("1 + 2") ==
        R"({"bool":false,"lhs":{"type":"numberLiteral","val":"1"},"matching":null,"op":"+",)"
        R"("rhs":{"type":"numberLiteral","val":"2"},"type":"binaryExpr"})");
  const std::string a =
      R"({"matchers":[{"name":"__name__","type":"=","value":"a"}],"name":"a","offset":0,)"
      R"("startOrEnd":null,"timestamp":null,"type":"vectorSelector"})";
  const std::string b =
      R"({"matchers":[{"name":"__name__","type":"=","value":"b"}],"name":"b","offset":0,)"
      R"("startOrEnd":null,"timestamp":null,"type":"vectorSelector"})";
  CHECK(tree("a > bool on(x) group_left(y) b") ==
        R"({"bool":true,"lhs":)" + a +
            R"(,"matching":{"card":"many-to-one","include":["y"],"labels":["x"],"on":true},)"
            R"("op":">","rhs":)" +
            b + R"(,"type":"binaryExpr"})");
  CHECK(tree("a and b") == R"({"bool":false,"lhs":)" + a +
                               R"(,"matching":{"card":"many-to-many","include":[],"labels":[],)"
                               R"("on":false},"op":"and","rhs":)" +
                               b + R"(,"type":"binaryExpr"})");
  CHECK(tree("topk by (job) (3, a)") ==
        R"({"expr":)" + a +
            R"(,"grouping":["job"],"op":"topk","param":{"type":"numberLiteral","val":"3"},)"
            R"("type":"aggregation","without":false})");
  CHECK(tree("sum without () (a)") ==
        R"({"expr":)" + a +
            R"(,"grouping":[],"op":"sum","param":null,"type":"aggregation","without":true})");
  CHECK(tree("time()") ==
        R"({"args":[],"func":{"argTypes":[],"name":"time","returnType":"scalar","variadic":0},)"
        R"("type":"call"})");
  CHECK(tree(R"(label_join(a, "d", ",", "x"))") ==
        R"({"args":[)" + a +
            R"(,{"type":"stringLiteral","val":"d"},{"type":"stringLiteral","val":","},)"
            R"({"type":"stringLiteral","val":"x"}],"func":{"argTypes":["vector","string",)"
            R"("string","string"],"name":"label_join","returnType":"vector","variadic":-1},)"
            R"("type":"call"})");
  CHECK(tree("a[1h:5m] @ end() offset 1m") ==
        R"({"expr":)" + a +
            R"(,"offset":60000,"range":3600000,"startOrEnd":"end","step":300000,)"
            R"("timestamp":null,"type":"subquery"})");

  // Errors: Prometheus' invalid parameter message, 400 bad_data.
  const HttpResponse bad = k.get("/api/v1/parse_query?query=" + url_encode("1 +"));
  CHECK(bad.status == 400);
  CHECK(bad.json().at("errorType") == "bad_data");
  CHECK(bad.json().at("error") ==
        "invalid parameter \"query\": 1:4: parse error: unexpected end of input");
  const HttpResponse post = k.post("/api/v1/parse_query", form({{"query", "1"}}),
                                   {{"Content-Type", "application/x-www-form-urlencoded"}});
  CHECK(post.status == 200);
  CHECK(post.body == R"({"status":"success","data":{"type":"numberLiteral","val":"1"}})");
}
