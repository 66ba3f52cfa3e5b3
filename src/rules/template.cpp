// A small interpreter for the common subset of Prometheus' alert templates (template.h). The
// parser refuses, at config load, everything the renderer cannot do, so rendering fails only on
// a value a function cannot take.
#include "kpid/rules/template.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace kpid::rules {

std::string go_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto sci = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string s(buf, sci.ptr);
  const size_t e = s.find('e');
  const int exp = std::atoi(s.c_str() + e + 1);
  if (exp < -4 || exp >= 6) {  // strconv's 'g' with the shortest precision
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return s.substr(0, e) + exp_buf;
  }
  auto fixed = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, fixed.ptr);
}

namespace {

using Arg = PromTemplate::Arg;
using Command = PromTemplate::Command;

constexpr std::array kOneArgFunctions = {"humanize",         "humanize1024", "humanizePercentage",
                                         "humanizeDuration", "toUpper",      "toLower"};
// Go's builtins and Prometheus' other functions: valid in Prometheus, not run by kpid.
constexpr std::array kUnsupportedFunctions = {"and",
                                              "or",
                                              "not",
                                              "len",
                                              "index",
                                              "print",
                                              "println",
                                              "eq",
                                              "ne",
                                              "lt",
                                              "le",
                                              "gt",
                                              "ge",
                                              "html",
                                              "js",
                                              "urlquery",
                                              "call",
                                              "slice",
                                              "query",
                                              "first",
                                              "label",
                                              "value",
                                              "sortByLabel",
                                              "strvalue",
                                              "args",
                                              "reReplaceAll",
                                              "safeHtml",
                                              "match",
                                              "title",
                                              "graphLink",
                                              "tableLink",
                                              "pathPrefix",
                                              "externalURL",
                                              "parseDuration",
                                              "humanizeTimestamp",
                                              "toTime"};
constexpr std::array kKeywords = {"if",       "else",  "end",   "range",    "with", "define",
                                  "template", "block", "break", "continue", "nil"};

template <size_t N>
bool in(std::string_view s, const std::array<const char*, N>& list) {
  for (const char* x : list) {
    if (s == x) return true;
  }
  return false;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_ident(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

struct Token {
  enum class Kind { kString, kNumber, kPipe, kIdent, kVariable, kField, kOther };
  Kind kind;
  std::string text;  // identifier, variable ("$labels.x"), field (".Labels.x"), string value
  double number = 0;
};

class ActionParser {
 public:
  ActionParser(std::string_view body, std::string prefix) : s_(body), prefix_(std::move(prefix)) {}

  Result<std::vector<Command>> parse() {
    std::vector<Token> tokens;
    if (auto s = tokenize(tokens); !s) return s;
    if (tokens.empty()) return fail("missing value for command");
    std::vector<Command> pipeline;
    size_t i = 0;
    while (i < tokens.size()) {
      Command cmd;
      const size_t start = i;
      while (i < tokens.size() && tokens[i].kind != Token::Kind::kPipe) ++i;
      if (i == start) return fail("missing value for command");
      auto made = command(tokens, start, i, pipeline.empty(), cmd);
      if (!made) return made;
      pipeline.push_back(std::move(cmd));
      if (i < tokens.size()) {
        ++i;  // the '|'
        if (i == tokens.size()) return fail("missing command after |");
      }
    }
    return pipeline;
  }

 private:
  Status fail(const std::string& what) const { return Status::invalid_argument(prefix_ + what); }

  Status tokenize(std::vector<Token>& out) {
    size_t i = 0;
    while (i < s_.size()) {
      const char c = s_[i];
      if (is_space(c)) {
        ++i;
      } else if (c == '|') {
        out.push_back({Token::Kind::kPipe, "|"});
        ++i;
      } else if (c == '"' || c == '`') {
        std::string value;
        size_t j = i + 1;
        bool closed = false;
        for (; j < s_.size(); ++j) {
          if (s_[j] == c) {
            closed = true;
            break;
          }
          if (c == '"' && s_[j] == '\\' && j + 1 < s_.size()) {
            const char e = s_[++j];
            value += e == 'n' ? '\n' : e == 't' ? '\t' : e;
            continue;
          }
          if (c == '"' && s_[j] == '\n') break;
          value += s_[j];
        }
        if (!closed)
          return fail(c == '"' ? "unterminated quoted string" : "unterminated raw quoted string");
        out.push_back({Token::Kind::kString, value});
        i = j + 1;
      } else if ((c >= '0' && c <= '9') ||
                 ((c == '-' || c == '+' || c == '.') && i + 1 < s_.size() && s_[i + 1] >= '0' &&
                  s_[i + 1] <= '9')) {
        size_t j = i + 1;
        while (j < s_.size() && (is_ident(s_[j]) || s_[j] == '.' || s_[j] == '+' || s_[j] == '-'))
          ++j;
        const std::string text(s_.substr(i, j - i));
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end != text.c_str() + text.size()) return fail("bad number syntax: \"" + text + "\"");
        out.push_back({Token::Kind::kNumber, text, v});
        i = j;
      } else if (c == '$' || c == '.' || is_ident(c)) {
        size_t j = i + 1;
        while (j < s_.size() && (is_ident(s_[j]) || s_[j] == '.')) ++j;
        const std::string text(s_.substr(i, j - i));
        out.push_back({c == '$'   ? Token::Kind::kVariable
                       : c == '.' ? Token::Kind::kField
                                  : Token::Kind::kIdent,
                       text});
        i = j;
      } else if (c == ':' && i + 1 < s_.size() && s_[i + 1] == '=') {
        return fail("variable declarations are not supported by kpid");
      } else if (c == '(' || c == ')') {
        return fail("parenthesized pipelines are not supported by kpid");
      } else {
        return fail(std::string("unexpected \"") + c + "\" in command");
      }
    }
    return Status::ok();
  }

  Result<Arg> operand(const Token& t) const {
    Arg a;
    switch (t.kind) {
      case Token::Kind::kString:
        a.kind = Arg::Kind::kString;
        a.text = t.text;
        return a;
      case Token::Kind::kNumber:
        a.kind = Arg::Kind::kNumber;
        a.number = t.number;
        return a;
      case Token::Kind::kVariable:
      case Token::Kind::kField: {
        const bool var = t.kind == Token::Kind::kVariable;
        const std::string& x = t.text;
        const size_t dot = x.find('.', var ? 0 : 1);
        const std::string head = x.substr(0, dot);
        const std::string field = dot == std::string::npos ? "" : x.substr(dot + 1);
        if (field.find('.') != std::string::npos) {
          return fail("field chain " + x + " is not supported by kpid");
        }
        const std::string labels = var ? "$labels" : ".Labels";
        const std::string ext = var ? "$externalLabels" : ".ExternalLabels";
        if (head == labels) {
          a.kind = field.empty() ? Arg::Kind::kLabels : Arg::Kind::kLabel;
          a.text = field;
          return a;
        }
        if (head == ext && !field.empty()) {
          a.kind = Arg::Kind::kExternalLabel;
          a.text = field;
          return a;
        }
        if (head == (var ? "$value" : ".Value") && field.empty()) {
          a.kind = Arg::Kind::kValue;
          return a;
        }
        if (head == (var ? "$externalURL" : ".ExternalURL") && field.empty()) {
          a.kind = Arg::Kind::kExternalUrl;
          return a;
        }
        if (var && head != "$labels" && head != "$value" && head != "$externalLabels" &&
            head != "$externalURL" && head != "$") {
          return fail("undefined variable \"" + head + "\"");
        }
        return fail(x + " is not supported by kpid");
      }
      default: return fail("unexpected \"" + t.text + "\" in operand");
    }
  }

  Status command(const std::vector<Token>& tokens, size_t begin, size_t end, bool first,
                 Command& cmd) const {
    const Token& head = tokens[begin];
    if (head.kind == Token::Kind::kIdent) {
      if (in(head.text, kKeywords)) {
        return fail("{{ " + head.text + " }} is not supported by kpid");
      }
      if (head.text == "true" || head.text == "false") {
        return fail("boolean constants are not supported by kpid");
      }
      if (!in(head.text, kOneArgFunctions) && head.text != "printf") {
        if (in(head.text, kUnsupportedFunctions)) {
          return fail("function \"" + head.text + "\" is not supported by kpid");
        }
        return fail("function \"" + head.text + "\" not defined");
      }
      cmd.function = head.text;
      for (size_t i = begin + 1; i < end; ++i) {
        auto a = operand(tokens[i]);
        if (!a) return a.status();
        cmd.args.push_back(std::move(*a));
      }
      const size_t given = cmd.args.size() + (first ? 0 : 1);
      if (cmd.function == "printf") {
        if (given == 0) return fail("wrong number of args for printf: want at least 1 got 0");
      } else if (given != 1) {
        return fail("wrong number of args for " + cmd.function + ": want 1 got " +
                    std::to_string(given));
      }
      return Status::ok();
    }
    if (!first) return fail("non executable command in pipeline stage 2");
    if (end - begin > 1) return fail("can't give argument to non-function " + head.text);
    auto a = operand(head);
    if (!a) return a.status();
    cmd.args.push_back(std::move(*a));
    return Status::ok();
  }

  std::string_view s_;
  std::string prefix_;
};

// A value while a pipeline runs.
struct Value {
  enum class Kind { kString, kNumber, kMap };
  Kind kind = Kind::kString;
  std::string text;
  double number = 0;
  const std::map<std::string, std::string>* map = nullptr;
};

std::string to_text(const Value& v) {
  if (v.kind == Value::Kind::kNumber) return go_float(v.number);
  if (v.kind == Value::Kind::kMap) {
    std::string out = "map[";
    bool sep = false;
    for (const auto& [k, x] : *v.map) {
      out += (sep ? " " : "") + k + ":" + x;
      sep = true;
    }
    return out + "]";
  }
  return v.text;
}

// Go's %.4g (C's, but "NaN" / "+Inf").
std::string g4(double v) {
  if (std::isnan(v) || std::isinf(v)) return go_float(v);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

Result<double> to_float(const Value& v, std::string_view function) {
  if (v.kind == Value::Kind::kNumber) return v.number;
  if (v.kind == Value::Kind::kString) {
    char* end = nullptr;
    const double d = std::strtod(v.text.c_str(), &end);
    if (!v.text.empty() && end == v.text.c_str() + v.text.size()) return d;
    return Status::invalid_argument("error calling " + std::string(function) +
                                    ": strconv.ParseFloat: parsing \"" + v.text +
                                    "\": invalid syntax");
  }
  return Status::invalid_argument("error calling " + std::string(function) +
                                  ": can't convert map to float");
}

std::string humanize(double v, double base, bool small) {
  if (v == 0 || std::isnan(v) || std::isinf(v)) return g4(v);
  if (std::fabs(v) >= 1 || !small) {
    static constexpr std::array<const char*, 8> kBig = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
    static constexpr std::array<const char*, 8> kBin = {"ki", "Mi", "Gi", "Ti",
                                                        "Pi", "Ei", "Zi", "Yi"};
    std::string prefix;
    for (size_t i = 0; i < kBig.size(); ++i) {
      if (std::fabs(v) < base) break;
      prefix = base == 1024 ? kBin[i] : kBig[i];
      v /= base;
    }
    return g4(v) + prefix;
  }
  static constexpr std::array<const char*, 8> kSmall = {"m", "u", "n", "p", "f", "a", "z", "y"};
  std::string prefix;
  for (const char* p : kSmall) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return g4(v) + prefix;
}

std::string humanize_duration(double v) {
  if (std::isnan(v) || std::isinf(v)) return g4(v);
  if (v == 0) return g4(v) + "s";
  if (std::fabs(v) >= 1) {
    std::string sign;
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    const auto d = static_cast<int64_t>(v);
    const int64_t seconds = d % 60, minutes = (d / 60) % 60, hours = (d / 3600) % 24,
                  days = d / 86400;
    char buf[128];
    if (days != 0) {
      std::snprintf(buf, sizeof buf, "%s%lldd %lldh %lldm %llds", sign.c_str(),
                    static_cast<long long>(days), static_cast<long long>(hours),
                    static_cast<long long>(minutes), static_cast<long long>(seconds));
    } else if (hours != 0) {
      std::snprintf(buf, sizeof buf, "%s%lldh %lldm %llds", sign.c_str(),
                    static_cast<long long>(hours), static_cast<long long>(minutes),
                    static_cast<long long>(seconds));
    } else if (minutes != 0) {
      std::snprintf(buf, sizeof buf, "%s%lldm %llds", sign.c_str(), static_cast<long long>(minutes),
                    static_cast<long long>(seconds));
    } else {
      return sign + g4(v) + "s";
    }
    return buf;
  }
  std::string prefix;
  for (const char* p : {"m", "u", "n", "p", "f", "a", "z", "y"}) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return g4(v) + prefix + "s";
}

std::string go_type(const Value& v) {
  return v.kind == Value::Kind::kNumber ? "float64"
         : v.kind == Value::Kind::kMap  ? "map[string]string"
                                        : "string";
}

// Go's fmt.Sprintf for the verbs templates use: %v %s %q %d %f %F %e %E %g %G %x %%, flags,
// width and precision; bad verbs and missing or extra arguments printed as Go prints them.
std::string go_printf(const std::string& format, const std::vector<Value>& args) {
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    size_t j = i + 1;
    while (j < format.size() && std::string_view("+-# 0").find(format[j]) != std::string::npos) ++j;
    while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) ++j;
    if (j < format.size() && format[j] == '.') {
      ++j;
      while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) ++j;
    }
    if (j >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    const char verb = format[j];
    const std::string spec = format.substr(i, j - i);  // "%" + flags, width, precision
    i = j;
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (next >= args.size()) {
      out += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const Value& a = args[next++];
    char buf[512];
    if (a.kind == Value::Kind::kNumber) {
      const double v = a.number;
      if (std::string_view("fFeEgG").find(verb) != std::string::npos) {
        if (std::isnan(v) || std::isinf(v)) {
          out += go_float(v);
        } else {
          std::snprintf(buf, sizeof buf, (spec + verb).c_str(), v);
          out += buf;
        }
      } else if (verb == 'v') {
        out += go_float(v);
      } else {
        out += std::string("%!") + verb + "(float64=" + go_float(v) + ")";
      }
    } else {
      const std::string text = to_text(a);
      if (verb == 's' || verb == 'v') {
        std::snprintf(buf, sizeof buf, (spec + 's').c_str(), text.c_str());
        out += buf;
      } else if (verb == 'q') {
        out += '"' + text + '"';
      } else {
        out += std::string("%!") + verb + "(" + go_type(a) + "=" + text + ")";
      }
    }
  }
  if (next < args.size()) {
    out += "%!(EXTRA ";
    for (size_t k = next; k < args.size(); ++k) {
      out += (k > next ? ", " : "") + go_type(args[k]) + "=" + to_text(args[k]);
    }
    out += ")";
  }
  return out;
}

}  // namespace

Result<PromTemplate> PromTemplate::parse(std::string_view text, std::string_view name) {
  PromTemplate t;
  t.name_ = std::string(name);
  size_t pos = 0;
  bool trim_next = false;
  while (pos <= text.size()) {
    const size_t open = text.find("{{", pos);
    std::string literal(
        text.substr(pos, open == std::string_view::npos ? std::string_view::npos : open - pos));
    if (trim_next) {
      size_t k = 0;
      while (k < literal.size() && is_space(literal[k])) ++k;
      literal.erase(0, k);
      trim_next = false;
    }
    size_t body_start = open + 2;
    if (open != std::string_view::npos && text.substr(body_start, 2) == "- ") {
      while (!literal.empty() && is_space(literal.back())) literal.pop_back();
      body_start += 2;
    }
    if (!literal.empty()) t.pieces_.push_back({false, literal, {}});
    if (open == std::string_view::npos) break;
    const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + open, '\n'));
    const std::string prefix = "template: " + t.name_ + ":" + std::to_string(line) + ": ";
    // The action ends at the first "}}" outside a quoted string.
    size_t close = std::string_view::npos;
    char quote = 0;
    for (size_t k = body_start; k + 1 < text.size(); ++k) {
      const char c = text[k];
      if (quote != 0) {
        if (c == '\\' && quote == '"') {
          ++k;
        } else if (c == quote) {
          quote = 0;
        }
        continue;
      }
      if (c == '"' || c == '`') {
        quote = c;
      } else if (c == '}' && text[k + 1] == '}') {
        close = k;
        break;
      }
    }
    if (close == std::string_view::npos) {
      return Status::invalid_argument(prefix + "unclosed action");
    }
    size_t body_end = close;
    if (body_end >= body_start + 2 && text.substr(body_end - 2, 2) == " -") {
      body_end -= 2;
      trim_next = true;
    }
    std::string_view body = text.substr(body_start, body_end - body_start);
    if (body.starts_with("/*")) {  // a comment
      pos = close + 2;
      continue;
    }
    auto pipeline = ActionParser(body, prefix).parse();
    if (!pipeline) return pipeline.status();
    t.pieces_.push_back({true, "", std::move(*pipeline)});
    pos = close + 2;
  }
  return t;
}

