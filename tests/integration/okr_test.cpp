// OKR drafts end to end: a breaching KPI's firing alert opens a draft (objective, a key result
// moving the KPI to its target, guardrails from related KPIs, owner, quarter), the alert links
// to it (okr_url, okr.draft_opened to webhooks), people accept, dismiss, edit and check in
// through /api/v1/okrs, kpid scores it live (also in /metrics) and closes it as achieved once
// the KPI has been healthy for graduate_after; across a restart; config errors of [kpi.okr].
// Every receiver is a kpid::testing::RecordingReceiver on loopback.

#include <cstring>
#include <ctime>

#include <cmath>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"
#include "support/recording_receiver.h"

using namespace kpid_it;
namespace json = boost::json;
using kpid::testing::ReceivedRequest;
using kpid::testing::RecordingReceiver;

namespace {

constexpr const char* kExternalUrl = "http://kpid.example:9470";
const Headers kJson{{"Content-Type", "application/json"}};

// ---------------------------------------------------------------------------------------------
// Config

std::string alerting_toml(const std::string& extra = "") {
  return "[alerting]\nexternal_url = \"" + std::string(kExternalUrl) +
         "\"\nretry_initial = \"50ms\"\nretry_max = \"500ms\"\n" + extra;
}

std::string webhook_toml(const std::string& url) {
  return "[[receiver]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"" + url + "\"\n";
}

struct KpiSpec {
  std::string id;
  std::string name;
  std::string unit;
  std::string direction = "lower_is_better";
  std::string band;    // the [kpi.band] lines
  bool alert = false;  // a crit alert rule (for = 0)
  std::string okr;     // the [kpi.okr] lines; empty: no [kpi.okr]
  std::string owner = "payments";
};

std::string kpi_toml(const KpiSpec& k) {
  std::string t = "[[kpi]]\nid = \"" + k.id + "\"\nname = \"" + k.name + "\"\nowner = \"" +
                  k.owner + "\"\nunit = \"" + k.unit + "\"\ndirection = \"" + k.direction +
                  "\"\nstale_after = \"1h\"\n[kpi.value]\nselector = '" + k.id +
                  "'\nover_time = \"last\"\nwindow = \"1h\"\n[kpi.band]\n" + k.band;
  if (k.alert) t += "[[kpi.alert]]\ncondition = \"crit\"\n";
  if (!k.okr.empty()) t += "[kpi.okr]\n" + k.okr;
  return t;
}

// [kpi.okr] that opens at once and graduates after 3 s, guarded by `related`.
std::string okr_toml(const std::string& related = "\"err\"", const std::string& extra = "") {
  return "enabled = true\nafter = \"0s\"\nseverities = [\"critical\"]\nrelated = [" + related +
         "]\ngraduate_after = \"3s\"\n" + extra;
}

// The checkout latency KPI (target 200, warn 500, crit 800 ms) with OKRs, `id` as series.
KpiSpec latency(const std::string& id = "lat", const std::string& owner = "payments") {
  KpiSpec k;
  k.id = id;
  k.name = "Checkout p95 latency";
  k.unit = "ms";
  k.band = "target = 200\nwarn = 500\ncrit = 800\n";
  k.alert = true;
  k.okr = okr_toml();
  k.owner = owner;
  return k;
}

KpiSpec error_rate() {
  KpiSpec k;
  k.id = "err";
  k.name = "Error rate";
  k.unit = "%";
  k.band = "warn = 1\ncrit = 5\n";
  return k;
}

// alerting + (a webhook) + lat + err.
std::string loop_config(const std::string& hook_url = "") {
  return alerting_toml() + (hook_url.empty() ? "" : webhook_toml(hook_url)) + kpi_toml(latency()) +
         kpi_toml(error_rate());
}

// ---------------------------------------------------------------------------------------------
// JSON and API helpers

double jnum(const json::value* v) {
  if (v == nullptr) return std::nan("");
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return std::nan("");
}
double jnum(const json::value& o, std::string_view key) {
  return o.is_object() ? jnum(o.as_object().if_contains(key)) : std::nan("");
}

bool jbool(const json::value& o, std::string_view key) {
  const json::value* v = o.is_object() ? o.as_object().if_contains(key) : nullptr;
  return v != nullptr && v->is_bool() && v->as_bool();
}

// References into `o`: an object overload, so no temporary json::value is made from one.
const json::array& jarr(const json::object& o, std::string_view key) {
  static const json::array kEmpty;
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_array() ? v->as_array() : kEmpty;
}
const json::array& jarr(const json::value& o, std::string_view key) {
  static const json::array kEmpty;
  return o.is_object() ? jarr(o.as_object(), key) : kEmpty;
}

std::vector<std::string> strings(const json::array& a) {
  std::vector<std::string> out;
  for (const auto& v : a) out.push_back(v.is_string() ? std::string(v.as_string()) : "?");
  return out;
}

// "YYYY-MM-DDTHH:MM:SS[.fff]Z" -> ms; -1 when it does not parse.
int64_t parse_rfc3339(const std::string& s) {
  std::tm tm{};
  int ms = 0;
  char frac[8] = {};
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
    return -1;
  }
  if (s.size() > 20 && s[19] == '.' && std::sscanf(s.c_str() + 20, "%3[0-9]", frac) == 1) {
    ms = std::atoi(frac);
    for (size_t n = std::strlen(frac); n < 3; ++n) ms *= 10;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

json::object get_okr(const Kpid& k, const std::string& id) {
  INFO("GET /api/v1/okrs/" << id);
  const json::value data = require_api_data(k.get("/api/v1/okrs/" + id));
  REQUIRE(data.is_object());
  return data.as_object();
}

json::array list_okrs(const Kpid& k, const std::string& query = "") {
  const std::string target = "/api/v1/okrs" + (query.empty() ? "" : "?" + query);
  INFO("GET " << target);
  const json::value data = require_api_data(k.get(target));
  REQUIRE(data.is_array());
  return data.as_array();
}

// The OKR once `pred` holds for it; REQUIREs that within `timeout`.
json::object wait_okr(const Kpid& k, const std::string& id,
                      const std::function<bool(const json::object&)>& pred, const std::string& what,
                      std::chrono::milliseconds timeout = 6s) {
  json::object last;
  const bool ok = eventually(
      [&] {
        const HttpResponse r = k.get("/api/v1/okrs/" + id);
        if (r.status != 200) return false;
        last = r.json().at("data").as_object();
        return pred(last);
      },
      timeout, 50ms);
  INFO("waiting for OKR " << id << ": " << what << "; last: " << json::serialize(last));
  REQUIRE(ok);
  return last;
}

// The only OKR of `kpi`, once there is one.
json::object wait_only_okr(const Kpid& k, const std::string& kpi,
                           std::chrono::milliseconds timeout = 6s) {
  json::array last;
  const bool ok = eventually(
      [&] {
        last = list_okrs(k, "kpi=" + kpi);
        return !last.empty();
      },
      timeout, 50ms);
  INFO("waiting for an OKR of " << kpi << "; GET /api/v1/okrs?kpi=" << kpi << ": "
                                << json::serialize(last));
  REQUIRE(ok);
  REQUIRE(last.size() == 1);
  return last[0].as_object();
}

// The only alert of `kpi` in `state`, once it is (of possibly several alerts of the KPI).
json::object wait_alert(const Kpid& k, const std::string& kpi, const std::string& state,
                        std::chrono::milliseconds timeout = 5s) {
  json::array last;
  json::object found;
  const bool ok = eventually(
      [&] {
        last = get_alerts(k, "kpi=" + kpi + "&state=" + state);
        if (last.size() != 1) return false;
        found = last[0].as_object();
        return true;
      },
      timeout, 25ms);
  INFO("waiting for an alert of " << kpi << " to be " << state << "; got "
                                  << json::serialize(last));
  REQUIRE(ok);
  return found;
}

const json::object& key_result(const json::object& okr, const std::string& id) {
  for (const auto& kr : jarr(okr, "key_results")) {
    if (json_str(kr, "id") == id) return kr.as_object();
  }
  FAIL("OKR " << json_str(okr, "id") << " has no key result " << id << ": "
              << json::serialize(okr));
  throw std::logic_error("unreachable");
}

std::vector<std::string> kr_ids(const json::object& okr) {
  std::vector<std::string> ids;
  for (const auto& kr : jarr(okr, "key_results")) ids.push_back(json_str(kr, "id"));
  return ids;
}

// Whether a history line by `author` contains `text`.
bool has_history(const json::object& okr, const std::string& author, const std::string& text) {
  for (const auto& h : jarr(okr, "history")) {
    if (json_str(h, "author") == author && contains(json_str(h, "what"), text) &&
        !json_str(h, "at").empty()) {
      return true;
    }
  }
  return false;
}

HttpResponse okr_action(const Kpid& k, const std::string& id, const std::string& action,
                        std::string_view body) {
  return k.post("/api/v1/okrs/" + id + "/" + action, body, kJson);
}

HttpResponse okr_patch(const Kpid& k, const std::string& id, std::string_view body) {
  return http_request(k.http_port(), "PATCH", "/api/v1/okrs/" + id, body, kJson);
}

std::string okr_url(const std::string& id) {
  return std::string(kExternalUrl) + "/api/v1/okrs/" + id;
}

std::string annotation(const json::value& alert, const std::string& name) {
  const json::value* a = alert.is_object() ? alert.as_object().if_contains("annotations") : nullptr;
  return a != nullptr ? json_str(*a, name) : std::string();
}

std::string header(const ReceivedRequest& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string() : it->second;
}

std::string describe(const std::vector<ReceivedRequest>& requests) {
  std::ostringstream out;
  out << requests.size() << " request(s)";
  for (const auto& r : requests) {
    out << "\n  " << r.method << " " << r.target << " event=" << header(r, "x-kpid-event")
        << "\n    " << tail(r.body, 1500);
  }
  return out.str();
}

std::vector<ReceivedRequest> with_event(const RecordingReceiver& hook, const std::string& event) {
  std::vector<ReceivedRequest> out;
  for (const auto& r : hook.requests()) {
    if (header(r, "x-kpid-event") == event) out.push_back(r);
  }
  return out;
}

std::optional<double> okr_metric(const Kpid& k, const char* name,
                                 const std::map<std::string, std::string>& labels) {
  return metric_value(k.metrics(), name, labels);
}

// The first day of the UTC quarter `offset` quarters from the current one, "YYYY-MM-01".
std::string quarter_day(int offset) {
  const std::time_t t = static_cast<std::time_t>(now_ms() / 1000);
  std::tm g{};
  gmtime_r(&t, &g);
  int month = g.tm_mon / 3 * 3 + offset * 3;  // 0-based
  int year = g.tm_year + 1900 + month / 12;
  month %= 12;
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-01", year, month + 1);
  return buffer;
}

// Breaches lat (after healthy values of lat and err) and returns {OKR, alert} once the draft is
// open.
std::pair<json::object, json::object> breach_to_draft(const Kpid& k, double value = 870) {
  write_value_now(k, "err", 0.5);
  write_value_now(k, "lat", value);
  const json::object alert = wait_alert(k, "lat", "firing");
  const json::object okr = wait_only_okr(k, "lat");
  return {okr, alert};
}

}  // namespace

TEST_CASE("okr: a breach opens a draft that is accepted, scored and achieved", "[okr]") {
  RecordingReceiver hook;
  Kpid k({.config_toml = loop_config(hook.url() + "/hook")});
  k.start();

  // Healthy: no OKR.
  write_value_now(k, "err", 0.5);
  write_value_now(k, "lat", 300);
  std::this_thread::sleep_for(1200ms);
  CHECK(list_okrs(k).empty());
  CHECK(get_alerts(k).empty());

  // Breach: the alert fires, the planner opens a draft.
  write_value_now(k, "lat", 870);
  const json::object alert = wait_alert(k, "lat", "firing");
  const std::string alert_id = json_str(alert, "id");
  const json::object draft = wait_only_okr(k, "lat");
  const std::string id = json_str(draft, "id");
  INFO("draft: " << json::serialize(draft));
  REQUIRE_FALSE(id.empty());
  CHECK(json_str(draft, "kpi") == "lat");
  CHECK(json_str(draft, "state") == "draft");
  CHECK(draft.at("outcome").is_null());
  CHECK(json_str(draft, "objective") == "Restore Checkout p95 latency to its healthy range");
  CHECK(json_str(draft, "owner") == "payments");
  CHECK(json_str(draft, "url") == okr_url(id));
  CHECK(strings(jarr(draft, "alerts")) == std::vector<std::string>{alert_id});
  CHECK(jarr(draft, "warnings").empty());
  CHECK_FALSE(json_str(draft, "created_at").empty());
  CHECK(draft.at("accepted_at").is_null());
  CHECK(draft.at("closed_at").is_null());
  CHECK(kr_ids(draft) == std::vector<std::string>{"kr1", "kr2"});
  {
    const json::object& kr1 = key_result(draft, "kr1");
    CHECK(json_str(kr1, "kind") == "kpi");
    CHECK(json_str(kr1, "kpi") == "lat");
    CHECK(json_str(kr1, "description") == "Reduce Checkout p95 latency from 870 ms to 200 ms");
    CHECK(jnum(kr1, "start") == 870);
    CHECK(jnum(kr1, "target") == 200);
    CHECK(json_str(kr1, "unit") == "ms");
    CHECK(json_str(kr1, "direction") == "decrease");
    CHECK(jnum(kr1, "current") == 870);
    CHECK(jnum(kr1, "progress") == 0);
    CHECK_FALSE(jbool(kr1, "met"));
    const json::object& kr2 = key_result(draft, "kr2");
    CHECK(json_str(kr2, "kind") == "guardrail");
    CHECK(json_str(kr2, "kpi") == "err");
    CHECK(json_str(kr2, "description") == "Keep Error rate below 1 %");
    CHECK(json_str(kr2, "direction") == "stay_below");
    CHECK(jnum(kr2, "target") == 1);
    CHECK(json_str(kr2, "unit") == "%");
    CHECK(jnum(kr2, "current") == 0.5);
    CHECK(jnum(kr2, "progress") == 1);
    CHECK(jbool(kr2, "met"));
  }
  CHECK(jnum(draft, "score") == Approx(0.5));
  CHECK(json_str(draft, "grade") == "yellow");
  // The current UTC quarter.
  const std::string period_start = json_str(draft.at("period"), "start");
  const std::string period_end = json_str(draft.at("period"), "end");
  CHECK(period_start.rfind(quarter_day(0) + "T00:00:00", 0) == 0);
  CHECK(period_end.rfind(quarter_day(1) + "T00:00:00", 0) == 0);
  REQUIRE(jarr(draft, "history").size() == 1);
  CHECK(has_history(draft, "kpid", "draft opened from alert " + alert_id));

  // The alert links to it; webhooks hear of it.
  CHECK(annotation(get_alert_detail(k, alert_id), "okr_url") == okr_url(id));
  {
    REQUIRE(eventually([&] { return !with_event(hook, "okr.draft_opened").empty(); }, 10s));
    const auto opened = with_event(hook, "okr.draft_opened");
    INFO(describe(hook.requests()));
    REQUIRE(opened.size() == 1);
    CHECK(opened[0].target == "/hook");
    json::value body;
    REQUIRE_NOTHROW(body = json::parse(opened[0].body));
    CHECK(json_str(body, "event") == "okr.draft_opened");
    REQUIRE(body.at("alert").is_object());
    REQUIRE(body.at("okr").is_object());
    CHECK(json_str(body.at("alert"), "id") == alert_id);
    CHECK(json_str(body.at("okr"), "id") == id);
    CHECK(json_str(body.at("okr"), "state") == "draft");
    CHECK(json_str(body.at("okr"), "url") == okr_url(id));
    CHECK(json_str(body.at("okr"), "objective") == json_str(draft, "objective"));
  }
  // Listed by state, owner, kpi and period.
  CHECK(list_okrs(k, "state=draft").size() == 1);
  CHECK(list_okrs(k, "state=active").empty());
  CHECK(list_okrs(k, "owner=payments").size() == 1);
  CHECK(list_okrs(k, "owner=growth").empty());
  CHECK(list_okrs(k, "period=" + fmt_seconds(now_ms())).size() == 1);
  CHECK(list_okrs(k, "period=" + url_encode(fmt_rfc3339(now_ms()))).size() == 1);
  CHECK(list_okrs(k, "period=" + fmt_seconds(now_ms() - 400LL * 86'400'000)).empty());
  require_error(k.get("/api/v1/okrs?state=sideways"), 400, "bad_data");
  require_error(k.get("/api/v1/okrs?period=yesterday"), 400, "bad_data");
  require_error(k.get("/api/v1/okrs/999"), 404, "not_found");

  // Accept.
  require_error(okr_action(k, id, "accept", R"({"comment":"no author"})"), 400, "bad_data");
  const json::value accepted =
      require_api_data(okr_action(k, id, "accept", R"({"author":"alice"})"));
  CHECK(json_str(accepted, "state") == "active");
  CHECK_FALSE(json_str(accepted, "accepted_at").empty());
  CHECK(has_history(accepted.as_object(), "alice", "accepted"));
  require_error(okr_action(k, id, "accept", R"({"author":"alice"})"), 409, "conflict");
  require_error(okr_action(k, id, "dismiss", R"({"author":"alice"})"), 409, "conflict");

  // Halfway there (still in warn): kr1 progress, score and /metrics follow the live value.
  write_value_now(k, "lat", 550);
  const json::object better = wait_okr(
      k, id, [](const json::object& o) { return jnum(key_result(o, "kr1"), "current") == 550; },
      "kr1 current 550");
  const double expected_kr1 = (550.0 - 870) / (200 - 870);
  CHECK(jnum(key_result(better, "kr1"), "progress") == Approx(expected_kr1));
  CHECK_FALSE(jbool(key_result(better, "kr1"), "met"));
  CHECK(jnum(better, "score") == Approx((expected_kr1 + 1) / 2));
  CHECK(jnum(better, "score") > jnum(draft, "score"));
  CHECK(json_str(better, "grade") == "green");
  CHECK(json_str(better, "state") == "active");
  {
    std::optional<double> score, kr1;
    CHECK(eventually(
        [&] {
          score = okr_metric(k, "kpid_okr_score", {{"okr", id}, {"owner", "payments"}});
          kr1 = okr_metric(k, "kpid_okr_key_result_progress", {{"okr", id}, {"kr", "kr1"}});
          return score && kr1 && std::abs(*kr1 - expected_kr1) < 1e-6;
        },
        3s));
    INFO("metrics:\n" << k.metrics());
    REQUIRE(score.has_value());
    CHECK(*score == Approx((expected_kr1 + 1) / 2));
    CHECK(okr_metric(k, "kpid_okr_key_result_progress", {{"okr", id}, {"kr", "kr2"}}) == 1.0);
  }

  // Healthy and every key result met: achieved once graduate_after (3 s) has passed, not before.
  const auto healthy = Clock::now();
  write_value_now(k, "lat", 180);
  wait_alert(k, "lat", "resolved");
  const json::object met = wait_okr(
      k, id,
      [](const json::object& o) {
        return !o.at("healthy_since").is_null() && jnum(key_result(o, "kr1"), "current") == 180;
      },
      "healthy_since set, kr1 current 180");
  CHECK(jbool(key_result(met, "kr1"), "met"));
  std::this_thread::sleep_for(1500ms);
  if (Clock::now() - healthy < 2800ms) {
    CHECK(json_str(get_okr(k, id), "state") == "active");
  }
  const json::object achieved = wait_okr(
      k, id, [](const json::object& o) { return json_str(o, "state") != "active"; },
      "closed after graduate_after", 8s);
  INFO("achieved: " << json::serialize(achieved));
  CHECK(Clock::now() - healthy >= 2900ms);
  CHECK(json_str(achieved, "state") == "closed");
  CHECK(json_str(achieved, "outcome") == "achieved");
  CHECK(json_str(achieved, "grade") == "green");
  CHECK(jnum(achieved, "score") == Approx(1));
  CHECK(jnum(key_result(achieved, "kr1"), "progress") == 1);
  const int64_t closed_at = parse_rfc3339(json_str(achieved, "closed_at"));
  const int64_t healthy_since = parse_rfc3339(json_str(achieved, "healthy_since"));
  CHECK(closed_at - healthy_since >= 3000);
  CHECK(has_history(achieved, "kpid", "achieved"));
  CHECK(list_okrs(k, "state=closed").size() == 1);
  // Closed: no more edits, gone from /metrics.
  require_error(okr_patch(k, id, R"({"author":"bob","objective":"again"})"), 409, "conflict");
  require_error(okr_action(k, id, "close", R"({"author":"bob"})"), 409, "conflict");
  CHECK(eventually(
      [&] {
        return !okr_metric(k, "kpid_okr_score", {{"okr", id}}).has_value();
      },
      3s));
  CHECK_FALSE(okr_metric(k, "kpid_okr_key_result_progress", {{"okr", id}}).has_value());
}

TEST_CASE("okr: a second breach of the KPI is linked to its open OKR", "[okr]") {
  RecordingReceiver hook;
  Kpid k({.config_toml = loop_config(hook.url() + "/hook")});
  k.start();
  const auto [draft, first] = breach_to_draft(k);
  const std::string id = json_str(draft, "id");
  const std::string first_id = json_str(first, "id");

  write_value_now(k, "lat", 300);
  wait_alert(k, "lat", "resolved");
  write_value_now(k, "lat", 900);
  const std::string second_id = json_str(wait_alert(k, "lat", "firing"), "id");
  REQUIRE(second_id != first_id);

  const json::object linked = wait_okr(
      k, id, [](const json::object& o) { return jarr(o, "alerts").size() == 2; },
      "the second alert linked");
  CHECK(strings(jarr(linked, "alerts")) == std::vector<std::string>{first_id, second_id});
  CHECK(has_history(linked, "kpid", "linked alert " + second_id));
  CHECK(json_str(linked, "state") == "draft");
  // The draft's start stays where it was opened.
  CHECK(jnum(key_result(linked, "kr1"), "start") == 870);
  CHECK(annotation(get_alert_detail(k, second_id), "okr_url") == okr_url(id));
  CHECK(annotation(get_alert_detail(k, first_id), "okr_url") == okr_url(id));

  std::this_thread::sleep_for(1500ms);  // no second draft follows
  const json::array all = list_okrs(k);
  INFO("GET /api/v1/okrs: " << json::serialize(all));
  CHECK(all.size() == 1);
  REQUIRE(hook.wait_for(3, 10s));  // two alert.firing, one okr.draft_opened (+ resolved)
  std::this_thread::sleep_for(500ms);
  INFO(describe(hook.requests()));
  CHECK(with_event(hook, "okr.draft_opened").size() == 1);
  CHECK(with_event(hook, "alert.firing").size() == 2);
}

TEST_CASE("okr: a dismissed draft is not reopened by its alert but a new breach opens a new one",
          "[okr]") {
  Kpid k({.config_toml = loop_config()});
  k.start();
  const auto [draft, first] = breach_to_draft(k);
  const std::string id = json_str(draft, "id");

  // Dismissed while its alert still fires.
  require_error(okr_action(k, "999", "dismiss", R"({"author":"carol"})"), 404, "not_found");
  const json::value dismissed = require_api_data(
      okr_action(k, id, "dismiss",
                 R"({"author":"carol","comment":"a one-off: the bad deploy is rolled back"})"));
  INFO("dismissed: " << json::serialize(dismissed));
  CHECK(json_str(dismissed, "state") == "dismissed");
  CHECK_FALSE(json_str(dismissed, "closed_at").empty());
  CHECK(has_history(dismissed.as_object(), "carol", "a one-off: the bad deploy is rolled back"));
  require_error(okr_action(k, id, "accept", R"({"author":"carol"})"), 409, "conflict");
  require_error(okr_action(k, id, "dismiss", R"({"author":"carol"})"), 409, "conflict");
  require_error(okr_action(k, id, "close", R"({"author":"carol"})"), 409, "conflict");
  require_error(okr_patch(k, id, R"({"author":"carol","objective":"x"})"), 409, "conflict");
  require_error(okr_action(k, id, "checkins", R"({"author":"carol","kr":"kr1","value":1})"), 409,
                "conflict");
  CHECK(eventually(
      [&] {
        return !okr_metric(k, "kpid_okr_score", {{"okr", id}}).has_value();
      },
      3s));
  // The alert that led to it does not open another draft.
  std::this_thread::sleep_for(1500ms);
  CHECK(json_str(wait_alert(k, "lat", "firing"), "id") == json_str(first, "id"));
  CHECK(list_okrs(k).size() == 1);
  CHECK(json_str(get_okr(k, id), "state") == "dismissed");

  // A new breach: a new draft, from the new alert only.
  write_value_now(k, "lat", 300);
  wait_alert(k, "lat", "resolved");
  write_value_now(k, "lat", 880);
  const std::string second_alert = json_str(wait_alert(k, "lat", "firing"), "id");
  json::array all;
  REQUIRE(eventually([&] { return (all = list_okrs(k)).size() == 2; }, 6s));
  INFO("GET /api/v1/okrs: " << json::serialize(all));
  const std::string new_id = json_str(all[0], "id");  // newest first
  CHECK(new_id != id);
  CHECK(json_str(all[1], "id") == id);
  CHECK(json_str(all[0], "state") == "draft");
  CHECK(strings(jarr(all[0], "alerts")) == std::vector<std::string>{second_alert});
  CHECK(jnum(key_result(all[0].as_object(), "kr1"), "start") == 880);
  CHECK(strings(jarr(get_okr(k, id), "alerts")) == std::vector<std::string>{json_str(first, "id")});
  CHECK(annotation(get_alert_detail(k, second_alert), "okr_url") == okr_url(new_id));
  const json::array dismissed_list = list_okrs(k, "state=dismissed");
  REQUIRE(dismissed_list.size() == 1);
  CHECK(json_str(dismissed_list[0], "id") == id);
  const json::array drafts = list_okrs(k, "state=draft&kpi=lat");
  REQUIRE(drafts.size() == 1);
  CHECK(json_str(drafts[0], "id") == new_id);
}

TEST_CASE("okr: edits and check-ins are recorded in the history with their author", "[okr]") {
  Kpid k({.config_toml = loop_config()});
  k.start();
  const auto [draft, alert] = breach_to_draft(k);
  const std::string id = json_str(draft, "id");

  const json::value edited = require_api_data(okr_patch(k, id, R"({
      "author": "bob",
      "objective": "Make checkout fast again",
      "key_results": {
        "change": [{"id": "kr1", "target": 150}],
        "add": [{"description": "Ship the cache", "target": 1, "direction": "increase",
                 "start": 0, "unit": ""}],
        "remove": ["kr2"]}})"));
  INFO("edited: " << json::serialize(edited));
  const json::object& e = edited.as_object();
  CHECK(json_str(e, "objective") == "Make checkout fast again");
  CHECK(kr_ids(e) == std::vector<std::string>{"kr1", "kr3"});
  CHECK(jnum(key_result(e, "kr1"), "target") == 150);
  const json::object& kr3 = key_result(e, "kr3");
  CHECK(json_str(kr3, "kind") == "manual");
  CHECK(json_str(kr3, "description") == "Ship the cache");
  CHECK(json_str(kr3, "direction") == "increase");
  CHECK(jnum(kr3, "start") == 0);
  CHECK(jnum(kr3, "target") == 1);
  CHECK(jnum(kr3, "progress") == 0);
  CHECK(has_history(e, "bob",
                    "objective: \"Restore Checkout p95 latency to its healthy range\" -> "
                    "\"Make checkout fast again\""));
  CHECK(has_history(e, "bob", "kr1 target: 200 -> 150"));
  CHECK(has_history(e, "bob", "added kr3 (Ship the cache)"));
  CHECK(has_history(e, "bob", "removed kr2 (Keep Error rate below 1 %)"));
  CHECK(jarr(e, "history").size() == 5);
  CHECK(json_str(e, "state") == "draft");

  // Period end and owner.
  const json::value moved =
      require_api_data(okr_patch(k, id,
                                 R"({"author":"dana","owner":"checkout-team","period":{"end":")" +
                                     quarter_day(2) + R"(T00:00:00Z"}})"));
  CHECK(json_str(moved, "owner") == "checkout-team");
  CHECK(json_str(moved.at("period"), "end").rfind(quarter_day(2) + "T00:00:00", 0) == 0);
  CHECK(has_history(moved.as_object(), "dana", "owner: payments -> checkout-team"));
  CHECK(has_history(moved.as_object(), "dana", "period end"));
  CHECK(list_okrs(k, "owner=checkout-team").size() == 1);

  // Fewer than 2 key results: refused, nothing changed.
  {
    const HttpResponse r = okr_patch(k, id, R"({"author":"bob","key_results":{"remove":["kr3"]}})");
    require_error(r, 400, "bad_data");
    CHECK(contains(r.body, "key_results"));
    const json::object after = get_okr(k, id);
    CHECK(kr_ids(after) == std::vector<std::string>{"kr1", "kr3"});
    CHECK(jarr(after, "history").size() == jarr(moved, "history").size());
  }
  {
    const HttpResponse r = okr_patch(
        k, id,
        R"({"author":"bob","objective":"half done","key_results":{"remove":["kr1","kr3"]}})");
    require_error(r, 400, "bad_data");
    CHECK(json_str(get_okr(k, id), "objective") == "Make checkout fast again");
  }
  {
    const HttpResponse r = okr_patch(k, id, R"({"objective":"who am I"})");
    require_error(r, 400, "bad_data");
    CHECK(contains(r.body, "author"));
  }
  require_error(
      okr_patch(k, id, R"({"author":"bob","key_results":{"change":[{"id":"kr9","target":1}]}})"),
      400, "bad_data");
  require_error(okr_patch(k, "999", R"({"author":"bob","objective":"x"})"), 404, "not_found");

  // Check-ins: manual key results only.
  const json::value checked = require_api_data(okr_action(
      k, id, "checkins",
      R"({"author":"erin","kr":"kr3","value":0.5,"note":"cache in staging","confidence":0.8})"));
  INFO("after the check-in: " << json::serialize(checked));
  {
    const json::object& kr = key_result(checked.as_object(), "kr3");
    CHECK(jnum(kr, "current") == 0.5);
    CHECK(jnum(kr, "progress") == Approx(0.5));
    CHECK_FALSE(jbool(kr, "met"));
    const json::array& checkins = jarr(kr, "checkins");
    REQUIRE(checkins.size() == 1);
    CHECK(json_str(checkins[0], "author") == "erin");
    CHECK(json_str(checkins[0], "note") == "cache in staging");
    CHECK(jnum(checkins[0], "value") == 0.5);
    CHECK(jnum(checkins[0], "confidence") == Approx(0.8));
    CHECK(has_history(checked.as_object(), "erin", "kr3"));
    // kr1 still at its start (progress 0), kr3 halfway.
    CHECK(jnum(checked, "score") == Approx(0.25));
  }
  {
    const HttpResponse r =
        okr_action(k, id, "checkins", R"({"author":"erin","kr":"kr1","value":100})");
    require_error(r, 400, "bad_data");
    CHECK(contains(r.body, "kr1"));
  }
  require_error(okr_action(k, id, "checkins", R"({"author":"erin","kr":"kr9","value":1})"), 400,
                "bad_data");
  require_error(
      okr_action(k, id, "checkins", R"({"author":"erin","kr":"kr3","value":1,"confidence":2})"),
      400, "bad_data");
  require_error(okr_action(k, id, "checkins", R"({"author":"erin","kr":"kr3"})"), 400, "bad_data");
  CHECK(eventually(
      [&] {
        return okr_metric(k, "kpid_okr_key_result_progress", {{"okr", id}, {"kr", "kr3"}}) == 0.5;
      },
      3s));
  CHECK_FALSE(
      okr_metric(k, "kpid_okr_key_result_progress", {{"okr", id}, {"kr", "kr2"}}).has_value());

  // Markdown for planning documents.
  const HttpResponse md = k.get("/api/v1/okrs/" + id + "?format=markdown");
  INFO("markdown:\n" << md.body);
  REQUIRE(md.status == 200);
  CHECK(contains(md.header("content-type"), "text/markdown"));
  CHECK(contains(md.body, "## Objective: Make checkout fast again"));
  CHECK(contains(md.body, "| Key result |"));
  CHECK(contains(md.body, "Ship the cache"));
  CHECK(contains(md.body, "Checkout p95 latency"));
  CHECK(contains(md.body, "checkout-team"));
  CHECK_FALSE(contains(md.body, "Keep Error rate"));
  CHECK(contains(md.body, "50%"));
  require_error(k.get("/api/v1/okrs/" + id + "?format=yaml"), 400, "bad_data");

  // Closed by hand: missed (kr1 not met) unless told otherwise.
  const json::value closed = require_api_data(okr_action(k, id, "close", R"({"author":"bob"})"));
  CHECK(json_str(closed, "state") == "closed");
  CHECK(json_str(closed, "outcome") == "missed");
  CHECK(has_history(closed.as_object(), "bob", "missed"));
}

