// Command line and config file: --check-config, --version, --help, flag precedence, error
// reporting with file/line/key, and SIGHUP reload.

#include <signal.h>

#include <filesystem>
#include <regex>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;

namespace {

CommandResult kpid(const std::vector<std::string>& args) {
  std::vector<std::string> argv{kKpidBinary};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, {}, 15s);
}

std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

std::string regex_escape(std::string_view s) {
  static const std::string special = R"(\^$.|?*+()[]{})";
  std::string out;
  for (char c : s) {
    if (special.find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

// True when some line of `err` reads "FILE:LINE:COL: KEY: message".
bool has_error_line(const std::string& err, const std::string& file, int line,
                    const std::string& key) {
  const std::regex re("(^|\n)" + regex_escape(file) + ":" + std::to_string(line) +
                      ":[0-9]+: " + regex_escape(key) + ": [^\n]+");
  return std::regex_search(err, re);
}

const char* kValidConfig = R"([storage]
data_dir = "DATA"
sync = false             # true: fsync every write batch
[http]
listen = "127.0.0.1:9470"
threads = 2
max_body_bytes = "25MiB" # integer bytes or string with KiB/MiB/GiB/KB/MB/GB/B
request_timeout = "30s"
idle_timeout = "2m"
shutdown_timeout = "10s"
[line]
listen = "127.0.0.1:9471" # "" disables the TCP listener
max_line_bytes = "64KiB"
error_log_interval = "10s"
[query]
lookback_delta = "5m"
max_points_per_series = 11000
[log]
level = "info"
)";

std::string with_data_dir(std::string text, const std::string& dir) {
  const auto pos = text.find("DATA");
  if (pos != std::string::npos) text.replace(pos, 4, dir);
  return text;
}

}  // namespace

TEST_CASE("config: --version and --help", "[config]") {
  const auto v = kpid({"--version"});
  INFO(describe(v));
  CHECK(v.exit_code == 0);
  CHECK(std::regex_search(v.out, std::regex(R"(^kpid [0-9][^\s]*\s*$)")));

  const auto h = kpid({"--help"});
  INFO(describe(h));
  CHECK(h.exit_code == 0);
  const std::string help = h.out + h.err;
  for (const char* flag : {"--config", "--data-dir", "--http-listen", "--line-listen",
                           "--log-level", "--check-config", "--version", "--pid-file", "--json"}) {
    INFO("flag " << flag);
    CHECK(contains(help, flag));
  }

  const auto bad = kpid({"--no-such-flag"});
  INFO(describe(bad));
  CHECK(bad.exit_code != 0);
  const auto json_alone = kpid({"--json"});
  CHECK(json_alone.exit_code == 2);
  CHECK(contains(json_alone.err, "--json goes with --check-config"));
  CHECK(kpid({"--pid-file", ""}).exit_code == 2);
}

TEST_CASE("config: --check-config accepts the documented example", "[config]") {
  TempDir dir;
  const std::string file = dir.file("kpid.toml");
  write_file(file, with_data_dir(kValidConfig, dir.file("data")));
  const auto r = kpid({"--config", file, "--check-config"});
  INFO(describe(r));
  CHECK(r.exit_code == 0);

  // Other valid spellings of sizes and durations.
  write_file(file,
             "[http]\nmax_body_bytes = 1048576\nrequest_timeout = \"1500ms\"\n"
             "idle_timeout = \"1h\"\n[line]\nmax_line_bytes = \"1MB\"\nlisten = \"\"\n"
             "[query]\nlookback_delta = \"30s\"\n");
  const auto r2 = kpid({"--config", file, "--check-config", "--data-dir", dir.file("d")});
  INFO(describe(r2));
  CHECK(r2.exit_code == 0);

  for (const char* size : {"\"512B\"", "\"2KB\"", "\"3GiB\"", "\"1GB\"", "\"4KiB\"", "2048"}) {
    write_file(file, std::string("[http]\nmax_body_bytes = ") + size + "\n");
    const auto r3 = kpid({"--config", file, "--check-config", "--data-dir", dir.file("d")});
    INFO("max_body_bytes = " << size << "\n" << describe(r3));
    CHECK(r3.exit_code == 0);
  }
}

TEST_CASE("config: --check-config reports every error with file, line and key", "[config]") {
  TempDir dir;
  const std::string file = dir.file("kpid.toml");

  SECTION("unknown key, wrong type and bad value in one file") {
    write_file(file,
               "# three errors\n"  // 1
               "[storage]\n"       // 2
               "data_dir = \"" +
                   dir.file("data") +
                   "\"\n"                                 // 3
                   "[http]\n"                             // 4
                   "bogus_option = true\n"                // 5 unknown key
                   "threads = \"four\"\n"                 // 6 wrong type
                   "[line]\n"                             // 7
                   "max_line_bytes = \"12 parsecs\"\n");  // 8 bad value
    const auto r = kpid({"--config", file, "--check-config"});
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    CHECK(has_error_line(r.err, file, 5, "http.bogus_option"));
    CHECK(has_error_line(r.err, file, 6, "http.threads"));
    CHECK(has_error_line(r.err, file, 8, "line.max_line_bytes"));
  }
  SECTION("more bad values") {
    write_file(file,
               "[http]\n"                             // 1
               "listen = \"not-an-address\"\n"        // 2
               "request_timeout = \"forever\"\n"      // 3
               "[query]\n"                            // 4
               "max_points_per_series = -1\n"         // 5
               "lookback_delta = \"5 fortnights\"\n"  // 6
               "[log]\n"                              // 7
               "level = \"loud\"\n"                   // 8
               "[nosuchsection]\n"                    // 9
               "x = 1\n");                            // 10
    const auto r = kpid({"--config", file, "--check-config", "--data-dir", dir.file("d")});
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    CHECK(has_error_line(r.err, file, 2, "http.listen"));
    CHECK(has_error_line(r.err, file, 3, "http.request_timeout"));
    CHECK(has_error_line(r.err, file, 5, "query.max_points_per_series"));
    CHECK(has_error_line(r.err, file, 6, "query.lookback_delta"));
    CHECK(has_error_line(r.err, file, 8, "log.level"));
    CHECK((contains(r.err, file + ":9:") || contains(r.err, file + ":10:")));
  }
  SECTION("TOML syntax error names file and line") {
    write_file(file, "[http]\nthreads = 2\nmax_body_bytes = \"1KiB\n");
    const auto r = kpid({"--config", file, "--check-config", "--data-dir", dir.file("d")});
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, file + ":3:"));
  }
  SECTION("missing config file") {
    const auto r = kpid({"--config", dir.file("nope.toml"), "--check-config"});
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, dir.file("nope.toml")));
  }
  SECTION("bad flag values") {
    const auto r = kpid({"--check-config", "--data-dir", dir.file("d"), "--log-level", "loud"});
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "loud"));
    const auto r2 = kpid(
        {"--check-config", "--data-dir", dir.file("d"), "--http-listen", "127.0.0.1:notaport"});
    INFO(describe(r2));
    CHECK(r2.exit_code == 1);
    CHECK(contains(r2.err, "notaport"));
  }
  SECTION("a daemon started with a bad config exits non-zero and says why") {
    write_file(file, "[http]\nbogus_option = true\n");
    const auto r = kpid({"--config", file, "--data-dir", dir.file("d"), "--http-listen",
                         "127.0.0.1:0", "--line-listen", "127.0.0.1:0"});
    INFO(describe(r));
    CHECK(r.exit_code != 0);
    CHECK(r.exit_code != -1);  // did not hang
    CHECK(has_error_line(r.err, file, 2, "http.bogus_option"));
  }
}

