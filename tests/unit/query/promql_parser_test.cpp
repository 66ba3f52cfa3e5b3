// The PromQL parser: literals, precedence and associativity, modifiers, type checks and
// error positions.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "kpid/query/promql.h"
#include "promql_parse_util.h"

using namespace kpid;
using namespace kpid::query;
using namespace kpid::testing;

TEST_CASE("promql: number literals", "[promql]") {
  CHECK(number("1") == 1);
  CHECK(number("1.5") == 1.5);
  CHECK(number(".5") == 0.5);
  CHECK(number("5.") == 5);
  CHECK(number("1e3") == 1000);
  CHECK(number("1E-2") == 0.01);
  CHECK(number("2.5e+2") == 250);
  CHECK(number("0x1F") == 31);
  CHECK(number("0xff") == 255);
  CHECK(number("0755") == 493);  // octal, as Go's ParseInt(s, 0, 64)
  CHECK(number("089") == 89);    // not octal: read as a float
  CHECK(number("-7") == -7);     // unary minus folds into the literal
  CHECK(number("+7") == 7);
  CHECK(std::isinf(number("Inf")));
  CHECK(number("inf") > 0);
  CHECK(number("-INF") < 0);
  CHECK(std::isinf(number("-Inf")));
  CHECK(std::isnan(number("NaN")));
  CHECK(std::isnan(number("nan")));
  CHECK(number("  42  # the answer") == 42);
}

TEST_CASE("promql: operator precedence and associativity", "[promql]") {
  CHECK(canon("1 + 2 * 3") == "(1 + (2 * 3))");
  CHECK(canon("1 * 2 + 3") == "((1 * 2) + 3)");
  CHECK(canon("(1 + 2) * 3") == "((1 + 2) * 3)");
  CHECK(canon("1 - 2 - 3") == "((1 - 2) - 3)");
  CHECK(canon("8 / 4 / 2") == "((8 / 4) / 2)");
  CHECK(canon("2 ^ 3 ^ 2") == "(2 ^ (3 ^ 2))");  // right-associative
  CHECK(canon("2 * 3 ^ 2") == "(2 * (3 ^ 2))");
  CHECK(canon("2 ^ 3 * 2") == "((2 ^ 3) * 2)");
  CHECK(canon("7 % 4 * 2") == "((7 % 4) * 2)");
  CHECK(canon("a + b > c - d") == "((a + b) > (c - d))");
  CHECK(canon("a > b == c") == "((a > b) == c)");
  CHECK(canon("1 + 2 == bool 3") == "((1 + 2) == bool 3)");
  // Unary minus binds like *: looser than ^, tighter than + and *'s left operand.
  CHECK(canon("-2 ^ 2") == "(-(2 ^ 2))");
  CHECK(canon("-a * b") == "((-a) * b)");
  CHECK(canon("-a + b") == "((-a) + b)");
  CHECK(canon("a * -b") == "(a * (-b))");
  CHECK(canon("2 ^ -1") == "(2 ^ -1)");
  CHECK(canon("- -a") == "(-(-a))");
  // A unary minus over a parenthesized literal, not the literal -1 (which "-1" would read as).
  CHECK(canon("-(1)") == "(-(1))");
  CHECK(canon("-a offset 5m") == "(-a offset 5m)");
}

TEST_CASE("promql: selectors, ranges and offsets", "[promql]") {
  CHECK(canon("up") == "up");
  CHECK(canon(R"(up{job="a", x!~"b.*"})") == R"(up{job="a", x!~"b.*"})");
  CHECK(canon(R"({job="a"})") == R"({job="a"})");
  CHECK(canon("up [5m]") == "up[5m]");
  CHECK(canon("up[1h30m]") == "up[1h30m]");
  CHECK(canon("up[90s]") == "up[1m30s]");
  CHECK(canon("up offset 1h") == "up offset 1h");
  CHECK(canon("up offset -5m") == "up offset -5m");
  CHECK(canon("up[5m] offset 1d") == "up[5m] offset 1d");
  CHECK(canon("job:rate:sum") == "job:rate:sum");
  CHECK(canon(R"(up{a="b"} # comment)") == R"(up{a="b"})");
  CHECK(type_of("up") == ValueType::kVector);
  CHECK(type_of("up[5m]") == ValueType::kMatrix);
  CHECK(type_of("1") == ValueType::kScalar);
  CHECK(type_of("\"text\"") == ValueType::kString);
  CHECK(type_of("'x'") == ValueType::kString);
}

