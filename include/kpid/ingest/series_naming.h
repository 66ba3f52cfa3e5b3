#pragma once
// Turning a line-protocol point into Prometheus series, after VictoriaMetrics' convention:
// measurement `cpu`, field `usage`, tags `host=a` -> cpu_usage{host="a"}; a field named `value`
// gives cpu{host="a"}. Names are made Prometheus-compatible: in the metric name every character
// outside [a-zA-Z0-9_:] becomes '_', in tag keys every character outside [a-zA-Z0-9_] becomes
// '_', and a leading digit gets a '_' prefix. Tag values are kept as they are. A character is a
// UTF-8 code point: "température" becomes "temp_rature" (one '_' for the two-byte 'é').

#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/labels.h"
#include "kpid/ingest/line_protocol.h"

namespace kpid::ingest {

// Not thread-safe: one per worker; reuses its buffer so naming does not allocate once warm.
class SeriesNamer {
 public:
  // Fills `builder` (cleared first, then finished) with the labels of `field` of `line`.
  // Returns "" on success, or an error message (valid until the next call) when two tags map to
  // the same label name after sanitizing, or a tag key maps to the reserved "__name__".
  std::string_view name(const ParsedLine& line, std::string_view field_key, LabelsBuilder& builder);

  // A label every point named from now on gets (ingest.db_label and the write's database); a
  // tag mapping to the same name is an error. An empty name removes it.
  void set_extra_label(std::string_view name, std::string_view value);

 private:
  std::string extra_name_;
  std::string extra_value_;
  std::string scratch_;  // sanitized names; reserved for the whole point before writing
  std::vector<std::string_view> label_names_;  // label name of each tag, for error messages
  std::string message_;
};

// Sanitizes a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) into `out` (appended).
void append_sanitized_metric_name(std::string& out, std::string_view name);
// Sanitizes a label name ([a-zA-Z_][a-zA-Z0-9_]*) into `out` (appended).
void append_sanitized_label_name(std::string& out, std::string_view name);

}  // namespace kpid::ingest
