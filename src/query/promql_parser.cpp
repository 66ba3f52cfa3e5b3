// PromQL subset parser: a hand-written precedence-climbing parser that follows Prometheus'
// grammar (promql/parser/generated_parser.y) over the lexer (promql_lexer.h), then the type
// check (promql_check.cpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

#include "kpid/query/promql.h"
#include "kpid/query/selector.h"
#include "promql_lexer.h"

namespace kpid::query {
namespace {

using detail::FunctionInfo;
using detail::functions;
using detail::is_alpha;
using detail::is_prometheus_function;
using detail::is_word_operator;
using detail::Lexer;
using detail::parse_number;
using detail::quote;
using detail::Tok;
using detail::Token;

// Binding power of binary operators, as in Prometheus: or < and/unless < comparisons < + - <
// * / % atan2 < ^.
constexpr int kPowPrecedence = 6;

// Prometheus holds durations in Go's time.Duration (int64 nanoseconds), about 292 years; the
// bound also keeps time arithmetic far from int64 overflow.
constexpr DurationMs kMaxDuration = std::numeric_limits<int64_t>::max() / 1'000'000;

int precedence(std::string_view op) {
  if (op == "or") return 1;
  if (op == "and" || op == "unless") return 2;
  if (op == "==" || op == "!=" || op == "<" || op == "<=" || op == ">" || op == ">=") return 3;
  if (op == "+" || op == "-") return 4;
  if (op == "*" || op == "/" || op == "%" || op == "atan2") return 5;
  if (op == "^") return kPowPrecedence;
  return 0;
}

std::optional<BinaryOp> binary_op(std::string_view op) {
  static constexpr std::pair<std::string_view, BinaryOp> kOps[] = {
      {"+", BinaryOp::kAdd},      {"-", BinaryOp::kSub}, {"*", BinaryOp::kMul},
      {"/", BinaryOp::kDiv},      {"%", BinaryOp::kMod}, {"^", BinaryOp::kPow},
      {"==", BinaryOp::kEq},      {"!=", BinaryOp::kNe}, {">", BinaryOp::kGt},
      {"<", BinaryOp::kLt},       {">=", BinaryOp::kGe}, {"<=", BinaryOp::kLe},
      {"and", BinaryOp::kAnd},    {"or", BinaryOp::kOr}, {"unless", BinaryOp::kUnless},
      {"atan2", BinaryOp::kAtan2}};
  for (const auto& [text, value] : kOps) {
    if (text == op) return value;
  }
  return std::nullopt;
}

// Deeper expressions are refused: parsing, checking, evaluating and destroying a tree recurse
// once per level, and a request must not be able to exhaust the stack.
constexpr size_t kMaxHeight = 256;

size_t child_height(const ExprPtr& e) { return e ? e->height : 0; }

size_t height_of(const Expr& e) {
  size_t h = 0;
  std::visit(
      [&](const auto& n) {
        using T = std::decay_t<decltype(n)>;
        if constexpr (std::is_same_v<T, UnaryExpr>) {
          h = child_height(n.operand);
        } else if constexpr (std::is_same_v<T, BinaryExpr>) {
          h = std::max(child_height(n.lhs), child_height(n.rhs));
        } else if constexpr (std::is_same_v<T, Call>) {
          for (const auto& a : n.args) h = std::max(h, child_height(a));
        } else if constexpr (std::is_same_v<T, AggregateExpr>) {
          h = std::max(child_height(n.param), child_height(n.expr));
        } else if constexpr (std::is_same_v<T, ParenExpr> || std::is_same_v<T, SubqueryExpr>) {
          h = child_height(n.expr);
        }
      },
      e.node);
  return h + 1;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text), lexer_(text) {}

  Result<ExprPtr> parse() {
    advance();
    if (tok_.type == Tok::kEnd) return lexer_.fail(tok_.pos, "no expression found in input");
    auto e = parse_expr(0);
    if (!e) return e;
    if (tok_.type != Tok::kEnd) {
      if (tok_.type == Tok::kRParen) {
        return lexer_.fail(tok_.pos, "unexpected right parenthesis ')'");
      }
      if (tok_.type == Tok::kRBracket) {
        return lexer_.fail(tok_.pos, "unexpected right bracket ']'");
      }
      return unexpected("", "");
    }
    if (auto st = detail::check_types(**e, lexer_); !st) return st;
    return e;
  }

