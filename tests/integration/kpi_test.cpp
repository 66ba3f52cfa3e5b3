// KPIs end to end: [[kpi]] definitions evaluated as samples arrive, their status in
// /api/v1/kpis and /metrics, status history across reloads and restarts, config errors and
// warnings from --check-config, and the /series chart data.

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

// Strictly increasing millisecond timestamps, each the current time when taken (waiting for the
// next millisecond if need be). KPIs are evaluated at kpid's current time, so samples must be
// recent, and never ahead of the clock: a sample stamped in the future is outside the window of
// an evaluation that happens before that time.
class Stamps {
 public:
  int64_t next() {
    int64_t t = now_ms();
    while (t <= last_) {
      std::this_thread::sleep_for(200us);
      t = now_ms();
    }
    last_ = t;
    return last_;
  }

 private:
  int64_t last_ = 0;
};

std::string num_text(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

// A JSON number (integer or double) as a double; nullopt for null. REQUIREs one of those.
std::optional<double> number_or_null(const json::value& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  FAIL("expected a number or null, got " << json::serialize(v));
  return std::nullopt;
}

std::string str(const json::value& v) {
  if (!v.is_string()) return "<" + json::serialize(v) + ">";
  return std::string(v.as_string());
}

std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

// The "data" of a successful KPI API response.
json::value api_data(const HttpResponse& r) {
  INFO("response " << r.status << ": " << tail(r.body, 3000));
  REQUIRE(r.status == 200);
  CHECK(contains(r.header("content-type"), "application/json"));
  // Missing values are null, never a bare NaN/Inf (which is not JSON).
  CHECK_FALSE(contains(r.body, "NaN"));
  CHECK_FALSE(contains(r.body, "Inf"));
  json::value v;
  REQUIRE_NOTHROW(v = r.json());
  REQUIRE(v.is_object());
  REQUIRE(v.at("status") == "success");
  REQUIRE(v.as_object().contains("data"));
  return v.at("data");
}

json::array kpi_list(const Kpid& k) {
  const json::value data = api_data(k.get("/api/v1/kpis"));
  REQUIRE(data.is_array());
  return data.as_array();
}

std::optional<json::object> find_kpi(const json::array& list, std::string_view id) {
  for (const auto& e : list) {
    if (e.is_object() && e.as_object().contains("id") && e.at("id") == json::string(id))
      return e.as_object();
  }
  return std::nullopt;
}

json::object list_entry(const Kpid& k, std::string_view id) {
  const auto list = kpi_list(k);
  INFO("GET /api/v1/kpis: " << json::serialize(list));
  auto e = find_kpi(list, id);
  REQUIRE(e.has_value());
  return *e;
}

std::set<std::string> kpi_ids(const Kpid& k) {
  std::set<std::string> out;
  for (const auto& e : kpi_list(k)) out.insert(str(e.at("id")));
  return out;
}

json::object kpi_detail(const Kpid& k, std::string_view id, std::string_view query = "") {
  const std::string target = "/api/v1/kpis/" + std::string(id) + std::string(query);
  INFO("GET " << target);
  const json::value data = api_data(k.get(target));
  REQUIRE(data.is_object());
  return data.as_object();
}

struct Change {
  std::string time;
  std::string status;
  std::optional<double> value;
  bool operator==(const Change&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Change& c) {
  os << "{" << c.time << " " << c.status << " ";
  if (c.value)
    os << *c.value;
  else
    os << "null";
  return os << "}";
}

std::vector<Change> history_of(const json::object& detail) {
  std::vector<Change> out;
  REQUIRE(detail.contains("history"));
  REQUIRE(detail.at("history").is_array());
  for (const auto& e : detail.at("history").as_array()) {
    out.push_back({str(e.at("time")), str(e.at("status")), number_or_null(e.at("value"))});
  }
  return out;
}

std::string history_text(const std::vector<Change>& h) {
  std::ostringstream out;
  for (const auto& c : h) out << c << "\n";
  return out.str();
}

// Status changes after the leading no_data ones (the KPI's state before its first sample).
std::vector<std::pair<std::string, std::optional<double>>> changes_after_no_data(
    const std::vector<Change>& h) {
  size_t i = 0;
  while (i < h.size() && h[i].status == "no_data") ++i;
  std::vector<std::pair<std::string, std::optional<double>>> out;
  for (; i < h.size(); ++i) out.emplace_back(h[i].status, h[i].value);
  return out;
}

// Polls GET /api/v1/kpis until KPI `id` has `status` (and `value`, when given); REQUIREs it.
// The default timeout is well below the 5 s re-evaluation timer: a write that touches the KPI's
// series must re-evaluate it at once.
void require_kpi(const Kpid& k, std::string_view id, std::string_view status,
                 std::optional<double> value, std::chrono::milliseconds timeout = 2s) {
  std::string last = "(not listed)";
  const bool ok = eventually(
      [&] {
        const auto e = find_kpi(kpi_list(k), id);
        if (!e) return false;
        last = json::serialize(*e);
        if (e->at("status") != json::string(status)) return false;
        if (!value) return true;
        const auto v = number_or_null(e->at("value"));
        return v && *v == Approx(*value);
      },
      timeout, 20ms);
  INFO("KPI " << id << ": expected status " << status << " value "
              << (value ? num_text(*value) : std::string("(any)")) << " within " << timeout.count()
              << " ms; last seen: " << last);
  REQUIRE(ok);
}

// The kpid_kpi_status gauges of one KPI, by status.
std::map<std::string, double> status_gauges(const std::string& metrics, const std::string& id) {
  std::map<std::string, double> out;
  for (const auto& s : parse_metrics(metrics)) {
    if (s.name != "kpid_kpi_status" || !s.labels.count("kpi") || s.labels.at("kpi") != id) continue;
    out[s.labels.count("status") ? s.labels.at("status") : "?"] = s.value;
  }
  return out;
}

// /metrics agrees with a status: its gauge is 1, the other four 0, and kpid_kpi_value is
// `value`. Polled briefly: the gauges are published just after the API view changes.
void require_metrics_status(const Kpid& k, const std::string& id, const std::string& status,
                            double value) {
  std::string m;
  const bool ok = eventually(
      [&] {
        m = k.metrics();
        const auto g = status_gauges(m, id);
        const auto v = metric_value(m, "kpid_kpi_value", {{"kpi", id}});
        return g.size() == 5 && g.count(status) && g.at(status) == 1 && v && *v == Approx(value);
      },
      2s, 20ms);
  INFO("KPI " << id << ": expected kpid_kpi_status{status=\"" << status
              << "\"} 1 and kpid_kpi_value " << value << "; /metrics:\n"
              << tail(m, 6000));
  CHECK(ok);
  const auto g = status_gauges(m, id);
  CHECK(g.size() == 5);
  for (const char* s : {"ok", "warn", "crit", "anomalous", "no_data"}) {
    INFO("kpid_kpi_status{kpi=\"" << id << "\",status=\"" << s << "\"}");
    REQUIRE(g.count(s) == 1);
    CHECK(g.at(s) == (s == status ? 1.0 : 0.0));
  }
}

// 1-based number of the first line of `text` containing `needle` (0 when none).
int line_of(std::string_view text, std::string_view needle) {
  const size_t pos = text.find(needle);
  if (pos == std::string_view::npos) return 0;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + pos, '\n'));
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

// True when some line of `text` reads "[warning: ]FILE:LINE:COL: KEY: <message containing
// `fragment`>".
bool has_line(const std::string& text, const std::string& file, int line, const std::string& key,
              const std::string& fragment, bool warning = false) {
  const std::regex re("(^|\n)" + std::string(warning ? "warning: " : "") + regex_escape(file) +
                      ":" + std::to_string(line) + ":[0-9]+: " + regex_escape(key) + ": [^\n]*" +
                      regex_escape(fragment));
  return std::regex_search(text, re);
}

CommandResult check_config(const std::string& config, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{kKpidBinary, "--config", config, "--check-config"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run_command(argv, {}, 20s);
}

const std::string kLatencyKpi = R"([[kpi]]
id = "checkout_latency"
name = "Checkout latency"
description = "p50 of the checkout page"
owner = "payments"
unit = "ms"
direction = "lower_is_better"
[kpi.value]
selector = 'latency{route="/checkout"}'
over_time = "last"
window = "1m"
across = "max"
[kpi.band]
target = 100
warn = 200
crit = 500
)";

}  // namespace

