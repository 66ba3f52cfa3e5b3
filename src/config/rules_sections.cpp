// [rules]: which Prometheus rule files kpid evaluates, against which source, how often.
#include "loader.h"

#include <toml++/toml.h>

#include <array>
#include <string>

namespace kpid::config::detail {

void Loader::load_rules(const toml::table& t, rules::RulesOptions& c) {
  check_keys(t, "rules", std::array{"files", "datasource", "evaluation_interval"});
  c.pos = pos_of(t);
  if (const toml::node* n = t.get("files")) {
    load_include(*n, "rules.files", c.files);
    c.paths = expand_patterns(file_, c.files, "rules.files", "rule file", errors_);
  }
  if (const toml::node* n = t.get("datasource")) {
    get_string(t, "rules", "datasource", c.datasource);
    c.datasource_pos = pos_of(*n);
    if (n->is_string() && c.datasource.empty()) {
      error(*n, "rules.datasource", "must not be empty (leave it out to use the local store)");
    }
  }
  get_duration(t, "rules", "evaluation_interval", 1000, c.evaluation_interval);
}

}  // namespace kpid::config::detail