 private:
  void advance(bool in_brackets = false) { tok_ = lexer_.lex(pos_, in_brackets), pos_ = tok_.end; }

  Token peek() const { return lexer_.lex(pos_, false); }

  // The current token described as Prometheus' parser does.
  std::string describe(const Token& t) const {
    switch (t.type) {
      case Tok::kEnd: return "end of input";
      case Tok::kNumber: return "number " + quote(t.text);
      case Tok::kDuration: return "duration " + quote(t.text);
      case Tok::kString: return "string " + quote(t.text);
      case Tok::kIdentifier: return "identifier " + quote(t.text);
      case Tok::kMetricIdentifier: return "metric identifier " + quote(t.text);
      case Tok::kKeyword: return "<" + t.lower + ">";
      case Tok::kAggregator: return "<aggr:" + t.lower + ">";
      case Tok::kOperator: return "<op:" + (t.lower.empty() ? std::string(t.text) : t.lower) + ">";
      default: return quote(t.text);
    }
  }

  // "unexpected X[ in CONTEXT][, expected WHAT]" at the current token.
  Status unexpected(std::string_view context, std::string_view expected) const {
    if (tok_.type == Tok::kError) return tok_.error;
    std::string m = "unexpected " + describe(tok_);
    if (!context.empty()) m += " in " + std::string(context);
    if (!expected.empty()) m += ", expected " + std::string(expected);
    return lexer_.fail(tok_.pos, m);
  }

  Status duration_out_of_range(const Token& t) const {
    return lexer_.fail(t.pos, "duration out of range: " + quote(t.text));
  }

  // A node, or an error when the tree would grow too deep.
  Result<ExprPtr> make(size_t position, auto node) const {
    auto e = std::make_unique<Expr>();
    e->node = std::move(node);
    e->position = position;
    e->height = height_of(*e);
    if (e->height > kMaxHeight) return too_deep(position);
    return e;
  }

  Status too_deep(size_t at) const {
    return lexer_.fail(
        at, "expression nested too deeply (more than " + std::to_string(kMaxHeight) + " levels)");
  }

  bool at_keyword(std::string_view kw) const {
    return tok_.type == Tok::kKeyword && tok_.lower == kw;
  }

  Result<ExprPtr> parse_expr(int min_precedence) {
    // Each nesting level (parentheses, arguments, unary operators) recurses here.
    if (++depth_ > kMaxHeight) return too_deep(tok_.pos);
    auto result = parse_binary(min_precedence);
    --depth_;
    return result;
  }

  Result<ExprPtr> parse_binary(int min_precedence) {
    auto lhs = parse_unary();
    if (!lhs) return lhs;
    while (tok_.type == Tok::kOperator) {
      const std::string op_text = tok_.lower.empty() ? std::string(tok_.text) : tok_.lower;
      const int prec = precedence(op_text);
      if (prec < min_precedence) break;
      const size_t op_pos = tok_.pos;
      const std::optional<BinaryOp> op = binary_op(op_text);
      if (!op) return lexer_.fail(op_pos, "operator \"" + op_text + "\" is not supported");
      BinaryExpr b;
      b.op = *op;
      advance();
      if (at_keyword("bool")) {
        b.return_bool = true;
        advance();
      }
      if (at_keyword("on") || at_keyword("ignoring")) {
        b.on = at_keyword("on");
        b.explicit_matching = true;
        advance();
        auto labels = parse_grouping_labels();
        if (!labels) return labels.status();
        b.matching_labels = std::move(labels).value();
        if (at_keyword("group_left") || at_keyword("group_right")) {
          b.card = at_keyword("group_left") ? Cardinality::kManyToOne : Cardinality::kOneToMany;
          advance();
          // The label list is optional: group_left alone copies no labels.
          if (tok_.type == Tok::kLParen) {
            auto include = parse_grouping_labels();
            if (!include) return include.status();
            b.include = std::move(include).value();
          }
        }
      }
      if (is_set_operator(b.op) && b.card == Cardinality::kOneToOne) {
        b.card = Cardinality::kManyToMany;
      }
      // ^ is right-associative; every other operator left-associative.
      auto rhs = parse_expr(b.op == BinaryOp::kPow ? prec : prec + 1);
      if (!rhs) return rhs;
      const size_t position = (*lhs)->position;
      b.op_position = op_pos;
      b.lhs = std::move(lhs).value();
      b.rhs = std::move(rhs).value();
      lhs = make(position, std::move(b));
      if (!lhs) return lhs;
    }
    return lhs;
  }

