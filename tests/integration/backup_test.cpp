// Backups, restore and the data format version, on the real binaries:
// - an online backup (kpictl backup -> POST /api/v1/admin/backup) while samples stream in and
//   an alert fires, is acknowledged, silenced and drafts an OKR; kpictl backup --list shows it;
//   kpictl restore (kpid --restore, no daemon) makes a data dir on which a second kpid finds
//   every sample acknowledged before the backup began, the alert with its ack, the silence and
//   the OKR;
// - tests/data/format-v1, a data dir written by kpid at format version 1, is upgraded to
//   version 4 after a backup (its 1-hour rollups rewritten per day) and opens with its samples,
//   its rollups and its silence; the same dir marked
//   with a newer version is refused with both versions named; without a version (a version 0
//   dir) it is upgraded after a backup.
#include <atomic>
#include <filesystem>
#include <thread>

#include <rocksdb/db.h>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

constexpr const char* kKpictl = KPICTL_BINARY;
const Headers kJson{{"Content-Type", "application/json"}};

CommandResult ctl(const Kpid& k, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {
      "/usr/bin/env", "KPID_URL=http://127.0.0.1:" + std::to_string(k.http_port()), kKpictl};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, {}, 120s);
}

// A latency KPI with a crit alert that fires at once and an OKR drafted as soon as it fires.
const std::string kAlertingToml =
    "[alerting]\nexternal_url = \"http://kpid.example\"\n"
    "[[kpi]]\nid = \"latency\"\nowner = \"payments\"\nunit = \"ms\"\n"
    "direction = \"lower_is_better\"\nstale_after = \"1h\"\n[kpi.value]\n"
    "selector = 'latency'\nover_time = \"last\"\nwindow = \"1h\"\n"
    "[kpi.band]\ntarget = 50\nwarn = 100\ncrit = 200\n[[kpi.alert]]\ncondition = \"crit\"\n"
    "[kpi.okr]\nafter = \"0s\"\nseverities = [\"critical\"]\nrelated = [\"latency_errors\"]\n"
    "graduate_after = \"1h\"\n"
    "[[kpi]]\nid = \"latency_errors\"\nowner = \"payments\"\ndirection = \"lower_is_better\"\n"
    "[kpi.value]\nselector = 'latency_errors'\nover_time = \"last\"\nwindow = \"1h\"\n"
    "[kpi.band]\nwarn = 5\ncrit = 10\n";

double stored(const Kpid& k, const std::string& metric, int64_t at_ms) {
  const auto v = k.query_at_ms("sum(count_over_time(" + metric + "[30d]))", at_ms);
  return v.empty() ? 0 : num(v[0].value);
}

void copy_fixture(const std::string& to) {
  std::filesystem::copy(std::string(KPID_TEST_DATA_DIR) + "/format-v1", to,
                        std::filesystem::copy_options::recursive);
}

// Sets (or, with nullopt, deletes) the data format version recorded in `dir`, with RocksDB
// itself, as another kpid would have left it.
void set_format_version(const std::string& dir, std::optional<std::string> version) {
  rocksdb::Options options;
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(options, dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const auto& n : names) families.push_back({n, rocksdb::ColumnFamilyOptions()});
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::Open(options, dir, families, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  if (version) {
    REQUIRE(db->Put({}, "kpid.format_version", *version).ok());
  } else {
    REQUIRE(db->Delete({}, "kpid.format_version").ok());
  }
  for (auto* h : handles) REQUIRE(db->DestroyColumnFamilyHandle(h).ok());
  REQUIRE(db->Close().ok());
}

// The fixture's samples are of 2026-01-01 and its silence expired an hour after it was made:
// retention long enough to keep both.
const std::string kFixtureToml =
    "[storage]\nmin_free_bytes = 0\n[retention]\nraw = \"36500d\"\n"
    "[alerting]\nresolved_retention = \"36500d\"\n";
constexpr int64_t kFixtureStartMs = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

}  // namespace

