#include "kpid/ingest/line_protocol.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

using kpid::ingest::FieldType;
using kpid::ingest::LineKind;
using kpid::ingest::LineParser;
using kpid::ingest::parse_error_reason;
using kpid::ingest::ParseErrorCode;

namespace {

// Parses `line` with a fresh parser and returns the error code (kNone for a point or empty line).
ParseErrorCode error_of(std::string_view line) {
  LineParser p;
  if (p.parse(line) != LineKind::kError) return ParseErrorCode::kNone;
  return p.error().code;
}

// Parses a line holding a single numeric field and returns it; fails the test otherwise.
kpid::ingest::Field single_field(LineParser& p, std::string_view line) {
  INFO("line: " << line);
  const LineKind kind = p.parse(line);
  INFO("error: " << p.error().message);
  REQUIRE(kind == LineKind::kPoint);
  REQUIRE(p.line().fields.size() == 1);
  return p.line().fields[0];
}

bool points_into(std::string_view view, std::string_view buffer) {
  return view.data() >= buffer.data() && view.data() + view.size() <= buffer.data() + buffer.size();
}

}  // namespace

TEST_CASE("a full point yields measurement, tags, fields and raw timestamp in input order",
          "[lineproto]") {
  LineParser p;
  REQUIRE(p.parse("cpu,host=a,region=eu usage=1.5,idle=2i,up=true 1700000000000000000") ==
          LineKind::kPoint);
  const auto& l = p.line();
  CHECK(l.measurement == "cpu");
  REQUIRE(l.tags.size() == 2);
  CHECK(l.tags[0].key == "host");
  CHECK(l.tags[0].value == "a");
  CHECK(l.tags[1].key == "region");
  CHECK(l.tags[1].value == "eu");
  REQUIRE(l.fields.size() == 3);
  CHECK(l.fields[0].key == "usage");
  CHECK(l.fields[0].value == 1.5);
  CHECK(l.fields[0].type == FieldType::kFloat);
  CHECK(l.fields[1].key == "idle");
  CHECK(l.fields[1].value == 2.0);
  CHECK(l.fields[1].type == FieldType::kInteger);
  CHECK(l.fields[2].key == "up");
  CHECK(l.fields[2].value == 1.0);
  CHECK(l.fields[2].type == FieldType::kBoolean);
  CHECK(l.string_fields == 0);
  REQUIRE(l.timestamp.has_value());
  CHECK(*l.timestamp == 1700000000000000000);
  CHECK(p.error().code == ParseErrorCode::kNone);
}

TEST_CASE("timestamp is optional and may be negative or at the int64 limits", "[lineproto]") {
  LineParser p;
  SECTION("absent") {
    REQUIRE(p.parse("cpu value=1") == LineKind::kPoint);
    CHECK_FALSE(p.line().timestamp.has_value());
    CHECK(p.line().tags.empty());
  }
  SECTION("negative") {
    REQUIRE(p.parse("cpu value=1 -1500") == LineKind::kPoint);
    CHECK(p.line().timestamp == -1500);
  }
  SECTION("zero padded") {
    REQUIRE(p.parse("cpu value=1 0000000000000000000") == LineKind::kPoint);
    CHECK(p.line().timestamp == 0);
  }
  SECTION("int64 max and min") {
    REQUIRE(p.parse("cpu value=1 9223372036854775807") == LineKind::kPoint);
    CHECK(p.line().timestamp == std::numeric_limits<int64_t>::max());
    REQUIRE(p.parse("cpu value=1 -9223372036854775808") == LineKind::kPoint);
    CHECK(p.line().timestamp == std::numeric_limits<int64_t>::min());
  }
}

TEST_CASE("bad timestamps are rejected as invalid_timestamp", "[lineproto]") {
  for (const char* line :
       {"cpu value=1 12a", "cpu value=1 1.5", "cpu value=1 1e9", "cpu value=1 +5", "cpu value=1 -",
        "cpu value=1 --5", "cpu value=1 0x10", "cpu value=1 9223372036854775808",
        "cpu value=1 -9223372036854775809", "cpu value=1 99999999999999999999999",
        "cpu value=1 1 2", "cpu value=1 1 x", "cpu value=1 123 456 789", "cpu value=1 now"}) {
    INFO(line);
    CHECK(error_of(line) == ParseErrorCode::kInvalidTimestamp);
  }
}

