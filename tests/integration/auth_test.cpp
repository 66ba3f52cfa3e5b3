// Access control end to end: bearer tokens with roles from the config and a token file (kept as
// SHA-256 digests), 401 and 403 answers, open paths, the audit log of admin actions, token
// reload on SIGHUP, refusing to listen beyond loopback without tokens, kpid --hash-token, and
// kpictl sending its token.

#include <csignal>
#include <regex>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

constexpr const char* kKpictl = KPICTL_BINARY;

// Tokens as people would make them (openssl rand -hex 32); only their digests go in config.
const std::string kWriter = "w-0123456789abcdef0123456789abcdef";
const std::string kReader = "r-0123456789abcdef0123456789abcdef";
const std::string kAdmin = "a-0123456789abcdef0123456789abcdef";
const std::string kOps = "o-0123456789abcdef0123456789abcdef";

std::string digest(const std::string& token) {
  auto r = run_command({KPID_BINARY, "--hash-token"}, token + "\n");
  REQUIRE(r.exit_code == 0);
  std::string hex = r.out;
  while (!hex.empty() && hex.back() == '\n') hex.pop_back();
  REQUIRE(hex.size() == 64);
  return hex;
}

Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

std::string token_toml(const std::string& name, const std::string& roles,
                       const std::string& token) {
  return "[[auth.token]]\nname = \"" + name + "\"\nroles = [" + roles + "]\nsha256 = \"" +
         digest(token) + "\"\n";
}

// A KPI with a crit rule (so there is an alert to acknowledge), tokens inline and in a file.
std::string auth_config(const TempDir& dir, const std::string& extra_auth = "") {
  write_file(dir.file("tokens"), "# name roles sha256\nops read,admin " + digest(kOps) + "\n");
  return "[auth]\ntokens_file = \"" + dir.file("tokens") + "\"\n" + extra_auth +
         token_toml("ingest", "\"write\"", kWriter) + token_toml("grafana", "\"read\"", kReader) +
         token_toml("oncall", "\"admin\"", kAdmin) +
         "[[kpi]]\nid = \"lat\"\nname = \"Latency\"\nowner = \"payments\"\nunit = \"ms\"\n"
         "direction = \"lower_is_better\"\nstale_after = \"1h\"\n[kpi.value]\nselector = 'lat'\n"
         "over_time = \"last\"\nwindow = \"1h\"\n[kpi.band]\nwarn = 500\ncrit = 800\n"
         "[[kpi.alert]]\ncondition = \"crit\"\n";
}

std::string sample_now(double v) {
  return "lat value=" + std::to_string(v) + " " + std::to_string(unique_now_ms());
}

