// A disk that fills up: kpid's data dir on a small tmpfs of its own (a private mount namespace,
// so nothing outlives the test process).
// - Below storage.min_free_bytes, HTTP writes get 503 with Retry-After and a message that says
//   so, the TCP listener stops reading instead of dropping lines, queries still answer; once
//   space returns, writes are taken again, the held TCP lines land, and every acknowledged
//   sample is there, before and after a restart.
// - Without that reserve the disk really runs out mid-write: kpid refuses writes without
//   crashing until space is freed, then resumes by itself; every acknowledged sample is there,
//   before and after a restart.

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;

namespace {

constexpr int kSeries = 500;

// A tmpfs of `size` mounted at `path` in a mount namespace private to this process (and the
// kpid it starts); lazily unmounted on destruction.
class PrivateTmpfs {
 public:
  PrivateTmpfs(const std::string& path, std::string_view size) : path_(path) {
    // Needs CAP_SYS_ADMIN (root, as in CI); fail loudly rather than pass without testing.
    if (unshare(CLONE_NEWNS) != 0) FAIL("unshare(CLONE_NEWNS): " << std::strerror(errno));
    if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      FAIL("making mounts private: " << std::strerror(errno));
    }
    mkdir(path.c_str(), 0755);
    const std::string options = "size=" + std::string(size);
    if (mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      FAIL("mounting a tmpfs at " << path << ": " << std::strerror(errno));
    }
  }
  ~PrivateTmpfs() { umount2(path_.c_str(), MNT_DETACH); }
  PrivateTmpfs(const PrivateTmpfs&) = delete;
  PrivateTmpfs& operator=(const PrivateTmpfs&) = delete;

  uint64_t free_bytes() const {
    struct statvfs s {};
    REQUIRE(statvfs(path_.c_str(), &s) == 0);
    return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
  }

 private:
  std::string path_;
};

// One batch: sample `i` of every series, at base + i seconds.
std::string batch(int64_t base, int i) {
  std::string body;
  for (int s = 0; s < kSeries; ++s) {
    body += "df,s=" + std::to_string(s) + " value=" + std::to_string(i) + " " +
            std::to_string(base + i * 1000) + "\n";
  }
  return body;
}

// Fills the filesystem at `dir` with a file `name` until `leave` bytes are free.
std::string fill(const PrivateTmpfs& fs, const std::string& path, uint64_t leave) {
  const uint64_t free = fs.free_bytes();
  REQUIRE(free > leave + (4u << 20));
  int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(posix_fallocate(fd, 0, static_cast<off_t>(free - leave)) == 0);
  close(fd);
  return path;
}

// Writes batches from `next` on until one is refused with 503; returns it. Counts the
// acknowledged ones.
HttpResponse write_until_refused(const Kpid& k, int64_t base, int& next, int& acknowledged) {
  for (const int end = next + 3000; next < end; ++next) {
    HttpResponse r;
    try {
      r = k.write(batch(base, next), "ms");
    } catch (const std::exception& e) {
      FAIL("write " << next << ": " << e.what() << "\n" << k.log_tail());
    }
    if (r.status == 503) {
      ++next;
      return r;
    }
    REQUIRE(r.status == 204);
    ++acknowledged;
  }
  FAIL("no write was refused");
  return {};
}

// Samples of df in the hour after `base`, summed over series.
double stored_samples(const Kpid& k, int64_t base) {
  auto v = k.query_at_ms("sum(count_over_time(df[1h]))", base + 3'599'000);
  return v.empty() ? 0 : num(v[0].value);
}

}  // namespace