TEST_CASE("config: flags override the file, and an empty line.listen disables TCP", "[config]") {
  SECTION("flags win over listen addresses and data_dir in the file") {
    // Port 1 is privileged: binding it would fail, so kpid must use the flags' port 0.
    Kpid k({.config_toml = "[storage]\ndata_dir = \"/proc/kpid-not-writable\"\n"
                           "[http]\nlisten = \"127.0.0.1:1\"\n[line]\nlisten = \"127.0.0.1:1\"\n"});
    k.start();
    CHECK(k.http_port() != 1);
    CHECK(k.line_port() != 1);
    k.write_ok("flag value=1 " + std::to_string(base_ms()), "ms");
    CHECK(k.stop() == 0);
  }
  SECTION("line.listen = \"\" disables the TCP listener") {
    Kpid k({.config_toml = "[line]\nlisten = \"\"\n",
            .pass_line_listen = false,
            .expect_line_listener = false});
    k.start();
    CHECK_FALSE(contains(k.log(), "line protocol listening on"));
    CHECK(k.get("/readyz").status == 200);
  }
  SECTION("--log-level flag is accepted at startup") {
    Kpid k({.config_toml = "[log]\nlevel = \"info\"\n", .extra_args = {"--log-level", "debug"}});
    k.start();
    CHECK(k.get("/healthz").status == 200);
  }
}

