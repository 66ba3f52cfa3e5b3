// [[remote_write]] and [remote_write.queue]: the shipped example, defaults, and one broken
// field at a time, each error naming its line and key.

#include <catch2/catch.hpp>

#include "kpid/config/config.h"

using namespace kpid;
using namespace kpid::config;

namespace {

bool has_error(const LoadResult& r, const std::string& key, int line, const std::string& part) {
  for (const auto& e : r.errors) {
    if (e.key == key && e.line == line && e.message.find(part) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("the shipped config/remote_write.example.toml parses") {
  auto r = load_config(KPID_SOURCE_DIR "/config/remote_write.example.toml", {});
  INFO((r.errors.empty() ? "" : r.errors[0].to_string()));
  REQUIRE(r.ok());
  REQUIRE(r.config.remote_write.size() == 2);
  const auto& vm = r.config.remote_write[0];
  CHECK(vm.name == "victoriametrics");
  CHECK(vm.queue.max_bytes == 256ull << 20);
  CHECK(vm.queue.max_age == 12 * 3'600'000);
  CHECK(vm.match.size() == 1);
  CHECK(vm.drop.size() == 1);
  CHECK(vm.send == std::vector<std::string>{"samples", "kpis", "slos", "alerts", "rules"});
  CHECK(vm.self_interval == 15'000);
  const auto& mimir = r.config.remote_write[1];
  CHECK(mimir.protocol == "2.0");
  CHECK(mimir.send == std::vector<std::string>{"samples"});
  CHECK(mimir.auth.basic_username == "kpid");
  CHECK(mimir.auth.headers.size() == 1);
  CHECK(mimir.source.find("remote_write.example.toml:") != std::string::npos);
}

TEST_CASE("remote_write defaults and errors name their line and key") {
  auto ok = parse_config("[[remote_write]]\nname = \"a\"\nurl = \"http://127.0.0.1:1/w\"\n",
                         "kpid.toml", {});
  REQUIRE(ok.ok());
  const auto& d = ok.config.remote_write.at(0);
  CHECK(d.timeout == 30'000);
  CHECK(d.protocol == "1.0");
  CHECK(d.queue.min_shards == 1);
  CHECK(d.queue.max_shards == 8);
  CHECK(d.queue.max_samples_per_send == 2000);
  CHECK(d.queue.batch_send_deadline == 5'000);
  CHECK(d.queue.min_backoff == 100);
  CHECK(d.queue.max_backoff == 30'000);
  CHECK(d.self_interval == 15'000);

  auto r = parse_config(R"([[remote_write]]
name = "a"
url = "ftp://x"
protocl = "2.0"
protocol = "3.0"
send = ["samples", "kpis", "everything"]

[remote_write.queue]
min_shards = 4
max_shards = 2
max_bytes = "lots"

[[remote_write]]
name = "a"
url = "http://127.0.0.1:1/w"

[[remote_write]]
url = "http://127.0.0.1:1/w"
self_interval = "10ms"
)",
                        "kpid.toml", {});
  CHECK(has_error(r, "remote_write.a.url", 3, "http:// or https://"));
  CHECK(has_error(r, "remote_write.a.protocl", 4, "did you mean \"protocol\""));
  CHECK(has_error(r, "remote_write.a.protocol", 5, "expected one of 1.0, 2.0"));
  // kpid's own series are a kind like the others.
  CHECK_FALSE(has_error(r, "remote_write.a.send", 6, "unknown value \"kpis\""));
  CHECK(has_error(r, "remote_write.a.send", 6, "unknown value \"everything\""));
  CHECK(has_error(r, "remote_write.a.queue.min_shards", 8, "must not exceed max_shards"));
  CHECK(has_error(r, "remote_write.a.queue.max_bytes", 11, ""));
  CHECK(has_error(r, "remote_write.a.name", 14,
                  "duplicate remote_write name; first defined at line 1"));
  CHECK(has_error(r, "remote_write[2].name", 17, "is required"));
  CHECK(has_error(r, "remote_write[2].self_interval", 19, "at least 1s"));
}
