// Prometheus' own text of a parsed expression (its AST String() and Pretty()) and its JSON form
// (translateAST), for /api/v1/format_query and /api/v1/parse_query. Every detail here is what
// Prometheus prints, so the answers compare byte for byte with a real Prometheus.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kpid/core/labels.h"
#include "kpid/query/promql.h"
#include "promql_lexer.h"

namespace kpid::query {

namespace {

// Go's fmt %v of a float64: the shortest digits that read back, in %e form (at least two
// exponent digits) when the exponent is below -4 or at least 6 (strconv's 'g' with the
// shortest precision), else in %f form.
std::string go_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto sci = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string s(buf, sci.ptr);
  const size_t e = s.find('e');
  const int exp = std::stoi(s.substr(e + 1));
  if (exp < -4 || exp >= 6) {
    std::string mantissa = s.substr(0, e);
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return mantissa + exp_buf;
  }
  auto fixed = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, fixed.ptr);
}

// Go's strconv.FormatFloat(v, 'f', -1, 64).
std::string go_fixed_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[512];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

// The length of the UTF-8 sequence at s[i] and its code point; 0 when it is not valid UTF-8.
size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = 0;
  uint32_t min = 0;
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  if ((c & 0xe0) == 0xc0) {
    n = 2, cp = c & 0x1f, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3, cp = c & 0x0f, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// Go's unicode.IsPrint for non-ASCII code points, short of Unicode's full tables: the spaces,
// format and control characters, private use and non-characters are not printable; other code
// points are taken as printable (unassigned ones included, where Go escapes them).
bool go_printable(uint32_t cp) {
  if (cp < 0xa1) return false;  // C1 controls and U+00A0 (a space other than ' ')
  if (cp == 0xad || cp == 0x34f || cp == 0x61c || cp == 0x180e || cp == 0x1680) return false;
  if (cp >= 0x2000 && cp <= 0x200f) return false;  // spaces and format characters
  if (cp >= 0x2028 && cp <= 0x202f) return false;
  if (cp >= 0x205f && cp <= 0x206f) return false;
  if (cp == 0x3000 || cp == 0xfeff) return false;
  if (cp >= 0xd800 && cp <= 0xf8ff) return false;  // surrogates and private use
  if (cp >= 0xfff9 && cp <= 0xfffb) return false;
  if ((cp & 0xfffe) == 0xfffe) return false;         // non-characters U+xxFFFE, U+xxFFFF
  if (cp >= 0xe0000 && cp <= 0xe007f) return false;  // tags
  if (cp >= 0xf0000) return false;                   // private use planes
  return true;
}

// Go's strconv.Quote: double quotes, Go escapes for control characters, invalid bytes as \x..,
// printable Unicode as is.
std::string go_quote(std::string_view s) {
  std::string out = "\"";
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t n = decode_utf8(s, i, cp);
    if (n == 0) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(s[i]));
      out += buf;
      ++i;
      continue;
    }
    if (n == 1) {
      switch (cp) {
        case '\a': out += "\\a"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\v': out += "\\v"; break;
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        default:
          if (cp < 0x20 || cp == 0x7f) {
            std::snprintf(buf, sizeof buf, "\\x%02x", cp);
            out += buf;
          } else {
            out.push_back(static_cast<char>(cp));
          }
      }
    } else if (go_printable(cp)) {
      out.append(s.substr(i, n));
    } else {
      std::snprintf(buf, sizeof buf, cp < 0x10000 ? "\\u%04x" : "\\U%08x", cp);
      out += buf;
    }
    i += n;
  }
  out += '"';
  return out;
}

