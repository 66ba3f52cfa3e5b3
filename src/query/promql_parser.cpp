// PromQL subset parser: a hand-written lexer and precedence-climbing parser that follow
// Prometheus' lexer rules and grammar (promql/parser/lex.go, generated_parser.y), then a type
// check with Prometheus' messages (parse.go checkAST).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

#include "kpid/core/utf8.h"
#include "kpid/query/promql.h"
#include "kpid/query/selector.h"

namespace kpid::query {

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
  }
  return "?";
}

const char* aggregate_op_name(AggregateOp op) {
  switch (op) {
    case AggregateOp::kSum: return "sum";
    case AggregateOp::kAvg: return "avg";
    case AggregateOp::kMin: return "min";
    case AggregateOp::kMax: return "max";
    case AggregateOp::kCount: return "count";
  }
  return "?";
}

namespace {

struct FunctionInfo {
  Function function;
  const char* name;
  std::vector<ValueType> args;
  ValueType result;
};

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
  };
  return kFunctions;
}

const FunctionInfo& info(Function f) {
  for (const auto& i : functions()) {
    if (i.function == f) return i;
  }
  return functions().front();  // unreachable: every Function is listed
}

// Prometheus 2.x functions outside the subset, to refuse them as unsupported, not unknown.
bool is_prometheus_function(std::string_view name) {
  static constexpr std::string_view kNames[] = {"absent",
                                                "absent_over_time",
                                                "acos",
                                                "acosh",
                                                "asin",
                                                "asinh",
                                                "atan",
                                                "atanh",
                                                "ceil",
                                                "changes",
                                                "clamp",
                                                "clamp_max",
                                                "clamp_min",
                                                "cos",
                                                "cosh",
                                                "day_of_month",
                                                "day_of_week",
                                                "day_of_year",
                                                "days_in_month",
                                                "deg",
                                                "delta",
                                                "deriv",
                                                "exp",
                                                "floor",
                                                "histogram_count",
                                                "histogram_fraction",
                                                "histogram_quantile",
                                                "histogram_sum",
                                                "holt_winters",
                                                "hour",
                                                "idelta",
                                                "irate",
                                                "label_join",
                                                "label_replace",
                                                "ln",
                                                "log10",
                                                "log2",
                                                "minute",
                                                "month",
                                                "pi",
                                                "predict_linear",
                                                "present_over_time",
                                                "rad",
                                                "resets",
                                                "round",
                                                "sgn",
                                                "sin",
                                                "sinh",
                                                "sort",
                                                "sort_desc",
                                                "sqrt",
                                                "tan",
                                                "tanh",
                                                "timestamp",
                                                "year"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

// ---- lexer ----

enum class Tok {
  kEnd,
  kNumber,
  kDuration,
  kString,
  kIdentifier,
  kMetricIdentifier,
  kKeyword,     // by without on ignoring group_left group_right bool offset
  kAggregator,  // sum avg count min max and the unsupported ones
  kOperator,    // + - * / % ^ == != < <= > >= and the set operators and atan2
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kLBrace,
  kRBrace,
  kComma,
  kColon,
  kAt,
  kOther,  // a lone '=': valid only inside braces
  kError,  // `error` holds the complete message
};

struct Token {
  Tok type = Tok::kEnd;
  size_t pos = 0;
  size_t end = 0;
  std::string_view text;
  std::string lower;  // words: lower-cased (keywords are case-insensitive)
  Status error;
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_keyword(std::string_view w) {
  return w == "by" || w == "without" || w == "on" || w == "ignoring" || w == "group_left" ||
         w == "group_right" || w == "bool" || w == "offset";
}
bool is_aggregator(std::string_view w) {
  return w == "sum" || w == "avg" || w == "count" || w == "min" || w == "max" || w == "group" ||
         w == "stddev" || w == "stdvar" || w == "topk" || w == "bottomk" || w == "count_values" ||
         w == "quantile";
}
bool is_word_operator(std::string_view w) {
  return w == "and" || w == "or" || w == "unless" || w == "atan2";
}

std::string quote(std::string_view text) {
  std::string out;
  append_quoted(out, text);
  return out;
}

// A number as Go's strconv.ParseInt(s, 0, 64), falling back to ParseFloat, as PromQL does.
std::optional<double> parse_number(std::string_view s) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), v, 16);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return static_cast<double>(v);
  }
  if (std::all_of(s.begin(), s.end(), is_digit)) {
    const bool octal = s.size() > 1 && s[0] == '0';
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, octal ? 8 : 10);
    if (ec == std::errc() && p == s.data() + s.size()) return static_cast<double>(v);
    // Not octal after all, or too large for int64: read it as a float.
  }
  double d = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return d;
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : s_(text) {}

  // The token at or after `pos` (whitespace and # comments skipped). Inside brackets ':' is a
  // token of its own; elsewhere it may start a metric name.
  Token lex(size_t pos, bool in_brackets) const {
    pos = skip_space(pos);
    Token t;
    t.pos = pos;
    if (pos >= s_.size()) {
      t.type = Tok::kEnd;
      t.end = pos;
      return t;
    }
    const char c = s_[pos];
    const char c1 = pos + 1 < s_.size() ? s_[pos + 1] : '\0';
    auto single = [&](Tok type, size_t len) {
      t.type = type;
      t.end = pos + len;
      t.text = s_.substr(pos, len);
      return t;
    };
    if (is_digit(c) || (c == '.' && is_digit(c1))) return lex_number(pos);
    if (is_alpha(c) || (c == ':' && !in_brackets)) return lex_word(pos);
    switch (c) {
      case '"':
      case '\'':
      case '`': {
        auto str = detail::parse_string_at(s_, pos);
        if (!str) {
          t.type = Tok::kError;
          t.error = str.status();
          t.end = pos;
          return t;
        }
        t.type = Tok::kString;
        t.end = str->end;
        t.text = s_.substr(pos, t.end - pos);
        t.lower = std::move(str->value);  // the unquoted value
        return t;
      }
      case '(': return single(Tok::kLParen, 1);
      case ')': return single(Tok::kRParen, 1);
      case '[': return single(Tok::kLBracket, 1);
      case ']': return single(Tok::kRBracket, 1);
      case '{': return single(Tok::kLBrace, 1);
      case '}': return single(Tok::kRBrace, 1);
      case ',': return single(Tok::kComma, 1);
      case ':': return single(Tok::kColon, 1);
      case '@': return single(Tok::kAt, 1);
      case '+':
      case '-':
      case '*':
      case '/':
      case '%':
      case '^': return single(Tok::kOperator, 1);
      case '<':
      case '>': return single(Tok::kOperator, c1 == '=' ? 2 : 1);
      case '=':
        if (c1 == '=') return single(Tok::kOperator, 2);
        if (c1 == '~') return error(pos, "unexpected character after '=': '~'");
        return single(Tok::kOther, 1);
      case '!':
        if (c1 == '=') return single(Tok::kOperator, 2);
        return error(pos, "unexpected character after '!': " + describe_char(pos + 1));
      default: return error(pos, "unexpected character: " + describe_char(pos));
    }
  }

  // "LINE:COL: parse error: message" for a byte offset.
  Status fail(size_t at, const std::string& message) const {
    return detail::error_at(s_, at, "parse error: ", message);
  }

 private:
  size_t skip_space(size_t pos) const {
    while (pos < s_.size()) {
      if (is_space(s_[pos])) {
        ++pos;
      } else if (s_[pos] == '#') {
        while (pos < s_.size() && s_[pos] != '\n') ++pos;
      } else {
        break;
      }
    }
    return pos;
  }

  std::string describe_char(size_t at) const {
    if (at >= s_.size()) return "end of input";
    const size_t len = utf8_sequence_length(s_, at);
    return "'" + std::string(s_.substr(at, len == 0 ? 1 : len)) + "'";
  }

  Token error(size_t pos, const std::string& message) const {
    Token t;
    t.type = Tok::kError;
    t.pos = pos;
    t.end = pos;
    t.error = fail(pos, message);
    return t;
  }

  // Numbers: decimal, hex (0x..), octal (0...), fractions and exponents; a number followed
  // directly by letters is a duration (5m, 1h30m).
  Token lex_number(size_t pos) const {
    size_t i = pos;
    auto run = [&](auto pred) {
      while (i < s_.size() && pred(s_[i])) ++i;
    };
    auto hex = [](char c) {
      return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    };
    bool is_hex = false;
    if (s_[i] == '0' && i + 1 < s_.size() && (s_[i + 1] == 'x' || s_[i + 1] == 'X')) {
      is_hex = true;
      i += 2;
    }
    if (is_hex) {
      run(hex);
    } else {
      run(is_digit);
    }
    if (i < s_.size() && s_[i] == '.') {
      ++i;
      if (is_hex) {
        run(hex);
      } else {
        run(is_digit);
      }
    }
    if (!is_hex && i < s_.size() && (s_[i] == 'e' || s_[i] == 'E')) {
      ++i;
      if (i < s_.size() && (s_[i] == '+' || s_[i] == '-')) ++i;
      run(is_digit);
    }
    Token t;
    t.pos = pos;
    if (i < s_.size() && is_alnum(s_[i])) {
      // Not a number: maybe a duration. Take the whole run of digits, dots and letters.
      size_t j = pos;
      while (j < s_.size() && (is_alnum(s_[j]) || s_[j] == '.')) ++j;
      const std::string_view text = s_.substr(pos, j - pos);
      if (!parse_duration(text)) {
        return error(pos, "bad number or duration syntax: " + quote(text));
      }
      t.type = Tok::kDuration;
      t.end = j;
      t.text = text;
      return t;
    }
    t.type = Tok::kNumber;
    t.end = i;
    t.text = s_.substr(pos, i - pos);
    return t;
  }

  Token lex_word(size_t pos) const {
    size_t i = pos;
    bool colon = false;
    while (i < s_.size() && (is_alnum(s_[i]) || s_[i] == ':')) {
      colon = colon || s_[i] == ':';
      ++i;
    }
    Token t;
    t.pos = pos;
    t.end = i;
    t.text = s_.substr(pos, i - pos);
    t.lower = lower(t.text);
    if (colon) {
      t.type = Tok::kMetricIdentifier;
    } else if (t.lower == "inf" || t.lower == "nan") {
      t.type = Tok::kNumber;
    } else if (is_keyword(t.lower)) {
      t.type = Tok::kKeyword;
    } else if (is_aggregator(t.lower)) {
      t.type = Tok::kAggregator;
    } else if (is_word_operator(t.lower)) {
      t.type = Tok::kOperator;
    } else {
      t.type = Tok::kIdentifier;
    }
    return t;
  }

  std::string_view s_;
};

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
      {"+", BinaryOp::kAdd}, {"-", BinaryOp::kSub}, {"*", BinaryOp::kMul}, {"/", BinaryOp::kDiv},
      {"%", BinaryOp::kMod}, {"^", BinaryOp::kPow}, {"==", BinaryOp::kEq}, {"!=", BinaryOp::kNe},
      {">", BinaryOp::kGt},  {"<", BinaryOp::kLt},  {">=", BinaryOp::kGe}, {"<=", BinaryOp::kLe}};
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
        } else if constexpr (std::is_same_v<T, AggregateExpr> || std::is_same_v<T, ParenExpr>) {
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
    if (auto st = check(**e); !st) return st;
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
      if (is_word_operator(op_text)) {
        return lexer_.fail(op_pos, "operator \"" + op_text + "\" is not supported");
      }
      BinaryExpr b;
      b.op = *binary_op(op_text);
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
          return lexer_.fail(tok_.pos, tok_.lower +
                                           " (many-to-one / one-to-many vector matching) is "
                                           "not supported");
        }
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

  // Range selectors `[5m]`, `offset 5m` and `@` after an expression.
  Result<ExprPtr> parse_postfix(ExprPtr e) {
    while (true) {
      if (tok_.type == Tok::kLBracket) {
        const size_t open = tok_.pos;
        advance(true);
        if (tok_.type == Tok::kEnd) return lexer_.fail(tok_.pos, "unclosed left bracket");
        if (tok_.type != Tok::kDuration) {
          return unexpected("subquery or range selector", "duration");
        }
        const Token duration = tok_;
        advance(true);
        if (tok_.type == Tok::kColon) return lexer_.fail(tok_.pos, "subqueries are not supported");
        if (tok_.type == Tok::kEnd) return lexer_.fail(tok_.pos, "unclosed left bracket");
        if (tok_.type != Tok::kRBracket) return unexpected("subquery or range", "\":\" or \"]\"");
        auto* vs = std::get_if<VectorSelector>(&e->node);
        if (vs == nullptr) return lexer_.fail(open, "ranges only allowed for vector selectors");
        if (vs->has_offset) return lexer_.fail(open, "no offset modifiers allowed before range");
        const DurationMs range = *parse_duration(duration.text);
        if (range <= 0) return lexer_.fail(duration.pos, "duration must be greater than 0");
        if (range > kMaxDuration) return duration_out_of_range(duration);
        advance();
        auto ms = make(e->position, MatrixSelector{std::move(*vs), range});
        if (!ms) return ms;
        e = std::move(ms).value();
        continue;
      }
      if (at_keyword("offset")) {
        const size_t at = tok_.pos;
        advance();
        bool negative = false;
        if (tok_.type == Tok::kOperator && tok_.text == "-") {
          negative = true;
          advance();
        }
        if (tok_.type != Tok::kDuration) return unexpected("offset", "duration");
        const DurationMs offset = *parse_duration(tok_.text);
        if (offset > kMaxDuration) return duration_out_of_range(tok_);
        VectorSelector* vs = std::get_if<VectorSelector>(&e->node);
        if (auto* ms = std::get_if<MatrixSelector>(&e->node)) vs = &ms->selector;
        if (vs == nullptr) {
          return lexer_.fail(at,
                             "offset modifier must be preceded by an instant vector selector or "
                             "range vector selector or a subquery");
        }
        if (vs->has_offset) return lexer_.fail(at, "offset may not be set multiple times");
        vs->has_offset = true;
        vs->offset = negative ? -offset : offset;
        advance();
        continue;
      }
      if (tok_.type == Tok::kAt) return lexer_.fail(tok_.pos, "the @ modifier is not supported");
      return e;
    }
  }

  Result<ExprPtr> parse_primary() {
    const size_t pos = tok_.pos;
    switch (tok_.type) {
      case Tok::kNumber: {
        double v = 0;
        if (tok_.lower == "inf") {
          v = std::numeric_limits<double>::infinity();
        } else if (tok_.lower == "nan") {
          v = std::numeric_limits<double>::quiet_NaN();
        } else {
          auto n = parse_number(tok_.text);
          if (!n)
            return lexer_.fail(pos, "error parsing number: invalid syntax " + quote(tok_.text));
          v = *n;
        }
        advance();
        return make(pos, NumberLiteral{v});
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
    AggregateExpr agg;
    if (name == "sum") {
      agg.op = AggregateOp::kSum;
    } else if (name == "avg") {
      agg.op = AggregateOp::kAvg;
    } else if (name == "min") {
      agg.op = AggregateOp::kMin;
    } else if (name == "max") {
      agg.op = AggregateOp::kMax;
    } else if (name == "count") {
      agg.op = AggregateOp::kCount;
    } else {
      return lexer_.fail(pos, "aggregation \"" + name + "\" is not supported");
    }
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
    if (args->size() != 1) {
      return lexer_.fail(pos,
                         "wrong number of arguments for aggregate expression provided, expected "
                         "1, got " +
                             std::to_string(args->size()));
    }
    agg.expr = std::move((*args)[0]);
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

  // ---- type check (after a successful parse, as Prometheus' checkAST) ----

  Status expect_type(Expr& e, ValueType want, const std::string& context) {
    if (auto st = check(e); !st) return st;
    if (e.type != want) {
      return lexer_.fail(e.position, std::string("expected type ") + documented_type(want) +
                                         " in " + context + ", got " + documented_type(e.type));
    }
    return Status::ok();
  }

  Status check(Expr& e) {
    return std::visit([&](auto& n) { return check_node(e, n); }, e.node);
  }

  Status check_node(Expr& e, NumberLiteral&) {
    e.type = ValueType::kScalar;
    return Status::ok();
  }
  Status check_node(Expr& e, StringLiteral&) {
    e.type = ValueType::kString;
    return Status::ok();
  }
  Status check_node(Expr& e, VectorSelector&) {
    e.type = ValueType::kVector;
    return Status::ok();
  }
  Status check_node(Expr& e, MatrixSelector&) {
    e.type = ValueType::kMatrix;
    return Status::ok();
  }
  Status check_node(Expr& e, ParenExpr& n) {
    if (auto st = check(*n.expr); !st) return st;
    e.type = n.expr->type;
    return Status::ok();
  }
  Status check_node(Expr& e, UnaryExpr& n) {
    if (auto st = check(*n.operand); !st) return st;
    if (n.operand->type != ValueType::kScalar && n.operand->type != ValueType::kVector) {
      return lexer_.fail(e.position,
                         std::string("unary expression only allowed on expressions of type "
                                     "scalar or instant vector, got \"") +
                             documented_type(n.operand->type) + "\"");
    }
    e.type = n.operand->type;
    return Status::ok();
  }
  Status check_node(Expr& e, BinaryExpr& n) {
    if (auto st = check(*n.lhs); !st) return st;
    if (auto st = check(*n.rhs); !st) return st;
    const ValueType lt = n.lhs->type;
    const ValueType rt = n.rhs->type;
    const size_t op_pos = n.op_position;
    if (n.return_bool && !is_comparison(n.op)) {
      return lexer_.fail(op_pos, "bool modifier can only be used on comparisons");
    }
    if (is_comparison(n.op) && !n.return_bool && lt == ValueType::kScalar &&
        rt == ValueType::kScalar) {
      return lexer_.fail(op_pos, "comparisons between scalars must use BOOL modifier");
    }
    auto operand_ok = [](ValueType t) {
      return t == ValueType::kScalar || t == ValueType::kVector;
    };
    if (!operand_ok(lt) || !operand_ok(rt)) {
      return lexer_.fail(e.position,
                         "binary expression must contain only scalar and instant vector types");
    }
    if ((lt != ValueType::kVector || rt != ValueType::kVector) && !n.matching_labels.empty()) {
      return lexer_.fail(e.position, "vector matching only allowed between instant vectors");
    }
    e.type = lt == ValueType::kScalar && rt == ValueType::kScalar ? ValueType::kScalar
                                                                  : ValueType::kVector;
    return Status::ok();
  }
  Status check_node(Expr& e, Call& n) {
    const FunctionInfo& fn = info(n.function);
    if (n.args.size() != fn.args.size()) {
      return lexer_.fail(e.position, "expected " + std::to_string(fn.args.size()) +
                                         " argument(s) in call to \"" + fn.name + "\", got " +
                                         std::to_string(n.args.size()));
    }
    for (size_t i = 0; i < n.args.size(); ++i) {
      if (auto st = expect_type(*n.args[i], fn.args[i],
                                std::string("call to function \"") + fn.name + "\"");
          !st) {
        return st;
      }
    }
    e.type = fn.result;
    return Status::ok();
  }
  Status check_node(Expr& e, AggregateExpr& n) {
    if (auto st = expect_type(*n.expr, ValueType::kVector, "aggregation expression"); !st) {
      return st;
    }
    for (const auto& l : n.grouping) {
      if (l.find(':') != std::string::npos) {
        return lexer_.fail(e.position, "invalid label name for grouping: " + quote(l));
      }
    }
    e.type = ValueType::kVector;
    return Status::ok();
  }

  std::string_view s_;
  Lexer lexer_;
  size_t pos_ = 0;
  size_t depth_ = 0;
  Token tok_;
};

}  // namespace

Result<ExprPtr> parse_promql(std::string_view text) { return Parser(text).parse(); }

namespace {

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
  if (vs.has_offset) out += " offset " + format_duration(vs.offset);
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
    format_to(out, *n.operand);
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
    format_to(out, *n.expr);
    out.push_back(')');
  }
  void operator()(const ParenExpr& n) { format_to(out, *n.expr); }
};

void format_to(std::string& out, const Expr& e) { std::visit(Formatter{out}, e.node); }

}  // namespace

std::string format_expr(const Expr& expr) {
  std::string out;
  format_to(out, expr);
  return out;
}

const char* function_name(Function f) { return info(f).name; }

bool is_range_function(Function f) {
  const auto& args = info(f).args;
  return !args.empty() && args.back() == ValueType::kMatrix;
}

}  // namespace kpid::query