TEST_CASE("kpi: lower_is_better KPI goes ok -> warn -> crit -> ok as values cross its band",
          "[kpi]") {
  Kpid k({.config_toml = kLatencyKpi});
  k.start();
  const std::string id = "checkout_latency";
  Stamps ts;
  // Each write also carries a much worse value for another route: the selector must leave it
  // out.
  auto put = [&](double v) {
    const int64_t t = ts.next();
    k.write_ok("latency,route=/checkout value=" + num_text(v) + " " + std::to_string(t) +
                   "\nlatency,route=/home value=9999 " + std::to_string(t),
               "ms");
  };

  // Its definition as configured, before any sample.
  {
    const auto e = list_entry(k, id);
    INFO(json::serialize(e));
    CHECK(e.at("name") == "Checkout latency");
    CHECK(e.at("description") == "p50 of the checkout page");
    CHECK(e.at("owner") == "payments");
    CHECK(e.at("unit") == "ms");
    CHECK(e.at("review") == "monthly");
    CHECK(e.at("direction") == "lower_is_better");
    CHECK(contains(str(e.at("query")), R"(latency{route="/checkout"})"));
    CHECK(e.at("status") == "no_data");
    CHECK(e.at("value").is_null());
    CHECK(e.at("baseline").is_null());
    const auto& band = e.at("band").as_object();
    CHECK(band.size() == 3);
    CHECK(number_or_null(band.at("target")) == 100.0);
    CHECK(number_or_null(band.at("warn")) == 200.0);
    CHECK(number_or_null(band.at("crit")) == 500.0);
  }

  put(150);
  require_kpi(k, id, "ok", 150);
  {
    const auto e = list_entry(k, id);
    CHECK_FALSE(e.at("since").is_null());
    CHECK_FALSE(e.at("evaluated_at").is_null());
    CHECK_FALSE(e.at("last_sample").is_null());
  }
  require_metrics_status(k, id, "ok", 150);
  {
    const std::string m = k.metrics();
    INFO(tail(m, 6000));
    const std::map<std::string, std::string> labels{{"kpi", id}, {"owner", "payments"}};
    auto with_level = [&](const char* level) {
      auto l = labels;
      l.emplace("level", level);
      return l;
    };
    CHECK(metric_value(m, "kpid_kpi_threshold", with_level("target")) == 100.0);
    CHECK(metric_value(m, "kpid_kpi_threshold", with_level("warn")) == 200.0);
    CHECK(metric_value(m, "kpid_kpi_threshold", with_level("crit")) == 500.0);
    CHECK(metric_value(m, "kpid_kpi_value", labels) == 150.0);
    CHECK(metric_value(m, "kpid_kpi_evaluations_total", {{"trigger", "sample"}}).value_or(0) >= 1);
  }

  put(200);  // exactly warn: not beyond it
  require_kpi(k, id, "ok", 200);
  put(300);
  require_kpi(k, id, "warn", 300);
  require_metrics_status(k, id, "warn", 300);
  put(500);  // exactly crit: still warn
  require_kpi(k, id, "warn", 500);
  put(600);
  require_kpi(k, id, "crit", 600);
  require_metrics_status(k, id, "crit", 600);
  put(50);
  require_kpi(k, id, "ok", 50);
  require_metrics_status(k, id, "ok", 50);

  // The detail records each change with the value that caused it, oldest first.
  const auto detail = kpi_detail(k, id);
  const auto h = history_of(detail);
  INFO("history:\n" << history_text(h));
  using P = std::pair<std::string, std::optional<double>>;
  CHECK(changes_after_no_data(h) ==
        std::vector<P>{{"ok", 150.0}, {"warn", 300.0}, {"crit", 600.0}, {"ok", 50.0}});
  CHECK(std::is_sorted(h.begin(), h.end(),
                       [](const Change& a, const Change& b) { return a.time < b.time; }));
  REQUIRE_FALSE(h.empty());
  CHECK(detail.at("status") == "ok");
  CHECK(detail.at("since") == json::string(h.back().time));  // since = the last change
  CHECK(detail.at("stale_after") == "1m");                   // defaults to the window
  // ?history=N keeps the newest N.
  const auto newest2 = history_of(kpi_detail(k, id, "?history=2"));
  REQUIRE(newest2.size() == 2);
  CHECK(newest2[0] == h[h.size() - 2]);
  CHECK(newest2[1] == h.back());

  // Unknown id and wrong method.
  const auto missing = k.get("/api/v1/kpis/no_such_kpi");
  INFO(missing.body);
  CHECK(missing.status == 404);
  CHECK(missing.json().at("status") == "error");
  CHECK(missing.json().at("errorType") == "not_found");
  CHECK(k.post("/api/v1/kpis/" + id, "").status == 405);
}

