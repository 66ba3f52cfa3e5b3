// Fuzzes the series selector parser and the PromQL parser with the same text. Checked, besides
// "no crash, no leak, no undefined behaviour, no exception":
// - errors are invalid_argument values whose message starts with "LINE:COL: " inside the text;
// - a parsed selector has a matcher that rejects the empty string, and its matchers printed
//   back as {name op "value", ...} parse to the same matchers (values that are valid UTF-8:
//   the printer writes other bytes raw, which the parser refuses);
// - every matcher can be evaluated (regexes included) without throwing, = and != agree with
//   their value;
// - a parsed PromQL expression printed by format_expr, when that text parses again (a metric
//   name that is not an identifier prints unparsable), prints the same: the printer keeps the
//   parser's precedence, numbers, durations and matchers.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "kpid/core/labels.h"
#include "kpid/core/utf8.h"
#include "kpid/query/promql.h"
#include "kpid/query/selector.h"

namespace kpid::fuzz {
namespace {

// "LINE:COL: ..." with LINE within the text's lines and COL at least 1.
void check_error(const Status& status, std::string_view text) {
  check(status.code() == StatusCode::kInvalidArgument, "parse error is not invalid_argument",
        status.message());
  const std::string& m = status.message();
  size_t i = 0;
  size_t line = 0;
  size_t column = 0;
  while (i < m.size() && m[i] >= '0' && m[i] <= '9') line = line * 10 + (m[i++] - '0');
  check(i > 0 && i < m.size() && m[i] == ':', "parse error without LINE:", m);
  const size_t column_start = ++i;
  while (i < m.size() && m[i] >= '0' && m[i] <= '9') column = column * 10 + (m[i++] - '0');
  check(i > column_start && m.compare(i, 2, ": ") == 0, "parse error without COL: ", m);
  size_t lines = 1;
  for (char c : text) lines += c == '\n';
  check(line >= 1 && line <= lines && column >= 1, "parse error position outside the text", m);
}

bool same_matchers(const std::vector<LabelMatcher>& a, const std::vector<LabelMatcher>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].type() != b[i].type() || a[i].name() != b[i].name() || a[i].value() != b[i].value()) {
      return false;
    }
  }
  return true;
}

void check_selector(const std::vector<LabelMatcher>& matchers) {
  bool non_empty = false;
  bool printable = true;
  std::string text = "{";
  for (const auto& m : matchers) {
    non_empty = non_empty || !m.matches_empty();
    printable = printable && find_invalid_utf8(m.value()) == std::string_view::npos;
    // Every kind of matcher answers, whatever the value (regexes that backtrack too long
    // answer "no match" instead of throwing).
    const bool self = m.matches(m.value());
    if (m.type() == MatchType::kEqual) check(self, "= does not match its own value");
    if (m.type() == MatchType::kNotEqual) check(!self, "!= matches its own value");
    (void)m.matches(m.name());
    if (text.size() > 1) text += ", ";
    text += m.to_string();
  }
  text += "}";
  check(non_empty, "selector without a non-empty matcher");
  if (!printable) return;
  auto again = query::parse_selector(text);
  check(again.is_ok(), "printed selector does not parse", text + " -> " + again.status().message());
  check(same_matchers(matchers, *again), "printed selector parses to other matchers", text);
}

// Whether the text that format_expr prints for selectors can stand for them: a leading metric
// name is printed bare, so it must not read as a number.
bool has_number_named_selector(const query::Expr& e) {
  struct Visitor {
    bool operator()(const query::NumberLiteral&) const { return false; }
    bool operator()(const query::StringLiteral&) const { return false; }
    bool operator()(const query::VectorSelector& s) const {
      if (s.matchers.empty() || s.matchers[0].name() != kMetricNameLabel) return false;
      std::string lower = s.matchers[0].value();
      for (char& c : lower) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      return lower == "inf" || lower == "nan";
    }
    bool operator()(const query::MatrixSelector& s) const { return (*this)(s.selector); }
    bool operator()(const query::UnaryExpr& u) const {
      return has_number_named_selector(*u.operand);
    }
    bool operator()(const query::BinaryExpr& b) const {
      return has_number_named_selector(*b.lhs) || has_number_named_selector(*b.rhs);
    }
    bool operator()(const query::Call& c) const {
      for (const auto& a : c.args) {
        if (has_number_named_selector(*a)) return true;
      }
      return false;
    }
    bool operator()(const query::AggregateExpr& a) const {
      return has_number_named_selector(*a.expr);
    }
    bool operator()(const query::ParenExpr& p) const { return has_number_named_selector(*p.expr); }
    bool operator()(const query::SubqueryExpr& q) const {
      return has_number_named_selector(*q.expr);
    }
  };
  return std::visit(Visitor{}, e.node);
}

void check_promql(const query::Expr& e) {
  const std::string printed = query::format_expr(e);
  auto again = query::parse_promql(printed);
  if (!again || has_number_named_selector(e)) return;
  check((*again)->type == e.type, "printed query has another type", printed);
  const std::string reprinted = query::format_expr(**again);
  check(reprinted == printed, "printed query reads back differently",
        printed + "  ->  " + reprinted);
}

}  // namespace
}  // namespace kpid::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kpid;
  using namespace kpid::fuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto selector = query::parse_selector(text);
  if (selector) {
    check_selector(*selector);
  } else {
    check_error(selector.status(), text);
  }

  auto expr = query::parse_promql(text);
  if (expr) {
    check(*expr != nullptr, "parsed query without a tree");
    check_promql(**expr);
  } else {
    check_error(expr.status(), text);
  }
  return 0;
}