TEST_CASE("okr: key results of a higher-is-better KPI increase and guardrails hold or break",
          "[okr]") {
  KpiSpec conversion = latency("conv");
  conversion.name = "Checkout conversion";
  conversion.unit = "%";
  conversion.direction = "higher_is_better";
  conversion.band = "target = 4\nwarn = 3\ncrit = 2\n";
  conversion.okr = okr_toml("\"err\", \"aov\"");
  KpiSpec order_value = error_rate();
  order_value.id = "aov";
  order_value.name = "Average order value";
  order_value.unit = "EUR";
  order_value.direction = "higher_is_better";
  order_value.band = "warn = 50\ncrit = 30\n";
  Kpid k({.config_toml = alerting_toml() + kpi_toml(conversion) + kpi_toml(error_rate()) +
                         kpi_toml(order_value)});
  k.start();
  write_value_now(k, "err", 0.5);
  write_value_now(k, "aov", 60);
  write_value_now(k, "conv", 3.5);
  write_value_now(k, "conv", 1.5);
  wait_alert(k, "conv", "firing");
  const json::object draft = wait_only_okr(k, "conv");
  const std::string id = json_str(draft, "id");
  INFO("draft: " << json::serialize(draft));
  CHECK(kr_ids(draft) == std::vector<std::string>{"kr1", "kr2", "kr3"});
  const json::object& kr1 = key_result(draft, "kr1");
  CHECK(json_str(kr1, "direction") == "increase");
  CHECK(jnum(kr1, "start") == 1.5);
  CHECK(jnum(kr1, "target") == 4);
  CHECK(json_str(kr1, "description") == "Increase Checkout conversion from 1.5 % to 4 %");
  const json::object& err = key_result(draft, "kr2");
  CHECK(json_str(err, "direction") == "stay_below");
  CHECK(jnum(err, "target") == 1);
  const json::object& aov = key_result(draft, "kr3");
  CHECK(json_str(aov, "kpi") == "aov");
  CHECK(json_str(aov, "direction") == "stay_above");
  CHECK(jnum(aov, "target") == 50);
  CHECK(json_str(aov, "description") == "Keep Average order value above 50 EUR");
  // 2/3 rounds to 0.7 first: green.
  CHECK(jnum(draft, "score") == Approx(2.0 / 3));
  CHECK(json_str(draft, "grade") == "green");

  auto progress_of = [&](const json::object& o, const char* kr) {
    return jnum(key_result(o, kr), "progress");
  };
  write_value_now(k, "conv", 2.75);
  json::object o = wait_okr(
      k, id, [](const json::object& x) { return jnum(key_result(x, "kr1"), "current") == 2.75; },
      "kr1 current 2.75");
  CHECK(progress_of(o, "kr1") == Approx(0.5));
  CHECK(jnum(o, "score") == Approx(2.5 / 3));

  // The error rate above its warn threshold: that guardrail is broken.
  write_value_now(k, "err", 2);
  o = wait_okr(
      k, id, [](const json::object& x) { return jnum(key_result(x, "kr2"), "current") == 2; },
      "kr2 current 2");
  CHECK(progress_of(o, "kr2") == 0);
  CHECK_FALSE(jbool(key_result(o, "kr2"), "met"));
  CHECK(progress_of(o, "kr3") == 1);
  CHECK(jnum(o, "score") == Approx(0.5));
  CHECK(json_str(o, "grade") == "yellow");
  CHECK(eventually(
      [&] {
        return okr_metric(k, "kpid_okr_key_result_progress", {{"okr", id}, {"kr", "kr2"}}) == 0.0;
      },
      3s));

  // The order value below its warn threshold: broken too.
  write_value_now(k, "aov", 40);
  o = wait_okr(
      k, id, [](const json::object& x) { return jnum(key_result(x, "kr3"), "current") == 40; },
      "kr3 current 40");
  CHECK(progress_of(o, "kr3") == 0);
  CHECK_FALSE(jbool(key_result(o, "kr3"), "met"));
  CHECK(jnum(o, "score") == Approx(0.5 / 3));
  CHECK(json_str(o, "grade") == "red");

  // Both held again.
  write_value_now(k, "err", 0.8);
  write_value_now(k, "aov", 55);
  o = wait_okr(
      k, id,
      [](const json::object& x) {
        return jnum(key_result(x, "kr2"), "current") == 0.8 &&
               jnum(key_result(x, "kr3"), "current") == 55;
      },
      "kr2 current 0.8, kr3 current 55");
  CHECK(progress_of(o, "kr2") == 1);
  CHECK(jbool(key_result(o, "kr2"), "met"));
  CHECK(progress_of(o, "kr3") == 1);
  CHECK(jbool(key_result(o, "kr3"), "met"));

  // Past the target: clamped at 1.
  write_value_now(k, "conv", 5);
  o = wait_okr(
      k, id, [](const json::object& x) { return jnum(key_result(x, "kr1"), "current") == 5; },
      "kr1 current 5");
  CHECK(progress_of(o, "kr1") == 1);
  CHECK(jbool(key_result(o, "kr1"), "met"));
  CHECK(jnum(o, "score") == Approx(1));
  // A draft does not graduate, however healthy.
  std::this_thread::sleep_for(4s);
  CHECK(json_str(get_okr(k, id), "state") == "draft");
}