TEST_CASE("promql: functions and aggregations", "[promql]") {
  CHECK(canon("rate(http_total[5m])") == "rate(http_total[5m])");
  CHECK(canon("quantile_over_time(0.9, lat[1h])") == "quantile_over_time(0.9, lat[1h])");
  CHECK(canon("sum(rate(x[5m]))") == "sum(rate(x[5m]))");
  CHECK(canon("sum by (job, instance) (x)") == "sum by (job, instance) (x)");
  CHECK(canon("sum(x) by (job)") == "sum by (job) (x)");
  CHECK(canon("avg without (host) (x)") == "avg without (host) (x)");
  CHECK(canon("count(x) without ()") == "count without () (x)");
  CHECK(canon("SUM(x) BY (job,)") == "sum by (job) (x)");  // keywords are case-insensitive
  CHECK(canon("max by (on, bool, sum) (x)") == "max by (on, bool, sum) (x)");
  CHECK(canon("time()") == "time()");
  CHECK(canon("vector(1) + scalar(x)") == "(vector(1) + scalar(x))");
  CHECK(canon("abs(-x)") == "abs((-x))");
  CHECK(type_of("time()") == ValueType::kScalar);
  CHECK(type_of("scalar(x)") == ValueType::kScalar);
  CHECK(type_of("vector(1)") == ValueType::kVector);
  CHECK(type_of("sum(x) + 1") == ValueType::kVector);
  CHECK(type_of("1 + 2") == ValueType::kScalar);
}

TEST_CASE("promql: vector matching and bool modifiers", "[promql]") {
  CHECK(canon("a + on(job) b") == "(a + on(job) b)");
  CHECK(canon("a + ignoring(x, y) b") == "(a + ignoring(x, y) b)");
  CHECK(canon("a > bool on() b") == "(a > bool on() b)");
  CHECK(canon("a / ignoring() b") == "(a / ignoring() b)");
  CHECK(canon("1 > bool 2") == "(1 > bool 2)");
}

TEST_CASE("promql: syntax errors say what and where", "[promql][errors]") {
  CHECK(error("") == "1:1: parse error: no expression found in input");
  CHECK(error("1 +") == "1:4: parse error: unexpected end of input");
  CHECK(error("foo bar") == "1:5: parse error: unexpected identifier \"bar\"");
  CHECK(error("1 * * 2") == "1:5: parse error: unexpected <op:*>");
  CHECK(error("sum(") == "1:5: parse error: unclosed left parenthesis");
  CHECK(error("(1 + 2") == "1:7: parse error: unclosed left parenthesis");
  CHECK(error("1 + 2)") == "1:6: parse error: unexpected right parenthesis ')'");
  CHECK(error("foo[5m") == "1:7: parse error: unclosed left bracket");
  CHECK(error("foo[5]") ==
        "1:5: parse error: unexpected number \"5\" in subquery or range selector, expected "
        "duration");
  CHECK(error("foo[0s]") == "1:5: parse error: duration must be greater than 0");
  CHECK(error("foo[300y]") == "1:5: parse error: duration out of range: \"300y\"");
  CHECK(error("foo offset 300y") == "1:12: parse error: duration out of range: \"300y\"");
  CHECK(error("rate(foo[5m]) offset 5m") ==
        "1:1: parse error: offset modifier must be preceded by an instant vector selector or "
        "range vector selector or a subquery");
  CHECK(error("foo offset 5m [5m]") ==
        "1:15: parse error: no offset modifiers allowed before range");
  CHECK(error("foo offset 1m offset 2m") ==
        "1:1: parse error: offset may not be set multiple times");
  CHECK(error("foo offset bar") ==
        "1:12: parse error: unexpected identifier \"bar\" in offset, expected duration");
  CHECK(error("(foo + bar)[5m]") == "1:12: parse error: ranges only allowed for vector selectors");
  CHECK(error("rate(foo[5m])[5m]") ==
        "1:14: parse error: ranges only allowed for vector selectors");
  CHECK(error("foo{a=}") ==
        "1:7: parse error: unexpected \"}\" in label matcher; expected a quoted string");
  CHECK(error("sum by job (x)") ==
        "1:8: parse error: unexpected identifier \"job\" in grouping opts, expected \"(\"");
  CHECK(error("sum by (a b) (x)") ==
        "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\"");
  CHECK(error("sum x") == "1:5: parse error: unexpected identifier \"x\" in aggregation");
  CHECK(error("rate(foo[5m],)") ==
        "1:13: parse error: trailing commas not allowed in function call args");
  CHECK(error("1 = 2") == "1:3: parse error: unexpected \"=\"");
  CHECK(error("1 ! 2") == "1:3: parse error: unexpected character after '!': ' '");
  CHECK(error("1 $ 2") == "1:3: parse error: unexpected character: '$'");
  CHECK(error("5mm") == "1:1: parse error: bad number or duration syntax: \"5mm\"");
  CHECK(error("1 + 5m") == "1:5: parse error: unexpected duration \"5m\"");
  CHECK(error("\"unterminated") == "1:1: parse error: unterminated quoted string");
  CHECK(error("by") == "1:1: parse error: unexpected <by>");
  CHECK(error("sum by (x) bool") == "1:12: parse error: unexpected <bool> in aggregation");
  // Lines and columns after newlines.
  CHECK(error("sum(\n  rate(x[5m])\n  +\n)") ==
        "4:1: parse error: unexpected right parenthesis ')'");
  CHECK(error("1 +\n\n  foo bar") == "3:7: parse error: unexpected identifier \"bar\"");
}