TEST_CASE("invalid timestamp message names the token and its column", "[lineproto]") {
  LineParser p;
  REQUIRE(p.parse("cpu,host=a value=1 12a") == LineKind::kError);
  CHECK(p.error().code == ParseErrorCode::kInvalidTimestamp);
  CHECK(p.error().column == 20);
  const std::string msg(p.error().message);
  CHECK_THAT(msg, Catch::Contains("invalid timestamp \"12a\""));
  CHECK_THAT(msg, Catch::Contains("(column 20)"));

  REQUIRE(p.parse("cpu value=1 100 extra") == LineKind::kError);
  CHECK(p.error().code == ParseErrorCode::kInvalidTimestamp);
  CHECK(p.error().column == 17);
  CHECK_THAT(std::string(p.error().message), Catch::Contains("\"extra\""));
}

TEST_CASE("escaped commas and spaces in the measurement are unescaped", "[lineproto]") {
  LineParser p;
  REQUIRE(p.parse("my\\,meas\\ ure,t=v f=1") == LineKind::kPoint);
  CHECK(p.line().measurement == "my,meas ure");
  REQUIRE(p.line().tags.size() == 1);
  CHECK(p.line().tags[0].key == "t");

  SECTION("an equals sign needs no escape in a measurement, and \\= stays literal") {
    REQUIRE(p.parse("a=b f=1") == LineKind::kPoint);
    CHECK(p.line().measurement == "a=b");
    REQUIRE(p.parse("a\\=b f=1") == LineKind::kPoint);
    CHECK(p.line().measurement == "a\\=b");
  }
  SECTION("a measurement made only of escaped separators") {
    REQUIRE(p.parse("\\ \\, f=1") == LineKind::kPoint);
    CHECK(p.line().measurement == " ,");
  }
}

TEST_CASE("escaped commas, equals signs and spaces in tag keys and values", "[lineproto]") {
  LineParser p;
  REQUIRE(p.parse("m,k\\,1\\=x\\ y=v\\,1\\=2\\ 3,plain=ok f=1") == LineKind::kPoint);
  REQUIRE(p.line().tags.size() == 2);
  CHECK(p.line().tags[0].key == "k,1=x y");
  CHECK(p.line().tags[0].value == "v,1=2 3");
  CHECK(p.line().tags[1].key == "plain");
  CHECK(p.line().tags[1].value == "ok");
  REQUIRE(p.line().fields.size() == 1);
  CHECK(p.line().fields[0].key == "f");
}

TEST_CASE("escaped commas, equals signs and spaces in field keys", "[lineproto]") {
  LineParser p;
  REQUIRE(p.parse("m f\\,1\\=\\ x=1,g\\ h=2i 5") == LineKind::kPoint);
  REQUIRE(p.line().fields.size() == 2);
  CHECK(p.line().fields[0].key == "f,1= x");
  CHECK(p.line().fields[0].value == 1.0);
  CHECK(p.line().fields[1].key == "g h");
  CHECK(p.line().fields[1].value == 2.0);
  CHECK(p.line().timestamp == 5);
}

TEST_CASE("a backslash before a character that needs no escape is kept literally", "[lineproto]") {
  LineParser p;
  REQUIRE(p.parse("m\\x,path=C:\\dir\\file,two=a\\\\b f\\n=1") == LineKind::kPoint);
  CHECK(p.line().measurement == "m\\x");
  REQUIRE(p.line().tags.size() == 2);
  CHECK(p.line().tags[0].value == "C:\\dir\\file");
  CHECK(p.line().tags[1].value == "a\\\\b");  // "\\" is not an escape outside strings
  REQUIRE(p.line().fields.size() == 1);
  CHECK(p.line().fields[0].key == "f\\n");

  SECTION("a backslash right before a space escapes it, so a value cannot end in one") {
    REQUIRE(p.parse("m,t=a\\ f=1") == LineKind::kError);
    CHECK(p.error().code == ParseErrorCode::kMissingFields);
  }
}

