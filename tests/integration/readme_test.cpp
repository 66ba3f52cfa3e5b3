// README.md's first examples, pasted as a new user would paste them, against a real kpid: the
// Quick start on the shipped config/kpid.toml lights up the example KPIs with its first push,
// and the Writing data and Querying examples store samples "now" and find them. The blocks are
// read from README.md itself, so the README cannot drift from what works.
//
// They run in bash in a temp dir where build/src/kpictl is this build's kpictl, with the default
// ports 9470 and 9471 rewritten to the test kpid's; scripts/run.sh, xdg-open and kill are stubbed
// in the Quick start (the test started kpid itself).

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

constexpr const char* kSourceDir = KPID_SOURCE_DIR;
constexpr const char* kKpictl = KPICTL_BINARY;

// The ```sh blocks of the README section whose heading line is `heading` ("## Quick start").
std::vector<std::string> sh_blocks(const std::string& heading) {
  const std::string readme = read_file(std::string(kSourceDir) + "/README.md");
  const size_t start = readme.find("\n" + heading + "\n");
  REQUIRE(start != std::string::npos);
  const size_t end = readme.find("\n## ", start + heading.size() + 2);
  const std::string section = readme.substr(start, end - start);
  std::vector<std::string> blocks;
  size_t at = 0;
  while ((at = section.find("```sh\n", at)) != std::string::npos) {
    const size_t body = at + 6;
    const size_t close = section.find("\n```", body);
    REQUIRE(close != std::string::npos);
    blocks.push_back(section.substr(body, close - body + 1));
    at = close + 4;
  }
  return blocks;
}

std::string with_ports(std::string text, const Kpid& k) {
  text = std::regex_replace(text, std::regex("127\\.0\\.0\\.1([:/])9470"),
                            "127.0.0.1$01" + std::to_string(k.http_port()));
  return std::regex_replace(text, std::regex("127\\.0\\.0\\.1([:/])9471"),
                            "127.0.0.1$01" + std::to_string(k.line_port()));
}

// Runs `script` with bash in `dir` (which has build/src/kpictl), KPID_URL pointing at `k` and
// promtool on PATH.
CommandResult bash(const TempDir& dir, const Kpid& k, const std::string& script) {
  const std::string promtool_dir = std::filesystem::path(kPromtoolBinary).parent_path().string();
  const std::string prelude = "set -e\ncd '" + dir.path() + "'\nexport KPID_URL=http://127.0.0.1:" +
                              std::to_string(k.http_port()) + "\nexport PATH='" + promtool_dir +
                              "':\"$PATH\"\n";
  return run_command({"/bin/bash", "-c", prelude + script}, {}, 60s);
}

void link_kpictl(const TempDir& dir) {
  std::filesystem::create_directories(dir.file("build/src"));
  std::filesystem::create_symlink(kKpictl, dir.file("build/src/kpictl"));
}

json::object kpi(const Kpid& k, const std::string& id) {
  const json::value all = require_api_data(k.get("/api/v1/kpis"));
  for (const auto& v : all.as_array()) {
    if (json_str(v, "id") == id) return v.as_object();
  }
  FAIL("no KPI " << id);
  return {};
}

}  // namespace

TEST_CASE("readme: the Quick start's first push lights up the example KPIs", "[readme]") {
  // The shipped config, as scripts/run.sh starts it (data dir and ports the harness's own).
  Kpid k({.extra_args = {"--config", std::string(kSourceDir) + "/config/kpid.toml"}});
  k.start();
  TempDir dir;
  link_kpictl(dir);
  std::filesystem::create_directories(dir.file("data"));
  write_file(dir.file("data/kpid.pid"), std::to_string(k.pid()) + "\n");
  const auto blocks = sh_blocks("## Quick start");
  REQUIRE(blocks.size() == 1);
  const std::string& quick_start = blocks[0];
  REQUIRE(contains(quick_start, "scripts/run.sh --wait"));
  REQUIRE(contains(quick_start, "build/src/kpictl push"));
  // kpid already runs: run.sh, the browser and the final kill are not the test's to do.
  const std::string stubs =
      "scripts/run.sh() { :; }\nxdg-open() { :; }\nkill() { echo \"would kill $*\"; }\n";
  // (The harness stops kpid itself; the README's last line would.)
  const CommandResult r = bash(dir, k, stubs + with_ports(quick_start, k));
  INFO("Quick start: exit " << r.exit_code << "\n" << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "pushed 3 lines from stdin"));
  CHECK(contains(r.out, "0 rejected"));
  // kpictl status names every example KPI with its band as breach conditions.
  CHECK(contains(r.out, "checkout_latency_p95"));
  CHECK(contains(r.out, "warn >500, crit >1000"));
  CHECK(contains(r.out, "warn <5 or >120, crit <1 or >300"));

  // The example KPIs the push feeds have a value and a status, as the README says.
  struct Expected {
    const char* id;
    double value;
    const char* status;
  };
  for (const Expected& e :
       {Expected{"checkout_latency_p95", 870, "warn"}, Expected{"signup_conversion", 3.4, "ok"},
        Expected{"support_queue_depth", 42, "ok"}}) {
    INFO("KPI " << e.id);
    json::object v;
    const bool evaluated = eventually([&] {
      v = kpi(k, e.id);
      return json_str(v, "status") == e.status;
    });
    INFO(json::serialize(v));
    CHECK(evaluated);
    REQUIRE(v.at("value").is_number());
    CHECK(v.at("value").to_number<double>() == Approx(e.value));
  }
  CHECK(json_str(kpi(k, "checkout_error_rate"), "status") == "no_data");
}

TEST_CASE("readme: the Writing data examples store samples that the Querying examples find",
          "[readme]") {
  Kpid k;
  k.start();
  TempDir dir;
  link_kpictl(dir);
  const auto writes = sh_blocks("## Writing data");
  REQUIRE_FALSE(writes.empty());
  const CommandResult w = bash(dir, k, with_ports(writes[0], k));
  INFO("Writing data: exit " << w.exit_code << "\n" << w.out << w.err);
  REQUIRE(w.exit_code == 0);
  // Both curl writes answered 204.
  CHECK(std::regex_search(w.out, std::regex(R"(HTTP/1\.1 204[\s\S]*HTTP/1\.1 204)")));
  CHECK(contains(w.out, "pushed 1 line from stdin"));
  // Every sample landed "now" (the TCP line too, once read).
  for (const char* series :
       {"checkout_latency_p95", "checkout_errors", "support_first_response_h", "signup"}) {
    INFO(series);
    CHECK(eventually([&] { return !k.query(series, fmt_seconds(now_ms())).empty(); }, 5s));
  }
  CHECK(k.query("signup", fmt_seconds(now_ms())).size() == 2);  // TCP and kpictl

  const auto queries = sh_blocks("## Querying");
  REQUIRE_FALSE(queries.empty());
  const CommandResult q = bash(dir, k, with_ports(queries[0], k));
  INFO("Querying: exit " << q.exit_code << "\n" << q.out << q.err);
  REQUIRE(q.exit_code == 0);
  CHECK(contains(q.out, "checkout_latency_p95{region=\"eu\", service=\"web\"} => 870 @["));
  CHECK(std::regex_search(q.out, std::regex(R"(checkout_errors\{[^}]*\} =>\n3 @\[)")));
  CHECK(contains(q.out, R"("__name__":"support_first_response_h")"));
  CHECK(contains(q.out, R"("24"])"));
}
