// Parsing subqueries, the @ modifier, set operators, group_left/group_right, comments and
// literals, with the messages of Prometheus 2.42 (checked against it).
#include <catch2/catch.hpp>
#include <string>

#include "kpid/query/promql.h"
#include "promql_parse_util.h"

using namespace kpid;
using namespace kpid::query;
using namespace kpid::testing;

namespace {

// The canonical text parses back to itself.
void round_trips(const std::string& q) {
  const std::string once = canon(q);
  CHECK(canon(once) == once);
}

}  // namespace

TEST_CASE("promql: subqueries", "[promql][subquery]") {
  CHECK(canon("foo[5m:1m]") == "foo[5m:1m]");
  CHECK(canon("foo[5m:]") == "foo[5m:]");
  CHECK(canon("rate(foo[5m])[30m:1m]") == "rate(foo[5m])[30m:1m]");
  CHECK(canon("max_over_time(rate(foo[5m])[30m:1m])") == "max_over_time(rate(foo[5m])[30m:1m])");
  CHECK(canon("(a + b)[5m:1m]") == "(a + b)[5m:1m]");
  CHECK(canon("foo[5m:1m] offset 1m") == "foo[5m:1m] offset 1m");
  CHECK(canon("foo[5m:1m] offset -1m") == "foo[5m:1m] offset -1m");
  CHECK(canon("foo offset 5m[10m:1m]") == "foo offset 5m[10m:1m]");
  CHECK(canon("min_over_time(sum_over_time(x[1m:20s])[1m:30s])") ==
        "min_over_time(sum_over_time(x[1m:20s])[1m:30s])");
  CHECK(canon("foo[1m0s:30s]") == "foo[1m:30s]");
  CHECK(type_of("foo[5m:1m]") == ValueType::kMatrix);
  CHECK(type_of("rate(foo[5m:1m])") == ValueType::kVector);
  CHECK(type_of("rate((foo[5m:1m]))") == ValueType::kVector);
  round_trips("sum_over_time((a or b)[1h:5m] @ 100 offset 1m)");
  round_trips("foo @ start()[5m:1m] @ end()");
}

TEST_CASE("promql: subquery errors", "[promql][subquery][errors]") {
  CHECK(error("x[5m][10m:1m]") ==
        "1:1: parse error: subquery is only allowed on instant vector, got matrix instead");
  CHECK(error("x[5m:1m][10m:2m]") ==
        "1:1: parse error: subquery is only allowed on instant vector, got matrix instead");
  CHECK(error("x[5m:0s]") == "1:6: parse error: duration must be greater than 0");
  CHECK(error("x[5m:-1m]") ==
        "1:6: parse error: unexpected <op:-> in subquery selector, expected duration or \"]\"");
  CHECK(error("x[5m:1m") == "1:8: parse error: unclosed left bracket");
  CHECK(error("x[5m:1m:]") == "1:8: parse error: unexpected colon ':'");
  CHECK(error("x offset 5m[10m]") == "1:12: parse error: no offset modifiers allowed before range");
  CHECK(error("x[5m:1m] offset 1m offset 2m") ==
        "1:1: parse error: offset may not be set multiple times");
  CHECK(error("x[5m:1m] * 2") ==
        "1:1: parse error: binary expression must contain only scalar and instant vector types");
}

TEST_CASE("promql: the @ modifier", "[promql][at]") {
  CHECK(canon("foo @ 100") == "foo @ 100");
  CHECK(canon("foo @ 100.5") == "foo @ 100.5");
  CHECK(canon("foo @ 1.0005") == "foo @ 1.001");  // milliseconds, rounded
  CHECK(canon("foo @ -100") == "foo @ -100");
  CHECK(canon("foo @ - 5") == "foo @ -5");
  CHECK(canon("foo @ +5") == "foo @ 5");
  CHECK(canon("foo @ 0x10") == "foo @ 16");
  CHECK(canon("foo @ start()") == "foo @ start()");
  CHECK(canon("foo @ end()") == "foo @ end()");
  // Either order with offset; printed @ first.
  CHECK(canon("foo offset 5m @ 100") == "foo @ 100 offset 5m");
  CHECK(canon("foo @ 100 offset 5m") == "foo @ 100 offset 5m");
  CHECK(canon("foo[5m] @ 100 offset 1m") == "foo[5m] @ 100 offset 1m");
  CHECK(canon("foo @ 100 [10m:1m]") == "foo @ 100[10m:1m]");
  CHECK(canon("rate(foo[5m] @ end())") == "rate(foo[5m] @ end())");
  CHECK(type_of("foo[5m] @ 100") == ValueType::kMatrix);
}