// Prometheus' model.Duration: 1y, 1w, 1d, 1h30m, 1s1ms, "0s"; years and weeks only when they
// divide the duration exactly (so 90d, not 12w6d).
std::string prom_duration(DurationMs d) {
  if (d == 0) return "0s";
  std::string out;
  int64_t ms = d;
  struct Unit {
    const char* name;
    int64_t ms;
    bool exact;
  };
  static constexpr Unit kUnits[] = {{"y", 365LL * 24 * 3600 * 1000, true},
                                    {"w", 7LL * 24 * 3600 * 1000, true},
                                    {"d", 24LL * 3600 * 1000, false},
                                    {"h", 3600LL * 1000, false},
                                    {"m", 60LL * 1000, false},
                                    {"s", 1000, false},
                                    {"ms", 1, false}};
  for (const auto& u : kUnits) {
    if (u.exact && ms % u.ms != 0) continue;
    if (const int64_t v = ms / u.ms; v > 0) {
      out += std::to_string(v) + u.name;
      ms -= v * u.ms;
    }
  }
  return out;
}

const char* match_op_text(MatchType t) {
  switch (t) {
    case MatchType::kEqual: return "=";
    case MatchType::kNotEqual: return "!=";
    case MatchType::kRegexMatch: return "=~";
    case MatchType::kRegexNoMatch: return "!~";
  }
  return "=";
}

// " @ 100.000" / " @ start()" and " offset 5m" / " offset -5m", in that order.
std::string at_offset_text(const AtModifier& at, DurationMs offset) {
  std::string out;
  switch (at.kind) {
    case AtModifier::Kind::kNone: break;
    case AtModifier::Kind::kStart: out += " @ start()"; break;
    case AtModifier::Kind::kEnd: out += " @ end()"; break;
    case AtModifier::Kind::kTimestamp: {
      char buf[64];
      std::snprintf(buf, sizeof buf, " @ %.3f", static_cast<double>(at.time) / 1000.0);
      out += buf;
      break;
    }
  }
  if (offset > 0) out += " offset " + prom_duration(offset);
  if (offset < 0) out += " offset -" + prom_duration(-offset);
  return out;
}

// The selector without its modifiers: `name{sorted matchers}`; the name's matcher is left out
// of the braces when the name was written before them.
std::string selector_text(const VectorSelector& vs) {
  std::vector<std::string> matchers;
  for (const auto& m : vs.matchers) {
    if (!vs.name.empty() && m.name() == kMetricNameLabel && m.type() == MatchType::kEqual &&
        m.value() == vs.name) {
      continue;
    }
    matchers.push_back(m.name() + match_op_text(m.type()) + go_quote(m.value()));
  }
  if (matchers.empty()) return vs.name;
  std::sort(matchers.begin(), matchers.end());
  std::string out = vs.name + "{";
  for (size_t i = 0; i < matchers.size(); ++i) {
    if (i > 0) out += ',';
    out += matchers[i];
  }
  return out + "}";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += items[i];
  }
  return out;
}

// Both sides are instant vectors: only then does Prometheus keep (and print) vector matching.
bool has_vector_matching(const BinaryExpr& n) {
  return n.lhs->type == ValueType::kVector && n.rhs->type == ValueType::kVector;
}

// " on (x) group_left (y)", " ignoring (x)", or "" as Prometheus prints the matching.
std::string matching_text(const BinaryExpr& n) {
  if (!has_vector_matching(n) || (n.matching_labels.empty() && !n.on)) return {};
  std::string out = std::string(n.on ? " on" : " ignoring") + " (" + join(n.matching_labels) + ")";
  if (n.card == Cardinality::kManyToOne || n.card == Cardinality::kOneToMany) {
    out += n.card == Cardinality::kManyToOne ? " group_left" : " group_right";
    out += " (" + join(n.include) + ")";
  }
  return out;
}

// "sum", "sum by (a) ", "sum without (a) " (the trailing space is Prometheus').
std::string aggregate_head(const AggregateExpr& n) {
  std::string out = aggregate_op_name(n.op);
  if (n.without) {
    out += " without (" + join(n.grouping) + ") ";
  } else if (!n.grouping.empty()) {
    out += " by (" + join(n.grouping) + ") ";
  }
  return out;
}

