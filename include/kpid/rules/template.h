#pragma once
// The part of Prometheus' alert templates (Go text/template with Prometheus' functions) that
// rule files commonly use, for alerting rules' labels and annotations:
//   {{ $labels.x }}  {{ $value }}  {{ $labels }}  {{ $externalLabels.x }}  {{ .Labels.x }}
//   {{ .Value }}  {{ humanize $value }}  {{ $value | humanize }}  humanize1024
//   humanizePercentage  humanizeDuration  toUpper  toLower  {{ printf "%.2f" $value }}
// and the trim markers {{- and -}}. Output matches Prometheus' for these (Go's %v of a float,
// "<no value>" for a missing label, "map[a:b]" for $labels). Control actions (if, range, with,
// define, template, block), variable declarations and the query function are refused at
// parse time as not supported by kpid: Prometheus accepts them.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"

namespace kpid::rules {

// The data one rendering sees.
struct TemplateData {
  std::map<std::string, std::string> labels;           // the alert's labels (no __name__)
  std::map<std::string, std::string> external_labels;  // none in kpid today
  std::string external_url;
  double value = 0;
};

class PromTemplate {
 public:
  // `name` names the template in errors, as Prometheus does ("__alert_<alertname>"). Fails
  // (invalid_argument) with Go's wording where kpid knows it: "template: NAME:LINE: unclosed
  // action", "template: NAME:LINE: function \"x\" not defined", ...
  static Result<PromTemplate> parse(std::string_view text, std::string_view name);

  // Renders the template; a function given a value it cannot take (e.g. humanize of a
  // non-number string) fails as Prometheus' does ("error executing template ...").
  Result<std::string> render(const TemplateData& data) const;

  struct Arg {
    enum class Kind { kString, kNumber, kValue, kLabels, kLabel, kExternalLabel, kExternalUrl };
    Kind kind = Kind::kString;
    std::string text;  // kString: the literal; kLabel / kExternalLabel: the label name
    double number = 0;
  };
  struct Command {
    std::string function;   // "" for a lone operand
    std::vector<Arg> args;  // with a function: its arguments (the piped value is appended)
  };
  struct Piece {
    bool action = false;
    std::string text;               // literal text
    std::vector<Command> pipeline;  // action: commands joined by '|'
  };

 private:
  std::string name_;
  std::vector<Piece> pieces_;
};

// Go's fmt %v of a float64 ("1e+06", "0.5", "NaN", "+Inf").
std::string go_float(double v);

}  // namespace kpid::rules
