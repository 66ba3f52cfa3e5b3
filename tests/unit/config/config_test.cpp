#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "kpid/config/config.h"

using namespace kpid;
using namespace kpid::config;

namespace {

LoadResult parse(const std::string& text, const Overrides& overrides = {}) {
  return parse_config(text, "kpid.toml", overrides);
}

bool has_error(const LoadResult& r, const std::string& key, int line, const std::string& part) {
  for (const auto& e : r.errors) {
    if (e.key == key && e.line == line && e.message.find(part) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("an empty config gives the documented defaults") {
  auto r = parse("");
  REQUIRE(r.ok());
  CHECK(r.config.storage.data_dir == "./data");
  CHECK_FALSE(r.config.storage.sync);
  CHECK(r.config.http.listen == "127.0.0.1:9470");
  CHECK(r.config.http.max_body_bytes == 25u * 1024 * 1024);
  CHECK(r.config.line.listen == "127.0.0.1:9471");
  CHECK(r.config.line.max_line_bytes == 64u * 1024);
  CHECK(r.config.query.lookback_delta == 300'000);
  CHECK(r.config.query.max_points_per_series == 11'000);
  CHECK(r.config.query.timeout == 120'000);
  CHECK(r.config.query.max_samples == 50'000'000);
  CHECK(r.config.query.max_concurrency == 0);  // one worker per core
  CHECK(r.config.query.max_queued == 64);
  CHECK(r.config.query.worker_priority == query::WorkerPriority::kIdle);
  CHECK(r.config.query.default_subquery_step == 60'000);
  CHECK(r.config.log.level == "info");
}

TEST_CASE("every key of a full config is read") {
  auto r = parse(R"(
[storage]
data_dir = "/var/lib/kpid"
sync = true
[http]
listen = "[::1]:8080"
threads = 4
max_body_bytes = 1048576
request_timeout = "5s"
idle_timeout = "1m"
shutdown_timeout = "3s"
[line]
listen = ""
max_line_bytes = "1KiB"
error_log_interval = "1m"
[query]
lookback_delta = "10m"
max_points_per_series = 500
timeout = "30s"
max_samples = 1000000
max_concurrency = 3
max_queued = 10
worker_priority = "low"
default_subquery_step = "30s"
[log]
level = "debug"
)");
  INFO((r.errors.empty() ? "" : r.errors[0].to_string()));
  REQUIRE(r.ok());
  CHECK(r.config.storage.data_dir == "/var/lib/kpid");
  CHECK(r.config.storage.sync);
  CHECK(r.config.http.listen == "[::1]:8080");
  CHECK(r.config.http.threads == 4);
  CHECK(r.config.http.max_body_bytes == 1048576);
  CHECK(r.config.http.request_timeout == 5000);
  CHECK(r.config.http.idle_timeout == 60000);
  CHECK(r.config.shutdown_timeout == 3000);
  CHECK(r.config.line.listen.empty());
  CHECK(r.config.line.max_line_bytes == 1024);
  CHECK(r.config.line.error_log_interval == 60000);
  CHECK(r.config.query.lookback_delta == 600000);
  CHECK(r.config.query.max_points_per_series == 500);
  CHECK(r.config.query.timeout == 30'000);
  CHECK(r.config.query.max_samples == 1'000'000);
  CHECK(r.config.query.max_concurrency == 3);
  CHECK(r.config.query.max_queued == 10);
  CHECK(r.config.query.worker_priority == query::WorkerPriority::kLow);
  CHECK(r.config.query.default_subquery_step == 30'000);
  CHECK(r.config.log.level == "debug");
}

TEST_CASE("shutdown_timeout is a top-level key, http.shutdown_timeout is its older name") {
  CHECK(parse("").config.shutdown_timeout == 10'000);
  auto top = parse("shutdown_timeout = \"4s\"\n[http]\nthreads = 2\n");
  REQUIRE(top.ok());
  CHECK(top.config.shutdown_timeout == 4000);
  auto both = parse("shutdown_timeout = \"4s\"\n[http]\nshutdown_timeout = \"5s\"\n");
  REQUIRE(both.errors.size() == 1);
  CHECK(both.errors[0].to_string() ==
        "kpid.toml:3:20: http.shutdown_timeout: give shutdown_timeout once: the top-level key "
        "replaces this older name");
  auto bad = parse("shutdown_timeout = \"10ms\"\n");
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].to_string() == "kpid.toml:1:20: shutdown_timeout: must be at least 100ms");
}

TEST_CASE("the shipped config/kpid.toml is valid") {
  auto r = load_config(KPID_SOURCE_DIR "/config/kpid.toml", {});
  INFO((r.errors.empty() ? "" : r.errors[0].to_string()));
  CHECK(r.ok());
}

TEST_CASE("the shipped config/alerting.example.toml parses, with a receiver of each type") {
  auto r = load_config(KPID_SOURCE_DIR "/config/alerting.example.toml", {});
  INFO((r.errors.empty() ? "" : r.errors[0].to_string()));
  REQUIRE(r.ok());
  REQUIRE(r.config.receivers.size() == 3);
  CHECK(r.config.receivers[0].type == "alertmanager");
  CHECK(r.config.receivers[1].type == "pagerduty");
  CHECK(r.config.receivers[1].owners == std::vector<std::string>{"payments-team"});
  CHECK(r.config.receivers[2].type == "webhook");
  CHECK(r.config.receivers[2].secret == "change-me");
  bool has_rules = false;
  for (const auto& k : r.config.kpis) has_rules = has_rules || !k.alerts.empty();
  CHECK(has_rules);
}

TEST_CASE("unknown keys and sections name the file, line and key") {
  auto r = parse("[http]\nlisten = \"127.0.0.1:1\"\nthreds = 2\n[stoarge]\n");
  REQUIRE(r.errors.size() == 2);
  CHECK(has_error(r, "http.threds", 3, "unknown key; did you mean \"threads\"?"));
  CHECK(has_error(r, "stoarge", 4, "did you mean \"storage\""));
  CHECK(r.errors[0].to_string().rfind("kpid.toml:3:", 0) == 0);
}

TEST_CASE("wrong types are errors") {
  auto r = parse(
      "[storage]\nsync = \"yes\"\n[http]\nthreads = \"2\"\nlisten = 9470\n"
      "[query]\nlookback_delta = 300\n");
  CHECK(has_error(r, "storage.sync", 2, "expected a boolean"));
  CHECK(has_error(r, "http.threads", 4, "expected an integer"));
  CHECK(has_error(r, "http.listen", 5, "expected a string"));
  CHECK(has_error(r, "query.lookback_delta", 7, "expected a duration"));
  CHECK(r.errors.size() == 4);
}

TEST_CASE("bad values are errors with the reason") {
  auto r = parse(R"([http]
listen = "example.com:80"
threads = 0
max_body_bytes = "lots"
idle_timeout = "5 minutes"
[line]
listen = "127.0.0.1:99999"
max_line_bytes = 3
[log]
level = "loud"
)");
  CHECK(has_error(r, "http.listen", 2, "host must be an IP address or localhost"));
  CHECK(has_error(r, "http.threads", 3, "between 1 and 256"));
  CHECK(has_error(r, "http.max_body_bytes", 4, "invalid size"));
  CHECK(has_error(r, "http.idle_timeout", 5, "5 minutes"));
  CHECK(has_error(r, "line.listen", 7, "port must be a number from 0 to 65535"));
  CHECK(has_error(r, "line.max_line_bytes", 8, "at least 16 bytes"));
  CHECK(has_error(r, "log.level", 10, "unknown level \"loud\""));
  CHECK(r.errors.size() == 7);
}

TEST_CASE("ingest table: the native histogram bucket limit and the database label") {
  auto good = parse(R"([ingest]
native_histogram_max_buckets = 40
db_label = "db"
)");
  REQUIRE(good.errors.empty());
  CHECK(good.config.ingest.native_histogram_max_buckets == 40);
  CHECK(good.config.ingest.db_label == "db");
  CHECK(parse("").config.ingest.native_histogram_max_buckets == 160);
  CHECK(parse("").config.ingest.db_label.empty());

  auto r = parse(R"([ingest]
native_histogram_max_buckets = 1
db_label = "my-db"
)");
  CHECK(has_error(r, "ingest.native_histogram_max_buckets", 2, "between 2 and 10000"));
  CHECK(has_error(r, "ingest.db_label", 3, "\"my-db\" is not a label name"));
  CHECK(r.errors.size() == 2);
  CHECK(has_error(parse("[ingest]\ndb_label = \"__db\"\n"), "ingest.db_label", 2, "reserved"));
  CHECK(has_error(parse("[ingest]\nbuckets = 3\n"), "ingest.buckets", 2, "unknown key"));
}

TEST_CASE("a TOML syntax error is reported with its position") {
  auto r = parse("[http]\nlisten = \"127.0.0.1:1\n");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 2);
  CHECK(r.errors[0].message.find("TOML syntax error") != std::string::npos);
}

TEST_CASE("a section that is not a table is an error") {
  auto r = parse("http = 5\n");
  CHECK(has_error(r, "http", 1, "expected a table"));
}

TEST_CASE("command-line overrides win over the file and are validated") {
  Overrides o;
  o.data_dir = "/tmp/x";
  o.http_listen = "127.0.0.1:0";
  o.line_listen = "";
  o.log_level = "warn";
  auto r = parse("[storage]\ndata_dir = \"/elsewhere\"\n[http]\nlisten = \"127.0.0.1:1\"\n", o);
  REQUIRE(r.ok());
  CHECK(r.config.storage.data_dir == "/tmp/x");
  CHECK(r.config.http.listen == "127.0.0.1:0");
  CHECK(r.config.line.listen.empty());
  CHECK(r.config.log.level == "warn");

  Overrides bad;
  bad.http_listen = "nowhere";
  bad.log_level = "chatty";
  auto rb = parse("", bad);
  REQUIRE(rb.errors.size() == 2);
  CHECK(rb.errors[0].file == "command line");
  CHECK(rb.errors[0].key == "--http-listen");
  CHECK(rb.errors[1].key == "--log-level");
}

TEST_CASE("a missing config file is an error naming it") {
  auto r = load_config("/nonexistent/kpid.toml", {});
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].to_string() == "/nonexistent/kpid.toml: cannot open config file");
}

TEST_CASE("sizes accept bytes and units") {
  CHECK(*parse_size("0") == 0);
  CHECK(*parse_size("512B") == 512);
  CHECK(*parse_size("10KB") == 10'000);
  CHECK(*parse_size("64KiB") == 65'536);
  CHECK(*parse_size("25MiB") == 25u << 20);
  CHECK(*parse_size("1GiB") == 1u << 30);
  CHECK(*parse_size("2 MB") == 2'000'000);
  CHECK_FALSE(parse_size("").is_ok());
  CHECK_FALSE(parse_size("-1").is_ok());
  CHECK_FALSE(parse_size("1TiB").is_ok());
  CHECK_FALSE(parse_size("99999999999999999999GiB").is_ok());
}

TEST_CASE("listen addresses") {
  auto a = parse_host_port("127.0.0.1:9470");
  REQUIRE(a.is_ok());
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 9470);
  auto b = parse_host_port("[::1]:0");
  REQUIRE(b.is_ok());
  CHECK(b->host == "::1");
  CHECK(parse_host_port("localhost:1").is_ok());
  CHECK_FALSE(parse_host_port("127.0.0.1").is_ok());
  CHECK_FALSE(parse_host_port("127.0.0.1:").is_ok());
  CHECK_FALSE(parse_host_port("127.0.0.1:65536").is_ok());
  CHECK_FALSE(parse_host_port("[nope]:1").is_ok());
}

TEST_CASE("retention and storage limits are read and checked") {
  auto r = parse(
      "[storage]\nmax_series = 5\nmax_labels_per_series = 4\ncheckpoint_interval = \"10s\"\n"
      "block_cache = \"64MiB\"\n"
      "[retention]\nraw = \"7d\"\nrollup_5m = \"90d\"\nrollup_1h = \"2y\"\n");
  REQUIRE(r.ok());
  CHECK(r.config.storage.block_cache_bytes == 64ull << 20);

  CHECK(r.config.storage.limits.max_series == 5);
  CHECK(r.config.storage.limits.max_labels_per_series == 4);
  CHECK(r.config.storage.checkpoint_interval == 10'000);
  CHECK(r.config.storage.retention.raw == 7 * 86'400'000LL);
  CHECK(r.config.storage.retention.rollup_5m == 90 * 86'400'000LL);
  CHECK(r.config.storage.retention.rollup_1h == 2 * 365 * 86'400'000LL);
  auto bad = parse(
      "[retention]\nraw = \"1h\"\nrollup_1m = \"1d\"\n[storage]\nmax_series = 0\n"
      "block_cache = \"1KiB\"\n");
  CHECK(has_error(bad, "retention.raw", 2, "at least"));
  CHECK(has_error(bad, "retention.rollup_1m", 3, "did you mean"));
  CHECK(has_error(bad, "storage.max_series", 5, "between 1 and"));
  CHECK(has_error(bad, "storage.block_cache", 6, ""));
}

TEST_CASE("storage.memory_limit is a size, 0 (no limit) by default") {
  auto none = parse("[storage]\n");
  REQUIRE(none.ok());
  CHECK(none.config.storage.memory_limit_bytes == 0);
  auto r = parse("[storage]\nmemory_limit = \"2GiB\"\n");
  REQUIRE(r.ok());
  CHECK(r.config.storage.memory_limit_bytes == 2ull << 30);
  auto bad = parse("[storage]\nmemory_limit = \"lots\"\n");
  CHECK(has_error(bad, "storage.memory_limit", 2, ""));
  auto negative = parse("[storage]\nmemory_limit = -1\n");
  CHECK(has_error(negative, "storage.memory_limit", 2, "expected a size"));
}

TEST_CASE("query limits out of range are errors") {
  auto r =
      parse("[query]\ntimeout = \"0s\"\nmax_samples = 0\nmax_concurrency = -1\nmax_queued = -2\n");
  CHECK(has_error(r, "query.timeout", 2, "must be at least"));
  CHECK(has_error(r, "query.max_samples", 3, "must be between 1 and"));
  CHECK(has_error(r, "query.max_concurrency", 4, "must be between 0 and 1024"));
  CHECK(has_error(r, "query.max_queued", 5, "must be between 0 and 100000"));
  CHECK(r.errors.size() == 4);
}

TEST_CASE("query.worker_priority is idle, low or normal") {
  CHECK(parse("[query]\nworker_priority = \"normal\"\n").config.query.worker_priority ==
        query::WorkerPriority::kNormal);
  auto r = parse("[query]\nworker_priority = \"lowest\"\n");
  CHECK(has_error(r, "query.worker_priority", 2,
                  "unknown value \"lowest\"; expected one of idle, low, normal"));
}

namespace {
std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}
}  // namespace

TEST_CASE("the engine configs of README's Beyond one machine parse and are shown as they are") {
  const std::string readme = read_whole(KPID_SOURCE_DIR "/README.md");
  for (const char* name : {"victoriametrics-cluster", "mimir", "thanos"}) {
    const std::string path = std::string(KPID_SOURCE_DIR "/config/beyond/") + name + ".toml";
    INFO(path);
    auto r = load_config(path, {});
    INFO((r.errors.empty() ? "" : r.errors[0].to_string()));
    REQUIRE(r.ok());
    REQUIRE(r.config.datasources.size() == 1);
    CHECK(r.config.remote_write.size() == 1);
    REQUIRE(r.config.kpis.size() == 1);
    CHECK(r.config.kpis[0].datasource == r.config.datasources[0].name);
    CHECK(readme.find("```toml\n" + read_whole(path) + "```") != std::string::npos);
  }
}
