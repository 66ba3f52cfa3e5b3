#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "kpid/rules/template.h"

using namespace kpid;
using rules::PromTemplate;
using rules::TemplateData;

namespace {

std::string render(const std::string& text, double value,
                   std::map<std::string, std::string> labels = {{"job", "api"}, {"env", "prod"}}) {
  auto t = PromTemplate::parse(text, "__alert_x");
  REQUIRE(t.is_ok());
  TemplateData data;
  data.labels = std::move(labels);
  data.value = value;
  auto out = t->render(data);
  REQUIRE(out.is_ok());
  return *out;
}

std::string parse_error(const std::string& text) {
  auto t = PromTemplate::parse(text, "__alert_x");
  REQUIRE_FALSE(t.is_ok());
  return t.status().message();
}

}  // namespace

TEST_CASE("alert templates render as Prometheus renders them", "[rules]") {
  CHECK(render("{{ $labels.job }} is {{ $value }}", 0.5) == "api is 0.5");
  CHECK(render("{{$labels.missing}}", 1) == "<no value>");
  CHECK(render("{{ $labels }}", 1) == "map[env:prod job:api]");
  CHECK(render("{{ .Labels.env }}/{{ .Value }}", 3) == "prod/3");
  CHECK(render("{{ $value }}", 1e6) == "1e+06");
  CHECK(render("{{ $value }}", 123456) == "123456");
  CHECK(render("{{ humanize $value }}", 1234567) == "1.235M");
  CHECK(render("{{ $value | humanize }}", 0.00123) == "1.23m");
  CHECK(render("{{ humanize $value }}", 0) == "0");
  CHECK(render("{{ humanize1024 $value }}", 2048) == "2ki");
  CHECK(render("{{ humanizePercentage $value }}", 0.1234) == "12.34%");
  CHECK(render("{{ humanizeDuration $value }}", 3661) == "1h 1m 1s");
  CHECK(render("{{ humanizeDuration $value }}", 90061) == "1d 1h 1m 1s");
  CHECK(render("{{ humanizeDuration $value }}", 12.345) == "12.35s");
  CHECK(render("{{ humanizeDuration $value }}", 0.0015) == "1.5ms");
  CHECK(render("{{ printf \"%.2f\" $value }}", 3.14159) == "3.14");
  CHECK(render("{{ $value | printf \"%.1f%%\" }}", 99.25) == "99.2%");
  CHECK(render("{{ printf \"%s=%v\" $labels.job $value }}", 2) == "api=2");
  CHECK(render("{{ $labels.job | toUpper }}", 0) == "API");
  CHECK(render("a  {{- $labels.job -}}  b", 0) == "aapib");
  CHECK(render("{{ humanize $value }}", std::nan("")) == "NaN");
  CHECK(render("{{/* note */}}x", 0) == "x");
}

TEST_CASE("alert templates that do not parse are refused", "[rules]") {
  CHECK(parse_error("{{ $labels.job ") == "template: __alert_x:1: unclosed action");
  CHECK(parse_error("a\n{{ nosuch $value }}") ==
        "template: __alert_x:2: function \"nosuch\" not defined");
  CHECK(parse_error("{{ $foo }}") == "template: __alert_x:1: undefined variable \"$foo\"");
  CHECK(parse_error("{{ }}") == "template: __alert_x:1: missing value for command");
  CHECK(parse_error("{{ humanize }}") ==
        "template: __alert_x:1: wrong number of args for humanize: want 1 got 0");
  CHECK(parse_error("{{ if $value }}x{{ end }}") ==
        "template: __alert_x:1: {{ if }} is not supported by kpid");
  CHECK(parse_error("{{ query \"up\" }}") ==
        "template: __alert_x:1: function \"query\" is not supported by kpid");
}
