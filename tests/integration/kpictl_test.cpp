// kpictl against a running kpid: every command's table output, --json, exit codes, the server
// from --url or KPID_URL, color and the progress bar only on a terminal (a real pseudo-terminal
// through util-linux `script`) unless NO_COLOR, and that its changes reach the API.

#include <cmath>
#include <filesystem>
#include <regex>
#include <sstream>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

constexpr const char* kKpictl = KPICTL_BINARY;
const Headers kJson{{"Content-Type", "application/json"}};

// Two KPIs with alert rules and OKR policies (each the other's guardrail), one without.
std::string ctl_config() {
  auto kpi = [](const std::string& id, const std::string& name, const std::string& unit,
                const std::string& band, const std::string& related, const std::string& owner) {
    std::string t = "[[kpi]]\nid = \"" + id + "\"\nname = \"" + name + "\"\nowner = \"" + owner +
                    "\"\nunit = \"" + unit +
                    "\"\ndirection = \"lower_is_better\"\n"
                    "stale_after = \"1h\"\n[kpi.value]\nselector = '" +
                    id + "'\nover_time = \"last\"\nwindow = \"1h\"\n[kpi.band]\n" + band;
    if (!related.empty()) {
      t += "[[kpi.alert]]\ncondition = \"crit\"\n[kpi.okr]\nafter = \"0s\"\nrelated = [\"" +
           related + "\"]\n";
    }
    return t;
  };
  return kpi("lat", "Checkout latency", "ms", "target = 200\nwarn = 500\ncrit = 800\n", "err",
             "payments") +
         kpi("err", "Error rate", "%", "target = 0.5\nwarn = 1\ncrit = 5\n", "lat", "payments") +
         kpi("churn", "Monthly churn", "%", "warn = 3\ncrit = 4\n", "", "growth");
}

// Runs kpictl with KPID_URL pointing at `k` (and NO_COLOR unset), plus `args`.
CommandResult ctl(const Kpid& k, const std::vector<std::string>& args, std::string_view in = {}) {
  std::vector<std::string> argv = {"/usr/bin/env", "-u", "NO_COLOR",
                                   "KPID_URL=http://127.0.0.1:" + std::to_string(k.http_port()),
                                   kKpictl};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, in);
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command line with stdout and stderr on a pseudo-terminal (util-linux script).
CommandResult on_terminal(const std::string& command) {
  return run_command({"/usr/bin/script", "-q", "-e", "-c", command, "/dev/null"});
}

json::value parse_json(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  INFO(text);
  REQUIRE_FALSE(ec);
  return v;
}

bool has_ansi(std::string_view s) { return s.find("\x1b[") != std::string_view::npos; }

// lat breached (900 ms) and err healthy: an alert fires and an OKR draft opens.
std::string breach_lat(const Kpid& k) {
  write_value_now(k, "err", 0.3);
  write_value_now(k, "lat", 300);
  // The evaluator takes the newest value of a burst, so ok is recorded only if seen first.
  REQUIRE(eventually(
      [&] { return json_str(require_api_data(k.get("/api/v1/kpis/lat")), "status") == "ok"; }));
  write_value_now(k, "lat", 900);
  std::string alert_id;
  REQUIRE(eventually([&] {
    auto alerts = get_alerts(k, "state=firing&kpi=lat");
    if (alerts.empty()) return false;
    alert_id = json_str(alerts[0], "id");
    return true;
  }));
  return alert_id;
}

std::string draft_of(const Kpid& k, const std::string& kpi) {
  std::string id;
  REQUIRE(eventually([&] {
    auto r = k.get("/api/v1/okrs?state=draft&kpi=" + kpi);
    auto data = require_api_data(r);
    if (!data.is_array() || data.as_array().empty()) return false;
    id = json_str(data.as_array()[0], "id");
    return true;
  }));
  return id;
}

json::value okr_json(const Kpid& k, const std::string& id) {
  return require_api_data(k.get("/api/v1/okrs/" + id));
}

}  // namespace