TEST_CASE("elements without escapes are views into the input, escaped ones are copies",
          "[lineproto]") {
  LineParser p;
  const std::string input = "cpu,host=a\\ b,zone=z1 us\\=er=1,idle=2";
  REQUIRE(p.parse(input) == LineKind::kPoint);
  const auto& l = p.line();
  CHECK(points_into(l.measurement, input));
  CHECK(points_into(l.tags[0].key, input));
  CHECK_FALSE(points_into(l.tags[0].value, input));
  CHECK(l.tags[0].value == "a b");
  CHECK(points_into(l.tags[1].key, input));
  CHECK(points_into(l.tags[1].value, input));
  CHECK_FALSE(points_into(l.fields[0].key, input));
  CHECK(l.fields[0].key == "us=er");
  CHECK(points_into(l.fields[1].key, input));
}

TEST_CASE("string fields may hold spaces, commas, equals signs and escaped quotes", "[lineproto]") {
  LineParser p;
  SECTION("string field followed by a numeric field") {
    REQUIRE(p.parse("log,app=web msg=\"a b, c=d \\\"quoted\\\" \\\\\",count=3i 42") ==
            LineKind::kPoint);
    CHECK(p.line().string_fields == 1);
    REQUIRE(p.line().fields.size() == 1);
    CHECK(p.line().fields[0].key == "count");
    CHECK(p.line().fields[0].value == 3.0);
    CHECK(p.line().timestamp == 42);
  }
  SECTION("an escaped backslash right before the closing quote") {
    REQUIRE(p.parse("log path=\"C:\\\\\",n=1") == LineKind::kPoint);
    CHECK(p.line().string_fields == 1);
    REQUIRE(p.line().fields.size() == 1);
    CHECK(p.line().fields[0].key == "n");
  }
  SECTION("numeric fields around a string field") {
    REQUIRE(p.parse("log a=1,s=\"x y\",b=2 7") == LineKind::kPoint);
    CHECK(p.line().string_fields == 1);
    REQUIRE(p.line().fields.size() == 2);
    CHECK(p.line().fields[0].key == "a");
    CHECK(p.line().fields[1].key == "b");
    CHECK(p.line().timestamp == 7);
  }
  SECTION("empty string and a string with a literal backslash") {
    REQUIRE(p.parse("log a=\"\",b=\"x\\y\" 1") == LineKind::kPoint);
    CHECK(p.line().string_fields == 2);
    CHECK(p.line().fields.empty());
  }
  SECTION("a line with only string fields is a point without numeric fields") {
    REQUIRE(p.parse("event,k=v title=\"deploy\",by=\"ci\"") == LineKind::kPoint);
    CHECK(p.line().measurement == "event");
    CHECK(p.line().fields.empty());
    CHECK(p.line().string_fields == 2);
    CHECK_FALSE(p.line().timestamp.has_value());
  }
  SECTION("invalid UTF-8 inside a skipped string value does not matter") {
    REQUIRE(p.parse("log s=\"\xff\",n=1") == LineKind::kPoint);
    CHECK(p.line().string_fields == 1);
  }
}

TEST_CASE("malformed string fields are invalid_field", "[lineproto]") {
  for (const char* line : {"log s=\"unterminated", "log s=\"escaped end\\\"", "log s=\"a\"b",
                           "log s=\"a\"\"b\"", "log s=\"a\"x=1"}) {
    INFO(line);
    CHECK(error_of(line) == ParseErrorCode::kInvalidField);
  }
}

TEST_CASE("a measurement without a field set is missing_fields", "[lineproto]") {
  for (const char* line :
       {"cpu", "cpu ", "cpu     ", "cpu,host=a", "cpu,host=a   ", "cpu,host=a\r", "cpu\\ "}) {
    INFO(line);
    CHECK(error_of(line) == ParseErrorCode::kMissingFields);
  }
  LineParser p;
  REQUIRE(p.parse("cpu,host=a") == LineKind::kError);
  CHECK_THAT(std::string(p.error().message), Catch::Contains("\"cpu\""));
}