  Result<ExprPtr> parse_unary() {
    if (tok_.type == Tok::kOperator && (tok_.text == "-" || tok_.text == "+")) {
      const size_t pos = tok_.pos;
      const bool negate = tok_.text == "-";
      advance();
      // Unary minus binds like * (so -a^b is -(a^b)), as in Prometheus' grammar.
      auto operand = parse_expr(kPowPrecedence);
      if (!operand) return operand;
      if (auto* n = std::get_if<NumberLiteral>(&(*operand)->node)) {
        if (negate) n->value = -n->value;
        (*operand)->position = pos;
        return operand;
      }
      return make(pos, UnaryExpr{negate, std::move(operand).value()});
    }
    auto primary = parse_primary();
    if (!primary) return primary;
    return parse_postfix(std::move(primary).value());
  }

  // Range selectors `[5m]`, subqueries `[5m:1m]`, `offset 5m` and `@` after an expression.
  Result<ExprPtr> parse_postfix(ExprPtr e) {
    while (true) {
      if (tok_.type == Tok::kLBracket) {
        auto next = parse_bracket(std::move(e));
        if (!next) return next;
        e = std::move(next).value();
        continue;
      }
      if (at_keyword("offset")) {
        advance();
        bool negative = false;
        if (tok_.type == Tok::kOperator && tok_.text == "-") {
          negative = true;
          advance();
        }
        if (tok_.type != Tok::kDuration) return unexpected("offset", "duration");
        const DurationMs offset = *parse_duration(tok_.text);
        if (offset > kMaxDuration) return duration_out_of_range(tok_);
        auto target = modifier_target(*e);
        if (!target.offset) {
          return lexer_.fail(e->position,
                             "offset modifier must be preceded by an instant vector selector or "
                             "range vector selector or a subquery");
        }
        if (*target.has_offset) {
          return lexer_.fail(e->position, "offset may not be set multiple times");
        }
        *target.has_offset = true;
        *target.offset = negative ? -offset : offset;
        advance();
        continue;
      }
      if (tok_.type == Tok::kAt) {
        advance();
        auto at = parse_at();
        if (!at) return at.status();
        auto target = modifier_target(*e);
        if (!target.at) {
          return lexer_.fail(e->position,
                             "@ modifier must be preceded by an instant vector selector or range "
                             "vector selector or a subquery");
        }
        if (target.at->present()) {
          return lexer_.fail(e->position, "@ <timestamp> may not be set multiple times");
        }
        if (at->kind == AtModifier::Kind::kTimestamp && !at_in_bounds_) {
          return lexer_.fail(e->position,
                             "timestamp out of bounds for @ modifier: " + go_float_f(at_seconds_));
        }
        *target.at = *at;
        continue;
      }
      return e;
    }
  }

  // Where `offset` and `@` go on an expression: a selector's, a range selector's selector's or a
  // subquery's; null pointers for other expressions.
  struct ModifierTarget {
    DurationMs* offset = nullptr;
    bool* has_offset = nullptr;
    AtModifier* at = nullptr;
  };
  static ModifierTarget modifier_target(Expr& e) {
    VectorSelector* vs = std::get_if<VectorSelector>(&e.node);
    if (auto* ms = std::get_if<MatrixSelector>(&e.node)) vs = &ms->selector;
    if (vs != nullptr) return {&vs->offset, &vs->has_offset, &vs->at};
    if (auto* sq = std::get_if<SubqueryExpr>(&e.node)) {
      return {&sq->offset, &sq->has_offset, &sq->at};
    }
    return {};
  }

  // Go's %f: six decimals, "+Inf", "-Inf", "NaN".
  static std::string go_float_f(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[400];
    std::snprintf(buf, sizeof buf, "%f", v);
    return buf;
  }