std::vector<json::object> audit_lines(const std::string& path) {
  std::vector<json::object> out;
  std::string text = read_file(path);
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    boost::system::error_code ec;
    auto v = json::parse(std::string_view(text).substr(start, nl - start), ec);
    REQUIRE_FALSE(ec);
    out.push_back(v.as_object());
    start = nl + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("auth: tokens with roles guard writing, reading and admin actions", "[auth]") {
  TempDir dir;
  Kpid k({.config_toml = auth_config(dir)});
  k.start();

  // Writing needs write: none is 401 with a Bearer challenge, read is 403.
  auto none = k.post("/write?precision=ms", sample_now(300));
  CHECK(none.status == 401);
  CHECK(none.header("www-authenticate") == "Bearer realm=\"kpid\"");
  CHECK(contains(none.body, "\"errorType\":\"unauthorized\""));
  CHECK(k.post("/write?precision=ms", sample_now(300), bearer("nope-" + kWriter)).status == 401);
  auto forbidden = k.post("/write?precision=ms", sample_now(300), bearer(kReader));
  CHECK(forbidden.status == 403);
  CHECK(contains(forbidden.body, "token \\\"grafana\\\" lacks the write role"));
  CHECK(k.post("/write?precision=ms", sample_now(300), bearer(kWriter)).status == 204);
  // InfluxDB 2.x clients send "Token <token>".
  CHECK(k.post("/api/v2/write?org=o&bucket=b&precision=ms", sample_now(310),
               {{"Authorization", "Token " + kWriter}})
            .status == 204);

  // Reading needs read (admin includes it); write alone does not read.
  CHECK(k.get("/api/v1/query?query=lat").status == 401);
  CHECK(k.get("/api/v1/query?query=lat", bearer(kWriter)).status == 403);
  CHECK(k.get("/api/v1/query?query=lat", bearer(kReader)).status == 200);
  CHECK(k.get("/api/v1/kpis", bearer(kAdmin)).status == 200);
  CHECK(k.get("/api/v1/kpis", bearer(kOps)).status == 200);  // from the token file

  // Health, metrics and the dashboard's page stay open.
  CHECK(k.get("/healthz").status == 200);
  CHECK(k.get("/readyz").status == 200);
  CHECK(k.get("/metrics").status == 200);
  CHECK(k.get("/").status == 200);

  // Admin actions: acknowledging, silencing.
  CHECK(k.post("/write?precision=ms", sample_now(900), bearer(kWriter)).status == 204);
  std::string alert_id;
  REQUIRE(eventually([&] {
    auto r = k.get("/api/v1/alerts?state=firing", bearer(kReader));
    auto data = require_api_data(r);
    if (data.as_array().empty()) return false;
    alert_id = json_str(data.as_array()[0], "id");
    return true;
  }));
  const std::string ack = "/api/v1/alerts/" + alert_id + "/ack";
  const std::string body = R"({"author":"alice","comment":"on it"})";
  const Headers json_type{{"Content-Type", "application/json"}};
  CHECK(k.post(ack, body, json_type).status == 401);
  Headers reader = bearer(kReader);
  reader.push_back(json_type[0]);
  CHECK(k.post(ack, body, reader).status == 403);
  Headers admin = bearer(kAdmin);
  admin.push_back(json_type[0]);
  CHECK(k.post(ack, body, admin).status == 200);
  const std::string silence =
      R"({"matchers":[{"name":"kpi","op":"=","value":"lat"}],"duration":"1h","author":"bob","comment":"x"})";
  CHECK(k.post("/api/v1/silences", silence, reader).status == 403);
  CHECK(k.post("/api/v1/silences", silence, admin).status == 200);
  CHECK(k.get("/api/v1/silences", bearer(kReader)).status == 200);  // listing is reading
  CHECK(k.post("/api/v1/admin/compact", "", bearer(kReader)).status == 403);

  // The audit log: every admin attempt, who (token), what, when, how it ended, the author.
  const auto lines = audit_lines(k.data_dir() + "/audit.log");
  INFO(read_file(k.data_dir() + "/audit.log"));
  REQUIRE(lines.size() == 6);
  CHECK(json_str(lines[0], "token") == "-");
  CHECK(lines[0].at("status").to_number<int>() == 401);
  CHECK(json_str(lines[1], "token") == "grafana");
  CHECK(lines[1].at("status").to_number<int>() == 403);
  CHECK(json_str(lines[2], "token") == "oncall");
  CHECK(json_str(lines[2], "method") == "POST");
  CHECK(json_str(lines[2], "target") == ack);
  CHECK(json_str(lines[2], "author") == "alice");
  CHECK(lines[2].at("status").to_number<int>() == 200);
  CHECK(std::regex_match(json_str(lines[2], "time"),
                         std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
  CHECK(json_str(lines[4], "author") == "bob");
  CHECK(json_str(lines[5], "target") == "/api/v1/admin/compact");
}

TEST_CASE("auth: open paths are configurable and tokens reload on SIGHUP", "[auth]") {
  TempDir dir;
  // The harness waits on /readyz; /metrics now needs a read token.
  Kpid k({.config_toml = auth_config(dir, "open = [\"/healthz\", \"/readyz\"]\n")});
  k.start();
  CHECK(k.get("/healthz").status == 200);
  CHECK(k.get("/metrics").status == 401);
  CHECK(k.get("/metrics", bearer(kReader)).status == 200);

  const std::string fresh = "n-0123456789abcdef0123456789abcdef";
  CHECK(k.get("/api/v1/kpis", bearer(fresh)).status == 401);
  write_file(dir.file("tokens"), "newcomer read " + digest(fresh) + "\n");
  k.send_signal(SIGHUP);
  CHECK(eventually([&] { return k.get("/api/v1/kpis", bearer(fresh)).status == 200; }));
  CHECK(k.get("/api/v1/kpis", bearer(kOps)).status == 401);  // gone from the file

  // A broken token file is rejected and the running tokens are kept.
  write_file(dir.file("tokens"), "newcomer root " + digest(fresh) + "\n");
  k.send_signal(SIGHUP);
  CHECK(eventually([&] { return contains(k.log(), "unknown role \"root\""); }));
  CHECK(k.get("/api/v1/kpis", bearer(fresh)).status == 200);
}

TEST_CASE("auth: kpid will not listen beyond loopback without tokens unless told to", "[auth]") {
  TempDir dir;
  auto check = [&](const std::string& toml) {
    write_file(dir.file("kpid.toml"),
               "[storage]\ndata_dir = \"" + dir.file("data") + "\"\n" + toml);
    return run_command({KPID_BINARY, "--check-config", "--config", dir.file("kpid.toml")});
  };
  auto open = check("[http]\nlisten = \"0.0.0.0:9470\"\n");
  CHECK(open.exit_code == 1);
  CHECK(contains(open.err,
                 "http.listen: listens on 0.0.0.0:9470, beyond loopback, without any token"));
  CHECK(check("[http]\nlisten = \"0.0.0.0:9470\"\n" + token_toml("x", "\"read\"", kReader) +
              "[line]\nlisten = \"127.0.0.1:9471\"\n")
            .exit_code == 0);
  auto line = check(token_toml("x", "\"read\"", kReader) + "[line]\nlisten = \"0.0.0.0:9471\"\n");
  CHECK(line.exit_code == 1);
  CHECK(contains(line.err,
                 "line.listen: listens on 0.0.0.0:9471, beyond loopback, but the TCP line protocol "
                 "carries no token"));
  CHECK(check("[auth]\nallow_unauthenticated = true\n[http]\nlisten = \"0.0.0.0:9470\"\n"
              "[line]\nlisten = \"0.0.0.0:9471\"\n")
            .exit_code == 0);
  // Flags count as much as the file: nothing is bound by --check-config.
  auto flag = run_command({KPID_BINARY, "--check-config", "--http-listen", "0.0.0.0:0"});
  CHECK(flag.exit_code == 1);

  // Token mistakes name the file, line and key.
  write_file(dir.file("tokens"), "ok read " + std::string(64, 'a') + "\nbad admin xyz\n");
  auto bad = check(
      "[auth]\ntokens_file = \"tokens\"\n[[auth.token]]\nname = \"t\"\n"
      "roles = [\"root\"]\nsha256 = \"abc\"\n");
  CHECK(bad.exit_code == 1);
  CHECK(contains(bad.err, dir.file("tokens") + ":2:"));
  CHECK(contains(bad.err, "auth.token.t.roles: unknown role \"root\""));
  CHECK(contains(bad.err, "auth.token.t.sha256: expected the token's SHA-256"));
}

TEST_CASE("auth: --hash-token prints the SHA-256 and kpictl sends its token", "[auth]") {
  auto hashed = run_command({KPID_BINARY, "--hash-token"}, "abcdefghijklmnopqrstuvwxyz\n");
  CHECK(hashed.exit_code == 0);
  // sha256("abcdefghijklmnopqrstuvwxyz")
  CHECK(hashed.out == "71c480df93d6ae2f1efad1447c66c9525e316218cf51fc8d9ed832f2daf18b73\n");
  CHECK(run_command({KPID_BINARY, "--hash-token"}, "short\n").exit_code == 1);

  TempDir dir;
  Kpid k({.config_toml = auth_config(dir)});
  k.start();
  const std::string url = "http://127.0.0.1:" + std::to_string(k.http_port());
  auto without = run_command({"/usr/bin/env", "-u", "KPID_TOKEN", kKpictl, "--url", url, "status"});
  CHECK(without.exit_code == 1);
  CHECK(contains(without.err, "HTTP 401"));
  CHECK(contains(without.err, "KPID_TOKEN"));
  auto with_env =
      run_command({"/usr/bin/env", "KPID_TOKEN=" + kReader, kKpictl, "--url", url, "status"});
  INFO(with_env.err);
  CHECK(with_env.exit_code == 0);
  CHECK(contains(with_env.out, "lat"));
  write_file(dir.file("token"), kWriter + "\n");
  auto push = run_command({"/usr/bin/env", "-u", "KPID_TOKEN", kKpictl, "--url", url,
                           "--token-file", dir.file("token"), "push"},
                          "lat value=1\n");
  CHECK(push.exit_code == 0);
  auto denied = run_command({"/usr/bin/env", "-u", "KPID_TOKEN", kKpictl, "--url", url,
                             "--token-file", dir.file("token"), "alerts"});
  CHECK(denied.exit_code == 1);
  CHECK(contains(denied.err, "HTTP 403"));
}
