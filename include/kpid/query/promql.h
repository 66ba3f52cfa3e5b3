#pragma once
// The PromQL kpid evaluates: its syntax tree and parser.
//
// Supported: number literals (1, 1.5, .5, 1e3, 0x1f, 0755 octal, Inf, NaN), string literals
// ('single', "double" with escapes, `raw`), # comments to the end of a line wherever whitespace
// may be, vector selectors (selector.h), range selectors `sel[5m]` (Prometheus durations such as
// 1h30m, 1m0s, 1y, 1w), subqueries `expr[30m:1m]` and `expr[30m:]` (nested too), `offset`
// (negative too) and the `@` modifier (`@ <unix seconds>`, `@ start()`, `@ end()`, either order
// with offset) on selectors, range selectors and subqueries, parentheses, unary + and -, binary
// + - * / % ^ == != > < >= <= (comparisons with optional `bool`) and the set operators and/or/
// unless, with Prometheus' precedence (^ binds tightest and is right-associative; unary minus
// binds like *; and/unless bind above or, below comparisons), vector matching with on(...) /
// ignoring(...) and group_left(...) / group_right(...), the functions of `Function` (every
// PromQL function for float samples; string arguments where Prometheus takes them) and the
// aggregations of `AggregateOp` with by (...) or without (...) before or after the arguments:
// sum, avg, min, max, count, group, stddev, stdvar, and with a parameter first topk(k, v),
// bottomk(k, v), quantile(φ, v), count_values("label", v), limitk(k, v), limit_ratio(r, v)
// (aggregations.cpp states their semantics).
// and atan2 (binding like *). Refused with a "not supported" parse error: the native-histogram
// functions.

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kpid/core/labels.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"