  // The value of the current number token (Inf and NaN in any case, hex, octal, decimals).
  Result<double> number_value() {
    if (tok_.lower == "inf") return std::numeric_limits<double>::infinity();
    if (tok_.lower == "nan") return std::numeric_limits<double>::quiet_NaN();
    auto n = parse_number(tok_.text);
    if (!n)
      return lexer_.fail(tok_.pos, "error parsing number: invalid syntax " + quote(tok_.text));
    return *n;
  }

  // After '@': a number of seconds (with an optional sign), start() or end().
  Result<AtModifier> parse_at() {
    AtModifier at;
    if (tok_.type == Tok::kIdentifier && (tok_.text == "start" || tok_.text == "end")) {
      at.kind = tok_.text == "start" ? AtModifier::Kind::kStart : AtModifier::Kind::kEnd;
      advance();
      if (tok_.type != Tok::kLParen) return unexpected("@", "timestamp");
      advance();
      if (tok_.type != Tok::kRParen) return unexpected("@", "\")\"");
      advance();
      return at;
    }
    double sign = 1;
    if (tok_.type == Tok::kOperator && (tok_.text == "-" || tok_.text == "+")) {
      sign = tok_.text == "-" ? -1 : 1;
      advance();
    }
    if (tok_.type != Tok::kNumber) return unexpected("@", "timestamp");
    auto number = number_value();
    if (!number) return number.status();
    const double v = *number * sign;
    advance();
    // Prometheus refuses what does not fit int64 seconds; the time is kept in ms, bounded far
    // beyond any stored sample so time arithmetic cannot overflow.
    constexpr double kTwo63 = 9223372036854775808.0;
    at_seconds_ = v;
    at_in_bounds_ = v < kTwo63 && v > -kTwo63;  // false for NaN too
    at.kind = AtModifier::Kind::kTimestamp;
    constexpr double kMaxAtMs = static_cast<double>(TimestampMs{1} << 61);
    if (at_in_bounds_) {
      at.time = static_cast<TimestampMs>(std::clamp(std::round(v * 1000), -kMaxAtMs, kMaxAtMs));
    }
    return at;
  }

  // '[' range ']' or '[' range ':' [step] ']' after `e`, at '['.
  Result<ExprPtr> parse_bracket(ExprPtr e) {
    const size_t open = tok_.pos;
    advance(true);
    if (tok_.type == Tok::kEnd) return lexer_.fail(tok_.pos, "unclosed left bracket");
    if (tok_.type != Tok::kDuration) return unexpected("subquery or range selector", "duration");
    const Token duration = tok_;
    const DurationMs range = *parse_duration(duration.text);
    advance(true);
    if (tok_.type == Tok::kColon) {
      advance(true);
      DurationMs step = 0;
      if (tok_.type == Tok::kDuration) {
        const Token step_token = tok_;
        step = *parse_duration(step_token.text);
        if (step <= 0) return lexer_.fail(step_token.pos, "duration must be greater than 0");
        if (step > kMaxDuration) return duration_out_of_range(step_token);
        advance(true);
      } else if (tok_.type != Tok::kRBracket && tok_.type != Tok::kEnd) {
        return unexpected("subquery selector", "duration or \"]\"");
      }
      if (tok_.type == Tok::kEnd) return lexer_.fail(tok_.pos, "unclosed left bracket");
      if (tok_.type == Tok::kColon) return lexer_.fail(tok_.pos, "unexpected colon ':'");
      if (tok_.type != Tok::kRBracket) return unexpected("subquery selector", "\"]\"");
      if (range <= 0) return lexer_.fail(duration.pos, "duration must be greater than 0");
      if (range > kMaxDuration) return duration_out_of_range(duration);
      advance();
      const size_t position = e->position;
      SubqueryExpr sq;
      sq.expr = std::move(e);
      sq.range = range;
      sq.step = step;
      return make(position, std::move(sq));
    }
    if (tok_.type == Tok::kEnd) return lexer_.fail(tok_.pos, "unclosed left bracket");
    if (tok_.type != Tok::kRBracket) return unexpected("subquery or range", "\":\" or \"]\"");
    auto* vs = std::get_if<VectorSelector>(&e->node);
    if (vs == nullptr) return lexer_.fail(open, "ranges only allowed for vector selectors");
    if (vs->has_offset) return lexer_.fail(open, "no offset modifiers allowed before range");
    if (vs->at.present()) return lexer_.fail(open, "no @ modifiers allowed before range");
    if (range <= 0) return lexer_.fail(duration.pos, "duration must be greater than 0");
    if (range > kMaxDuration) return duration_out_of_range(duration);
    advance();
    return make(e->position, MatrixSelector{std::move(*vs), range});
  }

