#pragma once
// Alert label and annotation templates: text with "{{name}}" variables, e.g.
// "{{kpi}} is {{value}} {{unit}} (threshold {{threshold}})". Names are checked when the
// template is parsed (at config load), so rendering cannot fail.

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/status.h"

namespace kpid::alert {

class Template {
 public:
  // Fails (invalid_argument, naming the byte offset) on an unclosed "{{", an empty
  // variable, or a name not in `known`. Spaces inside the braces are allowed ("{{ kpi }}").
  static Result<Template> parse(std::string_view text, std::span<const std::string_view> known);

  // The text with each variable replaced by value_of(name).
  std::string render(const std::function<std::string(std::string_view name)>& value_of) const;

  const std::string& text() const { return text_; }

 private:
  struct Piece {
    bool variable = false;
    std::string text;  // literal text, or the variable's name
  };
  std::string text_;
  std::vector<Piece> pieces_;
};

}  // namespace kpid::alert