TEST_CASE("a line starting with a comma is missing_measurement", "[lineproto]") {
  for (const char* line : {",host=a value=1", "   ,host=a value=1", ", value=1"}) {
    INFO(line);
    CHECK(error_of(line) == ParseErrorCode::kMissingMeasurement);
  }
  LineParser p;
  REQUIRE(p.parse("  ,a=b f=1") == LineKind::kError);
  CHECK(p.error().column == 3);
}

TEST_CASE("tags without key, '=' or value are missing_tag_value", "[lineproto]") {
  for (const char* line :
       {"cpu,host value=1", "cpu,host= value=1", "cpu,=a value=1", "cpu, value=1",
        "cpu,host=a, value=1", "cpu,,host=a value=1", "cpu,host=a,zone value=1", "cpu,host"}) {
    INFO(line);
    CHECK(error_of(line) == ParseErrorCode::kMissingTagValue);
  }
  LineParser p;
  REQUIRE(p.parse("cpu,host= value=1") == LineKind::kError);
  CHECK(p.error().column == 10);
  CHECK_THAT(std::string(p.error().message), Catch::Contains("\"host\""));
}

TEST_CASE("an unescaped '=' inside a tag value is kept", "[lineproto]") {
  LineParser p;
  REQUIRE(p.parse("m,query=a=b f=1") == LineKind::kPoint);
  CHECK(p.line().tags[0].value == "a=b");
}

TEST_CASE("the same tag key twice is duplicate_tag", "[lineproto]") {
  LineParser p;
  SECTION("plain keys") {
    REQUIRE(p.parse("cpu,a=1,b=2,a=3 value=1") == LineKind::kError);
    CHECK(p.error().code == ParseErrorCode::kDuplicateTag);
    CHECK(p.error().column == 13);
    CHECK_THAT(std::string(p.error().message), Catch::Contains("duplicate tag key \"a\""));
  }
  SECTION("keys equal after unescaping") {
    REQUIRE(p.parse("cpu,a\\ b=1,a\\ b=2 value=1") == LineKind::kError);
    CHECK(p.error().code == ParseErrorCode::kDuplicateTag);
  }
  SECTION("many tags use the sorting check, which reports the same duplicate") {
    std::string line = "cpu";
    for (int i = 0; i < 40; ++i) line += ",k" + std::to_string(i) + "=v";
    REQUIRE(p.parse(line + " value=1") == LineKind::kPoint);
    CHECK(p.line().tags.size() == 40);
    // k5 repeats at tag index 41, k3 at index 42: the first repeat found in input order wins.
    REQUIRE(p.parse(line + ",k5=x,k3=y value=1") == LineKind::kError);
    CHECK(p.error().code == ParseErrorCode::kDuplicateTag);
    CHECK_THAT(std::string(p.error().message), Catch::Contains("\"k5\""));
  }
  SECTION("same key as tag and field is fine") {
    REQUIRE(p.parse("cpu,a=1 a=2") == LineKind::kPoint);
  }
}

TEST_CASE("malformed field sets are invalid_field", "[lineproto]") {
  for (const char* line :
       {"cpu value",        "cpu value=",      "cpu =1",         "cpu value=1,",
        "cpu value=1,,b=2", "cpu ,value=1",    "cpu value=1,b",  "cpu value=abc",
        "cpu value=1.2.3",  "cpu value=12x",   "cpu value=1i2",  "cpu value=1.5i",
        "cpu value=1e5i",   "cpu value=+1i",   "cpu value=1.5u", "cpu value=+1u",
        "cpu value=0x10",   "cpu value=0x1p3", "cpu value=1e",   "cpu value=1e+",
        "cpu value=--1",    "cpu value=-",     "cpu value=.",    "cpu value=i",
        "cpu value=u",      "cpu value=-i",    "cpu value=tRUE", "cpu value=yes",
        "cpu value=1_000",  "cpu value=1,2",   "cpu value=info", "cpu value=nanny",
        "cpu value=e5",     "cpu value=+1",    "cpu value=+.5"}) {
    INFO(line);
    CHECK(error_of(line) == ParseErrorCode::kInvalidField);
  }
}