TEST_CASE("config: SIGHUP rejects a bad config and applies a good one (max_body_bytes)",
          "[config][reload]") {
  Kpid k({.config_toml = "[http]\nmax_body_bytes = \"1KiB\"\n"});
  k.start();
  const int64_t t = base_ms();
  std::string big;
  for (int i = 0; big.size() < 2000; ++i)
    big += "hup,host=h" + std::to_string(i) + " value=1 " + std::to_string(t) + "\n";

  REQUIRE(k.write(big, "ms").status == 413);

  // Bad config: rejected, logged, old settings kept.
  const size_t log_size = k.log().size();
  k.write_config("[http]\nmax_body_bytes = \"lots\"\n");
  k.send_signal(SIGHUP);
  const bool logged = eventually(
      [&] {
        const std::string l = k.log();
        return l.size() > log_size && icontains(l.substr(log_size), "error");
      },
      5s);
  INFO("log after bad reload:\n" << k.log_tail());
  CHECK(logged);
  CHECK(contains(k.log().substr(log_size), "max_body_bytes"));
  REQUIRE(k.running());
  CHECK(k.get("/healthz").status == 200);
  CHECK(k.write(big, "ms").status == 413);
  k.write_ok("hup_small value=1 " + std::to_string(t), "ms");

  // Good config: applied.
  k.write_config("[http]\nmax_body_bytes = \"1MiB\"\n");
  k.send_signal(SIGHUP);
  int last = 0;
  const bool applied = eventually(
      [&] {
        last = k.write(big, "ms").status;
        return last == 204;
      },
      5s, 50ms);
  INFO("last status " << last);
  CHECK(applied);
  CHECK(k.query_at_ms("hup", t).size() > 10);
  REQUIRE(k.running());
  CHECK(k.stop() == 0);
}

