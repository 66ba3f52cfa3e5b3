// Rule files through yaml-cpp, checked as promtool 2.42 checks them (rulefmt.Validate, its
// strict YAML decoding and its template parsing), with promtool's wording where it has one.
#include "kpid/rules/rule_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "kpid/core/labels.h"

namespace kpid::rules {

namespace {

using config::ConfigError;

class FileLoader {
 public:
  FileLoader(const std::string& path, std::vector<ConfigError>& errors)
      : path_(path), errors_(errors), base_(std::filesystem::path(path).stem().string()) {}

  std::vector<RuleGroup> load(const std::string& text) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      add(e.mark, "", "YAML syntax error: " + e.msg);
      return {};
    }
    const size_t before = errors_.size();
    std::vector<RuleGroup> groups;
    if (root.IsNull()) return groups;  // an empty file holds no groups, as for promtool
    if (!root.IsMap()) {
      add(root.Mark(), "", "cannot unmarshal " + kind(root) + " into rulefmt.RuleGroups");
      return {};
    }
    if (!unique_keys(root)) return {};
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>("");
      if (key != "groups") {
        add(kv.first.Mark(), "", "field " + key + " not found in type rulefmt.RuleGroups");
      }
    }
    const YAML::Node list = root["groups"];
    if (list && !list.IsNull()) {
      if (!list.IsSequence()) {
        add(list.Mark(), "", "cannot unmarshal " + kind(list) + " into []rulefmt.RuleGroup");
      } else {
        std::map<std::string, bool> names;
        for (const auto& g : list) {
          RuleGroup group;
          if (load_group(g, names, group)) groups.push_back(std::move(group));
        }
      }
    }
    if (errors_.size() != before) return {};
    return groups;
  }

 private:
  // "!!str `abc`", "!!seq", ... as Go's yaml names what it could not decode.
  static std::string kind(const YAML::Node& n) {
    if (n.IsSequence()) return "!!seq";
    if (n.IsMap()) return "!!map";
    if (n.IsNull()) return "!!null";
    const std::string s = n.Scalar();
    if (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str") return "!!str `" + s + "`";
    char* end = nullptr;
    std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && *end == '\0') return "!!int `" + s + "`";
    return "!!str `" + s + "`";
  }

  void add(const YAML::Mark& m, const std::string& key, std::string message) {
    const bool known = m.line >= 0 && !m.is_null();
    errors_.push_back(
        {path_, known ? m.line + 1 : 0, known ? m.column + 1 : 0, key, std::move(message)});
  }

  // yaml-cpp keeps the last of repeated keys; Go's decoder (and so promtool) refuses them.
  bool unique_keys(const YAML::Node& map) {
    std::map<std::string, int> seen;
    bool ok = true;
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>("");
      auto [it, inserted] = seen.emplace(key, kv.first.Mark().line + 1);
      if (!inserted) {
        add(kv.first.Mark(), "",
            "mapping key \"" + key + "\" already defined at line " + std::to_string(it->second));
        ok = false;
      }
    }
    return ok;
  }

  bool scalar(const YAML::Node& n, const std::string& into, std::string& out) {
    if (!n.IsScalar()) {
      add(n.Mark(), "", "cannot unmarshal " + kind(n) + " into " + into);
      return false;
    }
    out = n.Scalar();
    return true;
  }

  // Prometheus' model.ParseDuration: "0", or number+unit pairs from y down to ms.
  bool duration(const YAML::Node& n, const std::string& where, DurationMs& out) {
    std::string text;
    if (!scalar(n, "model.Duration", text)) return false;
    if (text == "0") {
      out = 0;
      return true;
    }
    auto d = parse_duration(text);
    // kpid's parser takes what model.ParseDuration takes, decimals aside.
    if (!d || text.find('.') != std::string::npos || text.empty()) {
      add(n.Mark(), where, "not a valid duration string: \"" + text + "\"");
      return false;
    }
    out = *d;
    return true;
  }

  bool string_map(const YAML::Node& n, std::map<std::string, std::string>& out) {
    if (n.IsNull()) return true;
    if (!n.IsMap()) {
      add(n.Mark(), "", "cannot unmarshal " + kind(n) + " into map[string]string");
      return false;
    }
    if (!unique_keys(n)) return false;
    bool ok = true;
    for (const auto& kv : n) {
      std::string key;
      std::string value;
      if (!scalar(kv.first, "string", key) || !scalar(kv.second, "string", value)) {
        ok = false;
        continue;
      }
      out[key] = value;
    }
    return ok;
  }

  bool load_group(const YAML::Node& g, std::map<std::string, bool>& names, RuleGroup& group) {
    if (!g.IsMap()) {
      add(g.Mark(), "", "cannot unmarshal " + kind(g) + " into rulefmt.RuleGroup");
      return false;
    }
    if (!unique_keys(g)) return false;
    const size_t before = errors_.size();
    static constexpr std::array kKeys = {"name", "interval", "limit", "rules"};
    for (const auto& kv : g) {
      const std::string key = kv.first.as<std::string>("");
      if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
        add(kv.first.Mark(), "", "field " + key + " not found in type rulefmt.RuleGroup");
      }
    }
    group.file = path_;
    group.pos = {path_, g.Mark().line + 1, g.Mark().column + 1};
    const YAML::Node name = g["name"];
    if (name && !name.IsNull()) scalar(name, "string", group.name);
    if (group.name.empty()) {
      // promtool names the group's first key.
      add(g.Mark(), "", "Groupname must not be empty");
    } else if (names.count(group.name) != 0) {
      add(g.Mark(), "", "groupname: \"" + group.name + "\" is repeated in the same file");
    }
    names[group.name] = true;
    group.id = base_ + ":" + group.name;
    const std::string where = "group \"" + group.name + "\"";
    if (const YAML::Node n = g["interval"]; n && !n.IsNull()) duration(n, where, group.interval);
    if (const YAML::Node n = g["limit"]; n && !n.IsNull()) {
      std::string text;
      if (scalar(n, "int", text)) {
        char* end = nullptr;
        const long long v = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0') {
          add(n.Mark(), where, "cannot unmarshal !!str `" + text + "` into int");
        } else {
          group.limit = v < 0 ? 0 : v;
        }
      }
    }
    if (const YAML::Node rules = g["rules"]; rules && !rules.IsNull()) {
      if (!rules.IsSequence()) {
        add(rules.Mark(), "", "cannot unmarshal " + kind(rules) + " into []rulefmt.RuleNode");
      } else {
        size_t index = 0;
        for (const auto& r : rules) {
          RuleDef rule;
          ++index;
          if (load_rule(r, group.name, index, rule)) group.rules.push_back(std::move(rule));
        }
      }
    }
    return errors_.size() == before;
  }

  bool load_rule(const YAML::Node& r, const std::string& group, size_t index, RuleDef& rule) {
    if (!r.IsMap()) {
      add(r.Mark(), "", "cannot unmarshal " + kind(r) + " into rulefmt.RuleNode");
      return false;
    }
    if (!unique_keys(r)) return false;
    const size_t before = errors_.size();
    static constexpr std::array kKeys = {"record",          "alert",  "expr",       "for",
                                         "keep_firing_for", "labels", "annotations"};
    for (const auto& kv : r) {
      const std::string key = kv.first.as<std::string>("");
      if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
        add(kv.first.Mark(), "", "field " + key + " not found in type rulefmt.RuleNode");
      }
    }
    if (errors_.size() != before) return false;
    std::string record;
    std::string alert;
    const YAML::Node rec = r["record"];
    const YAML::Node al = r["alert"];
    const YAML::Node expr = r["expr"];
    if (rec && !rec.IsNull()) scalar(rec, "string", record);
    if (al && !al.IsNull()) scalar(al, "string", alert);
    rule.alerting = record.empty();
    rule.name = record.empty() ? alert : record;
    const YAML::Mark at = !record.empty() ? rec.Mark() : !alert.empty() ? al.Mark() : r.Mark();
    rule.pos = {path_, at.line + 1, at.column + 1};
    const std::string where =
        "group \"" + group + "\", rule " + std::to_string(index) + ", \"" + rule.name + "\"";
    auto fail = [&](const YAML::Mark& m, const std::string& message) { add(m, where, message); };
    if (!record.empty() && !alert.empty()) {
      fail(at, "only one of 'record' and 'alert' must be set");
    } else if (record.empty() && alert.empty()) {
      fail(r.Mark(), "one of 'record' or 'alert' must be set");
    }
    if (expr && !expr.IsNull()) scalar(expr, "string", rule.expr_text);
    if (rule.expr_text.empty()) {
      fail(r.Mark(), "field 'expr' must be set in rule");
    } else {
      auto parsed = query::parse_promql(rule.expr_text);
      if (!parsed) {
        fail(expr.Mark(), "could not parse expression: " + parsed.status().message());
      } else {
        rule.expr = std::shared_ptr<const query::Expr>(std::move(*parsed));
      }
    }
    if (const YAML::Node n = r["for"]; n && !n.IsNull()) {
      duration(n, where, rule.for_duration);
      if (!record.empty()) fail(at, "invalid field 'for' in recording rule");
    }
    if (const YAML::Node n = r["keep_firing_for"]; n && !n.IsNull()) {
      duration(n, where, rule.keep_firing_for);
      if (!record.empty()) fail(at, "invalid field 'keep_firing_for' in recording rule");
    }
    if (const YAML::Node n = r["labels"]; n) string_map(n, rule.labels);
    if (const YAML::Node n = r["annotations"]; n) {
      string_map(n, rule.annotations);
      if (!record.empty() && !rule.annotations.empty()) {
        fail(at, "invalid field 'annotations' in recording rule");
      }
    }
    if (!record.empty() && !is_metric_name(record)) {
      fail(at, "invalid recording rule name: " + record);
    }
    const YAML::Mark labels_at = r["labels"] ? r["labels"].Mark() : at;
    for (const auto& [k, v] : rule.labels) {
      if (!is_label_name(k) || k == kMetricNameLabel) {
        fail(labels_at, "invalid label name: " + k);
      }
    }
    const YAML::Mark ann_at = r["annotations"] ? r["annotations"].Mark() : at;
    for (const auto& [k, v] : rule.annotations) {
      if (!is_label_name(k)) fail(ann_at, "invalid annotation name: " + k);
    }
    if (rule.alerting && !alert.empty()) {
      // Prometheus parses (and promtool test-runs) alerting rules' labels and annotations as
      // templates named __alert_<name>.
      const std::string name = "__alert_" + alert;
      for (const auto& [k, v] : rule.labels) {
        auto t = PromTemplate::parse(v, name);
        if (!t) {
          fail(labels_at, "label \"" + k + "\": " + t.status().message());
        } else {
          rule.label_templates.emplace(k, std::move(*t));
        }
      }
      for (const auto& [k, v] : rule.annotations) {
        auto t = PromTemplate::parse(v, name);
        if (!t) {
          fail(ann_at, "annotation \"" + k + "\": " + t.status().message());
        } else {
          rule.annotation_templates.emplace(k, std::move(*t));
        }
      }
    }
    return errors_.size() == before;
  }

  const std::string& path_;
  std::vector<ConfigError>& errors_;
  std::string base_;
};

}  // namespace

std::vector<RuleGroup> parse_rule_file(const std::string& text, const std::string& path,
                                       std::vector<config::ConfigError>& errors) {
  return FileLoader(path, errors).load(text);
}

std::vector<RuleGroup> load_rule_file(const std::string& path,
                                      std::vector<config::ConfigError>& errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back({path, 0, 0, "rules.files", "cannot open rule file"});
    return {};
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_rule_file(buffer.str(), path, errors);
}

std::vector<RuleGroup> load_rule_files(const std::vector<std::string>& paths,
                                       std::vector<config::ConfigError>& errors) {
  std::vector<RuleGroup> out;
  std::map<std::string, SourcePos> ids;
  for (const auto& path : paths) {
    for (auto& g : load_rule_file(path, errors)) {
      auto [it, inserted] = ids.emplace(g.id, g.pos);
      if (!inserted) {
        errors.push_back({g.pos.file, g.pos.line, g.pos.column, "group \"" + g.name + "\"",
                          "group id \"" + g.id + "\" is also defined at " + it->second.file + ":" +
                              std::to_string(it->second.line) +
                              " (ids are <file base name>:<group name>)"});
        continue;
      }
      out.push_back(std::move(g));
    }
  }
  return out;
}

}  // namespace kpid::rules