TEST_CASE(
    "backup: taken online during ingest and alerting, restored without a daemon, a second kpid "
    "finds every sample acknowledged before it, the alert, ack, silence and OKR",
    "[backup]") {
  Kpid k({.config_toml = "[storage]\nmin_free_bytes = 0\n" + kAlertingToml});
  k.start();
  write_value_now(k, "latency", 500);
  std::string alert_id;
  REQUIRE(eventually(
      [&] {
        auto alerts = get_alerts(k, "kpi=latency&state=firing");
        if (alerts.empty()) return false;
        alert_id = json_str(alerts[0], "id");
        return true;
      },
      15s, 50ms));
  REQUIRE(k.post("/api/v1/alerts/" + alert_id + "/ack", R"({"author":"alice","comment":"on it"})",
                 kJson)
              .status == 200);
  const json::value silence = require_api_data(
      k.post("/api/v1/silences",
             R"({"matchers":[{"name":"kpi","value":"latency","op":"="}],"duration":"2h",)"
             R"("author":"bob","comment":"fixing"})",
             kJson));
  json::array okrs;
  REQUIRE(eventually(
      [&] {
        okrs = require_api_data(k.get("/api/v1/okrs")).as_array();
        return !okrs.empty();
      },
      15s, 50ms));
  const std::string okr_id = json_str(okrs[0], "id");
  REQUIRE(k.post("/api/v1/okrs/" + okr_id + "/accept", R"({"author":"bob"})", kJson).status == 200);

  // Samples stream in throughout; `acknowledged` counts the batches answered 204.
  const int64_t base = base_ms();
  std::atomic<int> acknowledged{0};
  std::atomic<bool> streaming{true};
  std::thread writer([&] {
    for (int i = 0; streaming.load() && i < 3000; ++i) {
      std::string body;
      for (int s = 0; s < 20; ++s) {
        body += "streamed,s=" + std::to_string(s) + " value=" + std::to_string(i) + " " +
                std::to_string(base + i * 1000) + "\n";
      }
      if (k.write(body, "ms").status == 204) ++acknowledged;
    }
  });
  REQUIRE(eventually([&] { return acknowledged.load() >= 20; }, 30s, 20ms));
  const int before_backup = acknowledged.load();
  const CommandResult backup = ctl(k, {"backup"});
  const int after_backup = acknowledged.load();
  streaming = false;
  writer.join();
  INFO(backup.out << backup.err);
  REQUIRE(backup.exit_code == 0);
  const std::string backup_dir = k.dir().file("kpid-backups");
  CHECK(contains(backup.out, "backup 1 into " + backup_dir));

  const CommandResult list = ctl(k, {"backup", "--list"});
  INFO(list.out << list.err);
  REQUIRE(list.exit_code == 0);
  CHECK(contains(list.out, "backups in " + backup_dir));
  CHECK(contains(list.out, "FORMAT"));
  const json::value listed = require_api_data(k.get("/api/v1/admin/backups"));
  REQUIRE(listed.at("backups").as_array().size() == 1);
  CHECK(listed.at("backups").as_array()[0].at("format_version").to_number<int>() == 4);

  // Restore into a fresh dir with kpictl (kpid --restore), while the first kpid still runs.
  TempDir restored_parent;
  const std::string restored = restored_parent.file("data");
  const CommandResult restore = run_command({kKpictl, "restore", backup_dir, restored});
  INFO(restore.out << restore.err);
  REQUIRE(restore.exit_code == 0);
  CHECK(contains(restore.out, "restored backup 1"));
  // Not over a data dir that holds something.
  CHECK(run_command({kKpictl, "restore", backup_dir, restored}).exit_code != 0);

  Kpid second({.config_toml = "[storage]\nmin_free_bytes = 0\n" + kAlertingToml,
               .extra_args = {"--data-dir", restored},
               .pass_data_dir = false});
  second.start();
  const double samples = stored(second, "streamed", base + 3'000'000);
  INFO("acknowledged before the backup: " << before_backup << " batches, by its end "
                                          << after_backup);
  CHECK(samples >= before_backup * 20.0);
  CHECK(samples <= after_backup * 20.0);
  const auto alert = get_alert_detail(second, alert_id);
  CHECK(json_str(alert, "state") == "firing");
  REQUIRE(alert.at("acknowledged").is_object());
  CHECK(json_str(alert.at("acknowledged"), "author") == "alice");
  const json::value silences = require_api_data(second.get("/api/v1/silences"));
  REQUIRE(silences.as_array().size() == 1);
  CHECK(json_str(silences.as_array()[0], "id") == json_str(silence, "id"));
  const auto okr = require_api_data(second.get("/api/v1/okrs/" + okr_id));
  CHECK(json_str(okr, "state") == "active");
  CHECK(second.stop() == 0);
  CHECK(k.stop() == 0);
}

