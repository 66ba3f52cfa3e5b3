// Reloading a running kpid without knowing its pid, and finding its pid when one wants it:
// POST /-/reload (admin role) runs the reload SIGHUP runs and answers what it did (200 with
// counts, warnings and keys that need a restart; 422 with every error, the running config kept),
// kpictl reload prints that with its exit codes, and --pid-file holds kpid's pid from ready
// until exit, so kill -HUP "$(cat FILE)" reloads too.

#include <signal.h>

#include <filesystem>
#include <regex>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

constexpr const char* kKpictl = KPICTL_BINARY;

std::string kpi_toml(const std::string& id) {
  return "[[kpi]]\nid = \"" + id + "\"\nowner = \"team\"\ndirection = \"lower_is_better\"\n" +
         "[kpi.value]\nselector = '" + id + "'\nover_time = \"last\"\nwindow = \"1h\"\n" +
         "[kpi.band]\nwarn = 5\ncrit = 10\n[[kpi.alert]]\ncondition = \"crit\"\n";
}

CommandResult ctl(const Kpid& k, const std::vector<std::string>& args,
                  const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv = {"/usr/bin/env",
                                   "KPID_URL=http://127.0.0.1:" + std::to_string(k.http_port())};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.push_back(kKpictl);
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

size_t kpi_count(const Kpid& k) {
  return require_api_data(k.get("/api/v1/kpis")).as_array().size();
}

json::value parse(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  INFO(text);
  REQUIRE_FALSE(ec);
  return v;
}

}  // namespace

TEST_CASE("reload: POST /-/reload applies the config as SIGHUP does and says what it did",
          "[reload]") {
  Kpid k({.config_toml = kpi_toml("a")});
  k.start();
  REQUIRE(kpi_count(k) == 1);

  // A good config: applied before the answer, which counts what was loaded and names the
  // changed keys that wait for a restart.
  k.write_config("[http]\nthreads = 3\n" + kpi_toml("a") + kpi_toml("b"));
  auto ok = k.post("/-/reload", "");
  REQUIRE(ok.status == 200);
  const json::value data = require_api_data(ok);
  INFO(json::serialize(data));
  CHECK(data.at("reloaded").as_bool());
  CHECK(json_str(data, "config") == k.config_path());
  CHECK(data.at("kpis").to_number<int>() == 2);
  CHECK(data.at("alert_rules").to_number<int>() == 2);
  CHECK(data.at("restart_needed").as_array() == json::array{"http.threads"});
  CHECK(kpi_count(k) == 2);  // no waiting: applied when answered
  CHECK(contains(k.log(), "reload requested over HTTP"));

  // A config with errors: 422 with each error, nothing applied.
  k.write_config(kpi_toml("a") + "[kpi.band]\nwarn = 50\n");
  auto bad = k.post("/-/reload", "");
  CHECK(bad.status == 422);
  const json::value body = parse(bad.body);
  CHECK(json_str(body, "status") == "error");
  CHECK(json_str(body, "errorType") == "bad_data");
  CHECK(contains(json_str(body, "error"), "the running configuration is kept"));
  REQUIRE_FALSE(body.at("errors").as_array().empty());
  CHECK(contains(json::serialize(body.at("errors")), k.config_path() + ":"));
  CHECK(kpi_count(k) == 2);

  // PUT as Prometheus accepts; GET is not a reload.
  k.write_config(kpi_toml("c"));
  CHECK(http_request(k.http_port(), "PUT", "/-/reload").status == 200);
  CHECK(kpi_count(k) == 1);
  auto get = k.get("/-/reload");
  CHECK(get.status == 405);
  CHECK(get.header("allow") == "POST, PUT");

  // The same reload as SIGHUP: both keep working, one after the other.
  k.write_config(kpi_toml("a") + kpi_toml("b") + kpi_toml("c"));
  k.send_signal(SIGHUP);
  CHECK(eventually([&] { return kpi_count(k) == 3; }));
  CHECK(k.stop() == 0);
}

TEST_CASE("reload: without --config there is nothing to reload, and it says so", "[reload]") {
  Kpid k;
  k.start();
  auto r = k.post("/-/reload", "");
  CHECK(r.status == 422);
  CHECK(contains(r.body, "started without --config"));
}