std::string subquery_suffix(const SubqueryExpr& n) {
  return "[" + prom_duration(n.range) + ":" + (n.step != 0 ? prom_duration(n.step) : "") + "]" +
         at_offset_text(n.at, n.offset);
}

std::string print(const Expr& e);

struct Printer {
  std::string operator()(const NumberLiteral& n) const { return go_float(n.value); }
  std::string operator()(const StringLiteral& n) const { return go_quote(n.value); }
  std::string operator()(const VectorSelector& n) const {
    return selector_text(n) + at_offset_text(n.at, n.offset);
  }
  std::string operator()(const MatrixSelector& n) const {
    return selector_text(n.selector) + "[" + prom_duration(n.range) + "]" +
           at_offset_text(n.selector.at, n.selector.offset);
  }
  std::string operator()(const UnaryExpr& n) const {
    return (n.negate ? "-" : "+") + print(*n.operand);
  }
  std::string operator()(const BinaryExpr& n) const {
    return print(*n.lhs) + " " + binary_op_text(n.op) + (n.return_bool ? " bool" : "") +
           matching_text(n) + " " + print(*n.rhs);
  }
  std::string operator()(const Call& n) const {
    std::vector<std::string> args;
    for (const auto& a : n.args) args.push_back(print(*a));
    return std::string(function_name(n.function)) + "(" + join(args) + ")";
  }
  std::string operator()(const AggregateExpr& n) const {
    std::string out = aggregate_head(n) + "(";
    if (n.param) out += print(*n.param) + ", ";
    return out + print(*n.expr) + ")";
  }
  std::string operator()(const ParenExpr& n) const { return "(" + print(*n.expr) + ")"; }
  std::string operator()(const SubqueryExpr& n) const {
    return print(*n.expr) + subquery_suffix(n);
  }
};

std::string print(const Expr& e) { return std::visit(Printer{}, e.node); }

// Prometheus splits a node whose one-line text is longer than this, in bytes.
constexpr size_t kMaxLineBytes = 100;

std::string indent(int level) { return std::string(static_cast<size_t>(level) * 2, ' '); }

