#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "kpid/config/config.h"
#include "support/temp_dir.h"

using namespace kpid;
using namespace kpid::config;

namespace {

LoadResult parse(const std::string& text) { return parse_config(text, "kpid.toml", {}); }

bool has_error(const LoadResult& r, const std::string& key, int line, const std::string& part) {
  for (const auto& e : r.errors) {
    if (e.key == key && e.line == line && e.message.find(part) != std::string::npos) return true;
  }
  return false;
}

std::string dump(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

const char* kLatency = R"toml([[kpi]]
id = "checkout_latency"
name = "Checkout latency (p95)"
description = "95th percentile of checkout latency"
owner = "payments"
unit = "ms"
review = "weekly"
direction = "lower_is_better"
stale_after = "10m"
[kpi.value]
selector = 'http_latency_ms{route="/checkout"}'
over_time = "quantile"
quantile = 0.95
window = "5m"
across = "max"
[kpi.band]
target = 200
warn = 500
crit = 1000
[kpi.baseline]
method = "quantile"
window = "90d"
quantiles = [0.1, 0.9]
min_history = "7d"
refresh = "30m"
)toml";

}  // namespace

TEST_CASE("config: every key of a KPI is read") {
  auto r = parse(kLatency);
  INFO(dump(r));
  REQUIRE(r.ok());
  REQUIRE(r.config.kpis.size() == 1);
  const auto& k = r.config.kpis[0];
  CHECK(k.id == "checkout_latency");
  CHECK(k.name == "Checkout latency (p95)");
  CHECK(k.description == "95th percentile of checkout latency");
  CHECK(k.owner == "payments");
  CHECK(k.unit == "ms");
  CHECK(k.review == "weekly");
  CHECK(k.direction == "lower_is_better");
  CHECK(k.stale_after == 600'000);
  CHECK(k.pos.line == 1);
  CHECK_FALSE(k.value.ratio);
  CHECK(k.value.term.selector == R"(http_latency_ms{route="/checkout"})");
  CHECK(k.value.term.selector_pos.line == 11);
  CHECK(k.value.term.over_time == "quantile");
  CHECK(k.value.term.quantile == 0.95);
  CHECK(k.value.term.window == 300'000);
  CHECK(k.value.term.across == "max");
  REQUIRE(k.band);
  CHECK(*k.band->target == 200);
  CHECK(k.band->warn == 500);
  CHECK(k.band->crit == 1000);
  CHECK(k.band->pos.line == 16);
  REQUIRE(k.baseline);
  CHECK(k.baseline->method == "quantile");
  CHECK(k.baseline->window == 90 * 86'400'000LL);
  CHECK(k.baseline->quantile_low == 0.1);
  CHECK(k.baseline->quantile_high == 0.9);
  CHECK(k.baseline->min_history == 7 * 86'400'000LL);
  CHECK(k.baseline->refresh == 1'800'000);
}

TEST_CASE("config: KPI defaults") {
  auto r = parse(R"toml([[kpi]]
id = "x"
direction = "higher_is_better"
[kpi.value]
selector = "up"
over_time = "avg"
)toml");
  INFO(dump(r));
  REQUIRE(r.ok());
  const auto& k = r.config.kpis[0];
  CHECK(k.name == "x");
  CHECK(k.review == "monthly");
  CHECK(k.value.term.window == 300'000);
  CHECK(k.value.term.across == "sum");
  CHECK(k.stale_after == 0);  // the KPI module makes it the value window
  CHECK_FALSE(k.band);
  CHECK_FALSE(k.baseline);
}

TEST_CASE("config: a ratio KPI has a numerator, a denominator and a scale") {
  auto r = parse(R"toml([[kpi]]
id = "error_rate"
direction = "lower_is_better"
[kpi.value]
scale = 100
[kpi.value.numerator]
selector = "errors_total"
over_time = "increase"
[kpi.value.denominator]
selector = "requests_total"
over_time = "increase"
window = "10m"
[kpi.band]
warn = 1
crit = 5
)toml");
  INFO(dump(r));
  REQUIRE(r.ok());
  const auto& v = r.config.kpis[0].value;
  CHECK(v.ratio);
  CHECK(v.scale == 100);
  CHECK(v.term.selector == "errors_total");
  CHECK(v.denominator.selector == "requests_total");
  CHECK(v.denominator.window == 600'000);
}

TEST_CASE("config: KPI errors name the file, line and key") {
  auto r = parse(R"toml([[kpi]]
id = "a"
direction = "sideways"
colour = "red"
[kpi.value]
selector = "up"
over_time = "median"
across = "mean"
quantile = 0.5
[kpi.band]
warn = 1

[[kpi]]
name = "no id"
direction = "in_range"
[kpi.value]
selector = "up"
over_time = "last"
[kpi.band]
warn = 1
warn_low = 2

[[kpi]]
id = "a"
direction = "lower_is_better"

[[kpi]]
id = "bad id!"
direction = "lower_is_better"
[kpi.value]
numerator = { selector = "a", over_time = "sum" }
)toml");
  INFO(dump(r));
  CHECK(has_error(r, "kpi.a.direction", 3, "unknown value \"sideways\""));
  CHECK(has_error(r, "kpi.a.colour", 4, "unknown key"));
  CHECK(has_error(r, "kpi.a.value.over_time", 7, "expected one of avg, min, max"));
  CHECK(has_error(r, "kpi.a.value.across", 8, "expected one of sum, avg, min, max"));
  CHECK(has_error(r, "kpi.a.value.quantile", 9, "only to over_time = \"quantile\""));
  // Band keys are not checked when the direction is unknown.
  CHECK_FALSE(has_error(r, "kpi.a.band.crit", 10, "required"));
  CHECK(has_error(r, "kpi[1].id", 13, "is required"));
  CHECK(has_error(r, "kpi[1].band.warn", 20, "unknown key"));
  CHECK(has_error(r, "kpi[1].band.crit_high", 19, "required for direction = \"in_range\""));
  CHECK(has_error(r, "kpi.a.id", 24, "duplicate KPI id; first defined at kpid.toml:1"));
  CHECK(has_error(r, "kpi.a.value", 23, "is required"));
  CHECK(has_error(r, "kpi.bad id!.id", 28, "letters, digits"));
  CHECK(has_error(r, "kpi.bad id!.value.denominator", 30, "is required"));
  // No KPI with errors is kept.
  CHECK(r.config.kpis.empty());
}

TEST_CASE("config: baseline options are checked against the method") {
  auto r = parse(R"toml([[kpi]]
id = "a"
direction = "lower_is_better"
[kpi.value]
selector = "up"
over_time = "avg"
[kpi.baseline]
method = "seasonal"
window = "7d"
quantiles = [0.1, 0.9]
alpha = 0.5
k = 0
min_history = "8d"
refresh = "10s"

[[kpi]]
id = "b"
direction = "lower_is_better"
[kpi.value]
selector = "up"
over_time = "avg"
[kpi.baseline]
method = "quantile"
window = "2y"
quantiles = [0.9, 0.1]
k = 3
)toml");
  INFO(dump(r));
  CHECK(has_error(r, "kpi.a.baseline.window", 9, "at least 2 weeks"));
  CHECK(has_error(r, "kpi.a.baseline.quantiles", 10, "only to method = \"quantile\""));
  CHECK(has_error(r, "kpi.a.baseline.alpha", 11, "only to method = \"ewma\""));
  CHECK(has_error(r, "kpi.a.baseline.k", 12, "above 0"));
  CHECK(has_error(r, "kpi.a.baseline.min_history", 13, "must not exceed"));
  CHECK(has_error(r, "kpi.a.baseline.refresh", 14, "at least 1m"));
  CHECK(has_error(r, "kpi.b.baseline.window", 24, "at most 366d"));
  CHECK(has_error(r, "kpi.b.baseline.quantiles", 25, "0 <= low < high <= 1"));
  CHECK(has_error(r, "kpi.b.baseline.k", 26, "only to methods stddev, ewma and seasonal"));
}

TEST_CASE("config: included files add KPIs and their errors name the included file") {
  testing::TempDir dir;
  const std::string main = dir.path() + "/kpid.toml";
  std::filesystem::create_directories(dir.path() + "/kpis.d");
  write(dir.path() + "/kpis.d/b.toml", R"toml([[kpi]]
id = "from_b"
direction = "lower_is_better"
[kpi.value]
selector = "up"
over_time = "avg"
)toml");
  write(dir.path() + "/kpis.d/a.toml", R"toml([[kpi]]
id = "from_a"
direction = "lower_is_better"
[kpi.value]
selector = "up"
over_time = "avg"
)toml");
  write(main, "include = [\"kpis.d/*.toml\"]\n" + std::string(kLatency));
  auto ok = load_config(main, {});
  INFO(dump(ok));
  REQUIRE(ok.ok());
  REQUIRE(ok.config.kpis.size() == 3);
  CHECK(ok.config.kpis[0].id == "checkout_latency");
  CHECK(ok.config.kpis[1].id == "from_a");  // included files load in name order
  CHECK(ok.config.kpis[2].id == "from_b");
  CHECK(ok.config.kpis[1].pos.file == dir.path() + "/kpis.d/a.toml");

  write(dir.path() + "/kpis.d/c.toml", R"toml([[kpi]]
id = "from_a"
direction = "lower_is_better"
[kpi.value]
selector = "up"
over_time = "avg"
window = "soon"

[storage]
sync = true
)toml");
  auto bad = load_config(main, {});
  INFO(dump(bad));
  const std::string c = dir.path() + "/kpis.d/c.toml";
  auto has = [&](const std::string& key, int line, const std::string& part) {
    for (const auto& e : bad.errors) {
      if (e.file == c && e.key == key && e.line == line &&
          e.message.find(part) != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  CHECK(has("kpi.from_a.id", 2,
            "duplicate KPI id; first defined at " + dir.path() + "/kpis.d/a.toml:1"));
  CHECK(has("kpi.from_a.value.window", 7, "duration"));
  CHECK(has("storage", 9, "only hold [[kpi]] and [[slo]] tables"));

  write(main, "include = [\"missing.toml\"]\n");
  auto missing = load_config(main, {});
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].key == "include");
  CHECK(missing.errors[0].message.find("does not exist") != std::string::npos);
  // A pattern that matches nothing (an empty kpis.d/) is fine.
  write(main, "include = [\"none.d/*.toml\"]\n");
  CHECK(load_config(main, {}).ok());
}
