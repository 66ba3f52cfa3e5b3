// kpictl check-config: the same validation as `kpid --check-config`, run locally on a file.
#include <ostream>

#include <spdlog/spdlog.h>

#include "command.h"
#include "kpid/app/app.h"

namespace kpid::ctl {

namespace json = boost::json;

namespace {

json::array errors_json(const std::vector<config::ConfigError>& errors) {
  json::array out;
  for (const auto& e : errors) {
    out.push_back(json::object{{"file", e.file},
                               {"line", e.line},
                               {"column", e.column},
                               {"key", e.key},
                               {"message", e.message},
                               {"text", e.to_string()}});
  }
  return out;
}

}  // namespace

int cmd_check_config(Context& c) {
  // Opening the data dir read-only logs like the daemon would; a client prints only results.
  spdlog::set_level(spdlog::level::warn);
  app::CommandLine command_line;
  command_line.config_path = c.args.positional[0];
  if (auto dir = c.args.value("data-dir")) command_line.overrides.data_dir = *dir;
  if (!c.json) return app::check_config(command_line, c.out, c.err) == 0 ? kExitOk : kExitRefused;
  const auto loaded = app::load_and_check(command_line);
  c.print_json(json::object{{"ok", loaded.errors.empty()},
                            {"file", command_line.config_path},
                            {"kpis", loaded.kpis.size()},
                            {"alert_rules", loaded.rules.size()},
                            {"receivers", loaded.receivers.size()},
                            {"errors", errors_json(loaded.errors)},
                            {"warnings", errors_json(loaded.warnings)}});
  return loaded.errors.empty() ? kExitOk : kExitRefused;
}

}  // namespace kpid::ctl
