#pragma once
// Prometheus series selectors: `name`, `name{l="v", l!="v", l=~"re", l!~"re"}` or `{...}` alone.

#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/labels.h"
#include "kpid/core/status.h"

namespace kpid::query {

// Parses a selector into matchers; a leading metric name becomes __name__="name" (first).
// Follows PromQL's lexical rules: metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names
// [a-zA-Z_][a-zA-Z0-9_]*, values in double quotes, single quotes or backticks (raw) with Go
// escapes in quoted strings (\n \t \\ \" \' \xHH \uHHHH ...), whitespace anywhere between
// tokens, a trailing comma allowed inside braces. Regexes must compile.
// Fails with a message that names the 1-based column and what was expected, e.g.
// "1:9: unexpected character '!' in label matcher; expected one of =, !=, =~, !~"; also fails
// when the selector has no matcher that rejects the empty string ("vector selector must contain
// at least one non-empty matcher"), or sets the metric name twice.
Result<std::vector<LabelMatcher>> parse_selector(std::string_view text);

// Pieces of the selector grammar for the PromQL parser (promql.h).
namespace detail {

struct SelectorParse {
  std::vector<LabelMatcher> matchers;
  size_t end;  // offset just past the selector in the text
};
struct StringParse {
  std::string value;
  size_t end;  // offset just past the closing quote
};

// Parses the selector starting at text[start] (a metric name, {matchers} or both) and stops
// right after it, so `text` may be a whole PromQL expression. Same rules and checks as
// parse_selector; errors read "LINE:COL: parse error: ..." with positions in `text`.
Result<SelectorParse> parse_selector_at(std::string_view text, size_t start);

// invalid_argument "LINE:COL: <prefix><message>" for byte offset `at` of `text` (1-based).
Status error_at(std::string_view text, size_t at, std::string_view prefix,
                const std::string& message);

// Parses the quoted ("..." or '...', Go escapes) or raw (`...`) string at text[start].
Result<StringParse> parse_string_at(std::string_view text, size_t start);

}  // namespace detail

}  // namespace kpid::query
