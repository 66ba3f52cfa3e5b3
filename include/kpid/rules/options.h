#pragma once
// [rules]: Prometheus rule files kpid evaluates (rules module).

#include <string>
#include <vector>

#include "kpid/core/source_pos.h"
#include "kpid/core/time.h"

namespace kpid::rules {

struct RulesOptions {
  // glob(3) patterns relative to the config file, as written.
  std::vector<std::string> files;
  // The files they name, in pattern order then name order (filled by the config loader).
  std::vector<std::string> paths;
  // Evaluate every group against this [[datasource]] instead of the local store ("": local).
  std::string datasource;
  // The interval of groups that give none (Prometheus' global.evaluation_interval).
  DurationMs evaluation_interval = 60'000;
  SourcePos pos;  // of [rules], for errors about the section as a whole
  SourcePos datasource_pos;
};

}  // namespace kpid::rules
