// Writes that fail in RocksDB, on the real binary, through the test-only fault-injection seam
// (KPID_FAULT_INJECTION names a control file; RocksDB's file system fails writes while it says
// "nospace" or "ioerror"; see include/kpid/store/fault_injection.h):
// - out of space: HTTP writes answer 503 with Retry-After and why, nothing of them stored; TCP
//   lines are held (the listener stops reading); a silence is refused with 503; /readyz answers
//   503 naming the cause; kpid_store_write_errors_total{cause="no_space"} counts it and the log
//   says so. Once space "returns", kpid resumes by itself: writes 204, /readyz 200, the held
//   lines land; a restart finds exactly what was acknowledged.
// - another I/O error: the same answers, cause "io_error"; RocksDB 7.8 cannot resume after it,
//   so writes stay refused until a restart, which finds exactly what was acknowledged.

#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

constexpr int kSeries = 50;

std::string batch(int64_t base, int i) {
  std::string body;
  for (int s = 0; s < kSeries; ++s) {
    body += "wf,s=" + std::to_string(s) + " value=" + std::to_string(i) + " " +
            std::to_string(base + i * 1000) + "\n";
  }
  return body;
}

double stored_samples(const Kpid& k, int64_t base) {
  auto v = k.query_at_ms("sum(count_over_time(wf[1h]))", base + 3'599'000);
  return v.empty() ? 0 : num(v[0].value);
}

const Headers kJson{{"Content-Type", "application/json"}};
const std::string kSilence =
    R"({"matchers":[{"name":"kpi","value":"checkout","op":"="}],"duration":"1h",)"
    R"("author":"bob","comment":"maintenance"})";

size_t silence_count(const Kpid& k) {
  const json::value list = require_api_data(k.get("/api/v1/silences"));
  return list.as_array().size();
}

// The answers while writes fail: a 503 write with Retry-After that says why and that nothing
// was stored, /readyz 503 naming `reason`, the metric of `cause` counted, a silence refused.
void check_refusing(const Kpid& k, int64_t base, int i, std::string_view reason,
                    std::string_view cause) {
  const HttpResponse w = k.write(batch(base, i), "ms");
  INFO(w.body);
  CHECK(w.status == 503);
  CHECK(contains(w.body, "nothing was stored"));
  CHECK(contains(w.body, reason));
  CHECK(std::stoi(w.header("retry-after")) >= 1);
  const HttpResponse ready = k.get("/readyz");
  INFO(ready.body);
  CHECK(ready.status == 503);
  CHECK(contains(ready.body, reason));
  const std::string metrics = k.metrics();
  CHECK(metric_value(metrics, "kpid_store_write_errors_total", {{"cause", std::string(cause)}})
            .value_or(0) >= 1);
  CHECK(metric_value(metrics, "kpid_store_writes_blocked") == 1);
  const HttpResponse silence = k.post("/api/v1/silences", kSilence, kJson);
  INFO(silence.body);
  CHECK(silence.status == 503);
  CHECK(contains(k.log(), "(" + std::string(cause) + ")"));
}

}  // namespace

TEST_CASE(
    "write faults: out of space, writes and state changes get 503, /readyz says why, and kpid "
    "resumes by itself once space returns, nothing acknowledged lost",
    "[fault][disk]") {
  TempDir control;
  const std::string fault = control.file("fault");
  Kpid k(
      {.config_toml = "[storage]\nmin_free_bytes = 0\n", .env = {"KPID_FAULT_INJECTION=" + fault}});
  k.start();
  const int64_t base = base_ms();
  int next = 0;
  int acknowledged = 0;
  for (; next < 10; ++next, ++acknowledged) k.write_ok(batch(base, next), "ms");
  require_api_data(k.post("/api/v1/silences", kSilence, kJson));

  write_file(fault, "nospace\n");
  check_refusing(k, base, next++, "No space left on device", "no_space");
  // TCP lines sent meanwhile are held, not dropped: the listener stops reading.
  TcpClient tcp(k.line_port());
  std::string lines;
  for (int i = 0; i < 20; ++i) {
    lines += "wftcp value=" + std::to_string(i) + " " +
             std::to_string((base + i * 1000) * 1'000'000) + "\n";
  }
  tcp.send(lines);
  CHECK(eventually([&] {
    return metric_value(k.metrics(), "kpid_ingest_pushback_total",
                        {{"protocol", "tcp"}, {"reason", "disk_full"}})
               .value_or(0) >= 1;
  }));
  CHECK(stored_samples(k, base) == acknowledged * kSeries);  // queries still answer

  // Space returns: kpid resumes without a restart.
  write_file(fault, "ok\n");
  CHECK(eventually([&] { return k.get("/readyz").status == 200; }, 15s, 50ms));
  CHECK(contains(k.log(), "writes are taken again"));
  for (int i = 0; i < 5; ++i, ++next, ++acknowledged) k.write_ok(batch(base, next), "ms");
  require_api_data(k.post("/api/v1/silences", kSilence, kJson));
  CHECK(eventually([&] {
    auto v = k.query_at_ms("count_over_time(wftcp[1h])", base + 19'000);
    return v.size() == 1 && num(v[0].value) == 20;
  }));
  CHECK(tcp.peer_open());
  CHECK(metric_value(k.metrics(), "kpid_store_writes_blocked") == 0);
  CHECK(stored_samples(k, base) == acknowledged * kSeries);
  CHECK(silence_count(k) == 2);
  tcp.close();

  CHECK(k.stop() == 0);
  k.start();
  CHECK(stored_samples(k, base) == acknowledged * kSeries);
  CHECK(silence_count(k) == 2);
}

TEST_CASE(
    "write faults: after an I/O error writes and state changes get 503 until a restart, which "
    "finds exactly what was acknowledged",
    "[fault][disk]") {
  TempDir control;
  const std::string fault = control.file("fault");
  Kpid k(
      {.config_toml = "[storage]\nmin_free_bytes = 0\n", .env = {"KPID_FAULT_INJECTION=" + fault}});
  k.start();
  const int64_t base = base_ms();
  int next = 0;
  int acknowledged = 0;
  for (; next < 10; ++next, ++acknowledged) k.write_ok(batch(base, next), "ms");

  write_file(fault, "ioerror\n");
  check_refusing(k, base, next++, "Input/output error", "io_error");
  CHECK(contains(k.log(), "until kpid is restarted"));
  // RocksDB 7.8 treats a failed log write other than ENOSPC as fatal for the open database:
  // still refused once the device works again.
  write_file(fault, "ok\n");
  std::this_thread::sleep_for(1500ms);
  CHECK(k.write(batch(base, next++), "ms").status == 503);
  CHECK(k.get("/readyz").status == 503);
  CHECK(stored_samples(k, base) == acknowledged * kSeries);

  CHECK(k.stop() == 0);
  k.start();
  CHECK(k.get("/readyz").status == 200);
  CHECK(stored_samples(k, base) == acknowledged * kSeries);
  for (int i = 0; i < 5; ++i, ++next, ++acknowledged) k.write_ok(batch(base, next), "ms");
  CHECK(stored_samples(k, base) == acknowledged * kSeries);
}