TEST_CASE("okr: an accepted OKR survives a restart and is achieved afterwards", "[okr]") {
  RecordingReceiver hook;
  Kpid k({.config_toml = loop_config(hook.url() + "/hook")});
  k.start();
  const auto [draft, alert] = breach_to_draft(k);
  const std::string id = json_str(draft, "id");
  const std::string alert_id = json_str(alert, "id");
  require_api_data(okr_action(k, id, "accept", R"({"author":"alice"})"));
  require_api_data(okr_patch(k, id, R"({"author":"bob","key_results":{"add":[
      {"description":"Ship the cache","target":1,"direction":"increase"}]}})"));
  require_api_data(
      okr_action(k, id, "checkins", R"({"author":"erin","kr":"kr3","value":1,"note":"shipped"})"));
  const json::object before = get_okr(k, id);
  REQUIRE(eventually([&] { return !with_event(hook, "okr.draft_opened").empty(); }, 10s));

  CHECK(k.stop() == 0);
  k.start();
  const json::object after = get_okr(k, id);
  INFO("before the restart: " << json::serialize(before));
  INFO("after the restart: " << json::serialize(after));
  CHECK(json_str(after, "state") == "active");
  CHECK(json_str(after, "objective") == json_str(before, "objective"));
  CHECK(json_str(after, "accepted_at") == json_str(before, "accepted_at"));
  CHECK(json_str(after, "created_at") == json_str(before, "created_at"));
  CHECK(after.at("period") == before.at("period"));
  CHECK(after.at("alerts") == before.at("alerts"));
  CHECK(after.at("history") == before.at("history"));
  REQUIRE(kr_ids(after) == kr_ids(before));
  for (const auto& kr : kr_ids(before)) {
    INFO("key result " << kr);
    const json::object& a = key_result(after, kr);
    const json::object& b = key_result(before, kr);
    for (const char* field :
         {"kind", "kpi", "description", "start", "target", "unit", "direction", "checkins"}) {
      INFO("field " << field);
      CHECK((a.if_contains(field) == nullptr) == (b.if_contains(field) == nullptr));
      if (a.if_contains(field) != nullptr && b.if_contains(field) != nullptr) {
        CHECK(a.at(field) == b.at(field));
      }
    }
  }
  CHECK(jnum(key_result(after, "kr3"), "progress") == 1);
  CHECK(annotation(get_alert_detail(k, alert_id), "okr_url") == okr_url(id));

  // Still breaching after the restart: nothing new opens.
  write_value_now(k, "lat", 860);
  std::this_thread::sleep_for(1500ms);
  CHECK(list_okrs(k).size() == 1);
  CHECK(strings(jarr(get_okr(k, id), "alerts")) == std::vector<std::string>{alert_id});

  // Then it heals: achieved after graduate_after.
  write_value_now(k, "err", 0.4);
  write_value_now(k, "lat", 190);
  wait_alert(k, "lat", "resolved");
  const json::object achieved = wait_okr(
      k, id, [](const json::object& o) { return json_str(o, "state") == "closed"; }, "achieved",
      10s);
  CHECK(json_str(achieved, "outcome") == "achieved");
  CHECK(json_str(achieved, "grade") == "green");
  std::this_thread::sleep_for(1200ms);
  const json::array all = list_okrs(k);
  INFO("GET /api/v1/okrs: " << json::serialize(all));
  CHECK(all.size() == 1);
  INFO(describe(hook.requests()));
  CHECK(with_event(hook, "okr.draft_opened").size() == 1);

  // And that survives a restart too, with the next OKR id not reused.
  CHECK(k.stop() == 0);
  k.start();
  CHECK(json_str(get_okr(k, id), "outcome") == "achieved");
  write_value_now(k, "lat", 950);
  json::array now_all;
  REQUIRE(eventually([&] { return (now_all = list_okrs(k)).size() == 2; }, 6s));
  CHECK(json_str(now_all[0], "id") != id);
  CHECK(json_str(now_all[0], "state") == "draft");
}

