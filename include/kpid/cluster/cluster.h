#pragma once
// Shards: which of the configured KPIs, SLOs and rule groups this instance evaluates, what
// GET /api/v1/cluster answers and the kpid_cluster_* metrics.
//
// Every instance of a sharded deployment loads the same config; each keeps only what its
// Shard owns (Shard::owns on the id: a KPI's or SLO's id, a rule group's
// "<file base name>:<group name>"), so the union over i = 0..N-1 is everything, once.

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include "kpid/core/shard.h"
#include "kpid/metrics/metrics.h"

namespace kpid::cluster {

// One configured thing and the shard that owns it.
struct Ownership {
  std::string id;
  uint32_t shard = 0;
  bool owned = false;  // by this instance
};

// The ownership of every configured KPI, SLO and rule group, as GET /api/v1/cluster shows it.
struct ClusterState {
  Shard shard;
  std::vector<Ownership> kpis;  // in config order
  std::vector<Ownership> slos;
  std::vector<Ownership> rule_groups;  // "<file base name>:<group name>"
  size_t owned_kpis() const;
  size_t owned_slos() const;
  size_t owned_rule_groups() const;
};

// The ownership of `id` under `shard`, decided by `key` (the id itself, or for an SLO over a
// KPI's status that KPI's id, so both land on the instance that evaluates the KPI).
Ownership ownership(const Shard& shard, std::string id, std::string_view key);

// Keeps the items whose id (`id_of(item)`) `shard` owns, in order; returns how many it dropped.
template <typename T, typename IdOf>
size_t keep_owned(const Shard& shard, std::vector<T>& items, IdOf id_of) {
  const size_t before = items.size();
  std::erase_if(items, [&](const T& item) { return !shard.owns(id_of(item)); });
  return before - items.size();
}

// {"shard":"i/N","index":i,"count":N,"kpis":[{"id","shard","owned"}...],"slos":[...],
//  "rule_groups":[...],"owned":{"kpis":n,"slos":m,"rule_groups":g}}: the `data` of GET
//  /api/v1/cluster.
std::string to_json_text(const ClusterState& state);

// The current ClusterState (set at start and on reload) and the metrics
// kpid_cluster_shard_info{shard="i/N"} 1 and kpid_cluster_owned{kind="kpi|slo|rule_group"}.
// Thread-safe.
class Cluster {
 public:
  // `metrics` may be null; it must outlive this object.
  explicit Cluster(metrics::Metrics* metrics);
  void set(ClusterState state);
  ClusterState state() const;
  std::string json() const { return to_json_text(state()); }

 private:
  prometheus::Family<prometheus::Gauge>* info_ = nullptr;  // null without metrics
  prometheus::Family<prometheus::Gauge>* owned_ = nullptr;
  mutable std::mutex mutex_;
  ClusterState state_;
  std::string info_shard_;  // the shard label kpid_cluster_shard_info has now
};

}  // namespace kpid::cluster
