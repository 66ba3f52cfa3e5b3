// PromQL's names (types, operators, functions) and the formatting of a parsed expression back
// to text.
#include <algorithm>
#include <cmath>
#include <string>
#include <variant>

#include "kpid/core/labels.h"
#include "kpid/query/promql.h"
#include "kpid/query/selector.h"
#include "promql_lexer.h"

namespace kpid::query {

namespace detail {

const std::vector<FunctionInfo>& functions() {
  using enum ValueType;
  static const std::vector<FunctionInfo> kFunctions = {
      {Function::kAvgOverTime, "avg_over_time", {kMatrix}, kVector},
      {Function::kMinOverTime, "min_over_time", {kMatrix}, kVector},
      {Function::kMaxOverTime, "max_over_time", {kMatrix}, kVector},
      {Function::kSumOverTime, "sum_over_time", {kMatrix}, kVector},
      {Function::kCountOverTime, "count_over_time", {kMatrix}, kVector},
      {Function::kStddevOverTime, "stddev_over_time", {kMatrix}, kVector},
      {Function::kStdvarOverTime, "stdvar_over_time", {kMatrix}, kVector},
      {Function::kQuantileOverTime, "quantile_over_time", {kScalar, kMatrix}, kVector},
      {Function::kLastOverTime, "last_over_time", {kMatrix}, kVector},
      {Function::kRate, "rate", {kMatrix}, kVector},
      {Function::kIncrease, "increase", {kMatrix}, kVector},
      {Function::kAbs, "abs", {kVector}, kVector},
      {Function::kScalar, "scalar", {kVector}, kScalar},
      {Function::kVector, "vector", {kScalar}, kVector},
      {Function::kTime, "time", {}, kScalar},
      {Function::kIrate, "irate", {kMatrix}, kVector},
      {Function::kDelta, "delta", {kMatrix}, kVector},
      {Function::kIdelta, "idelta", {kMatrix}, kVector},
      {Function::kDeriv, "deriv", {kMatrix}, kVector},
      {Function::kPredictLinear, "predict_linear", {kMatrix, kScalar}, kVector},
      {Function::kHoltWinters, "holt_winters", {kMatrix, kScalar, kScalar}, kVector},
      {Function::kDoubleExponentialSmoothing,
       "double_exponential_smoothing",
       {kMatrix, kScalar, kScalar},
       kVector},
      {Function::kChanges, "changes", {kMatrix}, kVector},
      {Function::kResets, "resets", {kMatrix}, kVector},
      {Function::kPresentOverTime, "present_over_time", {kMatrix}, kVector},
      {Function::kMadOverTime, "mad_over_time", {kMatrix}, kVector},
      {Function::kAbsentOverTime, "absent_over_time", {kMatrix}, kVector},
      {Function::kAbsent, "absent", {kVector}, kVector},
      {Function::kHistogramQuantile, "histogram_quantile", {kScalar, kVector}, kVector},
      {Function::kLabelReplace,
       "label_replace",
       {kVector, kString, kString, kString, kString},
       kVector},
      {Function::kLabelJoin, "label_join", {kVector, kString, kString, kString}, kVector, -1},
      {Function::kSort, "sort", {kVector}, kVector},
      {Function::kSortDesc, "sort_desc", {kVector}, kVector},
      {Function::kSortByLabel, "sort_by_label", {kVector, kString}, kVector, -1},
      {Function::kSortByLabelDesc, "sort_by_label_desc", {kVector, kString}, kVector, -1},
      {Function::kTimestamp, "timestamp", {kVector}, kVector},
      {Function::kMinute, "minute", {kVector}, kVector, 1},
      {Function::kHour, "hour", {kVector}, kVector, 1},
      {Function::kDayOfWeek, "day_of_week", {kVector}, kVector, 1},
      {Function::kDayOfMonth, "day_of_month", {kVector}, kVector, 1},
      {Function::kDayOfYear, "day_of_year", {kVector}, kVector, 1},
      {Function::kDaysInMonth, "days_in_month", {kVector}, kVector, 1},
      {Function::kMonth, "month", {kVector}, kVector, 1},
      {Function::kYear, "year", {kVector}, kVector, 1},
      {Function::kClamp, "clamp", {kVector, kScalar, kScalar}, kVector},
      {Function::kClampMin, "clamp_min", {kVector, kScalar}, kVector},
      {Function::kClampMax, "clamp_max", {kVector, kScalar}, kVector},
      {Function::kRound, "round", {kVector, kScalar}, kVector, 1},
      {Function::kCeil, "ceil", {kVector}, kVector},
      {Function::kFloor, "floor", {kVector}, kVector},
      {Function::kExp, "exp", {kVector}, kVector},
      {Function::kLn, "ln", {kVector}, kVector},
      {Function::kLog2, "log2", {kVector}, kVector},
      {Function::kLog10, "log10", {kVector}, kVector},
      {Function::kSqrt, "sqrt", {kVector}, kVector},
      {Function::kSgn, "sgn", {kVector}, kVector},
      {Function::kAcos, "acos", {kVector}, kVector},
      {Function::kAcosh, "acosh", {kVector}, kVector},
      {Function::kAsin, "asin", {kVector}, kVector},
      {Function::kAsinh, "asinh", {kVector}, kVector},
      {Function::kAtan, "atan", {kVector}, kVector},
      {Function::kAtanh, "atanh", {kVector}, kVector},
      {Function::kCos, "cos", {kVector}, kVector},
      {Function::kCosh, "cosh", {kVector}, kVector},
      {Function::kSin, "sin", {kVector}, kVector},
      {Function::kSinh, "sinh", {kVector}, kVector},
      {Function::kTan, "tan", {kVector}, kVector},
      {Function::kTanh, "tanh", {kVector}, kVector},
      {Function::kDeg, "deg", {kVector}, kVector},
      {Function::kRad, "rad", {kVector}, kVector},
      {Function::kPi, "pi", {}, kScalar},
  };
  return kFunctions;
}

const FunctionInfo& function_info(Function f) {
  for (const auto& i : functions()) {
    if (i.function == f) return i;
  }
  return functions().front();  // unreachable: every Function is listed
}

bool is_prometheus_function(std::string_view name) {
  static constexpr std::string_view kNames[] = {"histogram_count", "histogram_fraction",
                                                "histogram_sum"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

}  // namespace detail

const char* documented_type(ValueType type) {
  switch (type) {
    case ValueType::kScalar: return "scalar";
    case ValueType::kVector: return "instant vector";
    case ValueType::kMatrix: return "range vector";
    case ValueType::kString: return "string";
  }
  return "unknown";
}

const char* result_type_name(ValueType type) {
  switch (type) {
    case ValueType::kScalar: return "scalar";
    case ValueType::kVector: return "vector";
    case ValueType::kMatrix: return "matrix";
    case ValueType::kString: return "string";
  }
  return "unknown";
}

bool is_comparison(BinaryOp op) {
  switch (op) {
    case BinaryOp::kEq:
    case BinaryOp::kNe:
    case BinaryOp::kGt:
    case BinaryOp::kLt:
    case BinaryOp::kGe:
    case BinaryOp::kLe: return true;
    default: return false;
  }
}

const char* binary_op_text(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "+";
    case BinaryOp::kSub: return "-";
    case BinaryOp::kMul: return "*";
    case BinaryOp::kDiv: return "/";
    case BinaryOp::kMod: return "%";
    case BinaryOp::kPow: return "^";
    case BinaryOp::kEq: return "==";
    case BinaryOp::kNe: return "!=";
    case BinaryOp::kGt: return ">";
    case BinaryOp::kLt: return "<";
    case BinaryOp::kGe: return ">=";
    case BinaryOp::kLe: return "<=";
    case BinaryOp::kAnd: return "and";
    case BinaryOp::kOr: return "or";
    case BinaryOp::kUnless: return "unless";
    case BinaryOp::kAtan2: return "atan2";
  }
  return "?";
}

bool is_set_operator(BinaryOp op) {
  return op == BinaryOp::kAnd || op == BinaryOp::kOr || op == BinaryOp::kUnless;
}

const char* aggregate_op_name(AggregateOp op) {
  switch (op) {
    case AggregateOp::kSum: return "sum";
    case AggregateOp::kAvg: return "avg";
    case AggregateOp::kMin: return "min";
    case AggregateOp::kMax: return "max";
    case AggregateOp::kCount: return "count";
    case AggregateOp::kGroup: return "group";
    case AggregateOp::kStddev: return "stddev";
    case AggregateOp::kStdvar: return "stdvar";
    case AggregateOp::kTopk: return "topk";
    case AggregateOp::kBottomk: return "bottomk";
    case AggregateOp::kQuantile: return "quantile";
    case AggregateOp::kCountValues: return "count_values";
    case AggregateOp::kLimitk: return "limitk";
    case AggregateOp::kLimitRatio: return "limit_ratio";
  }
  return "?";
}

namespace {

// " @ <seconds>" / " @ start()" / " @ end()" then " offset <duration>", as Prometheus prints them.
void format_modifiers(std::string& out, const AtModifier& at, bool has_offset, DurationMs offset) {
  switch (at.kind) {
    case AtModifier::Kind::kNone: break;
    case AtModifier::Kind::kTimestamp: {
      // Milliseconds as seconds with exactly the digits needed: 1.5, 100, -0.001.
      const TimestampMs t = at.time;
      const uint64_t mag = t < 0 ? ~static_cast<uint64_t>(t) + 1 : static_cast<uint64_t>(t);
      out += " @ ";
      if (t < 0) out.push_back('-');
      out += std::to_string(mag / 1000);
      if (uint64_t ms = mag % 1000; ms != 0) {
        std::string frac = std::to_string(ms + 1000).substr(1);
        while (frac.back() == '0') frac.pop_back();
        out += "." + frac;
      }
      break;
    }
    case AtModifier::Kind::kStart: out += " @ start()"; break;
    case AtModifier::Kind::kEnd: out += " @ end()"; break;
  }
  if (has_offset) out += " offset " + format_duration(offset);
}

void format_selector(std::string& out, const VectorSelector& vs, const DurationMs* range) {
  size_t first = 0;
  if (!vs.matchers.empty() && vs.matchers[0].name() == kMetricNameLabel &&
      vs.matchers[0].type() == MatchType::kEqual) {
    out += vs.matchers[0].value();
    first = 1;
  }
  if (first < vs.matchers.size() || first == 0) {
    out.push_back('{');
    for (size_t i = first; i < vs.matchers.size(); ++i) {
      if (i > first) out += ", ";
      out += vs.matchers[i].to_string();
    }
    out.push_back('}');
  }
  if (range != nullptr) out += "[" + format_duration(*range) + "]";
  format_modifiers(out, vs.at, vs.has_offset, vs.offset);
}

void format_to(std::string& out, const Expr& e);

void format_labels(std::string& out, const std::vector<std::string>& labels) {
  out.push_back('(');
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ", ";
    out += labels[i];
  }
  out.push_back(')');
}

struct Formatter {
  std::string& out;
  void operator()(const NumberLiteral& n) {
    // Not "+Inf": read back, that sign is a unary operator, and (+Inf ^ 2) would be +(Inf ^ 2).
    if (std::isinf(n.value) && n.value > 0) {
      out += "Inf";
    } else {
      append_prom_float(out, n.value);
    }
  }
  void operator()(const StringLiteral& n) { append_quoted(out, n.value); }
  void operator()(const VectorSelector& n) { format_selector(out, n, nullptr); }
  void operator()(const MatrixSelector& n) { format_selector(out, n.selector, &n.range); }
  void operator()(const UnaryExpr& n) {
    out += n.negate ? "(-" : "(+";
    // "-1" would read back as the literal -1, not a unary minus: a literal operand (written
    // "-(1)") keeps its parentheses.
    const Expr* operand = n.operand.get();
    while (const auto* p = std::get_if<ParenExpr>(&operand->node)) operand = p->expr.get();
    const bool literal = std::holds_alternative<NumberLiteral>(operand->node);
    if (literal) out.push_back('(');
    format_to(out, *n.operand);
    if (literal) out.push_back(')');
    out.push_back(')');
  }
  void operator()(const BinaryExpr& n) {
    out.push_back('(');
    format_to(out, *n.lhs);
    out += " ";
    out += binary_op_text(n.op);
    if (n.return_bool) out += " bool";
    if (n.explicit_matching) {
      out += n.on ? " on" : " ignoring";
      format_labels(out, n.matching_labels);
    }
    if (n.card == Cardinality::kManyToOne || n.card == Cardinality::kOneToMany) {
      out += n.card == Cardinality::kManyToOne ? " group_left" : " group_right";
      format_labels(out, n.include);
    }
    out += " ";
    format_to(out, *n.rhs);
    out.push_back(')');
  }
  void operator()(const Call& n) {
    out += function_name(n.function);
    out.push_back('(');
    for (size_t i = 0; i < n.args.size(); ++i) {
      if (i > 0) out += ", ";
      format_to(out, *n.args[i]);
    }
    out.push_back(')');
  }
  void operator()(const AggregateExpr& n) {
    out += aggregate_op_name(n.op);
    if (n.without || !n.grouping.empty()) {
      out += n.without ? " without " : " by ";
      format_labels(out, n.grouping);
      out.push_back(' ');
    }
    out.push_back('(');
    if (n.param) {
      format_to(out, *n.param);
      out += ", ";
    }
    format_to(out, *n.expr);
    out.push_back(')');
  }
  void operator()(const ParenExpr& n) { format_to(out, *n.expr); }
  void operator()(const SubqueryExpr& n) {
    // Unary and binary expressions print their own parentheses; every other operand of a
    // well-typed subquery reads back as it is.
    format_to(out, *n.expr);
    out += "[" + format_duration(n.range) + ":";
    if (n.step != 0) out += format_duration(n.step);
    out.push_back(']');
    format_modifiers(out, n.at, n.has_offset, n.offset);
  }
};

void format_to(std::string& out, const Expr& e) { std::visit(Formatter{out}, e.node); }

}  // namespace

std::string format_expr(const Expr& expr) {
  std::string out;
  format_to(out, expr);
  return out;
}

const char* function_name(Function f) { return detail::function_info(f).name; }

bool is_range_function(Function f) {
  const auto& args = detail::function_info(f).args;
  return std::find(args.begin(), args.end(), ValueType::kMatrix) != args.end();
}

}  // namespace kpid::query
