#pragma once
// The OKR module's options: the [okr] table, parsed straight into this struct by the config.

#include <cstdint>
#include <string>
#include <vector>

namespace kpid::okr {

// [okr]: limits across every OKR (each KPI's draft policy is its [kpi.okr] table).
struct OkrOptions {
  int64_t max_open_per_owner = 5;  // more open objectives in one period: a warning on the draft
};

// The [okr] keys that differ between the running options and a reloaded config and take effect
// only after a restart.
std::vector<std::string> keys_needing_restart(const OkrOptions& running, const OkrOptions& next);

}  // namespace kpid::okr