TEST_CASE(
    "disk full: below storage.min_free_bytes writes are refused with 503 and TCP reads "
    "pause, then taken again when space returns, nothing acknowledged lost",
    "[fault][disk]") {
  Kpid k({.config_toml = "[storage]\nmin_free_bytes = \"16MiB\"\n"});
  PrivateTmpfs fs(k.data_dir(), "64m");
  k.start();
  const int64_t base = base_ms();
  const std::string filler = fill(fs, k.dir().file("data/filler"), 20u << 20);

  int acknowledged = 0;
  int next = 0;
  HttpResponse refused = write_until_refused(k, base, next, acknowledged);
  INFO("batches acknowledged before the disk filled: " << acknowledged);
  CHECK(acknowledged > 10);
  CHECK(contains(refused.body, "the disk is full"));
  CHECK(contains(refused.body, "storage.min_free_bytes"));
  CHECK(contains(refused.body, "nothing was stored"));
  CHECK(std::stoi(refused.header("retry-after")) >= 1);
  // The next write is refused as soon as its header is read (the first may have been refused
  // by the store after its body was read): the connection closes after the answer.
  HttpResponse again = k.write(batch(base, next++), "ms");
  CHECK(again.status == 503);
  CHECK(contains(again.body, "the disk is full"));
  CHECK(icontains(again.header("connection"), "close"));
  const std::string metrics = k.metrics();
  CHECK(metric_value(metrics, "kpid_store_writes_blocked") == 1);
  CHECK(metric_value(metrics, "kpid_ingest_pushback_total",
                     {{"protocol", "http"}, {"reason", "disk_full"}})
            .value_or(0) >= 1);
  CHECK(contains(k.log(), "writes are refused until space is freed"));

  // Queries still answer, with everything acknowledged so far.
  CHECK(stored_samples(k, base) == acknowledged * kSeries);

  // Lines sent over TCP meanwhile are held: the listener stops reading, keeps the connection.
  TcpClient tcp(k.line_port());
  std::string lines;
  for (int i = 0; i < 100; ++i) {
    lines += "dftcp value=" + std::to_string(i) + " " +
             std::to_string((base + i * 1000) * 1'000'000) + "\n";
  }
  tcp.send(lines);
  CHECK(eventually([&] {
    return metric_value(k.metrics(), "kpid_ingest_pushback_total", {{"protocol", "tcp"}})
               .value_or(0) >= 1;
  }));
  std::this_thread::sleep_for(300ms);
  CHECK(tcp.peer_open());
  require_empty_at(k, "dftcp", base + 99'000);

  // Space returns: writes are taken again at once, and the held lines land.
  REQUIRE(unlink(filler.c_str()) == 0);
  CHECK(eventually([&] { return metric_value(k.metrics(), "kpid_store_writes_blocked") == 0; }, 5s,
                   50ms));
  for (int i = 0; i < 20; ++i, ++next, ++acknowledged) k.write_ok(batch(base, next), "ms");
  CHECK(eventually([&] {
    auto v = k.query_at_ms("count_over_time(dftcp[1h])", base + 99'000);
    return v.size() == 1 && num(v[0].value) == 100;
  }));
  CHECK(tcp.peer_open());
  CHECK(contains(k.log(), "writes are taken again"));

  // Exactly the acknowledged batches: none of a refused one was stored.
  CHECK(stored_samples(k, base) == acknowledged * kSeries);
  tcp.close();
  CHECK(k.stop() == 0);
  k.start();
  CHECK(stored_samples(k, base) == acknowledged * kSeries);
  auto tcp_after = k.query_at_ms("count_over_time(dftcp[1h])", base + 99'000);
  REQUIRE(tcp_after.size() == 1);
  CHECK(num(tcp_after[0].value) == 100);
}

TEST_CASE(
    "disk full: when a write itself runs out of space, nothing acknowledged is lost, and "
    "writes are taken again once space is freed, without a restart",
    "[fault][disk]") {
  // No reserve: RocksDB itself gets ENOSPC in the middle of a write. kpid refuses every later
  // write (503, /readyz 503 saying why) until space is freed, then resumes RocksDB by itself.
  Kpid k({.config_toml = "[storage]\nmin_free_bytes = 0\n"});
  PrivateTmpfs fs(k.data_dir(), "64m");
  k.start();
  const int64_t base = base_ms();
  const std::string filler = fill(fs, k.dir().file("data/filler"), 3u << 20);

  int acknowledged = 0;
  int next = 0;
  for (const int end = next + 3000; next < end; ++next) {
    HttpResponse r;
    try {
      r = k.write(batch(base, next), "ms");
    } catch (const std::exception& e) {
      FAIL("write " << next << " got no answer: " << e.what() << "\n" << k.log_tail());
    }
    if (r.status == 503) {
      CHECK(contains(r.body, "No space left on device"));
      CHECK(contains(r.body, "nothing was stored"));
      CHECK(std::stoi(r.header("retry-after")) >= 1);
      break;
    }
    REQUIRE(r.status == 204);
    ++acknowledged;
  }
  INFO("batches acknowledged before the disk filled: " << acknowledged);
  CHECK(acknowledged > 10);
  REQUIRE(next < 3000);

  // Refused from then on, while still answering queries; /readyz says why.
  CHECK(contains(k.log(), "(no_space)"));
  HttpResponse refused = k.write(batch(base, next + 1), "ms");
  CHECK(refused.status == 503);
  CHECK(contains(refused.body, "once space is freed"));
  const HttpResponse ready = k.get("/readyz");
  CHECK(ready.status == 503);
  CHECK(contains(ready.body, "disk_full"));
  CHECK(metric_value(k.metrics(), "kpid_store_writes_blocked") == 1);
  CHECK(metric_value(k.metrics(), "kpid_store_write_errors_total", {{"cause", "no_space"}})
            .value_or(0) >= 1);
  CHECK(stored_samples(k, base) == acknowledged * kSeries);

  // Space returns: kpid resumes RocksDB by itself.
  REQUIRE(unlink(filler.c_str()) == 0);
  const bool resumed = eventually([&] { return k.get("/readyz").status == 200; }, 20s, 100ms);
  INFO(k.log_tail());
  REQUIRE(resumed);
  CHECK(contains(k.log(), "writes are taken again"));
  next += 2;
  for (int i = 0; i < 5; ++i, ++acknowledged) k.write_ok(batch(base, next++), "ms");
  CHECK(stored_samples(k, base) == acknowledged * kSeries);

  CHECK(k.stop() == 0);
  k.start();
  CHECK(stored_samples(k, base) == acknowledged * kSeries);
}