TEST_CASE("kpi: in_range KPI is crit outside crit_low/crit_high, warn outside warn_*, else ok",
          "[kpi]") {
  Kpid k({.config_toml = R"([[kpi]]
id = "queue_depth"
owner = "infra"
direction = "in_range"
[kpi.value]
selector = 'queue'
over_time = "last"
window = "1m"
[kpi.band]
target = 50
crit_low = 10
warn_low = 20
warn_high = 80
crit_high = 90
)"});
  k.start();
  const std::string id = "queue_depth";
  Stamps ts;
  auto put = [&](double v) {
    k.write_ok("queue depth=" + num_text(v) + " " + std::to_string(ts.next()) +
                   "\nqueue value=" + num_text(v) + " " + std::to_string(ts.next()),
               "ms");
  };

  const auto e = list_entry(k, id);
  INFO(json::serialize(e));
  CHECK(e.at("direction") == "in_range");
  const auto& band = e.at("band").as_object();
  CHECK(band.size() == 5);
  CHECK(number_or_null(band.at("target")) == 50.0);
  CHECK(number_or_null(band.at("crit_low")) == 10.0);
  CHECK(number_or_null(band.at("warn_low")) == 20.0);
  CHECK(number_or_null(band.at("warn_high")) == 80.0);
  CHECK(number_or_null(band.at("crit_high")) == 90.0);

  put(5);
  require_kpi(k, id, "crit", 5);
  require_metrics_status(k, id, "crit", 5);
  put(15);
  require_kpi(k, id, "warn", 15);
  put(50);
  require_kpi(k, id, "ok", 50);
  require_metrics_status(k, id, "ok", 50);
  put(20);  // on the edge: inside
  require_kpi(k, id, "ok", 20);
  put(85);
  require_kpi(k, id, "warn", 85);
  put(95);
  require_kpi(k, id, "crit", 95);
  require_metrics_status(k, id, "crit", 95);
  put(90);  // on the crit edge: warn
  require_kpi(k, id, "warn", 90);

  const auto h = history_of(kpi_detail(k, id));
  INFO("history:\n" << history_text(h));
  using P = std::pair<std::string, std::optional<double>>;
  CHECK(changes_after_no_data(h) == std::vector<P>{{"crit", 5.0},
                                                   {"warn", 15.0},
                                                   {"ok", 50.0},
                                                   {"warn", 85.0},
                                                   {"crit", 95.0},
                                                   {"warn", 90.0}});

  // Threshold gauges: level warn/crit with side low/high; target without a side.
  const std::string m = k.metrics();
  INFO(tail(m, 6000));
  auto threshold = [&](std::map<std::string, std::string> labels) {
    labels.emplace("kpi", id);
    labels.emplace("owner", "infra");
    return metric_value(m, "kpid_kpi_threshold", labels);
  };
  CHECK(threshold({{"level", "crit"}, {"side", "low"}}) == 10.0);
  CHECK(threshold({{"level", "warn"}, {"side", "low"}}) == 20.0);
  CHECK(threshold({{"level", "warn"}, {"side", "high"}}) == 80.0);
  CHECK(threshold({{"level", "crit"}, {"side", "high"}}) == 90.0);
  CHECK(threshold({{"level", "target"}}) == 50.0);
  int count = 0;
  for (const auto& s : parse_metrics(m)) {
    if (s.name != "kpid_kpi_threshold" || s.labels.at("kpi") != id) continue;
    ++count;
    if (s.labels.at("level") == "target") {
      CHECK(s.labels.count("side") == 0);
    } else {
      CHECK(s.labels.count("side") == 1);
    }
  }
  CHECK(count == 5);
}

TEST_CASE("kpi: higher_is_better KPI (min across series) is crit below crit, warn below warn",
          "[kpi]") {
  Kpid k({.config_toml = R"([[kpi]]
id = "availability"
owner = "sre"
unit = "%"
review = "weekly"
direction = "higher_is_better"
[kpi.value]
selector = 'up_ratio'
over_time = "last"
window = "1m"
across = "min"
[kpi.band]
target = 99.9
warn = 99
crit = 95
)"});
  k.start();
  const std::string id = "availability";
  Stamps ts;
  auto put = [&](double a, double b) {
    const int64_t t = ts.next();
    k.write_ok("up_ratio,host=a value=" + num_text(a) + " " + std::to_string(t) +
                   "\nup_ratio,host=b value=" + num_text(b) + " " + std::to_string(t),
               "ms");
  };

  put(99.95, 99.97);
  require_kpi(k, id, "ok", 99.95);
  put(99.95, 99);  // exactly warn: not below it
  require_kpi(k, id, "ok", 99);
  put(99.95, 97);
  require_kpi(k, id, "warn", 97);
  put(95, 99.95);  // exactly crit: still warn
  require_kpi(k, id, "warn", 95);
  put(90, 99.95);
  require_kpi(k, id, "crit", 90);
  require_metrics_status(k, id, "crit", 90);
  put(99.5, 99.8);
  require_kpi(k, id, "ok", 99.5);
  require_metrics_status(k, id, "ok", 99.5);

  const auto detail = kpi_detail(k, id);
  CHECK(detail.at("review") == "weekly");
  CHECK(detail.at("direction") == "higher_is_better");
  const auto h = history_of(detail);
  INFO("history:\n" << history_text(h));
  using P = std::pair<std::string, std::optional<double>>;
  CHECK(changes_after_no_data(h) ==
        std::vector<P>{{"ok", 99.95}, {"warn", 97.0}, {"crit", 90.0}, {"ok", 99.5}});

  const std::string m = k.metrics();
  INFO(tail(m, 6000));
  CHECK(metric_value(m, "kpid_kpi_threshold", {{"kpi", id}, {"level", "warn"}}) == 99.0);
  CHECK(metric_value(m, "kpid_kpi_threshold", {{"kpi", id}, {"level", "crit"}}) == 95.0);
  CHECK(metric_value(m, "kpid_kpi_threshold", {{"kpi", id}, {"level", "target"}}) == 99.9);
}

TEST_CASE("kpi: ratio KPI is numerator/denominator*scale, a zero denominator is no_data", "[kpi]") {
  const std::string ratio = R"(direction = "lower_is_better"
[kpi.band]
warn = 3
crit = 10
[kpi.value]
scale = 100
[kpi.value.numerator]
selector = 'NUM'
over_time = "increase"
window = "5m"
[kpi.value.denominator]
selector = 'DEN'
over_time = "increase"
window = "5m"
)";
  auto kpi = [&](const std::string& id, const std::string& num, const std::string& den) {
    std::string s = ratio;
    s.replace(s.find("NUM"), 3, num);
    s.replace(s.find("DEN"), 3, den);
    return "[[kpi]]\nid = \"" + id + "\"\nowner = \"web\"\n" + s + "\n";
  };
  Kpid k({.config_toml = kpi("error_rate", "errors_total", "requests_total") +
                         kpi("idle_error_rate", "idle_errors_total", "idle_requests_total")});
  k.start();

  // Counters sampled at the same instants, a second apart.
  const int64_t t0 = now_ms() - 2000;
  auto at = [&](int i) { return std::to_string(t0 + i * 1000); };
  // (Counters far from zero, so increase()'s extrapolation towards the window start is the
  // same for numerator and denominator, as in Prometheus; the ratio is then exact.)
  k.write_ok("errors_total value=1000 " + at(0) + "\nrequests_total value=10000 " + at(0) +
                 "\nerrors_total value=1005 " + at(1) + "\nrequests_total value=10100 " + at(1) +
                 "\nidle_errors_total value=1000 " + at(0) + "\nidle_requests_total value=10000 " +
                 at(0) + "\nidle_errors_total value=1000 " + at(1) +
                 "\nidle_requests_total value=10000 " + at(1),
             "ms");

  // increase(errors) / increase(requests) * 100 = 5 / 100 * 100: warn (above 3, not above 10).
  require_kpi(k, "error_rate", "warn", 5.0);
  {
    const auto e = list_entry(k, "error_rate");
    INFO(json::serialize(e));
    CHECK(contains(str(e.at("query")), "errors_total"));
    CHECK(contains(str(e.at("query")), "requests_total"));
  }

  // requests_total did not move: increase() is 0, the ratio has no value. The KPI was evaluated
  // on these samples (last_sample and evaluated_at are set) and says no_data with value null.
  std::string last;
  const bool evaluated = eventually(
      [&] {
        const auto e = list_entry(k, "idle_error_rate");
        last = json::serialize(e);
        return !e.at("last_sample").is_null() && !e.at("evaluated_at").is_null() &&
               str(e.at("evaluated_at")) >= str(e.at("last_sample"));
      },
      2s);
  INFO("idle_error_rate: " << last);
  REQUIRE(evaluated);
  const auto idle = list_entry(k, "idle_error_rate");
  CHECK(idle.at("status") == "no_data");
  CHECK(idle.at("value").is_null());
  const auto detail = kpi_detail(k, "idle_error_rate");
  CHECK(detail.at("value").is_null());
  for (const auto& c : history_of(detail)) {
    CHECK(c.status == "no_data");
    CHECK_FALSE(c.value.has_value());
  }
  {
    const std::string m = k.metrics();
    INFO(tail(m, 6000));
    const auto g = status_gauges(m, "idle_error_rate");
    CHECK(g.count("no_data"));
    if (g.count("no_data")) CHECK(g.at("no_data") == 1);
    const auto v = metric_value(m, "kpid_kpi_value", {{"kpi", "idle_error_rate"}});
    REQUIRE(v.has_value());
    CHECK(std::isnan(*v));
  }
  // The zero denominator was the only reason: once requests move, it has a value.
  k.write_ok("idle_errors_total value=1001 " + at(2) + "\nidle_requests_total value=10050 " + at(2),
             "ms");
  require_kpi(k, "idle_error_rate", "ok", 2.0);  // 1 / 50 * 100: not above warn

  // Still healthy and serving.
  CHECK(k.running());
  CHECK(k.get("/healthz").status == 200);
  CHECK(k.get("/readyz").status == 200);
  require_kpi(k, "error_rate", "warn", 5.0);
}

TEST_CASE("kpi: a KPI goes no_data once its newest sample is older than stale_after", "[kpi]") {
  Kpid k({.config_toml = R"([[kpi]]
id = "heartbeat"
owner = "ops"
direction = "lower_is_better"
stale_after = "2s"
[kpi.value]
selector = 'beat'
over_time = "max"
window = "1m"
[kpi.band]
warn = 10
crit = 20
)"});
  k.start();
  CHECK(kpi_detail(k, "heartbeat").at("stale_after") == "2s");

  const int64_t written = now_ms();
  k.write_ok("beat value=1 " + std::to_string(written), "ms");
  require_kpi(k, "heartbeat", "ok", 1);

  // Watch it: ok while the sample is fresh, no_data soon after it is 2 s old (staleness is
  // checked every second), though the sample is still inside the 1m value window.
  int64_t went_no_data = 0;
  std::string last;
  eventually(
      [&] {
        const auto e = list_entry(k, "heartbeat");
        last = json::serialize(e);
        if (e.at("status") == "no_data") {
          went_no_data = now_ms();
          return true;
        }
        if (now_ms() - written < 1800) CHECK(e.at("status") == "ok");
        return false;
      },
      6s, 50ms);
  INFO("last seen: " << last);
  REQUIRE(went_no_data != 0);
  const int64_t after = went_no_data - written;
  INFO("no_data " << after << " ms after the sample");
  CHECK(after >= 2000);
  CHECK(after <= 4000);
  {
    const std::string m = k.metrics();
    const auto g = status_gauges(m, "heartbeat");
    INFO(tail(m, 4000));
    REQUIRE(g.count("no_data"));
    CHECK(g.at("no_data") == 1);
    CHECK(g.at("ok") == 0);
  }
  const auto h = history_of(kpi_detail(k, "heartbeat"));
  INFO("history:\n" << history_text(h));
  REQUIRE(h.size() >= 2);
  CHECK(h[h.size() - 2].status == "ok");
  CHECK(h.back().status == "no_data");

  // A new sample brings it back at once.
  k.write_ok("beat value=15 " + std::to_string(now_ms()), "ms");
  require_kpi(k, "heartbeat", "warn", 15);
}

namespace {

// One lower_is_better KPI on `series` ("last" over 1m) with the given band.
std::string simple_kpi(const std::string& id, const std::string& series, double warn, double crit) {
  return "[[kpi]]\nid = \"" + id + "\"\nowner = \"team\"\ndirection = \"lower_is_better\"\n" +
         "[kpi.value]\nselector = '" + series + "'\nover_time = \"last\"\nwindow = \"1m\"\n" +
         "[kpi.band]\nwarn = " + num_text(warn) + "\ncrit = " + num_text(crit) + "\n\n";
}

}  // namespace

TEST_CASE(
    "kpi: SIGHUP reload adds, changes and removes KPIs, keeps history, rejects a bad "
    "config",
    "[kpi]") {
  const std::string a_v1 = simple_kpi("a", "ra", 200, 500);
  const std::string b = simple_kpi("b", "rb", 10, 20);
  Kpid k({.config_toml = a_v1 + b});
  k.start();
  Stamps ts;
  k.write_ok("ra value=300 " + std::to_string(ts.next()) + "\nrb value=5 " +
                 std::to_string(ts.next()) + "\nrc value=42 " + std::to_string(ts.next()),
             "ms");
  require_kpi(k, "a", "warn", 300);
  require_kpi(k, "b", "ok", 5);
  CHECK(kpi_ids(k) == std::set<std::string>{"a", "b"});

  // a's band moves (300 is now ok), b goes, c (higher_is_better on rc) comes.
  const std::string a_v2 = simple_kpi("a", "ra", 400, 800);
  const std::string c = R"([[kpi]]
id = "c"
owner = "team"
direction = "higher_is_better"
[kpi.value]
selector = 'rc'
over_time = "last"
window = "1m"
[kpi.band]
warn = 50
crit = 10
)";
  k.write_config(a_v2 + c);
  k.send_signal(SIGHUP);
  REQUIRE(eventually([&] { return kpi_ids(k) == std::set<std::string>{"a", "c"}; }, 5s));
  require_kpi(k, "a", "ok", 300);
  require_kpi(k, "c", "warn", 42);
  CHECK(k.running());
  {
    const auto a = list_entry(k, "a");
    CHECK(number_or_null(a.at("band").at("warn")) == 400.0);
    CHECK(number_or_null(a.at("band").at("crit")) == 800.0);
    const auto h = history_of(kpi_detail(k, "a"));
    INFO("a's history:\n" << history_text(h));
    using P = std::pair<std::string, std::optional<double>>;
    CHECK(changes_after_no_data(h) == std::vector<P>{{"warn", 300.0}, {"ok", 300.0}});
  }
  {
    const auto r = k.get("/api/v1/kpis/b");
    INFO(r.body);
    CHECK(r.status == 404);
    const std::string m = k.metrics();
    INFO(tail(m, 6000));
    CHECK_FALSE(metric_value(m, "kpid_kpi_status", {{"kpi", "b"}}).has_value());
    CHECK_FALSE(metric_value(m, "kpid_kpi_threshold", {{"kpi", "b"}}).has_value());
    CHECK(metric_value(m, "kpid_kpi_threshold", {{"kpi", "a"}, {"level", "warn"}}) == 400.0);
    CHECK(metric_value(m, "kpid_kpi_threshold", {{"kpi", "c"}, {"level", "crit"}}) == 10.0);
  }
  require_metrics_status(k, "a", "ok", 300);
  require_metrics_status(k, "c", "warn", 42);

  // An invalid config is rejected as a whole; the running KPIs stay as they were.
  k.write_config(simple_kpi("a", "ra", 900, 100) + c + simple_kpi("d", "rd", 1, 2));
  k.send_signal(SIGHUP);
  REQUIRE(eventually([&] { return contains(k.log(), "reload rejected"); }, 5s));
  CHECK(contains(k.log(), "kpi.a.band"));
  CHECK(k.running());
  CHECK(kpi_ids(k) == std::set<std::string>{"a", "c"});
  {
    const auto a = list_entry(k, "a");
    CHECK(number_or_null(a.at("band").at("warn")) == 400.0);
    CHECK(a.at("status") == "ok");
    CHECK(metric_value(k.metrics(), "kpid_kpi_threshold", {{"kpi", "a"}, {"level", "warn"}}) ==
          400.0);
  }
  // Still evaluating after the rejected reload.
  k.write_ok("ra value=450 " + std::to_string(ts.next()), "ms");
  require_kpi(k, "a", "warn", 450);

  // b comes back: its status history from before its removal is still there.
  k.write_ok("rb value=15 " + std::to_string(ts.next()), "ms");
  k.write_config(a_v2 + c + b);
  k.send_signal(SIGHUP);
  REQUIRE(eventually([&] { return kpi_ids(k) == std::set<std::string>{"a", "b", "c"}; }, 5s));
  require_kpi(k, "b", "warn", 15);
  const auto h = history_of(kpi_detail(k, "b"));
  INFO("b's history:\n" << history_text(h));
  using P = std::pair<std::string, std::optional<double>>;
  CHECK(changes_after_no_data(h) == std::vector<P>{{"ok", 5.0}, {"warn", 15.0}});
}

TEST_CASE("kpi: a restart keeps the status history and since", "[kpi]") {
  Kpid k({.config_toml = kLatencyKpi});
  k.start();
  const std::string id = "checkout_latency";
  Stamps ts;
  k.write_ok("latency,route=/checkout value=300 " + std::to_string(ts.next()), "ms");
  require_kpi(k, id, "warn", 300);
  k.write_ok("latency,route=/checkout value=600 " + std::to_string(ts.next()), "ms");
  require_kpi(k, id, "crit", 600);

  const auto before = kpi_detail(k, id);
  const auto history_before = history_of(before);
  const std::string since_before = str(before.at("since"));
  const std::string evaluated_before = str(before.at("evaluated_at"));
  INFO("history before the restart:\n" << history_text(history_before));
  REQUIRE(history_before.size() >= 2);
  REQUIRE(before.at("since") == json::string(history_before.back().time));

  REQUIRE(k.stop() == 0);
  k.start();

  // Right away and after its first evaluation in the new process: same status, same since,
  // same history (the status did not change, so nothing new is recorded).
  auto same = [&](const json::object& after) {
    INFO("after the restart: " << json::serialize(after));
    CHECK(after.at("status") == "crit");
    CHECK(str(after.at("since")) == since_before);
    CHECK(history_of(after) == history_before);
  };
  same(kpi_detail(k, id));
  std::string last;
  REQUIRE(eventually(
      [&] {
        const auto e = list_entry(k, id);
        last = json::serialize(e);
        return !e.at("evaluated_at").is_null() && str(e.at("evaluated_at")) > evaluated_before;
      },
      7s));
  require_kpi(k, id, "crit", 600);
  same(kpi_detail(k, id));

  // New changes append to the old history.
  k.write_ok("latency,route=/checkout value=50 " + std::to_string(ts.next()), "ms");
  require_kpi(k, id, "ok", 50);
  const auto h = history_of(kpi_detail(k, id));
  INFO("history:\n" << history_text(h));
  REQUIRE(h.size() == history_before.size() + 1);
  CHECK(std::equal(history_before.begin(), history_before.end(), h.begin()));
  CHECK(h.back().status == "ok");
  CHECK(h.back().value == 50.0);
}

TEST_CASE("kpi: --check-config reports KPI errors with file, line and key, kpid refuses to start",
          "[kpi][config]") {
  TempDir dir;
  const std::string main = dir.file("kpid.toml");

  SECTION("errors found while loading: unknown reduce, missing warn, unknown key, bad direction") {
    const std::string text = R"([[kpi]]
id = "lat"
owner = "web"
direction = "lower_is_better"
[kpi.value]
selector = 'latency'
over_time = "median"
[kpi.band]
crit = 500

[[kpi]]
id = "typo"
ownr = "web"
direction = "sideways"
[kpi.value]
selector = 'x'
over_time = "avg"
)";
    write_file(main, text);
    const auto r = check_config(main);
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    CHECK(has_line(r.err, main, line_of(text, "over_time = \"median\""), "kpi.lat.value.over_time",
                   "median"));
    CHECK(has_line(r.err, main, line_of(text, "[kpi.band]"), "kpi.lat.band.warn", "is required"));
    CHECK(has_line(r.err, main, line_of(text, "ownr"), "kpi.typo.ownr", "did you mean \"owner\"?"));
    CHECK(has_line(r.err, main, line_of(text, "sideways"), "kpi.typo.direction", "sideways"));
    CHECK_FALSE(contains(r.out, "configuration OK"));
  }

  SECTION("band order and selector errors") {
    const std::string text = R"([[kpi]]
id = "checkout_latency"
owner = "payments"
direction = "lower_is_better"
[kpi.value]
selector = 'latency'
over_time = "avg"
[kpi.band]
warn = 600
crit = 500

[[kpi]]
id = "bad_selector"
owner = "payments"
direction = "lower_is_better"
[kpi.value]
selector = 'latency{route='
over_time = "avg"
[kpi.band]
warn = 1
crit = 2

[[kpi]]
id = "range"
owner = "payments"
direction = "in_range"
[kpi.value]
selector = 'queue'
over_time = "avg"
[kpi.band]
crit_low = 20
warn_low = 10
warn_high = 30
crit_high = 40
)";
    write_file(main, text);
    const auto r = check_config(main);
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    CHECK(has_line(r.err, main, line_of(text, "[kpi.band]"), "kpi.checkout_latency.band",
                   "for lower_is_better, crit (500) must be above warn (600)"));
    CHECK(has_line(r.err, main, line_of(text, "selector = 'latency{route='"),
                   "kpi.bad_selector.value.selector", ""));
    CHECK(has_line(r.err, main, line_of(text, "crit_low = 20") - 1, "kpi.range.band",
                   "warn_low (10) must be above crit_low (20)"));
  }

  SECTION("an error inside an included file names that file") {
    std::filesystem::create_directories(dir.file("kpis.d"));
    const std::string main_text =
        "include = [\"kpis.d/*.toml\"]\n\n" + simple_kpi("main_kpi", "m", 1, 2);
    const std::string included = dir.file("kpis.d/web.toml");
    const std::string included_text = R"([[kpi]]
id = "web_errors"
owner = "web"
direction = "lower_is_better"
[kpi.value]
selector = 'errors'
over_time = "avg"
window = "5 minutes"
[kpi.band]
warn = 1
crit = 2
)";
    write_file(main, main_text);
    write_file(included, included_text);
    const auto r = check_config(main);
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    CHECK(has_line(r.err, included, line_of(included_text, "window ="),
                   "kpi.web_errors.value.window", ""));
    CHECK_FALSE(contains(r.err, main + ":"));
  }

  SECTION("an included file may only hold [[kpi]] and [[slo]] tables") {
    std::filesystem::create_directories(dir.file("kpis.d"));
    const std::string included = dir.file("kpis.d/x.toml");
    write_file(main, "include = [\"kpis.d/*.toml\"]\n");
    write_file(included, "[storage]\ndata_dir = \"/tmp/x\"\n");
    const auto r = check_config(main);
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    CHECK(has_line(r.err, included, 1, "storage", "only hold [[kpi]] and [[slo]] tables"));
  }

  SECTION("a duplicate id across the main file and an included file") {
    std::filesystem::create_directories(dir.file("kpis.d"));
    const std::string main_text = "include = [\"kpis.d/*.toml\"]\n\n" +
                                  simple_kpi("first", "f", 1, 2) + simple_kpi("shared", "s", 1, 2);
    const std::string included = dir.file("kpis.d/team.toml");
    const std::string included_text =
        simple_kpi("other", "o", 1, 2) + simple_kpi("shared", "s2", 3, 4);
    write_file(main, main_text);
    write_file(included, included_text);
    const auto r = check_config(main);
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    const int first_line = line_of(main_text, "id = \"shared\"") - 1;  // its [[kpi]] header
    const int dup_line = line_of(included_text, "id = \"shared\"");
    CHECK(has_line(r.err, included, dup_line, "kpi.shared.id",
                   "first defined at " + main + ":" + std::to_string(first_line)));
  }

  SECTION("kpid does not start with a bad KPI") {
    const std::string text = simple_kpi("bad", "x", 600, 500);
    write_file(main, text);
    const auto r = run_command({kKpidBinary, "--config", main, "--data-dir", dir.file("data"),
                                "--http-listen", "127.0.0.1:0", "--line-listen", "127.0.0.1:0"},
                               {}, 15s);
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    CHECK(has_line(r.err, main, line_of(text, "[kpi.band]"), "kpi.bad.band",
                   "crit (500) must be above warn (600)"));
    CHECK_FALSE(contains(r.err + r.out, "kpid ready"));
  }
}

