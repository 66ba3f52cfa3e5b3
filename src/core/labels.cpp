#include "kpid/core/labels.h"

#include "kpid/core/varint.h"

#include <algorithm>
#include <boost/regex.hpp>

namespace kpid {

namespace {

bool read_string(std::string_view& in, std::string& out) {
  uint64_t len = 0;
  size_t pos = 0;
  if (!read_varint(in, pos, len) || len > in.size() - pos) return false;
  in.remove_prefix(pos);
  out.assign(in.substr(0, len));
  in.remove_prefix(len);
  return true;
}

void append_label(std::string& out, std::string_view name, std::string_view value) {
  append_varint(out, name.size());
  out.append(name);
  append_varint(out, value.size());
  out.append(value);
}

}  // namespace

namespace {

bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

}  // namespace

bool is_label_name(std::string_view name) {
  return !name.empty() && name_start(name[0]) && std::all_of(name.begin(), name.end(), name_char);
}

bool is_metric_name(std::string_view name) {
  auto start = [](char c) { return name_start(c) || c == ':'; };
  auto rest = [](char c) { return name_char(c) || c == ':'; };
  return !name.empty() && start(name[0]) && std::all_of(name.begin(), name.end(), rest);
}

void append_quoted(std::string& out, std::string_view value) {
  out.push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
  out.push_back('"');
}

Result<Labels> Labels::from(std::vector<Label> labels) {
  std::sort(labels.begin(), labels.end(),
            [](const Label& a, const Label& b) { return a.name < b.name; });
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i].name.empty()) return Status::invalid_argument("empty label name");
    if (i > 0 && labels[i].name == labels[i - 1].name) {
      return Status::invalid_argument("duplicate label name '" + labels[i].name + "'");
    }
  }
  Labels out;
  out.items_ = std::move(labels);
  return out;
}

std::string_view Labels::get(std::string_view name) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  if (it != items_.end() && it->name == name) return it->value;
  return {};
}

std::string Labels::encode() const {
  std::string out;
  for (const auto& l : items_) append_label(out, l.name, l.value);
  return out;
}

Result<Labels> Labels::decode(std::string_view encoded) {
  std::vector<Label> labels;
  while (!encoded.empty()) {
    Label l;
    if (!read_string(encoded, l.name) || !read_string(encoded, l.value)) {
      return Status::internal("corrupt label set encoding");
    }
    labels.push_back(std::move(l));
  }
  return from(std::move(labels));
}

std::string Labels::to_string() const {
  std::string out(metric_name());
  out.push_back('{');
  bool first = true;
  for (const auto& l : items_) {
    if (l.name == kMetricNameLabel) continue;
    if (!first) out.append(", ");
    first = false;
    out.append(l.name);
    out.push_back('=');
    append_quoted(out, l.value);
  }
  out.push_back('}');
  return out;
}

void LabelsBuilder::clear() {
  views_.clear();
  key_.clear();
}

void LabelsBuilder::add(std::string_view name, std::string_view value) {
  views_.push_back({name, value});
}

std::string_view LabelsBuilder::finish() {
  // Few labels per series: insertion sort beats std::sort and never allocates.
  for (size_t i = 1; i < views_.size(); ++i) {
    View v = views_[i];
    size_t j = i;
    while (j > 0 && views_[j - 1].name > v.name) {
      views_[j] = views_[j - 1];
      --j;
    }
    views_[j] = v;
  }
  key_.clear();
  for (size_t i = 0; i < views_.size(); ++i) {
    if (i > 0 && views_[i].name == views_[i - 1].name) return views_[i].name;
    append_label(key_, views_[i].name, views_[i].value);
  }
  return {};
}

Labels LabelsBuilder::to_labels() const {
  std::vector<Label> labels;
  labels.reserve(views_.size());
  for (const auto& v : views_) labels.push_back({std::string(v.name), std::string(v.value)});
  return std::move(Labels::from(std::move(labels))).value();
}

struct LabelMatcher::Regex {
  boost::regex re;
};

Result<LabelMatcher> LabelMatcher::create(MatchType type, std::string name, std::string value) {
  LabelMatcher m;
  m.type_ = type;
  m.name_ = std::move(name);
  m.value_ = std::move(value);
  if (type == MatchType::kRegexMatch || type == MatchType::kRegexNoMatch) {
    try {
      auto regex = std::make_shared<Regex>();
      regex->re = boost::regex(m.value_, boost::regex::perl);
      m.regex_ = std::move(regex);
    } catch (const boost::regex_error& e) {
      return Status::invalid_argument("invalid regular expression \"" + m.value_ + "\" for label " +
                                      m.name_ + ": " + e.what());
    }
  }
  return m;
}

bool LabelMatcher::matches(std::string_view label_value) const {
  switch (type_) {
    case MatchType::kEqual: return label_value == value_;
    case MatchType::kNotEqual: return label_value != value_;
    case MatchType::kRegexMatch:
    case MatchType::kRegexNoMatch: {
      bool full = false;
      try {
        full = boost::regex_match(label_value.begin(), label_value.end(), regex_->re);
      } catch (const std::runtime_error&) {
        full = false;  // pathological backtracking: treat as no match rather than abort
      }
      return type_ == MatchType::kRegexMatch ? full : !full;
    }
  }
  return false;
}

std::string LabelMatcher::to_string() const {
  static constexpr const char* kOps[] = {"=", "!=", "=~", "!~"};
  std::string out = name_;
  out.append(kOps[static_cast<int>(type_)]);
  append_quoted(out, value_);
  return out;
}

bool matches_all(const Labels& labels, std::span<const LabelMatcher> matchers) {
  for (const auto& m : matchers) {
    if (!m.matches(labels.get(m.name()))) return false;
  }
  return true;
}

}  // namespace kpid