Result<std::string> PromTemplate::render(const TemplateData& data) const {
  std::string out;
  for (const Piece& piece : pieces_) {
    if (!piece.action) {
      out += piece.text;
      continue;
    }
    Value current;
    bool have = false;
    for (const Command& cmd : piece.pipeline) {
      std::vector<Value> args;
      for (const Arg& a : cmd.args) {
        Value v;
        switch (a.kind) {
          case Arg::Kind::kString: v.text = a.text; break;
          case Arg::Kind::kNumber:
            v.kind = Value::Kind::kNumber;
            v.number = a.number;
            break;
          case Arg::Kind::kValue:
            v.kind = Value::Kind::kNumber;
            v.number = data.value;
            break;
          case Arg::Kind::kLabels:
            v.kind = Value::Kind::kMap;
            v.map = &data.labels;
            break;
          case Arg::Kind::kLabel:
          case Arg::Kind::kExternalLabel: {
            const auto& m = a.kind == Arg::Kind::kLabel ? data.labels : data.external_labels;
            auto it = m.find(a.text);
            v.text = it == m.end() ? "<no value>" : it->second;
            break;
          }
          case Arg::Kind::kExternalUrl: v.text = data.external_url; break;
        }
        args.push_back(std::move(v));
      }
      if (have) args.push_back(current);
      have = true;
      if (cmd.function.empty()) {
        current = args.front();
        continue;
      }
      const std::string prefix = "error executing template " + name_ + ": ";
      Value result;
      if (cmd.function == "printf") {
        const std::string format = to_text(args.front());
        result.text = go_printf(format, std::vector<Value>(args.begin() + 1, args.end()));
      } else if (cmd.function == "toUpper" || cmd.function == "toLower") {
        result.text = to_text(args.front());
        for (char& c : result.text) {
          c = cmd.function == "toUpper"
                  ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                  : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
      } else {
        auto v = to_float(args.front(), cmd.function);
        if (!v) return Status::invalid_argument(prefix + v.status().message());
        if (cmd.function == "humanize") result.text = humanize(*v, 1000, true);
        if (cmd.function == "humanize1024") result.text = humanize(*v, 1024, false);
        if (cmd.function == "humanizePercentage") result.text = g4(*v * 100) + "%";
        if (cmd.function == "humanizeDuration") result.text = humanize_duration(*v);
      }
      current = std::move(result);
    }
    out += to_text(current);
  }
  return out;
}

}  // namespace kpid::rules