TEST_CASE("kpi: --check-config warnings (no owner, no band, too many per owner) exit 0",
          "[kpi][config]") {
  TempDir dir;
  const std::string main = dir.file("kpid.toml");
  std::string text = R"([[kpi]]
id = "orphan"
direction = "lower_is_better"
[kpi.value]
selector = 'x'
over_time = "avg"
[kpi.band]
warn = 1
crit = 2

[[kpi]]
id = "unbounded"
owner = "solo"
direction = "lower_is_better"
[kpi.value]
selector = 'y'
over_time = "avg"

)";
  for (int i = 1; i <= 11; ++i) text += simple_kpi("busy" + std::to_string(i), "z", 1, 2);
  // simple_kpi's owner is "team": 11 KPIs for one owner.
  write_file(main, text);
  const auto r = check_config(main);
  INFO(describe(r));
  CHECK(r.exit_code == 0);
  CHECK(has_line(r.err, main, line_of(text, "id = \"orphan\"") - 1, "kpi.orphan.owner", "no owner",
                 true));
  CHECK(has_line(r.err, main, line_of(text, "id = \"unbounded\"") - 1, "kpi.unbounded.band",
                 "no band", true));
  CHECK(has_line(r.err, main, line_of(text, "id = \"busy11\"") - 1, "kpi.busy11.owner",
                 "owner \"team\" has 11 KPIs", true));
  // Only those three.
  int warnings = 0;
  for (size_t p = r.err.find("warning: "); p != std::string::npos;
       p = r.err.find("warning: ", p + 1))
    ++warnings;
  CHECK(warnings == 3);
  CHECK(contains(
      r.out, "configuration OK: " + main + " (13 KPIs, 0 alert rules, 0 receivers, 3 warnings)"));

  // Ten per owner is fine.
  std::string ten;
  for (int i = 1; i <= 10; ++i) ten += simple_kpi("k" + std::to_string(i), "z", 1, 2);
  write_file(main, ten);
  const auto r10 = check_config(main);
  INFO(describe(r10));
  CHECK(r10.exit_code == 0);
  CHECK_FALSE(contains(r10.err, "warning"));
  CHECK(contains(r10.out, "configuration OK: " + main + " (10 KPIs, 0 alert rules, 0 receivers)"));
}