TEST_CASE("kpictl: status shows every KPI with status, value, band, owner and a sparkline",
          "[kpictl]") {
  Kpid k({.config_toml = ctl_config()});
  k.start();
  // Four hours of latency history, so the 6-hour sparkline has shape.
  const int64_t now = now_ms();
  std::string lines;
  for (int i = 0; i < 240; ++i) {
    lines += "lat value=" + std::to_string(200 + (i % 60) * 5) + " " +
             std::to_string(now - (240 - i) * 60'000) + "\n";
  }
  k.write_ok(lines, "ms");
  write_value_now(k, "lat", 300);
  write_value_now(k, "err", 0.4);
  write_value_now(k, "churn", 3.5);
  REQUIRE(eventually([&] {
    auto r = ctl(k, {"status"});
    return contains(r.out, "warn ") && contains(r.out, "300 ms");
  }));

  auto r = ctl(k, {"status"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_FALSE(has_ansi(r.out));  // not a terminal: no color
  CHECK(std::regex_search(r.out,
                          std::regex(R"(^KPI\s+STATUS\s+VALUE\s+BAND\s+FOR\s+OWNER\s+LAST 6h)")));
  CHECK(std::regex_search(
      r.out,
      std::regex(
          R"(\nlat\s+ok\s+300 ms\s+warn >500, crit >800\s+\d+s\s+payments\s+\S*[▁▂▃▄▅▆▇█])")));
  CHECK(std::regex_search(r.out, std::regex(R"(\nerr\s+ok\s+0\.4 %\s+warn >1, crit >5)")));
  CHECK(std::regex_search(
      r.out, std::regex(R"(\nchurn\s+warn\s+3\.5 %\s+warn >3, crit >4\s+\d+s\s+growth)")));
  CHECK(contains(r.out, "3 KPIs: 1 warn, 2 ok"));

  SECTION("--owner filters, --json is the API's list") {
    auto owned = ctl(k, {"status", "--owner", "growth"});
    CHECK(contains(owned.out, "churn"));
    CHECK_FALSE(contains(owned.out, "\nlat "));
    auto j = ctl(k, {"status", "--json"});
    REQUIRE(j.exit_code == 0);
    auto v = parse_json(j.out);
    REQUIRE(v.is_array());
    REQUIRE(v.as_array().size() == 3);
    CHECK(json_str(v.as_array()[0], "id") == "lat");
    CHECK(json_str(v.as_array()[2], "status") == "warn");
  }
  SECTION("--fail-on: exit 4 when a KPI is at the level, 0 when none is") {
    CHECK(ctl(k, {"status", "--fail-on", "warn"}).exit_code == 4);
    CHECK(ctl(k, {"status", "--fail-on", "crit"}).exit_code == 0);
    CHECK(ctl(k, {"status", "--fail-on", "bad"}).exit_code == 2);
  }
  SECTION("color: on a terminal, off with NO_COLOR or --color=never, forced with always") {
    const std::string url = "http://127.0.0.1:" + std::to_string(k.http_port());
    const std::string cmd = shell_quote(kKpictl) + " --url " + url + " status";
    auto tty = on_terminal("env -u NO_COLOR " + cmd);
    INFO(tty.out);
    REQUIRE(tty.exit_code == 0);
    CHECK(contains(tty.out, "\x1b[33mwarn\x1b[0m"));  // churn's status in yellow
    CHECK(contains(tty.out, "\x1b[32mok\x1b[0m"));
    CHECK_FALSE(has_ansi(on_terminal("NO_COLOR=1 " + cmd).out));
    CHECK_FALSE(has_ansi(on_terminal("env -u NO_COLOR " + cmd + " --no-color").out));
    CHECK(has_ansi(ctl(k, {"status", "--color=always"}).out));
  }
  SECTION("--url overrides KPID_URL, and an unreachable kpid is exit 3") {
    const std::string nowhere = "http://127.0.0.1:" + std::to_string(free_port());
    auto down = ctl(k, {"status", "--url", nowhere});
    CHECK(down.exit_code == 3);
    // The whole URL, path included, what failed, and what to do about it.
    CHECK(contains(down.err, "kpictl: cannot reach kpid at " + nowhere +
                                 "/api/v1/kpis (GET): connect to 127.0.0.1:"));
    CHECK(contains(down.err,
                   "failed: Connection refused (is kpid running there? 'kpictl "
                   "wait' waits until it is ready)"));
    auto bad = ctl(k, {"status", "--url", "ftp://x"});
    CHECK(bad.exit_code == 2);
    CHECK(contains(bad.err, "unsupported scheme"));
  }
}

TEST_CASE("kpictl: kpi show gives band, status history and open alerts, or exit 1", "[kpictl]") {
  Kpid k({.config_toml = ctl_config()});
  k.start();
  const std::string alert_id = breach_lat(k);
  auto r = ctl(k, {"kpi", "show", "lat"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(std::regex_search(r.out, std::regex(R"(^Checkout latency \(lat\)  crit for \d+s)")));
  CHECK(contains(r.out, "band        target 200, warn >500, crit >800"));
  CHECK(contains(r.out, "owner       payments"));
  CHECK(contains(r.out, "query       sum(last_over_time(lat[1h]))"));
  CHECK(std::regex_search(r.out, std::regex(alert_id + R"( lat_crit\s+firing\s+critical)")));
  // Newest first: crit (900), ok (300).
  CHECK(std::regex_search(r.out, std::regex(R"(crit\s+900 ms\n\S+ \S+\s+ok\s+300 ms)")));

  auto j = ctl(k, {"kpi", "show", "lat", "--json"});
  auto v = parse_json(j.out);
  CHECK(json_str(v, "status") == "crit");
  REQUIRE(v.as_object()["alerts"].is_array());
  CHECK(json_str(v.as_object()["alerts"].as_array()[0], "id") == alert_id);

  auto missing = ctl(k, {"kpi", "show", "nope"});
  CHECK(missing.exit_code == 1);
  CHECK(contains(missing.err, "HTTP 404"));
  CHECK(ctl(k, {"kpi", "show"}).exit_code == 2);
}

TEST_CASE("kpictl: alerts lists and ack acknowledges through the API", "[kpictl]") {
  Kpid k({.config_toml = ctl_config()});
  k.start();
  const std::string id = breach_lat(k);

  auto list = ctl(k, {"alerts"});
  INFO(list.out << list.err);
  REQUIRE(list.exit_code == 0);
  CHECK(std::regex_search(
      list.out,
      std::regex("\\s" + id +
                 R"(\s+firing\s+critical\s+lat_crit\s+lat\s+900 ms\s+800\s+\d+s\s+-\s+-)")));
  auto firing = parse_json(ctl(k, {"alerts", "--state", "firing", "--json"}).out);
  REQUIRE(firing.as_array().size() == 1);
  CHECK(json_str(firing.as_array()[0], "id") == id);
  CHECK(parse_json(ctl(k, {"alerts", "--state", "resolved", "--json"}).out).as_array().empty());
  CHECK(ctl(k, {"alerts", "--state", "bogus"}).exit_code == 2);

  auto ack = ctl(k, {"ack", id, "-m", "on it", "--author", "alice"});
  INFO(ack.err);
  REQUIRE(ack.exit_code == 0);
  CHECK(contains(ack.out, "acknowledged alert " + id + " (lat_crit, KPI lat) as alice"));
  auto detail = get_alert_detail(k, id);
  REQUIRE(detail["acknowledged"].is_object());
  CHECK(json_str(detail["acknowledged"], "author") == "alice");
  CHECK(json_str(detail["acknowledged"], "comment") == "on it");
  CHECK(std::regex_search(ctl(k, {"alerts"}).out, std::regex(R"(\d+s\s+alice)")));

  auto again = ctl(k, {"ack", id});
  CHECK(again.exit_code == 1);
  CHECK(contains(again.err, "HTTP 409"));
  CHECK(ctl(k, {"ack", "999"}).exit_code == 1);
}

TEST_CASE("kpictl: silence add, list and rm", "[kpictl]") {
  Kpid k({.config_toml = ctl_config()});
  k.start();
  auto add = ctl(k, {"silence", "add", "kpi=lat", "severity=~crit.*", "--duration", "30m", "-m",
                     "deploy", "--author", "bob"});
  INFO(add.out << add.err);
  REQUIRE(add.exit_code == 0);
  CHECK(std::regex_search(
      add.out,
      std::regex(
          R"(^silence (\d+) \(kpi=lat severity=~crit\.\*\) active until .* \(in (29|30)m\))")));
  auto silences = require_api_data(k.get("/api/v1/silences"));
  REQUIRE(silences.as_array().size() == 1);
  const auto& s = silences.as_array()[0];
  const std::string id = json_str(s, "id");
  CHECK(json_str(s, "author") == "bob");
  CHECK(json_str(s, "comment") == "deploy");
  CHECK(json_str(s.as_object().at("matchers").as_array()[1], "op") == "=~");

  auto list = ctl(k, {"silence", "list"});
  CHECK(std::regex_search(
      list.out,
      std::regex("\\s" + id + R"(\s+active\s+kpi=lat severity=~crit\.\*\s+.*bob\s+deploy)")));

  auto rm = ctl(k, {"silence", "rm", id});
  REQUIRE(rm.exit_code == 0);
  CHECK(contains(rm.out, "silence " + id + " expired"));
  CHECK(json_str(require_api_data(k.get("/api/v1/silences")).as_array()[0], "state") == "expired");
  CHECK(contains(ctl(k, {"silence", "list"}).out, "no active or pending silences"));
  CHECK(contains(ctl(k, {"silence", "list", "--all"}).out, "expired"));

  CHECK(ctl(k, {"silence", "add", "=x"}).exit_code == 2);
  CHECK(ctl(k, {"silence", "add", "kpi!x"}).exit_code == 2);
  CHECK(ctl(k, {"silence", "add", "kpi=x", "--until", "2020-01-01T00:00:00Z"}).exit_code == 1);
  CHECK(ctl(k, {"silence", "rm", "999"}).exit_code == 1);
}

TEST_CASE("kpictl: okr list, show, edit, checkin, accept and dismiss", "[kpictl]") {
  Kpid k({.config_toml = ctl_config()});
  k.start();
  breach_lat(k);
  const std::string id = draft_of(k, "lat");

  auto list = ctl(k, {"okr", "list"});
  INFO(list.out << list.err);
  REQUIRE(list.exit_code == 0);
  CHECK(std::regex_search(
      list.out,
      std::regex(
          "\\s" + id +
          R"(\s+draft\s+\d\.\d\d\s+payments\s+lat\s+\d{4}-\d\d-\d\d \.\. \d{4}-\d\d-\d\d\s+Restore Checkout latency)")));
  CHECK(parse_json(ctl(k, {"okr", "list", "--state", "active", "--json"}).out).as_array().empty());
  const std::string status = ctl(k, {"status"}).out;
  CHECK(contains(status,
                 "\n1 alert firing (kpictl alerts)\n1 OKR draft to review (kpictl okr list)\n"));

  auto show = ctl(k, {"okr", "show", id});
  INFO(show.out);
  CHECK(contains(show.out, "Objective: Restore Checkout latency to its healthy range"));
  CHECK(std::regex_search(
      show.out,
      std::regex(
          R"(kr1\s+kpi\s+\[[#.]{10}\]\s+\d+%\s+900 ms\s+900 ms\s+200 ms\s+Reduce Checkout latency)")));
  CHECK(std::regex_search(show.out, std::regex(R"(kr2\s+guardrail\s+\[##########\]\s+100%)")));
  CHECK(contains(show.out, "draft opened from alert"));
  CHECK(contains(ctl(k, {"okr", "show", id, "--markdown"}).out, "## Objective: Restore Checkout"));

  auto edit = ctl(k, {"okr", "edit", id, "--objective", "Fast checkout", "--target", "kr1=250",
                      "--describe", "kr1=Checkout p95 under 250 ms", "--add-kr", "Ship the CDN",
                      "--add-target", "1", "--author", "carol"});
  INFO(edit.err);
  REQUIRE(edit.exit_code == 0);
  auto okr = okr_json(k, id);
  CHECK(json_str(okr, "objective") == "Fast checkout");
  const auto& krs = okr.as_object().at("key_results").as_array();
  REQUIRE(krs.size() == 3);
  CHECK(krs[0].as_object().at("target").to_number<double>() == 250);
  CHECK(json_str(krs[0], "description") == "Checkout p95 under 250 ms");
  CHECK(json_str(krs[2], "kind") == "manual");
  CHECK(json_str(okr.as_object().at("history").as_array().back(), "author") == "carol");
  CHECK(ctl(k, {"okr", "edit", id}).exit_code == 2);  // nothing to change
  CHECK(ctl(k, {"okr", "edit", id, "--target", "kr1"}).exit_code == 2);
  CHECK(ctl(k, {"okr", "edit", id, "--remove-kr", "kr9"}).exit_code == 1);

  auto checkin =
      ctl(k, {"okr", "checkin", id, "kr3", "0.5", "-m", "half way", "--confidence", "0.8"});
  INFO(checkin.err);
  REQUIRE(checkin.exit_code == 0);
  CHECK(contains(checkin.out, "checked in kr3 = 0.5 on OKR " + id));
  const json::value after_checkin = okr_json(k, id);
  const auto& manual = after_checkin.as_object().at("key_results").as_array()[2];
  REQUIRE(manual.as_object().at("checkins").as_array().size() == 1);
  CHECK(json_str(manual.as_object().at("checkins").as_array()[0], "note") == "half way");
  CHECK(ctl(k, {"okr", "checkin", id, "kr1", "1"}).exit_code == 1);  // a KPI key result
  CHECK(ctl(k, {"okr", "checkin", id, "kr3", "x"}).exit_code == 2);

  auto accept = ctl(k, {"okr", "accept", id});
  REQUIRE(accept.exit_code == 0);
  CHECK(contains(accept.out, "OKR " + id + " accepted: now active"));
  CHECK(json_str(okr_json(k, id), "state") == "active");
  CHECK(ctl(k, {"okr", "accept", id}).exit_code == 1);  // 409: not a draft any more

  // err's own breach opens a second draft, which is dismissed.
  write_value_now(k, "err", 9);
  const std::string second = draft_of(k, "err");
  auto dismiss = ctl(k, {"okr", "dismiss", second, "-m", "known issue"});
  REQUIRE(dismiss.exit_code == 0);
  auto dismissed = okr_json(k, second);
  CHECK(json_str(dismissed, "state") == "dismissed");
  CHECK(contains(json_str(dismissed.as_object().at("history").as_array().back(), "what"),
                 "known issue"));
  CHECK_FALSE(contains(ctl(k, {"okr", "list"}).out, "dismissed"));
  CHECK(contains(ctl(k, {"okr", "list", "--all"}).out, "dismissed"));
  CHECK(ctl(k, {"okr", "show", "999"}).exit_code == 1);
}

TEST_CASE("kpictl: query prints series with sparklines or every point", "[kpictl]") {
  Kpid k({.config_toml = ctl_config()});
  k.start();
  const int64_t now = now_ms();
  std::string lines;
  for (int i = 0; i < 30; ++i) {
    for (const char* host : {"a", "b"}) {
      lines += std::string("cpu,host=") + host + " usage=" + std::to_string(i) + " " +
               std::to_string(now - (30 - i) * 60'000) + "\n";
    }
  }
  k.write_ok(lines, "ms");
  auto r = ctl(k, {"query", "cpu_usage", "--since", "1h"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(std::regex_search(r.out,
                          std::regex(R"(cpu_usage\{host="a"\}\s+29\s+0\s+29\s+ *[▁▂▃▄▅▆▇█]+)")));
  CHECK(contains(r.out, "cpu_usage{host=\"b\"}"));

  auto table = ctl(k, {"query", "sum(cpu_usage)", "--since", "10m", "--step", "1m", "--table"});
  CHECK(
      std::regex_search(table.out, std::regex(R"(\{\}\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+58\n)")));

  auto j = parse_json(ctl(k, {"query", "cpu_usage", "--json"}).out);
  CHECK(json_str(j, "resultType") == "matrix");
  CHECK(j.as_object().at("result").as_array().size() == 2);

  auto bad = ctl(k, {"query", "sum(("});
  CHECK(bad.exit_code == 1);
  CHECK(contains(bad.err, "HTTP 400"));
  CHECK(contains(ctl(k, {"query", "nothing_here"}).out, "no data for nothing_here"));
}

TEST_CASE("kpictl: push writes a file or stdin in batches and names bad lines", "[kpictl]") {
  Kpid k({.config_toml = ctl_config()});
  k.start();
  const int64_t base = base_ms();
  std::string data;
  for (int i = 1; i <= 2500; ++i) {
    if (i == 1234) {
      data += "broken line\n";
    } else if (i == 2001) {
      data += "# a comment\n";
    } else {
      data += "push_test,n=" + std::to_string(i % 5) + " value=" + std::to_string(i) + " " +
              std::to_string(base + i * 1000) + "\n";
    }
  }
  TempDir dir;
  write_file(dir.file("in.lp"), data);

  auto r = ctl(k, {"push", dir.file("in.lp"), "--precision", "ms", "--batch", "500"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);  // a line was rejected
  CHECK(contains(r.err, dir.file("in.lp") + ":1234: "));
  CHECK(contains(r.out, "pushed 2,500 lines from " + dir.file("in.lp")));
  CHECK(contains(r.out, "2,498 stored, 1 rejected"));
  CHECK_FALSE(contains(r.err, "["));  // no progress bar off a terminal
  auto count = k.query_at_ms("sum(count_over_time(push_test[2h]))", base + 2600 * 1000);
  REQUIRE(count.size() == 1);
  CHECK(num(count[0].value) == 2498);

  SECTION("stdin, --json") {
    auto j = ctl(k, {"push", "--json", "--precision", "ms"},
                 "push_stdin value=1 " + std::to_string(base) + "\nbad\n");
    CHECK(j.exit_code == 1);
    auto v = parse_json(j.out);
    CHECK(v.as_object().at("stored").to_number<int>() == 1);
    CHECK(v.as_object().at("errors").as_array()[0].as_object().at("line").to_number<int>() == 2);
    CHECK(contains(j.err, "stdin:2: "));
    CHECK(ctl(k, {"push", "--precision", "ms"}, "ok_line value=1\n").exit_code == 0);
  }
  SECTION("a progress bar on a terminal") {
    auto tty = on_terminal(shell_quote(kKpictl) +
                           " --url http://127.0.0.1:" + std::to_string(k.http_port()) +
                           " push --batch 500 --precision ms " + shell_quote(dir.file("in.lp")));
    INFO(tty.out);
    CHECK(std::regex_search(tty.out, std::regex(R"(\[#{30}\] 100%  2,500 lines)")));
  }
  SECTION("an unreachable kpid stops the push with exit 3") {
    const std::string nowhere = "http://127.0.0.1:" + std::to_string(free_port());
    auto down = run_command({kKpictl, "--url", nowhere, "push", dir.file("in.lp")});
    CHECK(down.exit_code == 3);
    CHECK(contains(down.err, "push stopped at line 1"));
    CHECK(contains(down.err, "cannot reach kpid at " + nowhere + "/write?precision=ns (POST): "));
  }
  CHECK(ctl(k, {"push", dir.file("missing.lp")}).exit_code == 2);
}

TEST_CASE("kpictl: check-config runs kpid --check-config and passes its answer through",
          "[kpictl]") {
  TempDir dir;
  write_file(dir.file("good.toml"),
             "[storage]\ndata_dir = \"" + dir.file("data") + "\"\n" + ctl_config());
  write_file(dir.file("bad.toml"), "[http]\nlisten = \"nowhere\"\n");
  auto good = run_command({kKpictl, "check-config", dir.file("good.toml")});
  INFO(good.out << good.err);
  CHECK(good.exit_code == 0);
  CHECK(contains(good.out, "configuration OK: " + dir.file("good.toml") +
                               " (3 KPIs, 2 alert rules, 0 receivers"));
  auto bad = run_command({kKpictl, "check-config", dir.file("bad.toml")});
  CHECK(bad.exit_code == 1);
  CHECK(contains(bad.err, dir.file("bad.toml") + ":2:"));
  CHECK(contains(bad.err, "http.listen"));
  // Exactly what kpid says, exit code included.
  auto direct = run_command({KPID_BINARY, "--check-config", "--config", dir.file("bad.toml")});
  CHECK(direct.exit_code == bad.exit_code);
  CHECK(direct.out == bad.out);
  CHECK(direct.err == bad.err);
  auto j = run_command({kKpictl, "check-config", "--json", dir.file("bad.toml")});
  CHECK(j.exit_code == 1);
  auto v = parse_json(j.out);
  CHECK_FALSE(v.as_object().at("ok").as_bool());
  CHECK(json_str(v.as_object().at("errors").as_array()[0], "key") == "http.listen");
  CHECK(v.as_object().at("errors").as_array()[0].as_object().at("line").to_number<int>() == 2);
  auto dd = run_command(
      {kKpictl, "check-config", "--json", "--data-dir", dir.file("other"), dir.file("good.toml")});
  CHECK(dd.exit_code == 0);
  CHECK(parse_json(dd.out).as_object().at("ok").as_bool());

  SECTION("a kpictl without kpid beside it finds kpid on PATH, or says it found none") {
    // kpictl alone in a directory, as when copied to another machine.
    const std::string alone = dir.file("bin/kpictl");
    std::filesystem::create_directories(dir.file("bin"));
    std::filesystem::copy_file(kKpictl, alone);
    const std::string kpid_dir = std::filesystem::path(KPID_BINARY).parent_path().string();
    auto on_path = run_command({"/usr/bin/env", "PATH=/nonexistent:" + kpid_dir, alone,
                                "check-config", dir.file("good.toml")});
    INFO(on_path.out << on_path.err);
    CHECK(on_path.exit_code == 0);
    CHECK(contains(on_path.out, "configuration OK"));
    auto none = run_command(
        {"/usr/bin/env", "PATH=/nonexistent", alone, "check-config", dir.file("good.toml")});
    CHECK(none.exit_code == 3);
    CHECK(contains(none.err, "found no kpid executable beside kpictl (" + dir.file("bin/kpid") +
                                 ") nor on PATH"));
  }
}

TEST_CASE("kpictl: wait returns once kpid is ready and says what it waits for meanwhile",
          "[kpictl]") {
  // A port known before kpid starts, so kpictl can wait for it first.
  const uint16_t port = free_port();
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  Kpid k({.config_toml = ctl_config(),
          .extra_args = {"--http-listen", "127.0.0.1:" + std::to_string(port)},
          .pass_http_listen = false});
  TempDir dir;
  BackgroundProcess waiting("kpictl wait", {kKpictl, "--url", url, "wait", "--timeout", "60s"},
                            dir.file("wait.log"));
  REQUIRE(eventually([&] { return contains(waiting.log(), "waiting up to 1m"); }, 10s));
  k.start();
  REQUIRE(eventually([&] { return !waiting.running(); }, 10s));
  INFO(waiting.log());
  CHECK(waiting.exit_status() == 0);
  CHECK(contains(waiting.log(), "kpictl: waiting up to 1m for kpid at " + url +
                                    "/readyz: connect to 127.0.0.1:" + std::to_string(port) +
                                    " failed: Connection refused\n"));
  CHECK(std::regex_search(waiting.log(),
                          std::regex("kpid is ready at " + url + R"( \(after \d+\.\d s\)\n)")));

  // Ready already: at once, quietly.
  auto now = run_command({kKpictl, "--url", url, "wait"});
  CHECK(now.exit_code == 0);
  CHECK(now.out == "kpid is ready at " + url + "\n");
  CHECK(now.err.empty());
  auto j = run_command({kKpictl, "--url", url, "wait", "--json"});
  CHECK(parse_json(j.out).as_object().at("ready").as_bool());

  // Not kpid: no point waiting.
  auto other = run_command({kKpictl, "--url", url + "/nothing-here", "wait"});
  CHECK(other.exit_code == 1);
  CHECK(contains(other.err, "answered 404: is --url pointing at kpid?"));

  // Gone: exit 3 after --timeout, with the last reason.
  k.stop();
  const auto started = Clock::now();
  auto gone = run_command({kKpictl, "--url", url, "wait", "--timeout", "1s"});
  CHECK(Clock::now() - started < 5s);
  CHECK(gone.exit_code == 3);
  CHECK(contains(gone.err, "kpictl: kpid at " + url +
                               "/readyz is not ready after 1s (last: "
                               "connect to 127.0.0.1:" +
                               std::to_string(port) + " failed: Connection refused)\n"));
}

TEST_CASE("kpictl: usage errors exit 2 and help exits 0", "[kpictl]") {
  auto none = run_command({kKpictl});
  CHECK(none.exit_code == 2);
  CHECK(contains(none.err, "usage: kpictl COMMAND"));
  auto help = run_command({kKpictl, "--help"});
  CHECK(help.exit_code == 0);
  for (const char* c :
       {"status", "kpi show", "alerts", "ack", "silence add", "silence list", "silence rm",
        "okr list", "okr show", "okr accept", "okr edit", "okr dismiss", "okr checkin", "query",
        "push", "check-config", "wait", "reload"}) {
    CHECK(contains(help.out, std::string("\n  ") + c + " "));
  }
  auto sub = run_command({kKpictl, "silence", "add", "--help"});
  CHECK(sub.exit_code == 0);
  CHECK(contains(sub.out, "--duration DURATION"));
  CHECK(run_command({kKpictl, "frobnicate"}).exit_code == 2);
  CHECK(contains(run_command({kKpictl, "okr"}).err, "needs a subcommand"));
  CHECK(run_command({kKpictl, "status", "--bogus"}).exit_code == 2);
  CHECK(run_command({kKpictl, "status", "--since"}).exit_code == 2);
  CHECK(run_command({kKpictl, "ack"}).exit_code == 2);
  CHECK(run_command({kKpictl, "--version"}).exit_code == 0);
}