std::string trim_space(const std::string& s) {
  const auto space = [](char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
  };
  size_t b = 0;
  size_t e = s.size();
  while (b < e && space(s[b])) ++b;
  while (e > b && space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string pretty(const Expr& e, int level);

// Each node's Pretty(level): `level` is its depth below the last line break its parent wrote.
struct Prettier {
  const Expr& e;
  int level;

  bool fits() const { return print(e).size() <= kMaxLineBytes; }
  std::string flat() const { return indent(level) + print(e); }

  std::string operator()(const NumberLiteral&) const { return flat(); }
  std::string operator()(const StringLiteral&) const { return flat(); }
  std::string operator()(const VectorSelector&) const { return flat(); }
  std::string operator()(const MatrixSelector&) const { return flat(); }
  std::string operator()(const UnaryExpr& n) const {
    // The operand's indent moves before the operator.
    return indent(level) + (n.negate ? "-" : "+") + trim_space(pretty(*n.operand, level));
  }
  std::string operator()(const BinaryExpr& n) const {
    if (fits()) return flat();
    return pretty(*n.lhs, level + 1) + "\n" + indent(level) + binary_op_text(n.op) +
           (n.return_bool ? " bool" : "") + matching_text(n) + "\n" + pretty(*n.rhs, level + 1);
  }
  std::string operator()(const Call& n) const {
    if (fits()) return flat();
    std::string out = indent(level) + function_name(n.function) + "(\n";
    for (size_t i = 0; i < n.args.size(); ++i) {
      if (i > 0) out += ",\n";
      out += pretty(*n.args[i], level + 1);
    }
    return out + "\n" + indent(level) + ")";
  }
  std::string operator()(const AggregateExpr& n) const {
    if (fits()) return flat();
    std::string out = indent(level) + aggregate_head(n) + "(\n";
    if (n.param) out += pretty(*n.param, level + 1) + ",\n";
    return out + pretty(*n.expr, level + 1) + "\n" + indent(level) + ")";
  }
  std::string operator()(const ParenExpr& n) const {
    if (fits()) return flat();
    return indent(level) + "(\n" + pretty(*n.expr, level + 1) + "\n" + indent(level) + ")";
  }
  std::string operator()(const SubqueryExpr& n) const {
    // Prometheus indents neither form of a subquery itself (the inner node indents when split).
    if (fits()) return print(e);
    return pretty(*n.expr, level) + subquery_suffix(n);
  }
};

std::string pretty(const Expr& e, int level) { return std::visit(Prettier{e, level}, e.node); }

// ---- translateAST ----

// A JSON string as Go's encoding/json writes it: <, > and & as \u003c.., U+2028/U+2029
// escaped, invalid UTF-8 as U+FFFD.
void json_string(std::string& out, std::string_view s) {
  out += '"';
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t n = decode_utf8(s, i, cp);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (n == 1) {
      switch (cp) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (cp < 0x20 || cp == '<' || cp == '>' || cp == '&') {
            std::snprintf(buf, sizeof buf, "\\u%04x", cp);
            out += buf;
          } else {
            out.push_back(static_cast<char>(cp));
          }
      }
    } else if (cp == 0x2028 || cp == 0x2029) {
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      out += buf;
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  out += '"';
}

void json_strings(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    json_string(out, items[i]);
  }
  out += ']';
}

const char* value_type_json(ValueType t) {
  switch (t) {
    case ValueType::kScalar: return "\"scalar\"";
    case ValueType::kVector: return "\"vector\"";
    case ValueType::kMatrix: return "\"matrix\"";
    case ValueType::kString: return "\"string\"";
  }
  return "\"scalar\"";
}

const char* card_name(Cardinality c) {
  switch (c) {
    case Cardinality::kOneToOne: return "one-to-one";
    case Cardinality::kManyToOne: return "many-to-one";
    case Cardinality::kOneToMany: return "one-to-many";
    case Cardinality::kManyToMany: return "many-to-many";
  }
  return "one-to-one";
}

// Matchers in Prometheus' order: those in braces as written, then the name written before them.
void json_matchers(std::string& out, const VectorSelector& vs) {
  std::vector<const LabelMatcher*> ordered;
  for (const auto& m : vs.matchers) ordered.push_back(&m);
  if (!vs.name.empty() && !ordered.empty())
    std::rotate(ordered.begin(), ordered.begin() + 1, ordered.end());
  out += '[';
  for (size_t i = 0; i < ordered.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"name\":";
    json_string(out, ordered[i]->name());
    out += ",\"type\":";
    json_string(out, match_op_text(ordered[i]->type()));
    out += ",\"value\":";
    json_string(out, ordered[i]->value());
    out += '}';
  }
  out += ']';
}

// "startOrEnd" and "timestamp" (ms), null when absent.
void json_at(std::string& out, const AtModifier& at) {
  out += ",\"startOrEnd\":";
  out += at.kind == AtModifier::Kind::kStart ? "\"start\""
         : at.kind == AtModifier::Kind::kEnd ? "\"end\""
                                             : "null";
  out += ",\"timestamp\":";
  out += at.kind == AtModifier::Kind::kTimestamp ? std::to_string(at.time) : "null";
}

void tree(std::string& out, const Expr& e);

struct TreeWriter {
  std::string& out;

  void operator()(const NumberLiteral& n) const {
    out += "{\"type\":\"numberLiteral\",\"val\":";
    json_string(out, go_fixed_float(n.value));
    out += '}';
  }
  void operator()(const StringLiteral& n) const {
    out += "{\"type\":\"stringLiteral\",\"val\":";
    json_string(out, n.value);
    out += '}';
  }
  void operator()(const VectorSelector& n) const {
    out += "{\"matchers\":";
    json_matchers(out, n);
    out += ",\"name\":";
    json_string(out, n.name);
    out += ",\"offset\":" + std::to_string(n.offset);
    json_at(out, n.at);
    out += ",\"type\":\"vectorSelector\"}";
  }
  void operator()(const MatrixSelector& n) const {
    out += "{\"matchers\":";
    json_matchers(out, n.selector);
    out += ",\"name\":";
    json_string(out, n.selector.name);
    out += ",\"offset\":" + std::to_string(n.selector.offset);
    out += ",\"range\":" + std::to_string(n.range);
    json_at(out, n.selector.at);
    out += ",\"type\":\"matrixSelector\"}";
  }
  void operator()(const UnaryExpr& n) const {
    out += "{\"expr\":";
    tree(out, *n.operand);
    out += n.negate ? ",\"op\":\"-\"" : ",\"op\":\"+\"";
    out += ",\"type\":\"unaryExpr\"}";
  }
  void operator()(const BinaryExpr& n) const {
    out += "{\"bool\":";
    out += n.return_bool ? "true" : "false";
    out += ",\"lhs\":";
    tree(out, *n.lhs);
    out += ",\"matching\":";
    if (has_vector_matching(n)) {
      out += "{\"card\":";
      json_string(out, card_name(n.card));
      out += ",\"include\":";
      json_strings(out, n.include);
      out += ",\"labels\":";
      json_strings(out, n.matching_labels);
      out += ",\"on\":";
      out += n.on ? "true" : "false";
      out += '}';
    } else {
      out += "null";
    }
    out += ",\"op\":";
    json_string(out, binary_op_text(n.op));
    out += ",\"rhs\":";
    tree(out, *n.rhs);
    out += ",\"type\":\"binaryExpr\"}";
  }
  void operator()(const Call& n) const {
    out += "{\"args\":[";
    for (size_t i = 0; i < n.args.size(); ++i) {
      if (i > 0) out += ',';
      tree(out, *n.args[i]);
    }
    const auto& info = detail::function_info(n.function);
    out += "],\"func\":{\"argTypes\":[";
    for (size_t i = 0; i < info.args.size(); ++i) {
      if (i > 0) out += ',';
      out += value_type_json(info.args[i]);
    }
    out += "],\"name\":";
    json_string(out, info.name);
    out += ",\"returnType\":";
    out += value_type_json(info.result);
    out += ",\"variadic\":" + std::to_string(info.variadic) + "},\"type\":\"call\"}";
  }
  void operator()(const AggregateExpr& n) const {
    out += "{\"expr\":";
    tree(out, *n.expr);
    out += ",\"grouping\":";
    json_strings(out, n.grouping);
    out += ",\"op\":";
    json_string(out, aggregate_op_name(n.op));
    out += ",\"param\":";
    if (n.param) {
      tree(out, *n.param);
    } else {
      out += "null";
    }
    out += ",\"type\":\"aggregation\",\"without\":";
    out += n.without ? "true" : "false";
    out += '}';
  }
  void operator()(const ParenExpr& n) const {
    out += "{\"expr\":";
    tree(out, *n.expr);
    out += ",\"type\":\"parenExpr\"}";
  }
  void operator()(const SubqueryExpr& n) const {
    out += "{\"expr\":";
    tree(out, *n.expr);
    out += ",\"offset\":" + std::to_string(n.offset);
    out += ",\"range\":" + std::to_string(n.range);
    // json_at writes startOrEnd then timestamp; step sorts between them.
    std::string at;
    json_at(at, n.at);
    const size_t ts = at.find(",\"timestamp\"");
    out += at.substr(0, ts);
    out += ",\"step\":" + std::to_string(n.step);
    out += at.substr(ts);
    out += ",\"type\":\"subquery\"}";
  }
};

void tree(std::string& out, const Expr& e) { std::visit(TreeWriter{out}, e.node); }

}  // namespace

std::string print_expr(const Expr& expr) { return print(expr); }

std::string pretty_expr(const Expr& expr) { return pretty(expr, 0); }

std::string expr_tree_json(const Expr& expr) {
  std::string out;
  tree(out, expr);
  return out;
}

}  // namespace kpid::query