TEST_CASE("kpi: --check-config warns when a band's own history would breach it most of the time",
          "[kpi][config]") {
  // "hot" would have been crit all along; "cool" (same data) never.
  const std::string config = R"([[kpi]]
id = "hot"
owner = "web"
direction = "lower_is_better"
[kpi.value]
selector = 'lat'
over_time = "avg"
window = "5m"
[kpi.band]
warn = 200
crit = 500

[[kpi]]
id = "cool"
owner = "web"
direction = "lower_is_better"
[kpi.value]
selector = 'lat'
over_time = "avg"
window = "5m"
[kpi.band]
warn = 2000
crit = 5000
)";
  Kpid k({.config_toml = config});
  k.start();
  // A sample every minute over the last three hours, far above hot's crit.
  const int64_t minute = 60'000;
  const int64_t end = now_ms() / minute * minute;
  std::string body;
  for (int64_t t = end - 180 * minute; t <= end; t += minute)
    body += "lat value=1000 " + std::to_string(t) + "\n";
  k.write_ok(body, "ms");
  require_kpi(k, "hot", "crit", 1000);
  require_kpi(k, "cool", "ok", 1000);
  REQUIRE(k.stop() == 0);

  const auto r = check_config(k.config_path(), {"--data-dir", k.data_dir()});
  INFO(describe(r));
  CHECK(r.exit_code == 0);
  const std::string file = k.config_path();
  CHECK(has_line(r.err, file, line_of(config, "[kpi.band]"), "kpi.hot.band",
                 "its own history would breach this band 100% of the time", true));
  CHECK_FALSE(contains(r.err, "kpi.cool.band"));
  CHECK(contains(r.out,
                 "configuration OK: " + file + " (2 KPIs, 0 alert rules, 0 receivers, 1 warning)"));

  // Without that history (an empty data dir) there is nothing to warn about.
  TempDir empty;
  const auto r2 = check_config(k.config_path(), {"--data-dir", empty.path()});
  INFO(describe(r2));
  CHECK(r2.exit_code == 0);
  CHECK_FALSE(contains(r2.err, "kpi.hot.band"));
}

