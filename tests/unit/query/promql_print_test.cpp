// Prometheus' canonical printer (print_expr) and pretty printer (pretty_expr); the expected
// texts are Prometheus 2.42's /api/v1/format_query answers.
#include <catch2/catch.hpp>
#include <string>

#include "kpid/query/promql.h"

using namespace kpid;
using namespace kpid::query;

namespace {

ExprPtr parsed(const std::string& q) {
  auto r = parse_promql(q);
  INFO("query " << q << ": " << (r ? std::string("ok") : r.status().message()));
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

std::string printed(const std::string& q) { return print_expr(*parsed(q)); }
std::string pretty(const std::string& q) { return pretty_expr(*parsed(q)); }

}  // namespace

TEST_CASE("print_expr: numbers as Go's %v", "[query][promql][print]") {
  CHECK(printed("1e6") == "1e+06");
  CHECK(printed("0x10") == "16");
  CHECK(printed("0755") == "493");
  CHECK(printed("Inf") == "+Inf");
  CHECK(printed("-Inf") == "-Inf");
  CHECK(printed("NaN") == "NaN");
  CHECK(printed("1.5e-7") == "1.5e-07");
  CHECK(printed("123456") == "123456");
  CHECK(printed("1234567") == "1.234567e+06");
  CHECK(printed("0.0001") == "0.0001");
  CHECK(printed("0.00001") == "1e-05");
  CHECK(printed("123456789012345678901") == "1.2345678901234568e+20");
  CHECK(printed("- 1") == "-1");
  CHECK(printed("1.0") == "1");
}

TEST_CASE("print_expr: strings as Go's strconv.Quote", "[query][promql][print]") {
  CHECK(printed("'x'") == "\"x\"");
  CHECK(printed("`raw\\n`") == "\"raw\\\\n\"");
  CHECK(printed(R"("a\"b\n\u00e9")") == "\"a\\\"b\\n\xc3\xa9\"");
  CHECK(printed(R"("\x01\x7f\b\f\v\a")") == R"("\x01\x7f\b\f\v\a")");
  CHECK(printed(R"("\x80")") == R"("\x80")");  // not UTF-8
  CHECK(printed(R"("\u00a0\u200b\u2028")") == R"("\u00a0\u200b\u2028")");
}

TEST_CASE("print_expr: selectors, durations, offset and @", "[query][promql][print]") {
  CHECK(printed(R"(foo{z="1", a="2", b!~"x"})") == R"(foo{a="2",b!~"x",z="1"})");
  CHECK(printed(R"({__name__="foo"})") == R"({__name__="foo"})");
  CHECK(printed(R"({__name__="foo", a="b"})") == R"({__name__="foo",a="b"})");
  CHECK(printed("foo{}") == "foo");
  CHECK(printed("foo[90m]") == "foo[1h30m]");
  CHECK(printed("foo[3600s]") == "foo[1h]");
  CHECK(printed("foo[1001ms]") == "foo[1s1ms]");
  CHECK(printed("foo[400d]") == "foo[400d]");  // years and weeks only when exact
  CHECK(printed("foo[14d]") == "foo[2w]");
  CHECK(printed("foo[1y]") == "foo[1y]");
  CHECK(printed("foo offset -5m") == "foo offset -5m");
  CHECK(printed("foo offset 5m @ 1.5") == "foo @ 1.500 offset 5m");
  CHECK(printed("foo[5m] @ end()") == "foo[5m] @ end()");
  CHECK(printed("rate(foo[5m])[30m:1m] offset 5m @ 100") ==
        "rate(foo[5m])[30m:1m] @ 100.000 offset 5m");
  CHECK(printed("foo[5m:]") == "foo[5m:]");
  CHECK(printed("foo @ start()") == "foo @ start()");
}

TEST_CASE("print_expr: operators, matching, aggregations, parentheses", "[query][promql][print]") {
  CHECK(printed("sum(foo) by (a)") == "sum by (a) (foo)");
  CHECK(printed("sum by()(foo)") == "sum(foo)");
  CHECK(printed("sum without()(foo)") == "sum without () (foo)");
  CHECK(printed("SUM WITHOUT(a,b)(foo)") == "sum without (a, b) (foo)");
  CHECK(printed(R"(count_values("x", foo))") == R"(count_values("x", foo))");
  CHECK(printed("topk(5, foo)") == "topk(5, foo)");
  CHECK(printed("a and on() b") == "a and on () b");
  CHECK(printed("a + ignoring() group_left b") == "a + b");
  CHECK(printed("a + on() group_left() b") == "a + on () group_left () b");
  CHECK(printed("a > bool on(x) group_left(y,z) b") == "a > bool on (x) group_left (y, z) b");
  CHECK(printed("1 + on() group_left foo") == "1 + foo");  // no matching with a scalar side
  CHECK(printed("- (foo)") == "-(foo)");
  CHECK(printed("(1 + 2) * 3") == "(1 + 2) * 3");
  CHECK(printed("a atan2 b") == "a atan2 b");
  CHECK(printed(R"(label_join(foo,"a",",","b"))") == R"(label_join(foo, "a", ",", "b"))");
}

TEST_CASE("pretty_expr: short queries stay on one line, long ones split node by node",
          "[query][promql][print]") {
  CHECK(pretty("sum(rate(foo[5m])) by (job)") == "sum by (job) (rate(foo[5m]))");
  const std::string sum =
      R"(sum by (job, instance) (rate(http_requests_total{job="apiserver",handler="/api/v1/query",code=~"5.."}[5m])))";
  const std::string sum_pretty =
      "sum by (job, instance) (\n"
      "  rate(http_requests_total{code=~\"5..\",handler=\"/api/v1/query\",job=\"apiserver\"}"
      "[5m])\n"
      ")";
  CHECK(pretty(sum) == sum_pretty);
  const std::string indented =
      "  sum by (job, instance) (\n"
      "    rate(http_requests_total{code=~\"5..\",handler=\"/api/v1/query\",job=\"apiserver\"}"
      "[5m])\n"
      "  )";
  CHECK(pretty(sum + " / on(job) group_left(instance) " + sum) ==
        indented + "\n/ on (job) group_left (instance)\n" + indented);
  CHECK(pretty("topk(5, " + sum + ")") == "topk(\n  5,\n" + indented + "\n)");
  CHECK(pretty("- " + sum) == "-" + sum_pretty);
  CHECK(pretty("-(1 + " + sum + ")") ==
        "-(\n    1\n  +\n    sum by (job, instance) (\n      rate(http_requests_total{code=~"
        "\"5..\",handler=\"/api/v1/query\",job=\"apiserver\"}[5m])\n    )\n)");
  CHECK(pretty(sum + "[30m:1m] offset 5m") == sum_pretty + "[30m:1m] offset 5m");
  CHECK(pretty(sum + " > bool 1") == indented + "\n> bool\n  1");
  CHECK(pretty("abs(" + sum + ")") == "abs(\n" + indented + "\n)");
  // A selector is never split, however long.
  const std::string selector =
      R"(some_very_long_metric_name_for_testing_the_pretty_printer_of_prometheus{label_one="value_one",label_two="value_two"}[5m])";
  CHECK(pretty(selector) == selector);
}

TEST_CASE("expr_tree_json: translateAST's shape", "[query][promql][print]") {
  CHECK(expr_tree_json(*parsed("1e3")) == R"({"type":"numberLiteral","val":"1000"})");
  CHECK(expr_tree_json(*parsed("foo{a=\"<\"}")) ==
        R"({"matchers":[{"name":"a","type":"=","value":"\u003c"},)"
        R"({"name":"__name__","type":"=","value":"foo"}],"name":"foo","offset":0,)"
        R"("startOrEnd":null,"timestamp":null,"type":"vectorSelector"})");
}