TEST_CASE("promql: @ modifier errors", "[promql][at][errors]") {
  CHECK(error("x @ 100 [5m]") == "1:9: parse error: no @ modifiers allowed before range");
  CHECK(error("x @ 100 @ 200") == "1:1: parse error: @ <timestamp> may not be set multiple times");
  CHECK(error("x @ 1 offset 1m @ 2") ==
        "1:1: parse error: @ <timestamp> may not be set multiple times");
  CHECK(error("x @ start() @ end()") ==
        "1:1: parse error: @ <timestamp> may not be set multiple times");
  CHECK(error("sum(x) @ 100") ==
        "1:1: parse error: @ modifier must be preceded by an instant vector selector or range "
        "vector selector or a subquery");
  CHECK(error("1 @ 100") ==
        "1:1: parse error: @ modifier must be preceded by an instant vector selector or range "
        "vector selector or a subquery");
  CHECK(error("x @ Inf") == "1:1: parse error: timestamp out of bounds for @ modifier: +Inf");
  CHECK(error("x @ NaN") == "1:1: parse error: timestamp out of bounds for @ modifier: NaN");
  CHECK(error("x @ 1e30") ==
        "1:1: parse error: timestamp out of bounds for @ modifier: "
        "1000000000000000019884624838656.000000");
  CHECK(error("x @ start") ==
        "1:10: parse error: unexpected end of input in @, expected timestamp");
  CHECK(error("x @ foo()") ==
        "1:5: parse error: unexpected identifier \"foo\" in @, expected timestamp");
  CHECK(error("x @ \"1\"") ==
        "1:5: parse error: unexpected string \"\\\"1\\\"\" in @, expected timestamp");
}

TEST_CASE("promql: set operators and their precedence", "[promql][setops]") {
  CHECK(canon("a and b") == "(a and b)");
  CHECK(canon("a or b and c") == "(a or (b and c))");
  CHECK(canon("a and b or c") == "((a and b) or c)");
  CHECK(canon("a or b unless c") == "(a or (b unless c))");
  CHECK(canon("a and b unless c") == "((a and b) unless c)");
  CHECK(canon("a > b and c") == "((a > b) and c)");
  CHECK(canon("a and b > c") == "(a and (b > c))");
  CHECK(canon("a AND on(i) b") == "(a and on(i) b)");
  CHECK(canon("a unless ignoring(j) b") == "(a unless ignoring(j) b)");
  CHECK(type_of("a or b") == ValueType::kVector);
}

TEST_CASE("promql: set operator errors", "[promql][setops][errors]") {
  CHECK(error("1 and 1") ==
        "1:1: parse error: set operator \"and\" not allowed in binary scalar expression");
  CHECK(error("x and 1") ==
        "1:1: parse error: set operator \"and\" not allowed in binary scalar expression");
  CHECK(error("1 or x") ==
        "1:1: parse error: set operator \"or\" not allowed in binary scalar expression");
  CHECK(error("x and on(a) group_left(b) y") ==
        "1:1: parse error: no grouping allowed for \"and\" operation");
  CHECK(error("x or ignoring(a) group_right y") ==
        "1:1: parse error: no grouping allowed for \"or\" operation");
  CHECK(error("x and bool y") ==
        "1:3: parse error: bool modifier can only be used on comparison operators");
  CHECK(error("x and y[5m]") ==
        "1:7: parse error: binary expression must contain only scalar and instant vector types");
}

TEST_CASE("promql: group_left and group_right", "[promql][matching]") {
  CHECK(canon("a * on(i) group_left(v) b") == "(a * on(i) group_left(v) b)");
  CHECK(canon("a * on(i) group_left b") == "(a * on(i) group_left() b)");
  CHECK(canon("a / ignoring(x) group_right(v, w) b") == "(a / ignoring(x) group_right(v, w) b)");
  CHECK(canon("a == bool on(i) group_left(v) b") == "(a == bool on(i) group_left(v) b)");
  CHECK(canon("a * on(i) GROUP_LEFT(v) b") == "(a * on(i) group_left(v) b)");
  CHECK(error("x * group_left y") == "1:5: parse error: unexpected <group_left>");
  CHECK(error("x * on(a) group_left(a) y") ==
        "1:3: parse error: label \"a\" must not occur in ON and GROUP clause at once");
  CHECK(error("x + on(a) group_left(b) 1") ==
        "1:1: parse error: vector matching only allowed between instant vectors");
  // With a scalar side and no matching labels, Prometheus drops the matching.
  CHECK(canon("x + on() group_left(b) 1") == "(x + on() 1)");
}

TEST_CASE("promql: comments and literals", "[promql][literals]") {
  CHECK(canon("1 # comment") == "1");
  CHECK(canon("# leading\nfoo # after\n + # between\n bar") == "(foo + bar)");
  CHECK(canon("sum by (job) # a comment\n (x)") == "sum by (job) (x)");
  CHECK(canon("x{a='b\\n'} # c") == "x{a=\"b\\n\"}");
  CHECK(canon("x{a=`raw\\n`}") == "x{a=\"raw\\\\n\"}");
  CHECK(canon("x{a=\"\\u00e9\"}") == "x{a=\"é\"}");
  CHECK(canon("0x1F") == "31");
  CHECK(canon("1e3") == "1000");
  CHECK(canon("-Inf") == "-Inf");
  CHECK(canon("nan") == "NaN");
  CHECK(canon("foo[1h30m]") == "foo[1h30m]");
  CHECK(canon("foo[1m0s]") == "foo[1m]");
  {
    auto r = parse_promql("foo[1y1w]");
    REQUIRE(r.is_ok());
    CHECK(std::get<MatrixSelector>((*r)->node).range == (365 + 7) * 86'400'000LL);
  }
  CHECK(canon("foo[90s]") == "foo[1m30s]");
  CHECK(canon("foo offset 1w") == "foo offset 1w");
}