TEST_CASE("config: SIGHUP applies line.max_line_bytes and query.lookback_delta",
          "[config][reload]") {
  Kpid k({.config_toml = "[line]\nmax_line_bytes = \"64KiB\"\n"});
  k.start();
  const int64_t t = base_ms();
  auto long_line = [&](int i) {
    return "hupl,pad=" + std::string(2000, 'p') + " value=" + std::to_string(i) + " " +
           std::to_string((t + i) * 1'000'000) + "\n";
  };
  TcpClient c(k.line_port());
  c.send(long_line(0));
  REQUIRE(eventually([&] { return !k.query_at_ms("hupl", t).empty(); }));
  // 2 minutes after the sample: inside the default 5m lookback.
  require_value_at(k, "hupl", t + 120'000, 0);

  k.write_config("[line]\nmax_line_bytes = \"1KiB\"\n[query]\nlookback_delta = \"1m\"\n");
  k.send_signal(SIGHUP);
  int i = 1;
  const bool applied = eventually(
      [&] {
        c.send(long_line(i++));
        return metric_value(k.metrics(), "kpid_ingest_lines_rejected_total",
                            {{"protocol", "tcp"}, {"reason", "line_too_long"}})
                   .value_or(0) >= 1;
      },
      5s, 50ms);
  INFO("log:\n" << k.log_tail());
  CHECK(applied);
  CHECK(c.peer_open());
  c.send("hupl_short value=1 " + std::to_string(t * 1'000'000) + "\n");
  CHECK(eventually([&] { return !k.query_at_ms("hupl_short", t).empty(); }));
  // The new lookback applies to queries.
  CHECK(eventually([&] { return k.query_at_ms("hupl", t + 120'000).empty(); }, 5s));
}

TEST_CASE("config: SIGHUP applies log.level", "[config][reload]") {
  Kpid k({.config_toml = "[log]\nlevel = \"info\"\n[http]\nmax_body_bytes = \"1KiB\"\n"});
  k.start();
  const int64_t t = base_ms();
  std::string big;
  for (int i = 0; big.size() < 2000; ++i)
    big += "lvl,host=h" + std::to_string(i) + " value=1 " + std::to_string(t) + "\n";
  REQUIRE(k.write(big, "ms").status == 413);
  const std::string start_log = k.log();

  // Raise the level to warn and the body limit together; once the limit is in effect the reload
  // happened, and its own info-level messages must not have been logged.
  k.write_config("[log]\nlevel = \"warn\"\n[http]\nmax_body_bytes = \"1MiB\"\n");
  k.send_signal(SIGHUP);
  REQUIRE(eventually([&] { return k.write(big, "ms").status == 204; }, 5s, 50ms));
  std::this_thread::sleep_for(100ms);
  const std::string after_warn = k.log();
  INFO("log:\n" << k.log_tail());
  CHECK_FALSE(contains(after_warn.substr(start_log.size()), "[info]"));

  // Back to info: the next reload is logged at info level again.
  k.write_config("[log]\nlevel = \"info\"\n[http]\nmax_body_bytes = \"1KiB\"\n");
  k.send_signal(SIGHUP);
  REQUIRE(eventually([&] { return k.write(big, "ms").status == 413; }, 5s, 50ms));
  CHECK(eventually([&] { return contains(k.log().substr(after_warn.size()), "[info]"); }, 5s));
}

TEST_CASE("config: --check-config imports OpenSLO files and names their errors", "[config]") {
  TempDir dir;
  const std::string file = dir.file("kpid.toml");
  const std::string yaml = dir.file("checkout.yaml");
  write_file(file, "openslo = [\"*.yaml\"]\n[storage]\ndata_dir = \"" + dir.file("data") + "\"\n");
  std::filesystem::copy_file(KPID_SOURCE_DIR "/config/openslo/checkout.yaml", yaml);
  const auto ok = kpid({"--config", file, "--check-config"});
  INFO(describe(ok));
  CHECK(ok.exit_code == 0);

  write_file(yaml,
             "apiVersion: openslo/v1\n"  // 1
             "kind: SLO\n"               // 2
             "metadata:\n"               // 3
             "  name: broken\n"          // 4
             "spec:\n"                   // 5
             "  budgetingMethod: Occurrences\n"
             "  timeWindow: [{duration: 2w, isRolling: false}]\n"  // 7: calendar 2w
             "  objectives: [{target: 99.9}]\n"                    // 8: not a fraction
             "  indicatorRef: nowhere\n");                         // 9
  const auto bad = kpid({"--config", file, "--check-config"});
  INFO(describe(bad));
  CHECK(bad.exit_code == 1);
  CHECK(has_error_line(bad.err, yaml, 7, "SLO broken: spec.timeWindow[0].duration"));
  CHECK(has_error_line(bad.err, yaml, 8, "SLO broken: spec.objectives[0].target"));
  CHECK(has_error_line(bad.err, yaml, 9, "SLO broken: spec.indicatorRef"));
}