  Result<ExprPtr> parse_primary() {
    const size_t pos = tok_.pos;
    switch (tok_.type) {
      case Tok::kNumber: {
        auto v = number_value();
        if (!v) return v.status();
        advance();
        return make(pos, NumberLiteral{*v});
      }
      case Tok::kString: {
        std::string value = std::move(tok_.lower);
        advance();
        return make(pos, StringLiteral{std::move(value)});
      }
      case Tok::kLParen: {
        advance();
        if (tok_.type == Tok::kEnd) return lexer_.fail(tok_.pos, "unclosed left parenthesis");
        auto inner = parse_expr(0);
        if (!inner) return inner;
        if (tok_.type == Tok::kEnd) return lexer_.fail(tok_.pos, "unclosed left parenthesis");
        if (tok_.type != Tok::kRParen) return unexpected("", "\")\"");
        advance();
        return make(pos, ParenExpr{std::move(inner).value()});
      }
      case Tok::kAggregator: return parse_aggregate();
      case Tok::kIdentifier:
        if (peek().type == Tok::kLParen) return parse_call();
        return parse_selector();
      case Tok::kMetricIdentifier:
      case Tok::kLBrace: return parse_selector();
      case Tok::kRParen: return lexer_.fail(pos, "unexpected right parenthesis ')'");
      default: return unexpected("", "");
    }
  }

  Result<ExprPtr> parse_selector() {
    const size_t pos = tok_.pos;
    auto sel = detail::parse_selector_at(s_, pos);
    if (!sel) return sel.status();
    pos_ = sel->end;
    advance();
    VectorSelector vs;
    vs.matchers = std::move(sel->matchers);
    if (s_[pos] != '{' && !vs.matchers.empty()) vs.name = vs.matchers.front().value();
    return make(pos, std::move(vs));
  }

  Result<ExprPtr> parse_call() {
    const size_t pos = tok_.pos;
    const std::string name(tok_.text);
    const FunctionInfo* fn = nullptr;
    for (const auto& i : functions()) {
      if (name == i.name) fn = &i;
    }
    if (fn == nullptr) {
      if (is_prometheus_function(name)) {
        return lexer_.fail(pos, "function \"" + name + "\" is not supported");
      }
      return lexer_.fail(pos, "unknown function with name \"" + name + "\"");
    }
    advance();  // the name; tok_ is now '('
    auto args = parse_call_args();
    if (!args) return args.status();
    return make(pos, Call{fn->function, std::move(args).value()});
  }

  // '(' [expr {',' expr}] ')', at '('.
  Result<std::vector<ExprPtr>> parse_call_args() {
    advance();
    std::vector<ExprPtr> args;
    if (tok_.type == Tok::kRParen) {
      advance();
      return args;
    }
    while (true) {
      if (tok_.type == Tok::kEnd) return lexer_.fail(tok_.pos, "unclosed left parenthesis");
      auto arg = parse_expr(0);
      if (!arg) return arg.status();
      args.push_back(std::move(arg).value());
      if (tok_.type == Tok::kComma) {
        const size_t comma = tok_.pos;
        advance();
        if (tok_.type == Tok::kRParen) {
          return lexer_.fail(comma, "trailing commas not allowed in function call args");
        }
        continue;
      }
      if (tok_.type == Tok::kRParen) {
        advance();
        return args;
      }
      if (tok_.type == Tok::kEnd) return lexer_.fail(tok_.pos, "unclosed left parenthesis");
      return unexpected("function call", "\",\" or \")\"");
    }
  }