TEST_CASE("invalid field messages name the field and the column", "[lineproto]") {
  LineParser p;
  SECTION("missing '='") {
    REQUIRE(p.parse("weather,city=x temp") == LineKind::kError);
    CHECK(p.error().code == ParseErrorCode::kInvalidField);
    CHECK(p.error().message ==
          "invalid field format: missing '=' after field key \"temp\" (column 20)");
    CHECK(p.error().column == 20);
  }
  SECTION("unparsable value") {
    REQUIRE(p.parse("cpu x=abc") == LineKind::kError);
    const std::string msg(p.error().message);
    CHECK_THAT(msg, Catch::Contains("\"abc\""));
    CHECK_THAT(msg, Catch::Contains("\"x\""));
    CHECK_THAT(msg, Catch::EndsWith("(column 7)"));
  }
  SECTION("long tokens are truncated in messages") {
    const std::string junk(500, 'z');
    REQUIRE(p.parse("cpu x=" + junk) == LineKind::kError);
    CHECK(p.error().message.size() < 200);
    CHECK_THAT(std::string(p.error().message), Catch::Contains("..."));
  }
}

TEST_CASE("NaN and infinities in every spelling are unsupported_value", "[lineproto]") {
  for (const char* value :
       {"NaN", "nan", "NAN", "-NaN", "+NaN", "nan(123)", "Inf", "inf", "INF", "+Inf", "-Inf",
        "-inf", "infinity", "Infinity", "-Infinity", "+INFINITY"}) {
    INFO(value);
    CHECK(error_of(std::string("cpu x=") + value) == ParseErrorCode::kUnsupportedValue);
  }
  LineParser p;
  REQUIRE(p.parse("cpu x=NaN") == LineKind::kError);
  CHECK(p.error().message == "unsupported value NaN for field \"x\" (column 7)");
  CHECK(p.error().column == 7);
}

TEST_CASE("numbers outside their type's range are value_out_of_range", "[lineproto]") {
  for (const char* value :
       {"1e400", "-1e400", "1.8e308", "1000e306", "1e99999999999999999999", "9223372036854775808i",
        "-9223372036854775809i", "99999999999999999999i", "18446744073709551616u",
        "99999999999999999999999u", "-1u", "-0u"}) {
    INFO(value);
    CHECK(error_of(std::string("cpu x=") + value) == ParseErrorCode::kValueOutOfRange);
  }
  LineParser p;
  REQUIRE(p.parse("cpu x=1e400") == LineKind::kError);
  CHECK_THAT(std::string(p.error().message), Catch::Contains("1e400"));
  CHECK_THAT(std::string(p.error().message), Catch::Contains("(column 7)"));
}

TEST_CASE("numbers at the edges of their range are accepted", "[lineproto]") {
  LineParser p;
  auto f = single_field(p, "cpu x=9223372036854775807i");
  CHECK(f.type == FieldType::kInteger);
  CHECK(f.value == 9223372036854775807.0);
  f = single_field(p, "cpu x=-9223372036854775808i");
  CHECK(f.value == -9223372036854775808.0);
  f = single_field(p, "cpu x=18446744073709551615u");
  CHECK(f.type == FieldType::kUnsigned);
  CHECK(f.value == 18446744073709551615.0);
  f = single_field(p, "cpu x=1.7976931348623157e308");
  CHECK(f.value == std::numeric_limits<double>::max());
  f = single_field(p, "cpu x=4.9e-324");
  CHECK(f.value > 0);
  SECTION("underflow rounds to zero, as Go's ParseFloat does") {
    f = single_field(p, "cpu x=1e-400");
    CHECK(f.value == 0.0);
    CHECK_FALSE(std::signbit(f.value));
    f = single_field(p, "cpu x=-1e-400");
    CHECK(f.value == 0.0);
    CHECK(std::signbit(f.value));
    f = single_field(p, "cpu x=0.0000001e-320");
    CHECK(f.value == 0.0);
  }
}

