// PromQL's lexer, after Prometheus' promql/parser/lex.go.
#include <algorithm>
#include <charconv>
#include <limits>

#include "kpid/core/labels.h"
#include "kpid/core/utf8.h"
#include "kpid/query/selector.h"
#include "promql_lexer.h"

namespace kpid::query::detail {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
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
         w == "quantile" || w == "limitk" || w == "limit_ratio";
}
}  // namespace

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_word_operator(std::string_view w) {
  return w == "and" || w == "or" || w == "unless" || w == "atan2";
}

std::string quote(std::string_view text) {
  std::string out;
  append_quoted(out, text);
  return out;
}

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

Token Lexer::lex(size_t pos, bool in_brackets) const {
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

Status Lexer::fail(size_t at, const std::string& message) const {
  return detail::error_at(s_, at, "parse error: ", message);
}

size_t Lexer::skip_space(size_t pos) const {
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

std::string Lexer::describe_char(size_t at) const {
  if (at >= s_.size()) return "end of input";
  const size_t len = utf8_sequence_length(s_, at);
  return "'" + std::string(s_.substr(at, len == 0 ? 1 : len)) + "'";
}

Token Lexer::error(size_t pos, const std::string& message) const {
  Token t;
  t.type = Tok::kError;
  t.pos = pos;
  t.end = pos;
  t.error = fail(pos, message);
  return t;
}

Token Lexer::lex_number(size_t pos) const {
  size_t i = pos;
  auto run = [&](auto pred) {
    while (i < s_.size() && pred(s_[i])) ++i;
  };
  auto hex = [](char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); };
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

Token Lexer::lex_word(size_t pos) const {
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

}  // namespace kpid::query::detail