TEST_CASE("promql: unsupported features are refused clearly", "[promql][errors]") {
  CHECK(error("histogram_count(x)") ==
        "1:1: parse error: function \"histogram_count\" is not supported");
  CHECK(error("nosuch(x)") == "1:1: parse error: unknown function with name \"nosuch\"");
}

TEST_CASE("promql: type errors use Prometheus' messages", "[promql][errors]") {
  CHECK(error("rate(x)") ==
        "1:6: parse error: expected type range vector in call to function \"rate\", got "
        "instant vector");
  CHECK(error("sum_over_time(1)") ==
        "1:15: parse error: expected type range vector in call to function \"sum_over_time\", "
        "got scalar");
  CHECK(error("quantile_over_time(x, y[5m])") ==
        "1:20: parse error: expected type scalar in call to function \"quantile_over_time\", "
        "got instant vector");
  CHECK(error("rate(x[5m], 1)") ==
        "1:1: parse error: expected 1 argument(s) in call to \"rate\", got 2");
  CHECK(error("time(1)") == "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1");
  CHECK(error("abs(x[5m])") ==
        "1:5: parse error: expected type instant vector in call to function \"abs\", got range "
        "vector");
  CHECK(error("sum(x[5m])") ==
        "1:5: parse error: expected type instant vector in aggregation expression, got range "
        "vector");
  CHECK(error("sum()") == "1:1: parse error: no arguments for aggregate expression provided");
  CHECK(error("sum(x, y)") ==
        "1:1: parse error: wrong number of arguments for aggregate expression provided, "
        "expected 1, got 2");
  CHECK(error("x[5m] + 1") ==
        "1:1: parse error: binary expression must contain only scalar and instant vector types");
  CHECK(error("1 + \"a\"") ==
        "1:5: parse error: binary expression must contain only scalar and instant vector types");
  CHECK(error("-x[5m]") ==
        "1:1: parse error: unary expression only allowed on expressions of type scalar or "
        "instant vector, got \"range vector\"");
  CHECK(error("1 > 2") == "1:3: parse error: comparisons between scalars must use BOOL modifier");
  CHECK(error("a + bool b") ==
        "1:3: parse error: bool modifier can only be used on comparison operators");
  CHECK(error("1 + on(x) a") ==
        "1:1: parse error: vector matching only allowed between instant vectors");
  CHECK(error("{a=\"\"}") ==
        "1:1: parse error: vector selector must contain at least one non-empty matcher");
}

TEST_CASE("promql: absurdly deep expressions are refused, not a stack overflow", "[promql]") {
  const std::string parens = std::string(5000, '(') + "1" + std::string(5000, ')');
  CHECK(error(parens).find("expression nested too deeply") != std::string::npos);
  std::string sum = "x";
  for (int i = 0; i < 5000; ++i) sum += " + x";
  CHECK(error(sum).find("expression nested too deeply") != std::string::npos);
  CHECK(error(std::string(5000, '-') + "x").find("nested too deeply") != std::string::npos);
  CHECK(error("sum(" + std::string(5000, '(')).find("nested too deeply") != std::string::npos);
  // Deep but sane is fine.
  std::string ok = "x";
  for (int i = 0; i < 100; ++i) ok = "(" + ok + " * 2)";  // 200 levels
  CHECK(type_of(ok) == ValueType::kVector);
  std::string chain = "1";
  for (int i = 0; i < 200; ++i) chain += " + 1";
  CHECK(type_of(chain) == ValueType::kScalar);
}