TEST_CASE("okr: --check-config names the key of [kpi.okr] errors", "[okr]") {
  TempDir dir;
  const std::string file = dir.file("kpid.toml");
  KpiSpec no_related = latency("a");
  no_related.okr = "after = \"0s\"\n";
  KpiSpec unknown_related = latency("b");
  unknown_related.okr = okr_toml("\"nope\"");
  KpiSpec bad_template = latency("c");
  bad_template.okr = okr_toml("\"err\"", "objective = \"Fix {{kpi.name}} by {{deadline}}\"\n");
  KpiSpec self_related = latency("d");
  self_related.okr = okr_toml("\"d\"");
  const std::string toml = kpi_toml(no_related) + kpi_toml(unknown_related) +
                           kpi_toml(bad_template) + kpi_toml(self_related) + kpi_toml(error_rate());
  write_file(file, toml);
  const CommandResult r = run_command(
      {kKpidBinary, "--config", file, "--check-config", "--data-dir", dir.file("d")}, {}, 15s);
  INFO("config:\n" << toml);
  INFO("exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 1);
  // "FILE:LINE:COL: KEY: message"
  auto has = [&](const std::string& key_pattern, const std::string& message_pattern) {
    const std::regex re("(^|\n)" +
                        std::regex_replace(file, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                        ":[0-9]+:[0-9]+: " + key_pattern + ": [^\n]*" + message_pattern);
    return std::regex_search(r.err, re);
  };
  CHECK(has(R"(kpi\.a\.okr\.related)", ""));
  CHECK(has(R"(kpi\.b\.okr\.related)", "nope"));
  CHECK(has(R"(kpi\.c\.okr\.objective)", "deadline"));
  CHECK(has(R"(kpi\.d\.okr\.related)", ""));
  CHECK(contains(r.err, "4 errors"));

  // Valid, it passes; a kpid with it refuses to start when broken.
  write_file(file,
             kpi_toml(latency()) + kpi_toml(error_rate()) + "[okr]\nmax_open_per_owner = 2\n");
  const CommandResult ok = run_command(
      {kKpidBinary, "--config", file, "--check-config", "--data-dir", dir.file("d")}, {}, 15s);
  INFO("valid config: exit " << ok.exit_code << "\nstdout:\n" << ok.out << "\nstderr:\n" << ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(contains(ok.out, "configuration OK"));
  write_file(file,
             kpi_toml(latency()) + kpi_toml(error_rate()) + "[okr]\nmax_open_per_owner = 0\n");
  const CommandResult zero = run_command(
      {kKpidBinary, "--config", file, "--check-config", "--data-dir", dir.file("d")}, {}, 15s);
  INFO("max_open_per_owner = 0: exit " << zero.exit_code << "\nstderr:\n" << zero.err);
  CHECK(zero.exit_code == 1);
  CHECK(contains(zero.err, "okr.max_open_per_owner"));
}

TEST_CASE("okr: a draft beyond max_open_per_owner carries a warning naming the owner", "[okr]") {
  KpiSpec other = latency("lat2");
  other.name = "Search p95 latency";
  Kpid k({.config_toml = "[okr]\nmax_open_per_owner = 1\n" + alerting_toml() + kpi_toml(latency()) +
                         kpi_toml(other) + kpi_toml(error_rate()) +
                         kpi_toml(latency("lat3", "growth"))});
  k.start();
  write_value_now(k, "err", 0.5);
  write_value_now(k, "lat", 870);
  const json::object first = wait_only_okr(k, "lat");
  write_value_now(k, "lat2", 990);
  const json::object second = wait_only_okr(k, "lat2");
  write_value_now(k, "lat3", 990);
  const json::object third = wait_only_okr(k, "lat3");
  INFO("first: " << json::serialize(first));
  INFO("second: " << json::serialize(second));
  INFO("third (another owner): " << json::serialize(third));
  CHECK(jarr(first, "warnings").empty());
  const json::array& warnings = jarr(second, "warnings");
  REQUIRE(warnings.size() == 1);
  REQUIRE(warnings[0].is_string());
  CHECK(contains(std::string(warnings[0].as_string()), "payments"));
  CHECK(json_str(second, "state") == "draft");
  CHECK(jarr(third, "warnings").empty());
  CHECK(list_okrs(k, "owner=payments").size() == 2);
  CHECK(list_okrs(k, "owner=growth").size() == 1);
  // The warning is part of the record: still there after a restart.
  CHECK(k.stop() == 0);
  k.start();
  CHECK(jarr(get_okr(k, json_str(second, "id")), "warnings").size() == 1);
}

TEST_CASE("okr: a draft waits until the breach has lasted `after`, and a short one opens none",
          "[okr]") {
  KpiSpec lat = latency();
  lat.okr = "after = \"3s\"\nrelated = [\"err\"]\n";
  Kpid k({.config_toml = alerting_toml() + kpi_toml(lat) + kpi_toml(error_rate())});
  k.start();
  write_value_now(k, "err", 0.5);
  write_value_now(k, "lat", 300);

  // A breach that is over within `after`: the alert fires and resolves, no draft.
  write_value_now(k, "lat", 870);
  wait_alert(k, "lat", "firing");
  std::this_thread::sleep_for(1s);
  write_value_now(k, "lat", 300);
  wait_alert(k, "lat", "resolved");
  std::this_thread::sleep_for(3s);
  CHECK(list_okrs(k).empty());

  // A sustained one: nothing before `after`, a draft once it has passed.
  write_value_now(k, "lat", 900);
  const auto fired = Clock::now();
  wait_alert(k, "lat", "firing");
  std::this_thread::sleep_for(1500ms);
  CHECK(list_okrs(k).empty());
  const json::object draft = wait_only_okr(k, "lat");
  CHECK(Clock::now() - fired >= 3s);
  CHECK(jnum(key_result(draft, "kr1"), "start") == 900);
}