TEST_CASE("float syntax follows strconv.ParseFloat without '+' prefix or hex", "[lineproto]") {
  LineParser p;
  struct Case {
    const char* text;
    double value;
  };
  for (const Case& c :
       {Case{"1", 1.0}, Case{"1.5", 1.5}, Case{"-1.5e10", -1.5e10}, Case{".5", 0.5},
        Case{"-.5", -0.5}, Case{"1.", 1.0}, Case{"1E3", 1000.0}, Case{"1e+3", 1000.0},
        Case{"1e-3", 0.001}, Case{"-0", 0.0}, Case{"007", 7.0}, Case{"0.000", 0.0},
        Case{"123456789012345678901234567890", 1.2345678901234568e29}}) {
    INFO(c.text);
    const auto f = single_field(p, std::string("cpu x=") + c.text);
    CHECK(f.type == FieldType::kFloat);
    CHECK(f.value == Approx(c.value));
  }
}

TEST_CASE("integer and unsigned suffixes set the field type", "[lineproto]") {
  LineParser p;
  REQUIRE(p.parse("m a=-12i,b=12u,c=12,d=0i,e=0u,f=-0i") == LineKind::kPoint);
  const auto& fs = p.line().fields;
  REQUIRE(fs.size() == 6);
  CHECK(fs[0].type == FieldType::kInteger);
  CHECK(fs[0].value == -12.0);
  CHECK(fs[1].type == FieldType::kUnsigned);
  CHECK(fs[1].value == 12.0);
  CHECK(fs[2].type == FieldType::kFloat);
  CHECK(fs[2].value == 12.0);
  CHECK(fs[3].type == FieldType::kInteger);
  CHECK(fs[4].type == FieldType::kUnsigned);
  CHECK(fs[5].type == FieldType::kInteger);
  CHECK(fs[5].value == 0.0);
}

TEST_CASE("booleans in every accepted spelling become 1 and 0", "[lineproto]") {
  LineParser p;
  for (const char* v : {"t", "T", "true", "True", "TRUE"}) {
    INFO(v);
    const auto f = single_field(p, std::string("m b=") + v);
    CHECK(f.type == FieldType::kBoolean);
    CHECK(f.value == 1.0);
  }
  for (const char* v : {"f", "F", "false", "False", "FALSE"}) {
    INFO(v);
    const auto f = single_field(p, std::string("m b=") + v);
    CHECK(f.type == FieldType::kBoolean);
    CHECK(f.value == 0.0);
  }
  for (const char* v : {"tRuE", "yes", "1b", "truee", "FALSe"}) {
    INFO(v);
    CHECK(error_of(std::string("m b=") + v) == ParseErrorCode::kInvalidField);
  }
}

TEST_CASE("valid UTF-8 names and values are accepted", "[lineproto]") {
  LineParser p;
  REQUIRE(p.parse("température,ville=Zürich,emoji=\xF0\x9F\x94\xA5 valeur=1,état=2i") ==
          LineKind::kPoint);
  CHECK(p.line().measurement == "température");
  CHECK(p.line().tags[0].value == "Zürich");
  CHECK(p.line().tags[1].value == "\xF0\x9F\x94\xA5");
  CHECK(p.line().fields[1].key == "état");
  // The highest code point and the last one before the surrogates.
  REQUIRE(p.parse("m,a=\xF4\x8F\xBF\xBF,b=\xED\x9F\xBF f=1") == LineKind::kPoint);
}

