#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "kpid/rules/rule_file.h"

using namespace kpid;
using kpid::config::ConfigError;

namespace {

std::vector<ConfigError> errors_of(const std::string& yaml) {
  std::vector<ConfigError> errors;
  auto groups = rules::parse_rule_file(yaml, "r.yml", errors);
  if (!errors.empty()) CHECK(groups.empty());
  return errors;
}

std::string first_error(const std::string& yaml) {
  auto errors = errors_of(yaml);
  REQUIRE(!errors.empty());
  return errors.front().to_string();
}

}  // namespace

TEST_CASE("a valid rule file loads its groups and rules", "[rules]") {
  std::vector<ConfigError> errors;
  auto groups = rules::parse_rule_file(R"(groups:
  - name: g1
    interval: 1s
    limit: 10
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels:
          team: a
      - alert: HighLoad
        expr: job:up:sum > 1
        for: 5s
        keep_firing_for: 2s
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.job }} has {{ $value | humanize }}"
  - name: g2
    rules: []
)",
                                       "dir/team.yml", errors);
  REQUIRE(errors.empty());
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].id == "team:g1");
  CHECK(groups[0].interval == 1000);
  CHECK(groups[0].limit == 10);
  REQUIRE(groups[0].rules.size() == 2);
  CHECK_FALSE(groups[0].rules[0].alerting);
  CHECK(groups[0].rules[0].name == "job:up:sum");
  CHECK(groups[0].rules[0].labels.at("team") == "a");
  CHECK(groups[0].rules[1].alerting);
  CHECK(groups[0].rules[1].for_duration == 5000);
  CHECK(groups[0].rules[1].keep_firing_for == 2000);
  CHECK(groups[0].rules[1].annotation_templates.count("summary") == 1);
  CHECK(groups[0].rules[1].pos.line == 10);
  CHECK(groups[1].interval == 0);
}

TEST_CASE("an empty rule file holds no groups", "[rules]") {
  CHECK(errors_of("").empty());
  CHECK(errors_of("groups:\n").empty());
}

TEST_CASE("rule files are refused where promtool refuses them, naming file and line", "[rules]") {
  CHECK(first_error("groups:\n  - name: g\n    foo: 1\n    rules: []\n") ==
        "r.yml:3:5: field foo not found in type rulefmt.RuleGroup");
  CHECK(first_error("groups: []\nfoo: 1\n") ==
        "r.yml:2:1: field foo not found in type rulefmt.RuleGroups");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: up\n"
                    "        bar: 1\n") ==
        "r.yml:6:9: field bar not found in type rulefmt.RuleNode");
  CHECK(first_error("groups:\n  - name: \"\"\n    rules: []\n") ==
        "r.yml:2:5: Groupname must not be empty");
  CHECK(first_error("groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n") ==
        "r.yml:4:5: groupname: \"g\" is repeated in the same file");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - record: a\n        alert: b\n"
                    "        expr: up\n") ==
        "r.yml:4:17: group \"g\", rule 1, \"a\": only one of 'record' and 'alert' must be set");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - expr: up\n") ==
        "r.yml:4:9: group \"g\", rule 1, \"\": one of 'record' or 'alert' must be set");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - record: a\n") ==
        "r.yml:4:9: group \"g\", rule 1, \"a\": field 'expr' must be set in rule");
  CHECK(
      first_error("groups:\n  - name: g\n    rules:\n      - record: a\n        expr: sum(up\n") ==
      "r.yml:5:15: group \"g\", rule 1, \"a\": could not parse expression: 1:7: parse error: "
      "unclosed left parenthesis");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - record: a-b\n        expr: up\n") ==
        "r.yml:4:17: group \"g\", rule 1, \"a-b\": invalid recording rule name: a-b");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: up\n"
                    "        labels:\n          a-b: x\n") ==
        "r.yml:7:11: group \"g\", rule 1, \"X\": invalid label name: a-b");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: up\n"
                    "        labels:\n          __name__: x\n") ==
        "r.yml:7:11: group \"g\", rule 1, \"X\": invalid label name: __name__");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n"
                    "        for: 1m\n") ==
        "r.yml:4:17: group \"g\", rule 1, \"a\": invalid field 'for' in recording rule");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n"
                    "        keep_firing_for: 1m\n") ==
        "r.yml:4:17: group \"g\", rule 1, \"a\": invalid field 'keep_firing_for' in recording "
        "rule");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n"
                    "        annotations:\n          x: y\n") ==
        "r.yml:4:17: group \"g\", rule 1, \"a\": invalid field 'annotations' in recording rule");
  CHECK(first_error("groups:\n  - name: g\n    interval: 5x\n    rules: []\n") ==
        "r.yml:3:15: group \"g\": not a valid duration string: \"5x\"");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: up\n"
                    "        for: 1.5m\n") ==
        "r.yml:6:14: group \"g\", rule 1, \"a\": not a valid duration string: \"1.5m\"");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: up\n"
                    "        annotations:\n          x: \"{{ $labels.job \"\n") ==
        "r.yml:7:11: group \"g\", rule 1, \"a\": annotation \"x\": template: __alert_a:1: "
        "unclosed action");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: up\n"
                    "        annotations:\n          x: \"{{ nosuch $value }}\"\n") ==
        "r.yml:7:11: group \"g\", rule 1, \"a\": annotation \"x\": template: __alert_a:1: "
        "function \"nosuch\" not defined");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: up\n"
                    "        annotations:\n          a-b: x\n") ==
        "r.yml:7:11: group \"g\", rule 1, \"a\": invalid annotation name: a-b");
  CHECK(first_error("groups:\n  - name: g\n    limit: abc\n    rules: []\n") ==
        "r.yml:3:12: group \"g\": cannot unmarshal !!str `abc` into int");
  CHECK(first_error("groups:\n  - name: g\n    rules: 5\n") ==
        "r.yml:3:12: cannot unmarshal !!int `5` into []rulefmt.RuleNode");
  CHECK(first_error("groups:\n  - name: g\n    name: h\n    rules: []\n") ==
        "r.yml:3:5: mapping key \"name\" already defined at line 2");
  CHECK(first_error("groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n"
                    "        labels: [a]\n") ==
        "r.yml:6:17: cannot unmarshal !!seq into map[string]string");
}

TEST_CASE("what promtool accepts, kpid accepts", "[rules]") {
  // A zero interval and for, a negative limit, a string expression, an alert name with a space.
  CHECK(errors_of("groups:\n  - name: g\n    interval: 0\n    limit: -1\n    rules:\n"
                  "      - alert: a b\n        expr: up\n        for: 0\n"
                  "      - record: s\n        expr: '\"x\"'\n")
            .empty());
  // Duplicate rules are a promtool lint warning, not an error.
  CHECK(errors_of("groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n"
                  "      - record: a\n        expr: up\n")
            .empty());
}
