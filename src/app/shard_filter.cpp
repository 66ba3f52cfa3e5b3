#include "shard_filter.h"

#include <set>

namespace kpid::app {

std::string_view shard_key(const slo::Definition& slo) {
  return slo.kpi.empty() ? std::string_view(slo.id) : std::string_view(slo.kpi);
}

cluster::ClusterState keep_owned(const Shard& shard, LoadedConfig& loaded) {
  cluster::ClusterState state;
  state.shard = shard;
  std::set<std::string, std::less<>> dropped_kpis;
  std::set<std::string, std::less<>> dropped_slos;
  for (const auto& k : loaded.kpis) {
    state.kpis.push_back(cluster::ownership(shard, k.id, k.id));
    if (!state.kpis.back().owned) dropped_kpis.insert(k.id);
  }
  for (const auto& s : loaded.slos) {
    state.slos.push_back(cluster::ownership(shard, s.id, shard_key(s)));
    if (!state.slos.back().owned) dropped_slos.insert(s.id);
  }
  for (const auto& g : loaded.rule_groups) {
    state.rule_groups.push_back(cluster::ownership(shard, g.id, g.id));
  }
  std::erase_if(loaded.rule_groups, [&](const rules::RuleGroup& g) { return !shard.owns(g.id); });
  if (dropped_kpis.empty() && dropped_slos.empty()) return state;
  std::erase_if(loaded.kpis, [&](const auto& k) { return dropped_kpis.contains(k.id); });
  std::erase_if(loaded.slos, [&](const auto& s) { return dropped_slos.contains(s.id); });
  // Rules of a KPI or SLO evaluated elsewhere would never see an evaluation here.
  std::erase_if(loaded.rules, [&](const alert::Rule& r) {
    return (!r.kpi.empty() && dropped_kpis.contains(r.kpi)) ||
           (!r.slo.empty() && dropped_slos.contains(r.slo));
  });
  std::erase_if(loaded.okr_policies,
                [&](const okr::Policy& p) { return dropped_kpis.contains(p.kpi); });
  std::erase_if(loaded.slo_okr_policies,
                [&](const okr::SloPolicy& p) { return dropped_slos.contains(p.slo); });
  return state;
}

}  // namespace kpid::app
