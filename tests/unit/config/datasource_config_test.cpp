// [[datasource]] tables and the `datasource` key of [[kpi]].

#include <catch2/catch.hpp>

#include "kpid/config/config.h"

using namespace kpid;
using namespace kpid::config;

namespace {

LoadResult parse(const std::string& text) { return parse_config(text, "kpid.toml", {}); }

bool has_error(const LoadResult& r, const std::string& key, int line, const std::string& part) {
  for (const auto& e : r.errors) {
    if (e.key == key && e.line == line && e.message.find(part) != std::string::npos) return true;
  }
  return false;
}

std::string dump(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

const char* kKpi = R"toml(
[[kpi]]
id = "latency"
direction = "lower_is_better"
datasource = "vm"
[kpi.value]
selector = "latency"
over_time = "last"
)toml";

}  // namespace

TEST_CASE("config: a datasource's keys are read, with defaults") {
  auto r = parse(std::string(R"toml([[datasource]]
name = "vm"
url = "http://vmselect:8481/select/0/prometheus"
timeout = "5s"
max_concurrency = 8
batch_size = 100
down_for = "0s"
bearer_token = "t0ken"
[datasource.headers]
X-Scope-OrgID = "team-a"

[[datasource]]
name = "prom.main-1"
url = "https://prometheus:9090"
)toml") + kKpi);
  INFO(dump(r));
  REQUIRE(r.ok());
  REQUIRE(r.config.datasources.size() == 2);
  const auto& vm = r.config.datasources[0];
  CHECK(vm.name == "vm");
  CHECK(vm.url == "http://vmselect:8481/select/0/prometheus");
  CHECK(vm.timeout == 5'000);
  CHECK(vm.max_concurrency == 8);
  CHECK(vm.batch_size == 100);
  CHECK(vm.down_for == 0);
  CHECK(vm.auth.bearer_token == "t0ken");
  REQUIRE(vm.auth.headers.size() == 1);
  CHECK(vm.auth.headers[0].second == "team-a");
  CHECK(vm.pos.line == 1);
  const auto& prom = r.config.datasources[1];
  CHECK(prom.timeout == 30'000);
  CHECK(prom.max_concurrency == 4);
  CHECK(prom.batch_size == 50);
  CHECK(prom.down_for == 60'000);
  REQUIRE(r.config.kpis.size() == 1);
  CHECK(r.config.kpis[0].datasource == "vm");
}

TEST_CASE("config: bad datasources and unknown datasource names are errors at their line") {
  auto r = parse(R"toml([[datasource]]
name = "vm"
url = "ftp://x"
batch_size = 0
max_concurrency = -1
timeot = "1s"

[[datasource]]
name = "vm"
url = "http://a:1/?x=1"

[[datasource]]
name = "bad name"

[[kpi]]
id = "latency"
direction = "lower_is_better"
datasource = "vmm"
[kpi.value]
selector = "latency"
over_time = "last"
)toml");
  INFO(dump(r));
  CHECK(has_error(r, "datasource.vm.url", 3, "http://"));
  CHECK(has_error(r, "datasource.vm.batch_size", 4, ""));
  CHECK(has_error(r, "datasource.vm.max_concurrency", 5, ""));
  CHECK(has_error(r, "datasource.vm.timeot", 6, "did you mean \"timeout\""));
  CHECK(has_error(r, "datasource.vm.name", 9, "duplicate datasource name"));
  CHECK(has_error(r, "datasource.vm.url", 10, "query string"));
  CHECK(has_error(r, "datasource[2].name", 13, "letters, digits"));
  CHECK(has_error(r, "datasource[2].url", 12, "required"));
  CHECK(has_error(r, "kpi.latency.datasource", 18, "unknown datasource \"vmm\""));
}