  Result<ExprPtr> parse_aggregate() {
    const size_t pos = tok_.pos;
    const std::string name = tok_.lower;
    static constexpr std::pair<std::string_view, AggregateOp> kOps[] = {
        {"sum", AggregateOp::kSum},           {"avg", AggregateOp::kAvg},
        {"min", AggregateOp::kMin},           {"max", AggregateOp::kMax},
        {"count", AggregateOp::kCount},       {"group", AggregateOp::kGroup},
        {"stddev", AggregateOp::kStddev},     {"stdvar", AggregateOp::kStdvar},
        {"topk", AggregateOp::kTopk},         {"bottomk", AggregateOp::kBottomk},
        {"quantile", AggregateOp::kQuantile}, {"count_values", AggregateOp::kCountValues},
        {"limitk", AggregateOp::kLimitk},     {"limit_ratio", AggregateOp::kLimitRatio}};
    AggregateExpr agg;
    bool known = false;
    for (const auto& [text, op] : kOps) {
      if (text == name) {
        agg.op = op;
        known = true;
      }
    }
    if (!known) return lexer_.fail(pos, "aggregation \"" + name + "\" is not supported");
    // These take a parameter before the vector, as Prometheus' IsAggregatorWithParam.
    const bool with_param = agg.op == AggregateOp::kTopk || agg.op == AggregateOp::kBottomk ||
                            agg.op == AggregateOp::kQuantile ||
                            agg.op == AggregateOp::kCountValues || agg.op == AggregateOp::kLimitk ||
                            agg.op == AggregateOp::kLimitRatio;
    advance();
    bool grouped = false;
    auto grouping = [&]() -> Status {
      agg.without = at_keyword("without");
      advance();
      auto labels = parse_grouping_labels();
      if (!labels) return labels.status();
      agg.grouping = std::move(labels).value();
      grouped = true;
      return Status::ok();
    };
    if (at_keyword("by") || at_keyword("without")) {
      if (auto st = grouping(); !st) return st;
    }
    if (tok_.type != Tok::kLParen) return unexpected("aggregation", "");
    auto args = parse_call_args();
    if (!args) return args.status();
    if (!grouped && (at_keyword("by") || at_keyword("without"))) {
      if (auto st = grouping(); !st) return st;
    }
    if (args->empty()) return lexer_.fail(pos, "no arguments for aggregate expression provided");
    const size_t want = with_param ? 2 : 1;
    if (args->size() != want) {
      return lexer_.fail(pos,
                         "wrong number of arguments for aggregate expression provided, expected " +
                             std::to_string(want) + ", got " + std::to_string(args->size()));
    }
    if (with_param) agg.param = std::move((*args)[0]);
    agg.expr = std::move(args->back());
    return make(pos, std::move(agg));
  }

  // '(' [label {',' label} [',']] ')'.
  Result<std::vector<std::string>> parse_grouping_labels() {
    if (tok_.type != Tok::kLParen) return unexpected("grouping opts", "\"(\"");
    advance();
    std::vector<std::string> labels;
    while (true) {
      if (tok_.type == Tok::kRParen) {
        advance();
        return labels;
      }
      const bool word = tok_.type == Tok::kIdentifier || tok_.type == Tok::kKeyword ||
                        tok_.type == Tok::kAggregator ||
                        (tok_.type == Tok::kOperator && is_alpha(tok_.text[0])) ||
                        (tok_.type == Tok::kNumber && is_alpha(tok_.text[0]));
      if (!word) return unexpected("grouping opts", "label");
      labels.emplace_back(tok_.text);
      advance();
      if (tok_.type == Tok::kComma) {
        advance();
      } else if (tok_.type != Tok::kRParen) {
        return unexpected("grouping opts", "\",\" or \")\"");
      }
    }
  }

  std::string_view s_;
  Lexer lexer_;
  size_t pos_ = 0;
  size_t depth_ = 0;
  Token tok_;
  double at_seconds_ = 0;     // the last @ timestamp read, for the out-of-bounds message
  bool at_in_bounds_ = true;  // whether it fits int64 seconds
};

}  // namespace

Result<ExprPtr> parse_promql(std::string_view text) { return Parser(text).parse(); }

}  // namespace kpid::query
