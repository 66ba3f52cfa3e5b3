#include "kpid/okr/options.h"

namespace kpid::okr {

std::vector<std::string> keys_needing_restart(const OkrOptions& running, const OkrOptions& next) {
  std::vector<std::string> keys;
  if (running.max_open_per_owner != next.max_open_per_owner) {
    keys.emplace_back("okr.max_open_per_owner");
  }
  return keys;
}

}  // namespace kpid::okr
