#include "kpid/alert/template.h"

#include <algorithm>

namespace kpid::alert {

Result<Template> Template::parse(std::string_view text, std::span<const std::string_view> known) {
  Template t;
  t.text_ = std::string(text);
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      t.pieces_.push_back({false, std::string(text.substr(pos))});
      break;
    }
    if (open > pos) t.pieces_.push_back({false, std::string(text.substr(pos, open - pos))});
    const size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return Status::invalid_argument("unclosed \"{{\" at offset " + std::to_string(open));
    }
    std::string_view name = text.substr(open + 2, close - open - 2);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (name.empty()) {
      return Status::invalid_argument("empty \"{{}}\" at offset " + std::to_string(open));
    }
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return Status::invalid_argument("unknown variable \"{{" + std::string(name) +
                                      "}}\" at offset " + std::to_string(open) +
                                      "; known: " + list);
    }
    t.pieces_.push_back({true, std::string(name)});
    pos = close + 2;
  }
  return t;
}

std::string Template::render(
    const std::function<std::string(std::string_view name)>& value_of) const {
  std::string out;
  for (const auto& piece : pieces_) out += piece.variable ? value_of(piece.text) : piece.text;
  return out;
}

}  // namespace kpid::alert