namespace kpid::query {

enum class ValueType { kScalar, kVector, kMatrix, kString };

// Prometheus' name for a type in messages: "scalar", "instant vector", "range vector", "string".
const char* documented_type(ValueType type);
// The API's resultType: "scalar", "vector", "matrix", "string".
const char* result_type_name(ValueType type);

enum class BinaryOp {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kEq,
  kNe,
  kGt,
  kLt,
  kGe,
  kLe,
  kAnd,
  kOr,
  kUnless,
  kAtan2,
};
bool is_comparison(BinaryOp op);
// and, or, unless.
bool is_set_operator(BinaryOp op);
const char* binary_op_text(BinaryOp op);

enum class AggregateOp {
  kSum,
  kAvg,
  kMin,
  kMax,
  kCount,
  kGroup,
  kStddev,
  kStdvar,
  kTopk,         // (scalar k, v)
  kBottomk,      // (scalar k, v)
  kQuantile,     // (scalar φ, v)
  kCountValues,  // (string label, v)
  kLimitk,       // (scalar k, v)
  kLimitRatio,   // (scalar r, v)
};
const char* aggregate_op_name(AggregateOp op);

enum class Function {
  kAvgOverTime,
  kMinOverTime,
  kMaxOverTime,
  kSumOverTime,
  kCountOverTime,
  kStddevOverTime,
  kStdvarOverTime,
  kQuantileOverTime,  // (scalar φ, range vector)
  kLastOverTime,
  kRate,
  kIncrease,
  kAbs,     // (instant vector)
  kScalar,  // (instant vector) -> scalar
  kVector,  // (scalar) -> instant vector
  kTime,    // () -> scalar
  // Appended (keep the order above stable for merges).
  kIrate,
  kDelta,
  kIdelta,
  kDeriv,
  kPredictLinear,               // (range vector, scalar t)
  kHoltWinters,                 // (range vector, scalar sf, scalar tf)
  kDoubleExponentialSmoothing,  // holt_winters' newer name
  kChanges,
  kResets,
  kPresentOverTime,
  kMadOverTime,
  kAbsentOverTime,
  kAbsent,
  kHistogramQuantile,  // (scalar φ, instant vector)
  kLabelReplace,       // (v, dst, replacement, src, regex)
  kLabelJoin,          // (v, dst, separator, src...)
  kSort,
  kSortDesc,
  kSortByLabel,  // (v, label...)
  kSortByLabelDesc,
  kTimestamp,
  kMinute,  // calendar functions: (instant vector), or () for vector(time())
  kHour,
  kDayOfWeek,
  kDayOfMonth,
  kDayOfYear,
  kDaysInMonth,
  kMonth,
  kYear,
  kClamp,     // (v, min, max)
  kClampMin,  // (v, min)
  kClampMax,  // (v, max)
  kRound,     // (v), (v, to_nearest)
  kCeil,
  kFloor,
  kExp,
  kLn,
  kLog2,
  kLog10,
  kSqrt,
  kSgn,
  kAcos,
  kAcosh,
  kAsin,
  kAsinh,
  kAtan,
  kAtanh,
  kCos,
  kCosh,
  kSin,
  kSinh,
  kTan,
  kTanh,
  kDeg,
  kRad,
  kPi,  // () -> scalar
};
const char* function_name(Function f);
// Whether `f` takes a range vector (one of its arguments).
bool is_range_function(Function f);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct NumberLiteral {
  double value = 0;
};
struct StringLiteral {
  std::string value;
};
// The `@` modifier: evaluate at a fixed time instead of each evaluation time.
struct AtModifier {
  enum class Kind { kNone, kTimestamp, kStart, kEnd };
  Kind kind = Kind::kNone;
  TimestampMs time = 0;  // kTimestamp: the time, in ms (the seconds rounded to ms)
  bool present() const { return kind != Kind::kNone; }
};

struct VectorSelector {
  std::vector<LabelMatcher> matchers;
  // The metric name when written before the braces (`foo{...}`; its matcher is matchers[0]),
  // else empty: Prometheus prints `{__name__="foo"}` as written.
  std::string name;
  DurationMs offset = 0;
  bool has_offset = false;
  AtModifier at;
};
struct MatrixSelector {
  VectorSelector selector;
  DurationMs range = 0;
};
struct UnaryExpr {
  bool negate = false;  // '-' (else '+')
  ExprPtr operand;
};
// Vector matching cardinality; set operators are always many-to-many.
enum class Cardinality { kOneToOne, kManyToOne, kOneToMany, kManyToMany };

struct BinaryExpr {
  BinaryOp op = BinaryOp::kAdd;
  bool return_bool = false;
  Cardinality card = Cardinality::kOneToOne;  // kManyToOne: group_left; kOneToMany: group_right
  std::vector<std::string> include;           // group_left/group_right's labels, copied from
                                              // the "one" side
  // Vector matching: on(labels) when `on`, else ignoring(labels) (empty by default, i.e. all
  // labels but __name__). `explicit_matching` records that on/ignoring was written.
  bool on = false;
  bool explicit_matching = false;
  std::vector<std::string> matching_labels;
  size_t op_position = 0;  // of the operator, for messages
  ExprPtr lhs;
  ExprPtr rhs;
};
struct Call {
  Function function = Function::kTime;
  std::vector<ExprPtr> args;
};
struct AggregateExpr {
  AggregateOp op = AggregateOp::kSum;
  bool without = false;
  std::vector<std::string> grouping;
  ExprPtr param;  // the first argument of topk, bottomk, quantile, count_values, limitk,
                  // limit_ratio; null for the others
  ExprPtr expr;
};
struct ParenExpr {
  ExprPtr expr;
};
// `expr[range:step]`: expr evaluated at every multiple of step in (t - offset - range,
// t - offset] (t the @ time if any), a range vector. step 0: the engine's default step.
struct SubqueryExpr {
  ExprPtr expr;
  DurationMs range = 0;
  DurationMs step = 0;
  DurationMs offset = 0;
  bool has_offset = false;
  AtModifier at;
};

struct Expr {
  std::variant<NumberLiteral, StringLiteral, VectorSelector, MatrixSelector, UnaryExpr, BinaryExpr,
               Call, AggregateExpr, ParenExpr, SubqueryExpr>
      node;
  size_t position = 0;  // byte offset in the query of the expression's first character
  size_t height = 1;    // levels in this subtree (1 for a leaf); the parser bounds it
  ValueType type = ValueType::kScalar;  // set by the parser's type check
};

// Parses and type-checks a query. Errors (invalid_argument) read like Prometheus':
// "LINE:COL: parse error: <what>", e.g. `1:5: parse error: unexpected identifier "bar"` or
// `1:6: parse error: expected type range vector in call to function "rate", got instant vector`.
Result<ExprPtr> parse_promql(std::string_view text);

// The canonical text of `expr` with every unary and binary expression in parentheses, e.g.
// "(1 + (2 * 3))"; for tests and logs.
std::string format_expr(const Expr& expr);

// Prometheus' canonical text of `expr` (its AST's String()), as /api/v1/format_query builds on:
// `sum by (job) (rate(x{a="b"}[5m] @ 100.000 offset 1d))`, `a / on (x) group_left (y) b`;
// matchers sorted, the metric name outside the braces only when written there, numbers as Go's
// %v (1e+06, +Inf), strings as Go's strconv.Quote, durations as Prometheus' (1h30m, 1d),
// parentheses as written.
std::string print_expr(const Expr& expr);
// Prometheus' pretty form (Pretty(0)): print_expr where it fits in 100 bytes, else the node is
// split over lines, its children indented two spaces a level (promql_print.cpp).
std::string pretty_expr(const Expr& expr);
// The AST as the JSON object Prometheus' /api/v1/parse_query answers (its translateAST), keys
// sorted as Go marshals them.
std::string expr_tree_json(const Expr& expr);

}  // namespace kpid::query