TEST_CASE("invalid UTF-8 in names and tag values is invalid_utf8", "[lineproto]") {
  struct Case {
    const char* line;
    size_t column;
  };
  for (const Case& c : {
           Case{"cp\xff value=1", 3},                      // not a UTF-8 byte
           Case{"cpu,\xc3=a value=1", 5},                  // truncated 2-byte sequence in tag key
           Case{"cpu,host=ab\xc3 value=1", 12},            // truncated sequence in tag value
           Case{"cpu,host=\xe2\x82 value=1", 10},          // truncated 3-byte sequence
           Case{"cpu,host=a v\xc0\xaf=1", 13},             // overlong '/'
           Case{"cpu,host=\xe0\x80\xaf value=1", 10},      // overlong 3-byte form
           Case{"cpu,host=\xed\xa0\x80 value=1", 10},      // UTF-16 surrogate
           Case{"cpu,host=\xf4\x90\x80\x80 value=1", 10},  // above U+10FFFF
           Case{"cpu,host=\x80 value=1", 10},              // stray continuation byte
           Case{"cpu,host=\xf8\x88\x80\x80\x80 value=1", 10},  // 5-byte form
       }) {
    INFO(c.line);
    LineParser p;
    REQUIRE(p.parse(c.line) == LineKind::kError);
    CHECK(p.error().code == ParseErrorCode::kInvalidUtf8);
    CHECK(p.error().column == c.column);
  }
  LineParser p;
  REQUIRE(p.parse("cpu,host=a\xff value=1") == LineKind::kError);
  const std::string msg(p.error().message);
  CHECK_THAT(msg, Catch::Contains("tag value"));
  CHECK_THAT(msg, Catch::Contains("\\xff"));  // the message itself stays printable
  CHECK(msg.find('\xff') == std::string::npos);
}

TEST_CASE("blank and comment lines are empty, not errors", "[lineproto]") {
  LineParser p;
  for (const char* line : {"", " ", "   \t  ", "\t", "\r", "  \r", "# a comment", "#cpu value=1",
                           "   # indented comment", "\t#x"}) {
    INFO(line);
    CHECK(p.parse(line) == LineKind::kEmpty);
    CHECK(p.error().code == ParseErrorCode::kNone);
  }
  SECTION("'#' elsewhere is an ordinary character") {
    REQUIRE(p.parse("cpu#1,tag=#2 value=1") == LineKind::kPoint);
    CHECK(p.line().measurement == "cpu#1");
    CHECK(p.line().tags[0].value == "#2");
  }
}

TEST_CASE("a trailing carriage return is tolerated", "[lineproto]") {
  LineParser p;
  REQUIRE(p.parse("cpu value=1 123\r") == LineKind::kPoint);
  CHECK(p.line().timestamp == 123);
  REQUIRE(p.parse("cpu value=1\r") == LineKind::kPoint);
  CHECK(p.line().fields[0].value == 1.0);
  REQUIRE(p.parse("cpu s=\"x\"\r") == LineKind::kPoint);
  CHECK(p.line().string_fields == 1);
  SECTION("but not in the middle of a line") {
    CHECK(error_of("cpu value=1\r 123") == ParseErrorCode::kInvalidField);
  }
}

TEST_CASE("several spaces between sections and leading blanks are tolerated", "[lineproto]") {
  LineParser p;
  REQUIRE(p.parse(" \t cpu,host=a    value=1     123   ") == LineKind::kPoint);
  CHECK(p.line().measurement == "cpu");
  CHECK(p.line().tags[0].value == "a");
  CHECK(p.line().fields[0].value == 1.0);
  CHECK(p.line().timestamp == 123);
  REQUIRE(p.parse("cpu value=1\t") == LineKind::kPoint);
  CHECK_FALSE(p.line().timestamp.has_value());
  SECTION("columns count from the start of the original line") {
    REQUIRE(p.parse("   cpu value=x") == LineKind::kError);
    CHECK(p.error().column == 14);
  }
}

