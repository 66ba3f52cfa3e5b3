// [cluster]: the shard of this instance when N instances split one config's work.

#include "loader.h"

namespace kpid::config::detail {

void Loader::load_cluster(const toml::table& t, cluster::ClusterOptions& c) {
  check_keys(t, "cluster", std::array{"shard"});
  const toml::node* node = t.get("shard");
  if (node == nullptr) return;
  std::string text;
  get_string(t, "cluster", "shard", text);
  if (!node->is_string()) return;  // get_string named the wrong type
  auto shard = parse_shard(text);
  if (!shard) {
    error(*node, "cluster.shard", shard.status().message());
    return;
  }
  c.shard = *shard;
  c.shard_pos = pos_of(*node);
}

}  // namespace kpid::config::detail