TEST_CASE(
    "kpi: /series returns value points and thresholds, 404 for an unknown id, 400 for a "
    "bad step",
    "[kpi]") {
  Kpid k({.config_toml = kLatencyKpi});
  k.start();
  const std::string id = "checkout_latency";
  // One sample a minute for the last ten minutes: 100, 110, ..., 190.
  const int64_t minute = 60'000;
  const int64_t t0 = now_ms() / minute * minute - 10 * minute;
  std::string body;
  for (int i = 0; i < 10; ++i)
    body += "latency,route=/checkout value=" + std::to_string(100 + 10 * i) + " " +
            std::to_string(t0 + i * minute) + "\n";
  k.write_ok(body, "ms");

  const std::string target =
      "/api/v1/kpis/" + id + "/series?" +
      form({{"start", fmt_seconds(t0)}, {"end", fmt_seconds(t0 + 9 * minute)}, {"step", "60s"}});
  INFO("GET " << target);
  const json::value data = api_data(k.get(target));
  INFO(json::serialize(data));
  CHECK(data.at("id") == json::string(id));
  CHECK(number_or_null(data.at("start")) == Approx(t0 / 1000.0));
  CHECK(number_or_null(data.at("end")) == Approx((t0 + 9 * minute) / 1000.0));
  CHECK(number_or_null(data.at("step")) == 60.0);

  // "last" over 1m at each step is the sample written at that minute.
  const auto& value = data.at("value").as_array();
  REQUIRE(value.size() == 10);
  for (int i = 0; i < 10; ++i) {
    const auto& p = value[static_cast<size_t>(i)].as_array();
    REQUIRE(p.size() == 2);
    CHECK(number_or_null(p[0]) == Approx((t0 + i * minute) / 1000.0));
    CHECK(number_or_null(p[1]) == 100.0 + 10 * i);
  }

  // The band at every step.
  const auto& thresholds = data.at("thresholds").as_object();
  for (auto [name, expected] :
       {std::pair{"target", 100.0}, std::pair{"warn", 200.0}, std::pair{"crit", 500.0}}) {
    INFO("threshold " << name);
    REQUIRE(thresholds.contains(name));
    const auto& pts = thresholds.at(name).as_array();
    CHECK(pts.size() == 10);
    for (const auto& p : pts) CHECK(number_or_null(p.as_array()[1]) == expected);
  }
  // No baseline configured: empty baseline series.
  CHECK(data.at("baseline").at("lower").as_array().empty());
  CHECK(data.at("baseline").at("upper").as_array().empty());

  // Defaults (the last 6 hours) include the recent points.
  const json::value recent = api_data(k.get("/api/v1/kpis/" + id + "/series"));
  CHECK_FALSE(recent.at("value").as_array().empty());

  // Unknown id: 404 not_found.
  const auto missing = k.get("/api/v1/kpis/nope/series");
  INFO(missing.body);
  CHECK(missing.status == 404);
  CHECK(missing.json().at("errorType") == "not_found");

  // Bad step: 400 bad_data.
  require_bad_data(k.get("/api/v1/kpis/" + id + "/series?step=abc"));
  require_bad_data(k.get("/api/v1/kpis/" + id + "/series?step=0"));
  CHECK(k.running());
}

