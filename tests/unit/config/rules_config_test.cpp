#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "kpid/config/config.h"
#include "support/temp_dir.h"

using namespace kpid;

namespace {

std::string errors_of(const config::LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

}  // namespace

TEST_CASE("rules config: files expand relative to the config file, defaults apply", "[rules]") {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/rules");
  for (const char* name : {"b.yml", "a.yml"}) std::ofstream(dir.path() + "/rules/" + name) << "";
  const std::string file = dir.path() + "/kpid.toml";
  auto r = config::parse_config("[rules]\nfiles = [\"rules/*.yml\"]\n", file, {});
  INFO(errors_of(r));
  REQUIRE(r.ok());
  CHECK(r.config.rules.files == std::vector<std::string>{"rules/*.yml"});
  CHECK(r.config.rules.paths ==
        std::vector<std::string>{dir.path() + "/rules/a.yml", dir.path() + "/rules/b.yml"});
  CHECK(r.config.rules.evaluation_interval == 60'000);
  CHECK(r.config.rules.datasource.empty());

  auto set = config::parse_config(
      "[rules]\nfiles = []\nevaluation_interval = \"15s\"\ndatasource = \"mimir\"\n", file, {});
  INFO(errors_of(set));
  REQUIRE(set.ok());
  CHECK(set.config.rules.evaluation_interval == 15'000);
  CHECK(set.config.rules.datasource == "mimir");
  CHECK(set.config.rules.datasource_pos.line == 4);
}

TEST_CASE("rules config: bad keys and values name their line", "[rules]") {
  testing::TempDir dir;
  const std::string file = dir.path() + "/kpid.toml";
  auto r = config::parse_config(
      "[rules]\nfile = [\"x\"]\nfiles = [\"missing.yml\", 3]\nevaluation_interval = \"100ms\"\n"
      "datasource = \"\"\n",
      file, {});
  const std::string errors = errors_of(r);
  INFO(errors);
  CHECK(errors.find(file + ":2:1: rules.file: unknown key; did you mean \"files\"?") !=
        std::string::npos);
  CHECK(errors.find("rules.files: expected a non-empty string (a file pattern)") !=
        std::string::npos);
  CHECK(errors.find("rule file " + dir.path() + "/missing.yml does not exist") !=
        std::string::npos);
  CHECK(errors.find(file + ":4:23: rules.evaluation_interval:") != std::string::npos);
  CHECK(errors.find(file + ":5:14: rules.datasource: must not be empty") != std::string::npos);
}
