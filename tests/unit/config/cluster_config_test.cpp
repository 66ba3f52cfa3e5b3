// [cluster] and --shard.
#include <catch2/catch.hpp>

#include "kpid/config/config.h"

using namespace kpid;
using namespace kpid::config;

namespace {

bool has_error(const LoadResult& r, const std::string& file, const std::string& key, int line,
               const std::string& part) {
  for (const auto& e : r.errors) {
    if (e.file == file && e.key == key && e.line == line &&
        e.message.find(part) != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("cluster: shard defaults to one instance owning everything", "[config][cluster]") {
  auto r = parse_config("", "kpid.toml", {});
  REQUIRE(r.ok());
  CHECK(r.config.cluster.shard.index == 0);
  CHECK(r.config.cluster.shard.count == 1);
  CHECK(r.config.cluster.shard.owns("anything"));
}

TEST_CASE("cluster: shard is read from the config and --shard overrides it", "[config][cluster]") {
  const std::string text = "[cluster]\nshard = \"1/3\"\n";
  auto r = parse_config(text, "kpid.toml", {});
  REQUIRE(r.ok());
  CHECK(r.config.cluster.shard.text() == "1/3");
  CHECK(r.config.cluster.shard_pos.line == 2);

  Overrides flag;
  flag.shard = "2/4";
  auto o = parse_config(text, "kpid.toml", flag);
  REQUIRE(o.ok());
  CHECK(o.config.cluster.shard.text() == "2/4");
  CHECK(o.config.cluster.shard_pos.file == "command line");
}

TEST_CASE("cluster: a bad shard names the file, line and key", "[config][cluster]") {
  auto r = parse_config("[cluster]\n\nshard = \"3/3\"\n", "kpid.toml", {});
  CHECK(has_error(r, "kpid.toml", "cluster.shard", 3, "the index must be below the count"));
  auto n = parse_config("[cluster]\nshard = 2\n", "kpid.toml", {});
  CHECK(has_error(n, "kpid.toml", "cluster.shard", 2, "string"));
  auto k = parse_config("[cluster]\nshards = \"0/2\"\n", "kpid.toml", {});
  CHECK(has_error(k, "kpid.toml", "cluster.shards", 2, "did you mean \"shard\""));

  Overrides flag;
  flag.shard = "one/two";
  auto f = parse_config("", "kpid.toml", flag);
  CHECK(has_error(f, "command line", "--shard", 0, "the index is not a number"));
}
