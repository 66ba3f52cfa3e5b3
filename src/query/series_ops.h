#pragma once
// Label and series helpers shared by the evaluator's source files (evaluator, functions,
// aggregations). Private to the query module.

#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/labels.h"
#include "kpid/core/status.h"
#include "kpid/query/engine.h"

namespace kpid::query::detail {

// A computed label set from items of existing (sorted, unique) or validated labels.
LabelsPtr owned(std::vector<Label> items);

bool contains(const std::vector<std::string>& names, std::string_view name);

// Prometheus' model.LabelName.IsValid: [a-zA-Z_][a-zA-Z0-9_]*.
bool valid_label_name(std::string_view name);

// The labels without __name__ (the same pointer when there is none).
LabelsPtr drop_name(const LabelsPtr& labels);

// The labels named in `names` (keep), or all but those (and but __name__ when drop_name_too).
LabelsPtr select_labels(const Labels& labels, const std::vector<std::string>& names, bool keep,
                        bool drop_name_too);

bool labels_less(const Series& a, const Series& b);
void sort_series(std::vector<Series>& series);

// "vector cannot contain metrics with the same labelset".
Status same_labelset_error();

// Prometheus' check after range functions and unary minus: no two series with equal labels.
Status sort_and_check_unique(std::vector<Series>& series);

// After an element-wise operation that may have made labels equal: series with equal labels
// become one, which is an error only where two of them have a value at the same step. Series
// without points are left out.
Status sort_and_merge(std::vector<Series>& series);

}  // namespace kpid::query::detail
