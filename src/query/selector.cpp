#include "kpid/query/selector.h"

#include "kpid/core/utf8.h"

#include <optional>
#include <string>
#include <utility>

namespace kpid::query {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_metric_start(char c) { return is_alpha(c) || c == ':'; }
bool is_metric_char(char c) { return is_alpha(c) || is_digit(c) || c == ':'; }
bool is_label_start(char c) { return is_alpha(c); }
bool is_label_char(char c) { return is_alpha(c) || is_digit(c); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Go's %q, near enough for messages.
std::string go_quote(std::string_view text) {
  std::string out;
  append_quoted(out, text);
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  // A whole selector: nothing may follow it.
  Result<std::vector<LabelMatcher>> parse() {
    skip_space();
    if (pos_ == s_.size()) return error(pos_, "empty selector");
    auto matchers = parse_one();
    if (!matchers) return matchers;
    skip_space();
    if (pos_ != s_.size()) {
      return error(pos_, "unexpected " + describe(pos_) +
                             " after selector; only series selectors are supported");
    }
    return matchers;
  }

  // The selector at `start` inside a PromQL expression; stops right after it.
  Result<detail::SelectorParse> parse_at(size_t start) {
    pos_ = start;
    auto matchers = parse_one();
    if (!matchers) return matchers.status();
    return detail::SelectorParse{std::move(matchers).value(), pos_};
  }

  // A quoted or raw string literal at `start`.
  Result<detail::StringParse> string_at(size_t start) {
    pos_ = start;
    std::string out;
    if (auto st = parse_string(out); !st) return st;
    return detail::StringParse{std::move(out), pos_};
  }

  // Every error message gets this after the position, e.g. "parse error: " as PromQL has it.
  void set_error_prefix(std::string_view prefix) { error_prefix_ = prefix; }

 private:
  Result<std::vector<LabelMatcher>> parse_one() {
    const size_t start = pos_;

    std::string metric_name;
    size_t name_end = pos_;
    if (pos_ < s_.size() && is_metric_start(s_[pos_])) {
      const size_t name_start = pos_;
      while (pos_ < s_.size() && is_metric_char(s_[pos_])) ++pos_;
      metric_name = std::string(s_.substr(name_start, pos_ - name_start));
      if (is_number_keyword(metric_name)) {
        return error(name_start, "unexpected number " + go_quote(metric_name) +
                                     "; only series selectors are supported");
      }
      name_end = pos_;
      skip_space();
    } else if (pos_ >= s_.size() || s_[pos_] != '{') {
      return error(pos_, "unexpected " + describe(pos_) + "; expected a metric name or \"{\"");
    }

    std::vector<LabelMatcher> matchers;
    if (!metric_name.empty()) {
      auto m = LabelMatcher::create(MatchType::kEqual, std::string(kMetricNameLabel), metric_name);
      if (!m) return error(start, m.status().message());
      matchers.push_back(std::move(m).value());
    }
    if (pos_ < s_.size() && s_[pos_] == '{') {
      ++pos_;
      if (auto st = parse_matchers(matchers); !st) return st;
    } else {
      pos_ = name_end;  // what follows belongs to the enclosing expression
    }

    if (!metric_name.empty()) {
      for (size_t i = 1; i < matchers.size(); ++i) {
        if (matchers[i].name() == kMetricNameLabel) {
          return error(start, "metric name must not be set twice: " + go_quote(metric_name) +
                                  " or " + go_quote(matchers[i].value()));
        }
      }
    }
    bool non_empty = false;
    for (const auto& m : matchers) {
      if (!m.matches_empty()) non_empty = true;
    }
    if (!non_empty) {
      return error(start, "vector selector must contain at least one non-empty matcher");
    }
    return matchers;
  }

  static bool is_number_keyword(std::string_view word) {
    auto lower_equals = [&](std::string_view kw) {
      if (word.size() != kw.size()) return false;
      for (size_t i = 0; i < word.size(); ++i) {
        char c = word[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != kw[i]) return false;
      }
      return true;
    };
    return lower_equals("inf") || lower_equals("nan");
  }

  // Whitespace and '#' comments (to the end of the line), as PromQL allows between tokens.
  void skip_space() {
    while (pos_ < s_.size()) {
      if (is_space(s_[pos_])) {
        ++pos_;
      } else if (s_[pos_] == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  Status error(size_t at, const std::string& message) const {
    return detail::error_at(s_, at, error_prefix_, message);
  }

  // The token at `at`, for messages: a quoted word, number or character, "end of input", ...
  std::string describe(size_t at) const {
    if (at >= s_.size()) return "end of input";
    const char c = s_[at];
    size_t end = at + 1;
    if (is_metric_char(c)) {
      while (end < s_.size() && (is_metric_char(s_[end]) || s_[end] == '.')) ++end;
    } else if (c == '"' || c == '\'' || c == '`') {
      return "string";
    } else if (c == '\n') {
      return "newline";
    } else {
      const size_t len = utf8_sequence_length(s_, at);
      end = at + (len == 0 ? 1 : len);
    }
    return go_quote(s_.substr(at, end - at));
  }

  Status parse_matchers(std::vector<LabelMatcher>& out) {
    while (true) {
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return Status::ok();
      }
      if (pos_ >= s_.size() || !is_label_start(s_[pos_])) {
        return error(pos_, "unexpected " + describe(pos_) +
                               " in label matchers; expected a label name or \"}\"");
      }
      const size_t name_start = pos_;
      while (pos_ < s_.size() && is_label_char(s_[pos_])) ++pos_;
      std::string name(s_.substr(name_start, pos_ - name_start));
      skip_space();

      const size_t op_start = pos_;
      std::optional<MatchType> type;
      if (pos_ < s_.size()) {
        const char c0 = s_[pos_];
        const char c1 = pos_ + 1 < s_.size() ? s_[pos_ + 1] : '\0';
        if (c0 == '=' && c1 == '~') {
          type = MatchType::kRegexMatch;
          pos_ += 2;
        } else if (c0 == '=' && c1 != '=') {
          type = MatchType::kEqual;
          pos_ += 1;
        } else if (c0 == '!' && c1 == '=') {
          type = MatchType::kNotEqual;
          pos_ += 2;
        } else if (c0 == '!' && c1 == '~') {
          type = MatchType::kRegexNoMatch;
          pos_ += 2;
        } else if (c0 == '=' && c1 == '=') {
          return error(op_start,
                       "unexpected \"==\" in label matcher; expected one of =, !=, =~, !~");
        }
      }
      if (!type) {
        return error(op_start, "unexpected " + describe(op_start) +
                                   " in label matcher; expected one of =, !=, =~, !~");
      }
      skip_space();

      const size_t value_start = pos_;
      std::string value;
      if (auto st = parse_string(value); !st) return st;
      auto m = LabelMatcher::create(*type, std::move(name), std::move(value));
      if (!m) return error(value_start, m.status().message());
      out.push_back(std::move(m).value());

      skip_space();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') continue;  // closed at the top of the loop
      return error(pos_,
                   "unexpected " + describe(pos_) + " in label matchers; expected \",\" or \"}\"");
    }
  }

  // A quoted ("..." or '...', Go escapes) or raw (`...`) string at pos_.
  Status parse_string(std::string& out) {
    if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'' && s_[pos_] != '`')) {
      return error(pos_,
                   "unexpected " + describe(pos_) + " in label matcher; expected a quoted string");
    }
    const size_t open = pos_;
    const char quote = s_[pos_++];
    while (true) {
      if (pos_ >= s_.size()) {
        return error(open, quote == '`' ? "unterminated raw string" : "unterminated quoted string");
      }
      const char c = s_[pos_];
      if (c == quote) {
        ++pos_;
        return Status::ok();
      }
      if (quote != '`' && c == '\n') return error(open, "unterminated quoted string");
      if (quote != '`' && c == '\\') {
        if (auto st = parse_escape(quote, out); !st) return st;
        continue;
      }
      const size_t len = utf8_sequence_length(s_, pos_);
      if (len == 0) return error(pos_, "invalid UTF-8 in string");
      out.append(s_.substr(pos_, len));
      pos_ += len;
    }
  }

  // An escape sequence at pos_ (the backslash), as Go's strconv.Unquote accepts it.
  Status parse_escape(char quote, std::string& out) {
    const size_t at = pos_;
    ++pos_;
    if (pos_ >= s_.size()) return error(at, "unterminated quoted string");
    const char c = s_[pos_++];
    switch (c) {
      case 'a': out.push_back('\a'); return Status::ok();
      case 'b': out.push_back('\b'); return Status::ok();
      case 'f': out.push_back('\f'); return Status::ok();
      case 'n': out.push_back('\n'); return Status::ok();
      case 'r': out.push_back('\r'); return Status::ok();
      case 't': out.push_back('\t'); return Status::ok();
      case 'v': out.push_back('\v'); return Status::ok();
      case '\\': out.push_back('\\'); return Status::ok();
      case '0':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case '7': {
        uint32_t v = static_cast<uint32_t>(c - '0');
        for (int i = 0; i < 2; ++i) {
          if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '7') {
            return error(at, "invalid escape sequence: octal escapes need three digits");
          }
          v = v * 8 + static_cast<uint32_t>(s_[pos_++] - '0');
        }
        if (v > 255) return error(at, "invalid escape sequence: octal value above \\377");
        out.push_back(static_cast<char>(v));
        return Status::ok();
      }
      case 'x':
      case 'u':
      case 'U': {
        const int digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        uint32_t v = 0;
        for (int i = 0; i < digits; ++i) {
          const int h = pos_ < s_.size() ? hex_value(s_[pos_]) : -1;
          if (h < 0) {
            return error(at, "invalid escape sequence: \\" + std::string(1, c) + " needs " +
                                 std::to_string(digits) + " hex digits");
          }
          v = v * 16 + static_cast<uint32_t>(h);
          ++pos_;
        }
        if (c == 'x') {
          out.push_back(static_cast<char>(v));
        } else {
          if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
            return error(at, "invalid escape sequence: not a Unicode code point");
          }
          append_utf8(out, v);
        }
        return Status::ok();
      }
      default:
        if (c == quote) {
          out.push_back(c);
          return Status::ok();
        }
        return error(at, "unknown escape sequence " + describe_escape(at));
    }
  }

  std::string describe_escape(size_t at) const {
    const size_t len = at + 1 < s_.size() ? utf8_sequence_length(s_, at + 1) : 0;
    return "\"" + std::string(s_.substr(at, 1 + (len == 0 ? 1 : len))) + "\"";
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string_view error_prefix_;
};

}  // namespace

Result<std::vector<LabelMatcher>> parse_selector(std::string_view text) {
  return Parser(text).parse();
}

namespace detail {

Status error_at(std::string_view text, size_t at, std::string_view prefix,
                const std::string& message) {
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < at && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return Status::invalid_argument(std::to_string(line) + ":" + std::to_string(at - line_start + 1) +
                                  ": " + std::string(prefix) + message);
}

Result<SelectorParse> parse_selector_at(std::string_view text, size_t start) {
  Parser parser(text);
  parser.set_error_prefix("parse error: ");
  return parser.parse_at(start);
}

Result<StringParse> parse_string_at(std::string_view text, size_t start) {
  Parser parser(text);
  parser.set_error_prefix("parse error: ");
  return parser.string_at(start);
}

}  // namespace detail

}  // namespace kpid::query
