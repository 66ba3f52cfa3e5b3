#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include "kpid/cluster/cluster.h"

using namespace kpid;
using namespace kpid::cluster;

TEST_CASE("cluster: N shards split ids into disjoint parts whose union is all",
          "[cluster][shard]") {
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) ids.push_back("kpi_" + std::to_string(i));
  std::map<std::string, int> owners;
  for (uint32_t i = 0; i < 3; ++i) {
    std::vector<std::string> mine = ids;
    keep_owned(Shard{i, 3}, mine, [](const std::string& id) { return id; });
    CHECK_FALSE(mine.empty());
    for (const auto& id : mine) {
      ++owners[id];
      CHECK(ownership(Shard{i, 3}, id, id).owned);
      CHECK(ownership(Shard{i, 3}, id, id).shard == i);
    }
  }
  CHECK(owners.size() == ids.size());
  for (const auto& [id, n] : owners) CHECK(n == 1);
}

TEST_CASE("cluster: the API's JSON lists every id with its shard", "[cluster]") {
  ClusterState state;
  state.shard = Shard{1, 2};
  state.kpis.push_back(ownership(state.shard, "a", "a"));
  state.kpis.push_back(ownership(state.shard, "b", "b"));
  state.slos.push_back(ownership(state.shard, "slo_on_a", "a"));  // follows its KPI
  auto v = boost::json::parse(to_json_text(state)).as_object();
  CHECK(v.at("shard").as_string() == "1/2");
  CHECK(v.at("kpis").as_array().size() == 2);
  const auto& slo = v.at("slos").as_array().at(0).as_object();
  const auto& a = v.at("kpis").as_array().at(0).as_object();
  CHECK(slo.at("shard") == a.at("shard"));
  CHECK(slo.at("owned") == a.at("owned"));
  CHECK(v.at("owned").as_object().at("kpis").to_number<size_t>() == state.owned_kpis());
}

TEST_CASE("cluster: metrics name the shard and count what it owns", "[cluster]") {
  metrics::Metrics m;
  Cluster cluster(&m);
  ClusterState state;
  state.shard = Shard{0, 2};
  state.kpis = {{"x", 0, true}, {"y", 1, false}, {"z", 0, true}};
  cluster.set(state);
  std::string text = m.scrape();
  CHECK(text.find("kpid_cluster_shard_info{shard=\"0/2\"} 1") != std::string::npos);
  CHECK(text.find("kpid_cluster_owned{kind=\"kpi\"} 2") != std::string::npos);
  CHECK(text.find("kpid_cluster_owned{kind=\"slo\"} 0") != std::string::npos);
  // A reload that changes the shard relabels the info series.
  state.shard = Shard{1, 2};
  cluster.set(state);
  text = m.scrape();
  CHECK(text.find("shard=\"0/2\"") == std::string::npos);
  CHECK(text.find("kpid_cluster_shard_info{shard=\"1/2\"} 1") != std::string::npos);
}
