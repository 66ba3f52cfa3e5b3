// storage.memory_limit on the real binary: a limit below kpid's idle resident memory makes
// every write a 503 with Retry-After and the reason, refuses new series, and shows on /metrics;
// /readyz stays 200 and queries answer.

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;

TEST_CASE("memory limit: below kpid's resident memory writes get 503 with Retry-After",
          "[memory]") {
  Kpid k({.config_toml = "[storage]\nmemory_limit = \"4MiB\"\n"});
  k.start();
  const std::string line = "mem_test,host=a value=1 " + std::to_string(base_ms()) + "\n";

  const HttpResponse refused = k.write(line, "ms");
  CHECK(refused.status == 503);
  CHECK(std::stoi(refused.header("retry-after")) >= 1);
  CHECK(contains(refused.body, "nothing was stored"));
  CHECK(contains(refused.body, "resident memory"));
  CHECK(contains(refused.body, "is above storage.memory_limit (4.0 MiB)"));
  const HttpResponse v2 = k.write(line, "ms", true);
  CHECK(v2.status == 503);
  CHECK(contains(v2.body, "storage.memory_limit"));

  CHECK(k.get("/readyz").status == 200);
  const std::string metrics = k.metrics();
  CHECK(metric_value(metrics, "kpid_store_memory_limit_bytes") == 4 << 20);
  CHECK(metric_value(metrics, "kpid_store_resident_bytes") > 4 << 20);
  CHECK(metric_value(metrics, "kpid_store_writes_blocked") == 1);
  CHECK(metric_value(metrics, "kpid_ingest_pushback_total",
                     {{"protocol", "http"}, {"reason", "memory_limit"}}) >= 1);
  CHECK(metric_value(metrics, "kpid_store_series") == 0);
  const HttpResponse query = k.get("/api/v1/query?query=mem_test_value");
  CHECK(query.status == 200);
}
