#pragma once
// Sharding a loaded configuration: what this instance keeps of the KPIs, SLOs and the rules and
// OKR policies about them.

#include "kpid/app/app.h"
#include "kpid/cluster/cluster.h"

namespace kpid::app {

// The id an SLO is sharded by: the KPI whose status it counts (so the SLO is evaluated where
// that KPI is), else its own id.
std::string_view shard_key(const slo::Definition& slo);

// Removes from `loaded` the KPIs and SLOs `shard` does not own, with their alert rules and OKR
// policies, and returns the ownership of everything that was configured (for GET
// /api/v1/cluster). With one shard (count 1) nothing is removed.
cluster::ClusterState keep_owned(const Shard& shard, LoadedConfig& loaded);

}  // namespace kpid::app
