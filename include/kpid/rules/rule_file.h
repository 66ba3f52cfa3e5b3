#pragma once
// Prometheus rule files (groups of recording and alerting rules), loaded unchanged and
// validated as `promtool check rules` (Prometheus 2.42) validates them: what promtool refuses,
// kpid refuses, naming the file, line and column, the group and the rule.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kpid/config/config.h"
#include "kpid/core/source_pos.h"
#include "kpid/core/time.h"
#include "kpid/query/promql.h"
#include "kpid/rules/template.h"

namespace kpid::rules {

struct RuleDef {
  bool alerting = false;  // else recording
  std::string name;       // `record` or `alert`
  std::string expr_text;
  std::shared_ptr<const query::Expr> expr;
  DurationMs for_duration = 0;
  DurationMs keep_firing_for = 0;
  std::map<std::string, std::string> labels;  // as written (alerting rules: templates)
  std::map<std::string, std::string> annotations;
  std::map<std::string, PromTemplate> label_templates;  // alerting rules only
  std::map<std::string, PromTemplate> annotation_templates;
  SourcePos pos;
};

struct RuleGroup {
  std::string id;  // "<file base name>:<group name>", the unit of sharding
  std::string file;
  std::string name;
  DurationMs interval = 0;  // 0: not given (the [rules] evaluation_interval applies)
  int64_t limit = 0;        // 0: no limit
  std::vector<RuleDef> rules;
  SourcePos pos;
};

// Loads one rule file: its groups, or errors (appended to `errors`, each with the file, line,
// column and "group \"g\", rule N, \"name\"" as promtool words them). A file with errors
// contributes no groups.
std::vector<RuleGroup> load_rule_file(const std::string& path,
                                      std::vector<config::ConfigError>& errors);
// The same from text; `path` names it in errors and ids.
std::vector<RuleGroup> parse_rule_file(const std::string& text, const std::string& path,
                                       std::vector<config::ConfigError>& errors);

// Loads every file, in order. Group ids must be unique across files (two files with the same
// base name and group name are refused).
std::vector<RuleGroup> load_rule_files(const std::vector<std::string>& paths,
                                       std::vector<config::ConfigError>& errors);

}  // namespace kpid::rules
