#include "kpid/ingest/series_naming.h"

namespace kpid::ingest {

namespace {

constexpr std::string_view kValueField = "value";

bool is_alpha_or_underscore(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_continuation(unsigned char b) { return b >= 0x80 && b <= 0xBF; }

bool is_label_char(char c) { return is_alpha_or_underscore(c) || is_digit(c); }
bool is_metric_char(char c) { return is_label_char(c) || c == ':'; }

template <typename Allowed>
bool is_valid_name(std::string_view name, Allowed allowed) {
  if (name.empty() || is_digit(name[0])) return false;
  for (char c : name) {
    if (!allowed(c)) return false;
  }
  return true;
}

// Appends `name` with every character outside `allowed` replaced by one '_'. A multi-byte UTF-8
// character counts as one character: its continuation bytes add nothing. With `leading`, the
// text starts a name: a leading digit gets a '_' prefix and an empty name becomes "_".
template <typename Allowed>
void append_sanitized(std::string& out, std::string_view name, Allowed allowed, bool leading) {
  if (leading && (name.empty() || is_digit(name[0]))) out.push_back('_');
  bool in_multibyte = false;
  for (char c : name) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x80) {
      if (!(in_multibyte && is_continuation(b))) out.push_back('_');
      in_multibyte = true;
      continue;
    }
    in_multibyte = false;
    out.push_back(allowed(c) ? c : '_');
  }
}

bool metric_allowed(char c) { return is_metric_char(c); }
bool label_allowed(char c) { return is_label_char(c); }

void append_quoted(std::string& out, std::string_view s) {
  out.push_back('"');
  out.append(s);
  out.push_back('"');
}

}  // namespace

void append_sanitized_metric_name(std::string& out, std::string_view name) {
  append_sanitized(out, name, metric_allowed, true);
}

void append_sanitized_label_name(std::string& out, std::string_view name) {
  append_sanitized(out, name, label_allowed, true);
}

void SeriesNamer::set_extra_label(std::string_view name, std::string_view value) {
  extra_name_.assign(name);
  extra_value_.assign(value);
}

std::string_view SeriesNamer::name(const ParsedLine& line, std::string_view field_key,
                                   LabelsBuilder& builder) {
  builder.clear();
  message_.clear();
  label_names_.clear();
  scratch_.clear();
  // Sanitizing never grows a name by more than its '_' prefix, so reserving this up front keeps
  // every view into scratch_ valid while the point is named.
  size_t need = line.measurement.size() + 1 + 1 + field_key.size();
  for (const Tag& tag : line.tags) need += tag.key.size() + 1;
  if (scratch_.capacity() < need) scratch_.reserve(need);

  std::string_view metric;
  if (field_key == kValueField && is_valid_name(line.measurement, metric_allowed)) {
    metric = line.measurement;
  } else {
    const size_t start = scratch_.size();
    append_sanitized(scratch_, line.measurement, metric_allowed, true);
    if (field_key != kValueField) {
      scratch_.push_back('_');
      append_sanitized(scratch_, field_key, metric_allowed, false);
    }
    metric = std::string_view(scratch_).substr(start);
  }
  builder.add(kMetricNameLabel, metric);

  for (const Tag& tag : line.tags) {
    std::string_view label = tag.key;
    if (!is_valid_name(tag.key, label_allowed)) {
      const size_t start = scratch_.size();
      append_sanitized(scratch_, tag.key, label_allowed, true);
      label = std::string_view(scratch_).substr(start);
    }
    label_names_.push_back(label);
    builder.add(label, tag.value);
  }
  if (!extra_name_.empty()) builder.add(extra_name_, extra_value_);

  const std::string_view duplicate = builder.finish();
  if (duplicate.empty()) return {};

  const auto& tags = line.tags;
  if (!extra_name_.empty() && duplicate == extra_name_) {
    for (size_t i = 0; i < tags.size(); ++i) {
      if (label_names_[i] != extra_name_) continue;
      message_.append("tag key ");
      append_quoted(message_, tags[i].key);
      message_.append(" maps to label ");
      append_quoted(message_, extra_name_);
      message_.append(", which ingest.db_label sets to the write's database");
      return message_;
    }
  }
  if (duplicate == kMetricNameLabel) {
    for (size_t i = 0; i < tags.size(); ++i) {
      if (label_names_[i] == kMetricNameLabel) {
        message_.append("tag key ");
        append_quoted(message_, tags[i].key);
        message_.append(" maps to the reserved label \"__name__\"");
        return message_;
      }
    }
  }
  for (size_t j = 1; j < tags.size(); ++j) {
    if (label_names_[j] != duplicate) continue;
    for (size_t i = 0; i < j; ++i) {
      if (label_names_[i] != duplicate) continue;
      message_.append("tag keys ");
      append_quoted(message_, tags[i].key);
      message_.append(" and ");
      append_quoted(message_, tags[j].key);
      message_.append(" both map to label ");
      append_quoted(message_, duplicate);
      return message_;
    }
  }
  message_.append("duplicate label ");
  append_quoted(message_, duplicate);
  return message_;
}

}  // namespace kpid::ingest
