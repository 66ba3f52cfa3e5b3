#include "series_ops.h"

#include <algorithm>
#include <memory>
#include <utility>

namespace kpid::query::detail {

LabelsPtr owned(std::vector<Label> items) {
  // Items come from an existing (sorted, unique) label set, so this cannot fail.
  auto labels = Labels::from(std::move(items));
  return std::make_shared<const Labels>(labels ? std::move(labels).value() : Labels());
}

bool contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool valid_label_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

LabelsPtr drop_name(const LabelsPtr& labels) {
  if (labels->get(kMetricNameLabel).empty()) return labels;
  std::vector<Label> items;
  items.reserve(labels->size());
  for (const auto& l : labels->items()) {
    if (l.name != kMetricNameLabel) items.push_back(l);
  }
  return owned(std::move(items));
}

// The labels named in `names` (keep), or all but those (and but __name__ when drop_name_too).
LabelsPtr select_labels(const Labels& labels, const std::vector<std::string>& names, bool keep,
                        bool drop_name_too) {
  std::vector<Label> items;
  for (const auto& l : labels.items()) {
    const bool listed = contains(names, l.name);
    if (keep ? listed : (!listed && !(drop_name_too && l.name == kMetricNameLabel))) {
      items.push_back(l);
    }
  }
  return owned(std::move(items));
}

bool labels_less(const Series& a, const Series& b) { return a.labels->items() < b.labels->items(); }

void sort_series(std::vector<Series>& series) {
  std::stable_sort(series.begin(), series.end(), labels_less);
}

Status same_labelset_error() {
  return Status::invalid_argument("vector cannot contain metrics with the same labelset");
}

// Prometheus' check after range functions and unary minus: no two series with equal labels.
Status sort_and_check_unique(std::vector<Series>& series) {
  sort_series(series);
  for (size_t i = 1; i < series.size(); ++i) {
    if (*series[i].labels == *series[i - 1].labels) return same_labelset_error();
  }
  return Status::ok();
}

// After an element-wise operation that may have made labels equal: series with equal labels
// become one, which is an error only where two of them have a value at the same step.
Status sort_and_merge(std::vector<Series>& series) {
  sort_series(series);
  std::vector<Series> out;
  out.reserve(series.size());
  for (auto& s : series) {
    if (s.points.empty()) continue;
    if (out.empty() || !(*out.back().labels == *s.labels)) {
      out.push_back(std::move(s));
      continue;
    }
    auto& into = out.back().points;
    std::vector<store::Point> merged;
    merged.reserve(into.size() + s.points.size());
    size_t i = 0;
    size_t j = 0;
    while (i < into.size() || j < s.points.size()) {
      if (j == s.points.size() || (i < into.size() && into[i].timestamp < s.points[j].timestamp)) {
        merged.push_back(into[i++]);
      } else if (i == into.size() || s.points[j].timestamp < into[i].timestamp) {
        merged.push_back(s.points[j++]);
      } else {
        return same_labelset_error();
      }
    }
    into = std::move(merged);
  }
  series = std::move(out);
  return Status::ok();
}

}  // namespace kpid::query::detail
