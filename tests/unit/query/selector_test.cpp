#include "kpid/query/selector.h"

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

using namespace kpid;
using namespace std::string_literals;
using kpid::query::parse_selector;

namespace {

struct M {
  std::string name;
  MatchType type;
  std::string value;
};

std::vector<LabelMatcher> parse_ok(std::string_view text) {
  auto r = parse_selector(text);
  INFO(std::string(text));
  INFO((r ? std::string() : r.status().message()));
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

void check_matchers(std::string_view text, const std::vector<M>& want) {
  INFO(std::string(text));
  auto got = parse_ok(text);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO(i);
    CHECK(got[i].name() == want[i].name);
    CHECK(got[i].type() == want[i].type);
    CHECK(got[i].value() == want[i].value);
  }
}

std::string parse_error(std::string_view text) {
  INFO(std::string(text));
  auto r = parse_selector(text);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  return r.status().message();
}

std::string value_of(std::string_view text) {
  auto m = parse_ok(text);
  REQUIRE(m.size() == 1);
  return m[0].value();
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

TEST_CASE("selector: bare metric names", "[selector]") {
  check_matchers("up", {{"__name__", MatchType::kEqual, "up"}});
  check_matchers("http_requests_total", {{"__name__", MatchType::kEqual, "http_requests_total"}});
  check_matchers("job:rate5m:sum", {{"__name__", MatchType::kEqual, "job:rate5m:sum"}});
  check_matchers(":leading", {{"__name__", MatchType::kEqual, ":leading"}});
  check_matchers("_x9", {{"__name__", MatchType::kEqual, "_x9"}});
  check_matchers("up{}", {{"__name__", MatchType::kEqual, "up"}});
  check_matchers("up { }", {{"__name__", MatchType::kEqual, "up"}});
  // Keywords are plain identifiers here.
  check_matchers("sum", {{"__name__", MatchType::kEqual, "sum"}});
  check_matchers("by", {{"__name__", MatchType::kEqual, "by"}});
}

TEST_CASE("selector: every matcher type", "[selector]") {
  check_matchers(R"(up{job="api"})",
                 {{"__name__", MatchType::kEqual, "up"}, {"job", MatchType::kEqual, "api"}});
  check_matchers(R"({a="b", c!="d", e=~"f.*", g!~"h",})", {{"a", MatchType::kEqual, "b"},
                                                           {"c", MatchType::kNotEqual, "d"},
                                                           {"e", MatchType::kRegexMatch, "f.*"},
                                                           {"g", MatchType::kRegexNoMatch, "h"}});
  check_matchers(R"(x{a!="", b=~".+"})", {{"__name__", MatchType::kEqual, "x"},
                                          {"a", MatchType::kNotEqual, ""},
                                          {"b", MatchType::kRegexMatch, ".+"}});
  // Matchers keep their source order; repeats are allowed.
  check_matchers(R"({z="1", a="2", z!="3"})", {{"z", MatchType::kEqual, "1"},
                                               {"a", MatchType::kEqual, "2"},
                                               {"z", MatchType::kNotEqual, "3"}});
}

TEST_CASE("selector: label names", "[selector]") {
  check_matchers(R"({on="1", by="2", offset="3", _="4", A9_b="5", __meta="6"})",
                 {{"on", MatchType::kEqual, "1"},
                  {"by", MatchType::kEqual, "2"},
                  {"offset", MatchType::kEqual, "3"},
                  {"_", MatchType::kEqual, "4"},
                  {"A9_b", MatchType::kEqual, "5"},
                  {"__meta", MatchType::kEqual, "6"}});
  CHECK(starts_with(parse_error(R"({9a="x"})"), "1:2: "));
  CHECK(starts_with(parse_error(R"({a:b="x"})"), "1:3: "));  // ':' not allowed in label names
  CHECK(starts_with(parse_error(R"({a.b="x"})"), "1:3: "));
  CHECK(starts_with(parse_error(R"({="x"})"), "1:2: "));
}

TEST_CASE("selector: __name__ matchers", "[selector]") {
  check_matchers(R"({__name__="up"})", {{"__name__", MatchType::kEqual, "up"}});
  check_matchers(
      R"({__name__=~"up|down", job="a"})",
      {{"__name__", MatchType::kRegexMatch, "up|down"}, {"job", MatchType::kEqual, "a"}});
  CHECK(parse_error(R"(name{__name__="y"})") ==
        R"(1:1: metric name must not be set twice: "name" or "y")");
  CHECK(parse_error(R"(  name{a="b", __name__=~"y.*"})") ==
        R"(1:3: metric name must not be set twice: "name" or "y.*")");
}

TEST_CASE("selector: the metric name comes first", "[selector]") {
  auto m = parse_ok(R"(up{b="1", a="2"})");
  REQUIRE(m.size() == 3);
  CHECK(m[0].name() == "__name__");
  CHECK(m[0].value() == "up");
  CHECK(m[0].type() == MatchType::kEqual);
  CHECK(m[1].name() == "b");
  CHECK(m[2].name() == "a");
}

TEST_CASE("selector: quoting styles", "[selector]") {
  CHECK(value_of(R"({a="double"})") == "double");
  CHECK(value_of(R"({a='single'})") == "single");
  CHECK(value_of("{a=`raw`}") == "raw");
  CHECK(value_of(R"({a="it's"})") == "it's");
  CHECK(value_of(R"({a='say "hi"'})") == "say \"hi\"");
  CHECK(value_of(R"({a=`no \n escapes "here" 'at all'`})") == R"(no \n escapes "here" 'at all')");
  CHECK(value_of("{a=`multi\nline`}") == "multi\nline");
  CHECK(value_of(R"({a=~"\\d+"})") == "\\d+");
  CHECK(value_of(R"({a=~`\d+`})") == "\\d+");
}

TEST_CASE("selector: Go escapes in quoted strings", "[selector]") {
  CHECK(value_of(R"({a="\a\b\f\n\r\t\v"})") == "\a\b\f\n\r\t\v");
  CHECK(value_of(R"({a="back\\slash"})") == "back\\slash");
  CHECK(value_of(R"({a="q\"q"})") == "q\"q");
  CHECK(value_of(R"({a='q\'q'})") == "q'q");
  CHECK(value_of(R"({a="\x41\x7a"})") == "Az");
  CHECK(value_of(R"({a="\xff"})") == "\xff");
  CHECK(value_of(R"({a="\101\060\377"})") == "A0\xff");
  CHECK(value_of(R"({a="\000x"})") == "\0x"s);
  CHECK(value_of(R"({a="\u00e9"})") == "é");
  CHECK(value_of(R"({a="\u4e16\u754C"})") == "世界");
  CHECK(value_of(R"({a="\U0001F680"})") == "🚀");
  CHECK(value_of(R"({a='\t\u0041'})") == "\tA");
}

TEST_CASE("selector: invalid escapes are errors", "[selector]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({a="\q"})", "1:5: "},   // unknown escape
      {R"({a="\'"})", "1:5: "},   // \' only inside single quotes (as in Go)
      {R"({a='\"'})", "1:5: "},   // \" only inside double quotes
      {R"({a="\x4"})", "1:5: "},  // \x needs two hex digits
      {R"({a="\xg0"})", "1:5: "},       {R"({a="\u123"})", "1:5: "},  // \u needs four
      {R"({a="\U0001F60"})", "1:5: "},                                // \U needs eight
      {R"({a="\uD800"})", "1:5: "},                                   // surrogate
      {R"({a="\U00110000"})", "1:5: "},                               // beyond Unicode
      {R"({a="\12"})", "1:5: "},                                      // octal needs three digits
      {R"({a="\400"})", "1:5: "},                                     // octal above 255
      {R"({a="\8"})", "1:5: "},
  };
  for (const auto& [text, prefix] : cases) {
    INFO(text);
    const std::string err = parse_error(text);
    CHECK(starts_with(err, prefix));
    CHECK(err.find("escape") != std::string::npos);
  }
}

TEST_CASE("selector: unicode values", "[selector]") {
  CHECK(value_of(R"({a="Grüße, 世界 🚀"})") == "Grüße, 世界 🚀");
  CHECK(value_of("{a='日本'}") == "日本");
  CHECK(value_of("{a=`ß`}") == "ß");
  check_matchers(R"(m{city=~"Zür.ch"})", {{"__name__", MatchType::kEqual, "m"},
                                          {"city", MatchType::kRegexMatch, "Zür.ch"}});
  // Malformed UTF-8 in the source text is rejected.
  CHECK(parse_error("{a=\"x\xff\"}").find("UTF-8") != std::string::npos);
  CHECK(parse_error("{a=`\xc3`}").find("UTF-8") != std::string::npos);
}

TEST_CASE("selector: whitespace between tokens", "[selector]") {
  const std::vector<M> want = {{"__name__", MatchType::kEqual, "up"},
                               {"job", MatchType::kNotEqual, "x"},
                               {"env", MatchType::kRegexMatch, "p.*"}};
  check_matchers("up{job!=\"x\",env=~\"p.*\"}", want);
  check_matchers("  up  {  job  !=  \"x\"  ,  env  =~  \"p.*\"  ,  }  ", want);
  check_matchers("\tup\n{\n\tjob != \"x\",\r\n\tenv =~ \"p.*\"\n}\n", want);
  // Whitespace inside a string is kept.
  CHECK(value_of("{a=\" spaced \t\"}") == " spaced \t");
  // PromQL comments count as whitespace.
  check_matchers("up # the metric\n{job!=\"x\", env=~\"p.*\"} # done", want);
}

TEST_CASE("selector: trailing comma", "[selector]") {
  check_matchers(R"({a="b",})", {{"a", MatchType::kEqual, "b"}});
  check_matchers(R"(m{a="b" , })",
                 {{"__name__", MatchType::kEqual, "m"}, {"a", MatchType::kEqual, "b"}});
  CHECK(starts_with(parse_error(R"({a="b",,})"), "1:8: "));
  CHECK(starts_with(parse_error(R"(m{,})"), "1:3: "));
}

TEST_CASE("selector: needs a matcher that rejects the empty string", "[selector]") {
  const std::string msg = "vector selector must contain at least one non-empty matcher";
  for (const char* text : {"{}", R"({a=""})", R"({a=~".*"})", R"({a!="x"})", R"({a!~".+"})",
                           R"({a="", b=~"x|"})", " {a=\"\"}"}) {
    INFO(text);
    const std::string err = parse_error(text);
    CHECK(err.find(msg) != std::string::npos);
    CHECK(starts_with(err, "1:"));
  }
  CHECK(parse_error(R"({a=""})") == "1:1: " + msg);
  CHECK(parse_ok(R"({a=~".+"})").size() == 1);
  CHECK(parse_ok(R"({a="", b="x"})").size() == 2);
  CHECK(parse_ok(R"({a!~""})").size() == 1);
  CHECK(parse_ok(R"(up{a=""})").size() == 2);  // the metric name is non-empty
}

TEST_CASE("selector: regex errors propagate", "[selector]") {
  const std::string err = parse_error(R"(up{job=~"(unclosed"})");
  CHECK(starts_with(err, "1:9: "));
  CHECK(err.find("(unclosed") != std::string::npos);
  CHECK(err.find("job") != std::string::npos);
  CHECK_FALSE(parse_selector(R"({job!~"a[b"})").is_ok());
  // Regex syntax in an equality matcher is only text.
  check_matchers(R"({job="(unclosed"})", {{"job", MatchType::kEqual, "(unclosed"}});
}

TEST_CASE("selector: parsed regexes are anchored", "[selector]") {
  auto m = parse_ok(R"({a=~"b"})");
  REQUIRE(m.size() == 1);
  CHECK(m[0].matches("b"));
  CHECK_FALSE(m[0].matches("ab"));
  CHECK_FALSE(m[0].matches("bc"));
}

TEST_CASE("selector: anything after the selector is rejected", "[selector]") {
  CHECK(parse_error("foo bar") ==
        R"(1:5: unexpected "bar" after selector; only series selectors are supported)");
  CHECK(parse_error("foo[5m]") ==
        R"(1:4: unexpected "[" after selector; only series selectors are supported)");
  CHECK(parse_error("rate(foo)") ==
        R"(1:5: unexpected "(" after selector; only series selectors are supported)");
  CHECK(parse_error(R"(foo{a="b"} + 1)") ==
        R"(1:12: unexpected "+" after selector; only series selectors are supported)");
  CHECK(starts_with(parse_error(R"(foo{a="b"}{c="d"})"), "1:11: "));
  CHECK(starts_with(parse_error("foo offset 5m"), "1:5: "));
  CHECK(starts_with(parse_error("foo}"), "1:4: "));
  CHECK(starts_with(parse_error("sum by (job) (foo)"), "1:5: "));
}

TEST_CASE("selector: syntax errors name line and column", "[selector]") {
  CHECK(parse_error("") == "1:1: empty selector");
  CHECK(parse_error("  \n\t ") == "2:3: empty selector");
  CHECK(starts_with(parse_error("5"), "1:1: "));
  CHECK(starts_with(parse_error("\"up\""), "1:1: "));
  CHECK(starts_with(parse_error("-up"), "1:1: "));
  CHECK(starts_with(parse_error("NaN"), "1:1: "));  // a number literal in PromQL
  CHECK(starts_with(parse_error("inf{a=\"b\"}"), "1:1: "));
  CHECK(parse_error(R"(up{job!"x"})") ==
        R"(1:7: unexpected "!" in label matcher; expected one of =, !=, =~, !~)");
  CHECK(starts_with(parse_error(R"(up{job=="x"})"), "1:7: "));
  CHECK(starts_with(parse_error(R"(up{job~"x"})"), "1:7: "));
  CHECK(starts_with(parse_error(R"(up{job "x"})"), "1:8: "));
  CHECK(starts_with(parse_error(R"(up{job=x})"), "1:8: "));
  CHECK(starts_with(parse_error(R"(up{job=})"), "1:8: "));
  CHECK(starts_with(parse_error(R"(up{job="x" env="y"})"), "1:12: "));
  CHECK(starts_with(parse_error(R"(up{job="x")"), "1:11: "));
  CHECK(starts_with(parse_error("up{"), "1:4: "));
  CHECK(starts_with(parse_error("up{job"), "1:7: "));
  // Unterminated strings point at the opening quote.
  CHECK(parse_error(R"(up{job="x})") == "1:8: unterminated quoted string");
  CHECK(parse_error(R"(up{job='x})") == "1:8: unterminated quoted string");
  CHECK(parse_error("up{job=`x}") == "1:8: unterminated raw string");
  CHECK(parse_error("up{job=\"a\nb\"}") == "1:8: unterminated quoted string");
  CHECK(starts_with(parse_error(R"(up{job="x\)"), "1:"));
  // Lines and columns after newlines.
  CHECK(parse_error("up{\n  job=\"x\",\n  env!\"y\"\n}") ==
        R"(3:6: unexpected "!" in label matcher; expected one of =, !=, =~, !~)");
  CHECK(parse_error("up\n\n  bar") ==
        R"(3:3: unexpected "bar" after selector; only series selectors are supported)");
}