TEST_CASE("reload: /-/reload needs the admin role", "[reload][auth]") {
  const std::string admin = "a-0123456789abcdef0123456789abcdef";
  const std::string reader = "r-0123456789abcdef0123456789abcdef";
  auto digest = [](const std::string& token) {
    auto r = run_command({KPID_BINARY, "--hash-token"}, token + "\n");
    REQUIRE(r.exit_code == 0);
    return r.out.substr(0, 64);
  };
  const std::string tokens = "[[auth.token]]\nname = \"ops\"\nroles = [\"admin\"]\nsha256 = \"" +
                             digest(admin) +
                             "\"\n[[auth.token]]\nname = \"grafana\"\nroles = [\"read\"]\n"
                             "sha256 = \"" +
                             digest(reader) + "\"\n";
  Kpid k({.config_toml = tokens});
  k.start();
  CHECK(k.post("/-/reload", "").status == 401);
  CHECK(k.post("/-/reload", "", {{"Authorization", "Bearer " + reader}}).status == 403);
  CHECK(k.post("/-/reload", "", {{"Authorization", "Bearer " + admin}}).status == 200);
  // kpictl sends its token; the audit log records who reloaded.
  TempDir dir;
  write_file(dir.file("token"), admin + "\n");
  CHECK(ctl(k, {"reload", "--token-file", dir.file("token")}).exit_code == 0);
  const std::string audit = read_file(k.data_dir() + "/audit.log");
  CHECK(std::regex_search(audit, std::regex(R"("token":"ops".*"target":"/-/reload")")));
}

TEST_CASE("reload: kpictl reload prints what was loaded, or the errors with exit 1",
          "[reload][kpictl]") {
  Kpid k({.config_toml = kpi_toml("a")});
  k.start();
  k.write_config("[line]\nerror_log_interval = \"1m\"\n" + kpi_toml("a") + kpi_toml("b"));
  auto ok = ctl(k, {"reload"});
  INFO(ok.out << ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(contains(ok.out, "reloaded " + k.config_path() + ": 2 KPIs, 2 alert rules\n"));
  CHECK(contains(ok.out, "changed, but kept until kpid restarts: line.error_log_interval\n"));

  auto j = ctl(k, {"reload", "--json"});
  CHECK(j.exit_code == 0);
  CHECK(parse(j.out).at("reloaded").as_bool());

  k.write_config(kpi_toml("a") + "bogus = 1\n");
  auto bad = ctl(k, {"reload"});
  INFO(bad.out << bad.err);
  CHECK(bad.exit_code == 1);
  CHECK(std::regex_search(
      bad.err, std::regex(std::regex_replace(k.config_path(), std::regex(R"([.^$|()\[\]{}*+?\\])"),
                                             R"(\$&)") +
                          R"(:\d+:\d+: [^\n]*bogus)")));
  CHECK(contains(bad.err, "kpictl: reload rejected: 1 error in " + k.config_path() +
                              "; the running configuration is kept\n"));
  CHECK(kpi_count(k) == 2);

  // kpid down: exit 3, naming the endpoint.
  k.stop();
  auto down = ctl(k, {"reload"});
  CHECK(down.exit_code == 3);
  CHECK(contains(down.err, "cannot reach kpid at http://127.0.0.1:" +
                               std::to_string(k.http_port()) + "/-/reload (POST): "));
}

TEST_CASE("reload: --pid-file holds the pid from ready until exit, and SIGHUP through it works",
          "[reload][lifecycle]") {
  TempDir dir;
  const std::string pid_file = dir.file("kpid.pid");
  Kpid k({.config_toml = kpi_toml("a"), .extra_args = {"--pid-file", pid_file}});
  k.start();  // returns once /readyz answers 200
  const std::string text = read_file(pid_file);
  CHECK(text == std::to_string(k.pid()) + "\n");
  CHECK_FALSE(std::filesystem::exists(pid_file + ".tmp"));

  // What a person does with it: kill -HUP "$(cat FILE)".
  k.write_config(kpi_toml("a") + kpi_toml("b"));
  const auto hup = run_command({"/bin/sh", "-c", "kill -HUP \"$(cat '" + pid_file + "')\""});
  CHECK(hup.exit_code == 0);
  CHECK(eventually([&] { return kpi_count(k) == 2; }));

  CHECK(k.stop() == 0);
  CHECK_FALSE(std::filesystem::exists(pid_file));

  // A pid file kpid cannot write stops the start, saying where.
  write_file(dir.file("bad.toml"), kpi_toml("a"));
  const std::string nowhere = dir.file("missing/dir/kpid.pid");
  const CommandResult r =
      run_command({KPID_BINARY, "--config", dir.file("bad.toml"), "--data-dir", dir.file("data"),
                   "--http-listen", "127.0.0.1:0", "--line-listen", "", "--pid-file", nowhere},
                  {}, 30s);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(contains(
      r.err, "cannot create the pid file " + nowhere + " (--pid-file): No such file or directory"));
}