TEST_CASE("kpi: a histogram_quantile KPI over line-protocol buckets breaches, alerts, opens an OKR",
          "[kpi][okr]") {
  // p95 checkout latency in ms, from a classic histogram written as line protocol (the
  // `bucket` field of `lat` is lat_bucket{le}).
  Kpid k({.config_toml =
              "[[kpi]]\nid = \"checkout_p95\"\nname = \"Checkout p95\"\nowner = \"payments\"\n"
              "unit = \"ms\"\ndirection = \"lower_is_better\"\n"
              "[kpi.value]\nexpr = '''histogram_quantile(0.95, sum by (le) "
              "(rate(lat_bucket{route=\"/checkout\"}[1m]))) * 1000'''\n"
              "[kpi.band]\ntarget = 100\nwarn = 250\ncrit = 500\n"
              "[[kpi.alert]]\ncondition = \"crit\"\n"
              "[kpi.okr]\nenabled = true\nafter = \"0s\"\nseverities = [\"critical\"]\n"
              "related = [\"checkout_rate\"]\n"
              "[[kpi]]\nid = \"checkout_rate\"\nowner = \"payments\"\nunit = \"/s\"\n"
              "direction = \"higher_is_better\"\n[kpi.value]\n"
              "expr = 'sum(rate(lat_bucket{route=\"/checkout\", le=\"+Inf\"}[1m]))'\n"
              "[kpi.band]\nwarn = 0.1\ncrit = 0.01\n"});
  k.start();
  const int64_t now = now_ms();
  // Cumulative bucket counts at one time; the /home route's slow requests must not count.
  auto buckets = [](int64_t t, std::initializer_list<std::pair<const char*, int>> counts) {
    std::string lines;
    for (const auto& [le, n] : counts) {
      lines += std::string("lat,route=/checkout,le=") + le + " bucket=" + std::to_string(n) + "i " +
               std::to_string(t) + "\n";
      lines += std::string("lat,route=/home,le=") + le +
               " bucket=" + std::to_string(std::string_view(le) == "0.1" ? 0 : 9 * n) + "i " +
               std::to_string(t) + "\n";
    }
    return lines;
  };
  // Healthy: 100 requests, all within 0.1 s: the p95 interpolates to 95 ms in the first bucket.
  k.write_ok(buckets(now - 50'000, {{"0.1", 0}, {"0.25", 0}, {"0.5", 0}, {"1", 0}, {"+Inf", 0}}) +
                 buckets(now - 25'000,
                         {{"0.1", 100}, {"0.25", 100}, {"0.5", 100}, {"1", 100}, {"+Inf", 100}}),
             "ms");
  auto detail = [&] { return kpi_detail(k, "checkout_p95"); };
  CHECK(eventually([&] { return str(detail().at("status")) == "ok"; }, 10s, 100ms));
  CHECK(number_or_null(detail().at("value")).value_or(0) == Approx(95));
  CHECK(str(detail().at("query")).starts_with("histogram_quantile(0.95"));

  // Then 400 requests between 0.5 and 1 s: rank 475 of 500 falls in (0.5, 1], 375 of its 400,
  // so the p95 is 0.5 + 0.5 * 375 / 400 s (every bucket's rate extrapolated alike).
  k.write_ok(buckets(now, {{"0.1", 100}, {"0.25", 100}, {"0.5", 100}, {"1", 500}, {"+Inf", 500}}),
             "ms");
  const bool breached =
      eventually([&] { return str(detail().at("status")) == "crit"; }, 10s, 100ms);
  INFO(json::serialize(detail()));
  REQUIRE(breached);
  CHECK(number_or_null(detail().at("value")).value_or(0) == Approx(968.75));

  const json::array alerts = wait_for_items(k, "/api/v1/alerts?kpi=checkout_p95&state=firing", 1);
  const json::array okrs = wait_for_items(k, "/api/v1/okrs?kpi=checkout_p95", 1);
  INFO("alerts: " << json::serialize(alerts) << "\nokrs: " << json::serialize(okrs));
  REQUIRE(alerts.size() == 1);
  REQUIRE(okrs.size() == 1);
  CHECK(json_str(okrs[0], "state") == "draft");
  CHECK(json_str(okrs[0], "owner") == "payments");
  REQUIRE(okrs[0].at("alerts").as_array().size() == 1);
  CHECK(okrs[0].at("alerts").as_array()[0] == alerts[0].at("id"));
}

TEST_CASE(
    "kpi: --check-config refuses a value expression that cannot parse or yields several "
    "series",
    "[kpi][config]") {
  TempDir dir;
  const std::string main = dir.file("kpid.toml");
  const std::string text = R"([[kpi]]
id = "by_route"
direction = "lower_is_better"
[kpi.value]
expr = 'sum by (route) (rate(http_requests_total[5m]))'

[[kpi]]
id = "broken"
direction = "lower_is_better"
[kpi.value]
expr = 'sum(rate(http_requests_total[5m])'

[[kpi]]
id = "fine"
direction = "lower_is_better"
[kpi.value]
expr = 'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))'
)";
  write_file(main, text);
  const auto r = check_config(main);
  INFO(describe(r));
  CHECK(r.exit_code == 1);
  CHECK(has_line(r.err, main, line_of(text, "expr = 'sum by (route)"), "kpi.by_route.value.expr",
                 "can yield several series"));
  CHECK(has_line(r.err, main, line_of(text, "expr = 'sum(rate(http_requests_total[5m])'"),
                 "kpi.broken.value.expr", "invalid PromQL: 1:"));
  CHECK_FALSE(contains(r.err, "kpi.fine"));
}
