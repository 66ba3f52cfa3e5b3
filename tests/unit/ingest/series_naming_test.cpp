#include "kpid/ingest/series_naming.h"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kpid/core/labels.h"
#include "kpid/ingest/line_protocol.h"

using kpid::Labels;
using kpid::LabelsBuilder;
using kpid::ingest::append_sanitized_label_name;
using kpid::ingest::append_sanitized_metric_name;
using kpid::ingest::LineKind;
using kpid::ingest::LineParser;
using kpid::ingest::SeriesNamer;

namespace {

Labels expected(std::vector<kpid::Label> labels) {
  auto r = Labels::from(std::move(labels));
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

std::string metric(std::string_view name) {
  std::string out;
  append_sanitized_metric_name(out, name);
  return out;
}

std::string label(std::string_view name) {
  std::string out;
  append_sanitized_label_name(out, name);
  return out;
}

// Parses a line and names the series of one field. Owns the parser and namer because the
// builder holds views into them until it is cleared.
struct Naming {
  LineParser parser;
  SeriesNamer namer;

  // Returns the naming error ("" on success).
  std::string operator()(std::string_view line, std::string_view field, LabelsBuilder& builder) {
    INFO("line: " << line);
    REQUIRE(parser.parse(line) == LineKind::kPoint);
    return std::string(namer.name(parser.line(), field, builder));
  }
};

}  // namespace

TEST_CASE("measurement and field join into the metric name", "[naming]") {
  LabelsBuilder b;
  Naming name_of;
  REQUIRE(name_of("cpu,host=a usage=1", "usage", b).empty());
  const Labels want = expected({{"__name__", "cpu_usage"}, {"host", "a"}});
  CHECK(b.to_labels() == want);
  CHECK(b.key() == want.encode());
}

TEST_CASE("a field named value gives the bare measurement as metric name", "[naming]") {
  LabelsBuilder b;
  Naming name_of;
  REQUIRE(name_of("cpu,host=a value=1", "value", b).empty());
  CHECK(b.to_labels() == expected({{"__name__", "cpu"}, {"host", "a"}}));
  SECTION("only the exact name 'value'") {
    REQUIRE(name_of("cpu Value=1", "Value", b).empty());
    CHECK(b.to_labels().metric_name() == "cpu_Value");
    REQUIRE(name_of("cpu values=1", "values", b).empty());
    CHECK(b.to_labels().metric_name() == "cpu_values");
  }
  SECTION("the measurement is still sanitized") {
    REQUIRE(name_of("http.requests-total value=1", "value", b).empty());
    CHECK(b.to_labels().metric_name() == "http_requests_total");
  }
}

TEST_CASE("a point without tags has only the metric name", "[naming]") {
  LabelsBuilder b;
  Naming name_of;
  REQUIRE(name_of("uptime seconds=5", "seconds", b).empty());
  CHECK(b.to_labels() == expected({{"__name__", "uptime_seconds"}}));
}

TEST_CASE("metric names are sanitized to [a-zA-Z_:][a-zA-Z0-9_:]*", "[naming]") {
  CHECK(metric("cpu") == "cpu");
  CHECK(metric("cpu:total_1") == "cpu:total_1");
  CHECK(metric("http.requests-total") == "http_requests_total");
  CHECK(metric("a b,c=d/e") == "a_b_c_d_e");
  CHECK(metric("1cpu") == "_1cpu");
  CHECK(metric("9") == "_9");
  CHECK(metric("_x") == "_x");
  CHECK(metric(":x") == ":x");
  CHECK(metric("") == "_");
  SECTION("each multi-byte UTF-8 character becomes one '_'") {
    CHECK(metric("température") == "temp_rature");
    CHECK(metric("日本") == "__");
    CHECK(metric("a\xF0\x9F\x94\xA5z") == "a_z");
  }
  SECTION("appends to what is already there") {
    std::string out = "prefix:";
    append_sanitized_metric_name(out, "9x");
    CHECK(out == "prefix:_9x");
  }
}

TEST_CASE("label names are sanitized to [a-zA-Z_][a-zA-Z0-9_]*", "[naming]") {
  CHECK(label("host") == "host");
  CHECK(label("host-name") == "host_name");
  CHECK(label("a:b") == "a_b");  // ':' is allowed in metric names only
  CHECK(label("1zone") == "_1zone");
  CHECK(label("région") == "r_gion");
  CHECK(label("é") == "_");
  CHECK(label("") == "_");
}

TEST_CASE("sanitizing applies to the joined name: a field starting with a digit is fine",
          "[naming]") {
  LabelsBuilder b;
  Naming name_of;
  REQUIRE(name_of("load 5m=1", "5m", b).empty());
  CHECK(b.to_labels().metric_name() == "load_5m");
  REQUIRE(name_of("1load p-99=1", "p-99", b).empty());
  CHECK(b.to_labels().metric_name() == "_1load_p_99");
  REQUIRE(name_of("température,ville=Zürich valeur=1", "valeur", b).empty());
  CHECK(b.to_labels() == expected({{"__name__", "temp_rature_valeur"}, {"ville", "Zürich"}}));
}

TEST_CASE("tag keys are sanitized and tag values kept verbatim", "[naming]") {
  LabelsBuilder b;
  Naming name_of;
  REQUIRE(name_of("m,host-name=a\\ b\\,c,1zone=eu-1,dc:x=Zürich f=1", "f", b).empty());
  CHECK(b.to_labels() ==
        expected(
            {{"__name__", "m_f"}, {"host_name", "a b,c"}, {"_1zone", "eu-1"}, {"dc_x", "Zürich"}}));
}

TEST_CASE("tag keys that collide after sanitizing are an error", "[naming]") {
  LabelsBuilder b;
  Naming name_of;
  SECTION("two keys map to the same label") {
    CHECK(name_of("m,a-b=1,a_b=2 f=1", "f", b) ==
          "tag keys \"a-b\" and \"a_b\" both map to label \"a_b\"");
  }
  SECTION("collision between sanitized keys only") {
    CHECK(name_of("m,x.y=1,z=0,x-y=2 f=1", "f", b) ==
          "tag keys \"x.y\" and \"x-y\" both map to label \"x_y\"");
  }
  SECTION("a key naming the reserved metric label") {
    CHECK(name_of("m,__name__=x f=1", "f", b) ==
          "tag key \"__name__\" maps to the reserved label \"__name__\"");
    CHECK(name_of("m,__name.-=x f=1", "f", b) ==
          "tag key \"__name.-\" maps to the reserved label \"__name__\"");
  }
  SECTION("similar but distinct keys are fine") {
    CHECK(name_of("m,a-b=1,a_c=2,__name=3 f=1", "f", b).empty());
  }
}

TEST_CASE("the namer can be reused across points and after errors", "[naming]") {
  LineParser parser;
  SeriesNamer namer;
  LabelsBuilder b;
  for (int round = 0; round < 100; ++round) {
    REQUIRE(parser.parse("net.io,if-name=eth0,host=a rx-bytes=1,value=2") == LineKind::kPoint);
    REQUIRE(namer.name(parser.line(), "rx-bytes", b).empty());
    REQUIRE(b.to_labels() ==
            expected({{"__name__", "net_io_rx_bytes"}, {"if_name", "eth0"}, {"host", "a"}}));
    REQUIRE(namer.name(parser.line(), "value", b).empty());
    REQUIRE(b.to_labels() ==
            expected({{"__name__", "net_io"}, {"if_name", "eth0"}, {"host", "a"}}));
    REQUIRE(parser.parse("m,a.b=1,a-b=2 f=1") == LineKind::kPoint);
    REQUIRE(namer.name(parser.line(), "f", b) ==
            "tag keys \"a.b\" and \"a-b\" both map to label \"a_b\"");
  }
}

TEST_CASE("the builder is cleared first: no labels leak from a previous point", "[naming]") {
  LineParser parser;
  SeriesNamer namer;
  LabelsBuilder b;
  REQUIRE(parser.parse("m,x=1,y=2 f=1") == LineKind::kPoint);
  REQUIRE(namer.name(parser.line(), "f", b).empty());
  REQUIRE(parser.parse("n g=1") == LineKind::kPoint);
  REQUIRE(namer.name(parser.line(), "g", b).empty());
  CHECK(b.to_labels() == expected({{"__name__", "n_g"}}));
}
