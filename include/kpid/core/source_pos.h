#pragma once
// Where a configuration value was written, so errors found after loading (a band the KPI
// module rejects, a certificate that does not load) can point at it.

#include <string>

namespace kpid {

struct SourcePos {
  std::string file;
  int line = 0;  // 0 when unknown
  int column = 0;
};

}  // namespace kpid
