#pragma once
// Series identity: a set of labels (name/value pairs) sorted by name, with the metric name held
// as the label "__name__", as in Prometheus.

#include <compare>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kpid/core/status.h"

namespace kpid {

inline constexpr std::string_view kMetricNameLabel = "__name__";

struct Label {
  std::string name;
  std::string value;
  friend bool operator==(const Label&, const Label&) = default;
  friend auto operator<=>(const Label&, const Label&) = default;
};

// An immutable label set, sorted by name with unique names. Cheap to move, not to copy.
class Labels {
 public:
  Labels() = default;
  // Sorts `labels` by name. Fails on a duplicate or empty name.
  static Result<Labels> from(std::vector<Label> labels);

  const std::vector<Label>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  // The value of `name`, or "" when absent (Prometheus treats both alike).
  std::string_view get(std::string_view name) const;
  std::string_view metric_name() const { return get(kMetricNameLabel); }

  // Canonical binary encoding: per label varint(len) name varint(len) value. Equal label sets
  // have equal encodings; used as the series index key.
  std::string encode() const;
  static Result<Labels> decode(std::string_view encoded);

  // Prometheus text form: name{a="b", c="d"} with quotes and backslashes escaped.
  std::string to_string() const;

  friend bool operator==(const Labels&, const Labels&) = default;

 private:
  std::vector<Label> items_;
};

// Builds a canonical key from string views without allocating once warmed up: its buffers are
// reused across series. Not thread-safe; one per ingest worker.
class LabelsBuilder {
 public:
  void clear();
  void add(std::string_view name, std::string_view value);
  // Sorts the labels by name and encodes the key. Returns the duplicated name on a duplicate,
  // "" on success (views stay valid until the next clear()).
  std::string_view finish();
  // The canonical encoding (same as Labels::encode()); valid after finish().
  std::string_view key() const { return key_; }
  // An owning copy. Requires that finish() succeeded and no name is empty (as ingest
  // guarantees); otherwise use Labels::decode(key()), which reports the problem.
  Labels to_labels() const;

 private:
  struct View {
    std::string_view name;
    std::string_view value;
  };
  std::vector<View> views_;
  std::string key_;
};

// Whether `name` may name a label in Prometheus' classic charset: [a-zA-Z_][a-zA-Z0-9_]*.
bool is_label_name(std::string_view name);
// Whether `name` may name a metric: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool is_metric_name(std::string_view name);

// Appends `value` in double quotes with quotes, backslashes and newlines escaped, as
// Prometheus prints label values.
void append_quoted(std::string& out, std::string_view value);

enum class MatchType { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };

// One label matcher of a selector: name op "value". Regexes are fully anchored, as in
// Prometheus. Immutable and thread-safe after creation.
class LabelMatcher {
 public:
  // Fails when a regex does not compile (the message names the regex and the reason).
  static Result<LabelMatcher> create(MatchType type, std::string name, std::string value);

  MatchType type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::string& value() const { return value_; }
  // Whether a label value satisfies the matcher; an absent label has the value "".
  bool matches(std::string_view label_value) const;
  bool matches_empty() const { return matches(""); }
  // name op "value", e.g. job=~"api.*".
  std::string to_string() const;

 private:
  struct Regex;
  MatchType type_ = MatchType::kEqual;
  std::string name_;
  std::string value_;
  std::shared_ptr<const Regex> regex_;
};

// Whether `labels` satisfies every matcher.
bool matches_all(const Labels& labels, std::span<const LabelMatcher> matchers);

}  // namespace kpid
