#pragma once
// PromQL's lexer and the tables the parser, the type check and the formatter share. Private to
// the query module (promql_lexer.cpp, promql_parser.cpp, promql_check.cpp, promql_format.cpp).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/query/promql.h"

namespace kpid::query::detail {

// A function: its name, argument types and result type. `variadic` as Prometheus': 0 for exactly
// `args`; otherwise at least args.size() - 1 arguments and at most args.size() - 1 + variadic
// (-1: no limit), those past the end of `args` typed as its last.
struct FunctionInfo {
  Function function;
  const char* name;
  std::vector<ValueType> args;
  ValueType result;
  int variadic = 0;
};

// Every function of the subset.
const std::vector<FunctionInfo>& functions();
const FunctionInfo& function_info(Function f);
// Prometheus functions kpid does not evaluate (those of native histograms), to refuse them as
// unsupported, not unknown.
bool is_prometheus_function(std::string_view name);

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

// Lexical classes the parser shares with the lexer.
bool is_alpha(char c);
bool is_word_operator(std::string_view w);
// `text` as a double-quoted PromQL string.
std::string quote(std::string_view text);
// A number as Go's strconv.ParseInt(s, 0, 64), falling back to ParseFloat, as PromQL does.
std::optional<double> parse_number(std::string_view s);

// Splits a query into tokens on demand, following Prometheus' lexer (promql/parser/lex.go).
class Lexer {
 public:
  explicit Lexer(std::string_view text) : s_(text) {}

  // The token at or after `pos` (whitespace and # comments skipped). Inside brackets ':' is a
  // token of its own; elsewhere it may start a metric name.
  Token lex(size_t pos, bool in_brackets) const;

  // "LINE:COL: parse error: message" for a byte offset.
  Status fail(size_t at, const std::string& message) const;

 private:
  size_t skip_space(size_t pos) const;

  std::string describe_char(size_t at) const;

  Token error(size_t pos, const std::string& message) const;

  // Numbers: decimal, hex (0x..), octal (0...), fractions and exponents; a number followed
  // directly by letters is a duration (5m, 1h30m).
  Token lex_number(size_t pos) const;

  Token lex_word(size_t pos) const;

  std::string_view s_;
};

// The type check after a successful parse, as Prometheus' checkAST: sets every node's type, or
// fails with Prometheus' message at the offending position ("LINE:COL: parse error: ...").
Status check_types(Expr& e, const Lexer& lexer);

}  // namespace kpid::query::detail