TEST_CASE("format: the version 1 fixture is upgraded and opens with its samples and state",
          "[backup][format]") {
  Kpid k({.config_toml = kFixtureToml});
  copy_fixture(k.data_dir());
  k.start();
  CHECK(contains(k.log(), "data format upgraded to version 4"));
  for (const char* s : {"a", "b"}) {
    const auto v = k.query_at_ms(std::string("count_over_time(fixture{s=\"") + s + "\"}[2h])",
                                 kFixtureStartMs + 3'540'000);
    REQUIRE(v.size() == 1);
    CHECK(num(v[0].value) == 60);
    // From the 1-hour rollups (version 2 blocks, as version 1 wrote them per window, now in
    // their day's value): (00:00, 01:00].
    const auto r = k.query_at_ms(std::string("count_over_time(fixture{s=\"") + s + "\"}[1h])",
                                 kFixtureStartMs + 3'600'000);
    REQUIRE(r.size() == 1);
    CHECK(num(r[0].value) == 59);
  }
  require_value_at(k, "fixture{s=\"b\"}", kFixtureStartMs + 59 * 60'000, 59);
  const json::value silences = require_api_data(k.get("/api/v1/silences"));
  REQUIRE(silences.as_array().size() == 1);
  CHECK(json_str(silences.as_array()[0], "comment") == "format v1 fixture");
  CHECK(k.stop() == 0);
}

TEST_CASE("format: a newer format is refused naming both versions", "[backup][format]") {
  TempDir dir;
  const std::string data = dir.file("data");
  copy_fixture(data);
  set_format_version(data, "5");
  const CommandResult run = run_command(
      {kKpidBinary, "--data-dir", data, "--http-listen", "127.0.0.1:0", "--line-listen", ""});
  INFO(run.out << run.err);
  CHECK(run.exit_code != 0);
  CHECK(contains(run.out + run.err, "format version 5"));
  CHECK(contains(run.out + run.err, "reads format version 4"));
}

TEST_CASE("format: a version 0 data dir is upgraded in place after a backup", "[backup][format]") {
  Kpid k({.config_toml = kFixtureToml});
  copy_fixture(k.data_dir());
  set_format_version(k.data_dir(), std::nullopt);
  k.start();
  CHECK(contains(k.log(), "before upgrading it to version 4"));
  CHECK(contains(k.log(), "data format upgraded to version 4"));
  const json::value listed = require_api_data(k.get("/api/v1/admin/backups"));
  CHECK(listed.at("backups").as_array().size() == 1);
  require_value_at(k, "fixture{s=\"a\"}", kFixtureStartMs + 59 * 60'000, 59);
  CHECK(k.stop() == 0);
  k.start();  // version 4 now: no second upgrade
  CHECK_FALSE(contains(k.log(), "upgrading"));
  CHECK(k.stop() == 0);
}