TEST_CASE("views stay valid until the next parse, even as the scratch buffer grows",
          "[lineproto]") {
  LineParser p;
  REQUIRE(p.parse("a\\ b f=1") == LineKind::kPoint);  // warm with a short line
  std::string line = "m\\,x";
  std::vector<std::string> want_values;
  for (int i = 0; i < 50; ++i) {
    const std::string v = "v\\ " + std::to_string(i) + "\\,w";
    line += ",k\\=" + std::to_string(i) + "=" + v;
    want_values.push_back("v " + std::to_string(i) + ",w");
  }
  line += " f\\ 1=1,f\\ 2=2";
  REQUIRE(p.parse(line) == LineKind::kPoint);
  line.assign(line.size(), '#');  // views of unescaped text must not point into the input
  const auto& l = p.line();
  CHECK(l.measurement == "m,x");
  REQUIRE(l.tags.size() == 50);
  for (int i = 0; i < 50; ++i) {
    CHECK(l.tags[i].key == "k=" + std::to_string(i));
    CHECK(l.tags[i].value == want_values[i]);
  }
  CHECK(l.fields[0].key == "f 1");
  CHECK(l.fields[1].key == "f 2");
}

TEST_CASE("parsing the same lines repeatedly gives the same results", "[lineproto]") {
  LineParser p;
  const std::string good = "cpu\\ x,host=a\\,b,dc=eu usage\\=u=0.5,n=3i,s=\"q\" 99";
  const std::string bad = "cpu,host=a value=NaN";
  for (int round = 0; round < 200; ++round) {
    REQUIRE(p.parse(good) == LineKind::kPoint);
    REQUIRE(p.line().measurement == "cpu x");
    REQUIRE(p.line().tags.size() == 2);
    REQUIRE(p.line().tags[0].value == "a,b");
    REQUIRE(p.line().fields.size() == 2);
    REQUIRE(p.line().fields[0].key == "usage=u");
    REQUIRE(p.line().fields[0].value == 0.5);
    REQUIRE(p.line().string_fields == 1);
    REQUIRE(p.line().timestamp == 99);
    REQUIRE(p.error().code == ParseErrorCode::kNone);
    REQUIRE(p.parse(bad) == LineKind::kError);
    REQUIRE(p.error().code == ParseErrorCode::kUnsupportedValue);
    REQUIRE(p.error().message == "unsupported value NaN for field \"value\" (column 18)");
  }
}

TEST_CASE("reason names are stable snake_case", "[lineproto]") {
  CHECK(std::string(parse_error_reason(ParseErrorCode::kNone)) == "none");
  CHECK(std::string(parse_error_reason(ParseErrorCode::kMissingMeasurement)) ==
        "missing_measurement");
  CHECK(std::string(parse_error_reason(ParseErrorCode::kMissingTagValue)) == "missing_tag_value");
  CHECK(std::string(parse_error_reason(ParseErrorCode::kMissingFields)) == "missing_fields");
  CHECK(std::string(parse_error_reason(ParseErrorCode::kInvalidField)) == "invalid_field");
  CHECK(std::string(parse_error_reason(ParseErrorCode::kUnsupportedValue)) == "unsupported_value");
  CHECK(std::string(parse_error_reason(ParseErrorCode::kValueOutOfRange)) == "value_out_of_range");
  CHECK(std::string(parse_error_reason(ParseErrorCode::kInvalidTimestamp)) == "invalid_timestamp");
  CHECK(std::string(parse_error_reason(ParseErrorCode::kInvalidUtf8)) == "invalid_utf8");
  CHECK(std::string(parse_error_reason(ParseErrorCode::kDuplicateTag)) == "duplicate_tag");
}

TEST_CASE("parse with the series text already checked reads only fields and timestamp") {
  LineParser p;
  REQUIRE(p.parse("  m\\ x,t=a\\ b f=1.5,g=2i 1700000000", true) == LineKind::kPoint);
  CHECK(p.line().measurement.empty());
  CHECK(p.line().tags.empty());
  REQUIRE(p.line().fields.size() == 2);
  CHECK(p.line().fields[0].key == "f");
  CHECK(p.line().fields[1].value == 2.0);
  CHECK(*p.line().timestamp == 1700000000);
  CHECK(p.parse("m,t=a f=", true) == LineKind::kError);
  CHECK(p.parse("m,t=a", true) == LineKind::kError);
}
