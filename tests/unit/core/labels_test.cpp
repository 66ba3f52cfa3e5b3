#include "kpid/core/labels.h"
#include "kpid/core/varint.h"

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

using namespace kpid;
using namespace std::string_literals;

namespace {

Labels make(std::vector<Label> labels) {
  auto r = Labels::from(std::move(labels));
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

LabelMatcher matcher(MatchType type, std::string name, std::string value) {
  auto r = LabelMatcher::create(type, std::move(name), std::move(value));
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

}  // namespace

TEST_CASE("Labels::from sorts by name", "[labels]") {
  Labels l = make({{"job", "api"}, {"__name__", "up"}, {"instance", "a:1"}, {"Zeta", "z"}});
  REQUIRE(l.size() == 4);
  CHECK(l.items()[0].name == "Zeta");  // byte order: upper case before '_' before lower case
  CHECK(l.items()[1].name == "__name__");
  CHECK(l.items()[2].name == "instance");
  CHECK(l.items()[3].name == "job");
  CHECK(l.get("job") == "api");
  CHECK(l.get("instance") == "a:1");
  CHECK(l.get("missing").empty());
  CHECK(l.metric_name() == "up");
  CHECK_FALSE(l.empty());
}

TEST_CASE("Labels::from rejects duplicate and empty names", "[labels]") {
  auto dup = Labels::from({{"a", "1"}, {"b", "2"}, {"a", "3"}});
  REQUIRE_FALSE(dup.is_ok());
  CHECK(dup.status().code() == StatusCode::kInvalidArgument);
  CHECK(dup.status().message().find("'a'") != std::string::npos);

  auto empty = Labels::from({{"", "x"}, {"b", "2"}});
  REQUIRE_FALSE(empty.is_ok());
  CHECK(empty.status().code() == StatusCode::kInvalidArgument);

  // An empty value is allowed, an empty set too.
  CHECK(Labels::from({{"a", ""}}).is_ok());
  auto none = Labels::from({});
  REQUIRE(none.is_ok());
  CHECK(none->empty());
  CHECK(none->metric_name().empty());
}

TEST_CASE("Labels equality ignores input order", "[labels]") {
  CHECK(make({{"a", "1"}, {"b", "2"}}) == make({{"b", "2"}, {"a", "1"}}));
  CHECK_FALSE(make({{"a", "1"}, {"b", "2"}}) == make({{"a", "1"}, {"b", "3"}}));
  CHECK_FALSE(make({{"a", "1"}}) == make({{"a", "1"}, {"b", "2"}}));
}

TEST_CASE("Labels encode/decode round-trips", "[labels]") {
  const std::vector<Labels> sets = {
      Labels{},
      make({{"__name__", "up"}}),
      make({{"__name__", "http_requests_total"}, {"job", "api"}, {"code", "200"}}),
      make({{"a", ""}, {"b", ""}}),
      make({{"nul", "x\0y\0"s}, {"z", "\0"s}}),
      make({{"utf8", "Grüße, 世界 🚀"}, {"quote", "a\"b\\c\nd"}}),
      make({{"long", std::string(300, 'v')}, {std::string(200, 'n'), "short"}}),
  };
  for (const auto& labels : sets) {
    INFO(labels.to_string());
    const std::string encoded = labels.encode();
    auto decoded = Labels::decode(encoded);
    REQUIRE(decoded.is_ok());
    CHECK(*decoded == labels);
    CHECK(decoded->encode() == encoded);
  }
}

TEST_CASE("Labels encoding is varint-length-prefixed and canonical", "[labels]") {
  CHECK(Labels{}.encode().empty());
  CHECK(make({{"a", "bc"}}).encode() ==
        "\x01"
        "a"
        "\x02"
        "bc");
  // Lengths >= 128 take two varint bytes.
  const std::string v(200, 'x');
  CHECK(make({{"a", v}}).encode() ==
        "\x01"
        "a"
        "\xc8\x01"s +
            v);
  // Different label sets never share an encoding, even when concatenations agree.
  CHECK(make({{"a", "bc"}}).encode() != make({{"ab", "c"}}).encode());
  CHECK(make({{"b", "1"}, {"a", "2"}}).encode() == make({{"a", "2"}, {"b", "1"}}).encode());
}

TEST_CASE("Labels::decode rejects corrupt input", "[labels]") {
  for (const std::string& bad : {"\x05"
                                 "ab"s,  // length past the end
                                 "\x01"
                                 "a"s,  // name without value
                                 "\x01"
                                 "a"
                                 "\x03"
                                 "xy"s,           // value truncated
                                 "\x80"s,         // unterminated varint
                                 "\x00\x00"s}) {  // empty name
    INFO(bad.size());
    auto r = Labels::decode(bad);
    CHECK_FALSE(r.is_ok());
  }
  auto trunc = Labels::decode(
      "\x01"
      "a"s);
  REQUIRE_FALSE(trunc.is_ok());
  CHECK(trunc.status().code() == StatusCode::kInternal);
  // Duplicate names in an encoding are rejected too.
  CHECK_FALSE(Labels::decode("\x01"
                             "a"
                             "\x01"
                             "1"
                             "\x01"
                             "a"
                             "\x01"
                             "2"s)
                  .is_ok());
}

TEST_CASE("append_varint writes LEB128", "[labels]") {
  auto varint = [](uint64_t v) {
    std::string out;
    append_varint(out, v);
    return out;
  };
  CHECK(varint(0) == "\x00"s);
  CHECK(varint(1) == "\x01");
  CHECK(varint(127) == "\x7f");
  CHECK(varint(128) == "\x80\x01");
  CHECK(varint(300) == "\xac\x02");
  CHECK(varint(UINT64_MAX) == "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01");
}

TEST_CASE("Labels::to_string uses the Prometheus text form", "[labels]") {
  CHECK(make({{"__name__", "up"}, {"job", "api"}, {"instance", "a:1"}}).to_string() ==
        R"(up{instance="a:1", job="api"})");
  CHECK(make({{"__name__", "up"}}).to_string() == "up{}");
  CHECK(make({{"b", "2"}, {"a", "1"}}).to_string() == R"({a="1", b="2"})");
  CHECK(Labels{}.to_string() == "{}");
  CHECK(make({{"a", "say \"hi\""}}).to_string() == R"({a="say \"hi\""})");
  CHECK(make({{"a", R"(C:\path)"}}).to_string() == R"({a="C:\\path"})");
  CHECK(make({{"a", "line1\nline2"}}).to_string() == R"({a="line1\nline2"})");
  CHECK(make({{"a", "Grüße"}}).to_string() == "{a=\"Grüße\"}");
}

TEST_CASE("LabelsBuilder sorts and encodes like Labels", "[labels]") {
  LabelsBuilder b;
  b.add("job", "api");
  b.add("__name__", "up");
  b.add("instance", "a:1");
  CHECK(b.finish().empty());
  Labels expected = make({{"__name__", "up"}, {"instance", "a:1"}, {"job", "api"}});
  CHECK(b.key() == expected.encode());
  CHECK(b.to_labels() == expected);

  // Reuse after clear(): nothing left over.
  // The builder keeps views: the strings must outlive finish() and to_labels().
  const std::string nul_value = "\0x"s;
  b.clear();
  b.add("z", "1");
  b.add("a", nul_value);
  CHECK(b.finish().empty());
  Labels second = make({{"a", "\0x"s}, {"z", "1"}});
  CHECK(b.key() == second.encode());
  CHECK(b.to_labels() == second);

  b.clear();
  CHECK(b.finish().empty());
  CHECK(b.key().empty());
  CHECK(b.to_labels().empty());
}

TEST_CASE("LabelsBuilder reports a duplicate name", "[labels]") {
  LabelsBuilder b;
  b.add("b", "1");
  b.add("a", "2");
  b.add("b", "3");
  CHECK(b.finish() == "b");
  b.clear();
  b.add("x", "1");
  b.add("x", "1");
  CHECK(b.finish() == "x");
  // Usable again after a failure.
  b.clear();
  b.add("x", "1");
  CHECK(b.finish().empty());
  CHECK(b.key() == make({{"x", "1"}}).encode());
}

TEST_CASE("LabelsBuilder keys agree with Labels::encode for many orders", "[labels]") {
  std::vector<Label> labels = {{"e", "5"}, {"d", "4"}, {"c", "3"}, {"b", "2"}, {"a", "1"}};
  const std::string want = make(labels).encode();
  LabelsBuilder b;
  for (size_t rotate = 0; rotate < labels.size(); ++rotate) {
    b.clear();
    for (size_t i = 0; i < labels.size(); ++i) {
      const Label& l = labels[(i + rotate) % labels.size()];
      b.add(l.name, l.value);
    }
    CHECK(b.finish().empty());
    CHECK(b.key() == want);
  }
}

TEST_CASE("LabelMatcher equality matchers", "[labels]") {
  auto eq = matcher(MatchType::kEqual, "job", "api");
  CHECK(eq.matches("api"));
  CHECK_FALSE(eq.matches("api2"));
  CHECK_FALSE(eq.matches(""));
  CHECK_FALSE(eq.matches_empty());
  CHECK(eq.type() == MatchType::kEqual);
  CHECK(eq.name() == "job");
  CHECK(eq.value() == "api");

  auto ne = matcher(MatchType::kNotEqual, "job", "api");
  CHECK_FALSE(ne.matches("api"));
  CHECK(ne.matches("web"));
  CHECK(ne.matches_empty());

  CHECK(matcher(MatchType::kEqual, "job", "").matches_empty());
  CHECK_FALSE(matcher(MatchType::kNotEqual, "job", "").matches_empty());
}

TEST_CASE("LabelMatcher regexes are fully anchored", "[labels]") {
  auto re = matcher(MatchType::kRegexMatch, "job", "a");
  CHECK(re.matches("a"));
  CHECK_FALSE(re.matches("ab"));
  CHECK_FALSE(re.matches("ba"));
  CHECK_FALSE(re.matches(""));

  auto alt = matcher(MatchType::kRegexMatch, "job", "api|web");
  CHECK(alt.matches("api"));
  CHECK(alt.matches("web"));
  CHECK_FALSE(alt.matches("apiweb"));
  CHECK_FALSE(alt.matches("api|web"));

  auto prefix = matcher(MatchType::kRegexMatch, "job", "f.*");
  CHECK(prefix.matches("f"));
  CHECK(prefix.matches("foo"));
  CHECK_FALSE(prefix.matches("xfoo"));

  CHECK(matcher(MatchType::kRegexMatch, "a", ".*").matches_empty());
  CHECK_FALSE(matcher(MatchType::kRegexMatch, "a", ".+").matches_empty());
  CHECK(matcher(MatchType::kRegexMatch, "a", "").matches_empty());
  CHECK_FALSE(matcher(MatchType::kRegexMatch, "a", "").matches("x"));
  CHECK(matcher(MatchType::kRegexMatch, "a", "\\d+").matches("123"));
  CHECK(matcher(MatchType::kRegexMatch, "a", "(?i)API").matches("api"));

  auto nre = matcher(MatchType::kRegexNoMatch, "job", "a");
  CHECK_FALSE(nre.matches("a"));
  CHECK(nre.matches("ab"));
  CHECK(nre.matches_empty());
  CHECK_FALSE(matcher(MatchType::kRegexNoMatch, "a", ".*").matches("anything"));
  CHECK_FALSE(matcher(MatchType::kRegexNoMatch, "a", ".*").matches_empty());
}

TEST_CASE("LabelMatcher rejects an invalid regex", "[labels]") {
  for (const char* bad : {"(", "a[", "*a", "a{2,1}"}) {
    INFO(bad);
    auto r = LabelMatcher::create(MatchType::kRegexMatch, "job", bad);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(r.status().message().find(std::string("\"") + bad + "\"") != std::string::npos);
    CHECK(r.status().message().find("job") != std::string::npos);
  }
  CHECK_FALSE(LabelMatcher::create(MatchType::kRegexNoMatch, "job", "(").is_ok());
  // Not regexes: any text goes.
  CHECK(LabelMatcher::create(MatchType::kEqual, "job", "(").is_ok());
  CHECK(LabelMatcher::create(MatchType::kNotEqual, "job", "(").is_ok());
}

TEST_CASE("LabelMatcher::to_string", "[labels]") {
  CHECK(matcher(MatchType::kEqual, "job", "api").to_string() == R"(job="api")");
  CHECK(matcher(MatchType::kNotEqual, "job", "api").to_string() == R"(job!="api")");
  CHECK(matcher(MatchType::kRegexMatch, "job", "api.*").to_string() == R"(job=~"api.*")");
  CHECK(matcher(MatchType::kRegexNoMatch, "job", "a\"b").to_string() == R"(job!~"a\"b")");
}

TEST_CASE("matches_all treats absent labels as empty", "[labels]") {
  Labels l = make({{"__name__", "up"}, {"job", "api"}});
  std::vector<LabelMatcher> ms;
  CHECK(matches_all(l, ms));  // no matchers: everything matches

  ms.push_back(matcher(MatchType::kEqual, "__name__", "up"));
  ms.push_back(matcher(MatchType::kRegexMatch, "job", "a.*"));
  CHECK(matches_all(l, ms));

  ms.push_back(matcher(MatchType::kEqual, "env", ""));  // absent == ""
  CHECK(matches_all(l, ms));
  ms.push_back(matcher(MatchType::kRegexMatch, "env", "prod|"));
  CHECK(matches_all(l, ms));
  ms.push_back(matcher(MatchType::kNotEqual, "zone", "eu"));
  CHECK(matches_all(l, ms));

  ms.push_back(matcher(MatchType::kNotEqual, "env", ""));  // requires env to be present
  CHECK_FALSE(matches_all(l, ms));
  ms.pop_back();
  ms.push_back(matcher(MatchType::kRegexMatch, "env", ".+"));
  CHECK_FALSE(matches_all(l, ms));
  ms.pop_back();
  ms.push_back(matcher(MatchType::kEqual, "job", "web"));
  CHECK_FALSE(matches_all(l, ms));
}

TEST_CASE("label and metric names: Prometheus' classic charsets") {
  CHECK(is_label_name("job"));
  CHECK(is_label_name("_private9"));
  CHECK_FALSE(is_label_name(""));
  CHECK_FALSE(is_label_name("9lives"));
  CHECK_FALSE(is_label_name("a:b"));
  CHECK_FALSE(is_label_name("a-b"));
  CHECK(is_metric_name("http_requests_total"));
  CHECK(is_metric_name("job:rate5m:sum"));
  CHECK(is_metric_name(":leading_colon"));
  CHECK_FALSE(is_metric_name(""));
  CHECK_FALSE(is_metric_name("5xx"));
  CHECK_FALSE(is_metric_name("a-b"));
}
