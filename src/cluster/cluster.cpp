#include "kpid/cluster/cluster.h"

#include <prometheus/gauge.h>

#include <algorithm>

#include <boost/json.hpp>

#include "kpid/core/json.h"

namespace kpid::cluster {

namespace json = boost::json;

namespace {

size_t count_owned(const std::vector<Ownership>& list) {
  return static_cast<size_t>(
      std::count_if(list.begin(), list.end(), [](const Ownership& o) { return o.owned; }));
}

json::array to_json(const std::vector<Ownership>& list) {
  json::array out;
  out.reserve(list.size());
  for (const auto& o : list) {
    out.push_back(json::object{{"id", o.id}, {"shard", o.shard}, {"owned", o.owned}});
  }
  return out;
}

prometheus::Family<prometheus::Gauge>& info_family(prometheus::Registry& r) {
  return prometheus::BuildGauge()
      .Name("kpid_cluster_shard_info")
      .Help("1, labelled with this instance's shard (\"i/N\"; \"0/1\" owns everything).")
      .Register(r);
}

prometheus::Family<prometheus::Gauge>& owned_family(prometheus::Registry& r) {
  return prometheus::BuildGauge()
      .Name("kpid_cluster_owned")
      .Help(
          "Configured KPIs, SLOs and rule groups this instance's shard owns and evaluates, by "
          "kind.")
      .Register(r);
}

}  // namespace

size_t ClusterState::owned_kpis() const { return count_owned(kpis); }
size_t ClusterState::owned_slos() const { return count_owned(slos); }
size_t ClusterState::owned_rule_groups() const { return count_owned(rule_groups); }

Ownership ownership(const Shard& shard, std::string id, std::string_view key) {
  const uint32_t owner = Shard::shard_of(key, shard.count);
  return {std::move(id), owner, owner == shard.index};
}

std::string to_json_text(const ClusterState& state) {
  return kpid::to_json_text(
      json::object{{"shard", state.shard.text()},
                   {"index", state.shard.index},
                   {"count", state.shard.count},
                   {"kpis", to_json(state.kpis)},
                   {"slos", to_json(state.slos)},
                   {"rule_groups", to_json(state.rule_groups)},
                   {"owned", json::object{{"kpis", state.owned_kpis()},
                                          {"slos", state.owned_slos()},
                                          {"rule_groups", state.owned_rule_groups()}}}});
}

Cluster::Cluster(metrics::Metrics* metrics) {
  if (metrics != nullptr) {
    info_ = &info_family(metrics->registry());
    owned_ = &owned_family(metrics->registry());
  }
  set(ClusterState{});
}

void Cluster::set(ClusterState state) {
  std::lock_guard lock(mutex_);
  if (info_ != nullptr) {
    const std::string text = state.shard.text();
    if (text != info_shard_) {
      if (!info_shard_.empty()) info_->Remove(&info_->Add({{"shard", info_shard_}}));
      info_->Add({{"shard", text}}).Set(1);
      info_shard_ = text;
    }
    owned_->Add({{"kind", "kpi"}}).Set(static_cast<double>(state.owned_kpis()));
    owned_->Add({{"kind", "slo"}}).Set(static_cast<double>(state.owned_slos()));
    owned_->Add({{"kind", "rule_group"}}).Set(static_cast<double>(state.owned_rule_groups()));
  }
  state_ = std::move(state);
}

ClusterState Cluster::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

}  // namespace kpid::cluster
