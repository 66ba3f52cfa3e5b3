// kill -9 at random moments under a mixed load, several rounds on one data dir: writers, query
// clients, a driver pushing two KPIs in and out of breach (alerts fire, are delivered to a
// webhook, open OKR drafts) and an admin acknowledging alerts and accepting, editing, closing
// and dismissing OKRs. After every restart:
// - each acknowledged sample is there exactly once with its value (as in crash_test.cpp);
// - each alert the API showed is still there, its state never went backwards, its clocks and
//   acknowledgement (2xx) are kept;
// - each OKR the API showed is still there with the same fields, every acknowledged action kept;
// - the webhook eventually gets every notification of what the API showed (firing, resolved,
//   acknowledged, okr.draft_opened), in outbox order; a notification is re-sent after a kill
//   only if it was the one in flight, with the same Idempotency-Key and the same body; no
//   alert is announced under two keys.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "harness.h"
#include "support/recording_receiver.h"

using namespace kpid_it;
namespace json = boost::json;
using kpid::testing::ReceivedRequest;
using kpid::testing::RecordingReceiver;

namespace {

constexpr int64_t kHour = 3'600'000;
constexpr int kWriters = 2;
constexpr int kSeriesPerWriter = 6;
constexpr int kQueryClients = 2;
const Headers kJson{{"Content-Type", "application/json"}};

// Two KPIs with crit alerts that fire and resolve within a fraction of a second; `lat` opens an
// OKR draft as soon as its alert fires and never graduates during the test.
std::string config_toml(const std::string& hook_url) {
  auto kpi = [](const std::string& id, const std::string& unit, const std::string& band) {
    return "[[kpi]]\nid = \"" + id + "\"\nname = \"" + id + "\"\nowner = \"payments\"\nunit = \"" +
           unit +
           "\"\ndirection = \"lower_is_better\"\nstale_after = \"1h\"\n"
           "[kpi.value]\nselector = '" +
           id +
           "'\nover_time = \"last\"\nwindow = \"1h\"\n"
           "[kpi.band]\n" +
           band + "[[kpi.alert]]\ncondition = \"crit\"\nfor = \"200ms\"\nclear_for = \"200ms\"\n";
  };
  return "[storage]\ncheckpoint_interval = \"1s\"\nhead_max_samples = 20000\n"
         "[alerting]\nexternal_url = \"http://kpid.example:9470\"\n"
         "retry_initial = \"50ms\"\nretry_max = \"500ms\"\n"
         "[[receiver]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"" +
         hook_url + "\"\n" + kpi("lat", "ms", "target = 200\nwarn = 500\ncrit = 800\n") +
         "[kpi.okr]\nafter = \"0s\"\nseverities = [\"critical\"]\nrelated = [\"err\"]\n"
         "graduate_after = \"1h\"\n" +
         kpi("err", "%", "warn = 1\ncrit = 5\n");
}

// ---------------------------------------------------------------------------------------------
// Acknowledged samples (the model of crash_test.cpp)

// What may be found after a crash: the acknowledged value, or one of a request that was in
// flight when kpid died (it may or may not have been applied).
struct Expected {
  std::optional<double> acked;
  std::set<double> maybe;
};

struct SeriesModel {
  std::string line_key;  // measurement and tags in line protocol, e.g. mixed,w=0,s=3
  std::string selector;  // the same series in PromQL, e.g. mixed{w="0",s="3"}
  std::map<int64_t, Expected> samples;
};

struct Sample {
  SeriesModel* series;
  int64_t ts;
  double value;
};

// Sends `batch` as one write; returns true once acknowledged (204), recording it in the models.
// False with `error` set when the request failed; failures before `killed` are errors.
bool write_batch(HttpClient& c, const std::vector<Sample>& batch, const std::string& body,
                 std::string& error) {
  for (const auto& s : batch) s.series->samples[s.ts].maybe.insert(s.value);
  HttpResponse r;
  try {
    r = c.request("POST", "/write?precision=ms", body);
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
  if (r.status != 204) {
    error = "write answered " + std::to_string(r.status) + ": " + r.body;
    return false;
  }
  for (const auto& s : batch) {
    auto& e = s.series->samples[s.ts];
    e.acked = s.value;
    e.maybe.clear();
  }
  return true;
}

std::string number_text(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

// Every stored sample of `selector` within (from, to], via a range selector at an instant query.
std::map<int64_t, double> stored(const Kpid& k, const std::string& selector, int64_t from,
                                 int64_t to) {
  const std::string q = selector + "[" + std::to_string((to - from) / 1000 + 1) + "s]";
  const auto r = k.get("/api/v1/query?query=" + url_encode(q) + "&time=" + fmt_seconds(to));
  INFO("query " << q << ": " << tail(r.body, 500));
  REQUIRE(r.status == 200);
  std::map<int64_t, double> out;
  const json::value body = r.json();
  const auto& result = body.at("data").at("result").as_array();
  if (result.empty()) return out;
  REQUIRE(result.size() == 1);
  for (const auto& pair : result[0].at("values").as_array()) {
    const auto& a = pair.as_array();
    const auto ts = static_cast<int64_t>(std::llround(a[0].to_number<double>() * 1000));
    const bool fresh = out.emplace(ts, std::strtod(a[1].as_string().c_str(), nullptr)).second;
    CHECK(fresh);  // each timestamp once
  }
  return out;
}

// Checks `m` against what kpid stores, then takes what survived as the truth for later rounds.
void check_series(const Kpid& k, SeriesModel& m, int64_t from, int64_t to) {
  const auto got = stored(k, m.selector, from, to);
  size_t acked = 0;
  std::vector<std::string> problems;
  for (const auto& [ts, e] : m.samples) {
    auto it = got.find(ts);
    if (e.acked) ++acked;
    if (it == got.end()) {
      if (e.acked) problems.push_back("missing acknowledged sample at " + std::to_string(ts));
      continue;
    }
    if (!((e.acked && *e.acked == it->second) || e.maybe.count(it->second) > 0)) {
      problems.push_back("wrong value " + number_text(it->second) + " at " + std::to_string(ts));
    }
  }
  for (const auto& [ts, v] : got) {
    if (m.samples.count(ts) == 0) problems.push_back("never written: " + std::to_string(ts));
  }
  INFO(m.selector << ": " << acked << " acknowledged, " << got.size() << " stored; "
                  << problems.size()
                  << " problems, first: " << (problems.empty() ? "" : problems.front()));
  CHECK(problems.empty());
  for (auto it = m.samples.begin(); it != m.samples.end();) {
    auto g = got.find(it->first);
    it->second.maybe.clear();
    if (g != got.end()) {
      it->second.acked = g->second;
      ++it;
    } else if (!it->second.acked) {
      it = m.samples.erase(it);
    } else {
      ++it;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// What the API showed of alerts and OKRs, and which admin actions it acknowledged

int alert_rank(const std::string& state) {
  return state == "pending" ? 0 : state == "firing" ? 1 : state == "resolved" ? 2 : -1;
}
int okr_rank(const std::string& state) {
  return state == "draft"                            ? 0
         : state == "active"                         ? 1
         : state == "closed" || state == "dismissed" ? 2
                                                     : -1;
}

bool jbool(const json::value& o, std::string_view key) {
  const json::value* v = o.is_object() ? o.as_object().if_contains(key) : nullptr;
  return v != nullptr && v->is_bool() && v->as_bool();
}
const json::value& jat(const json::object& o, std::string_view key) {
  static const json::value kNull;
  const json::value* v = o.if_contains(key);
  return v != nullptr ? *v : kNull;
}
const json::array& jarr(const json::object& o, std::string_view key) {
  static const json::array kEmpty;
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_array() ? v->as_array() : kEmpty;
}

struct AlertModel {
  json::object seen;           // the most advanced state the API showed
  bool notified = false;       // the API showed notified = true
  json::value acknowledged;    // from a 2xx ack or the API; null when none seen
  bool ack_in_flight = false;  // an ack was sent but not answered when kpid died
};

struct OkrAction {
  std::string what;     // accept, edit, close, dismiss
  json::object result;  // the OKR in the 2xx answer
};

struct OkrModel {
  json::object seen;  // the OKR with the longest history the API showed
  std::vector<OkrAction> acked;
  std::optional<std::string> in_flight;       // action sent, unanswered
  std::optional<std::string> edit_in_flight;  // the objective of an unanswered edit
};

struct ApiModel {
  std::mutex mutex;
  std::map<std::string, AlertModel> alerts;
  std::map<std::string, OkrModel> okrs;

  void saw_alert(const json::object& a) {
    std::lock_guard lock(mutex);
    AlertModel& m = alerts[json_str(a, "id")];
    if (m.seen.empty() ||
        alert_rank(json_str(a, "state")) >= alert_rank(json_str(m.seen, "state"))) {
      m.seen = a;
    }
    m.notified = m.notified || jbool(a, "notified");
    if (m.acknowledged.is_null() && jat(a, "acknowledged").is_object()) {
      m.acknowledged = jat(a, "acknowledged");
    }
  }
  void saw_okr(const json::object& o) {
    std::lock_guard lock(mutex);
    OkrModel& m = okrs[json_str(o, "id")];
    if (jarr(o, "history").size() >= jarr(m.seen, "history").size()) m.seen = o;
  }
};

// Failures of the clients before the kill, reported on the test thread.
struct Errors {
  std::mutex mutex;
  std::vector<std::string> list;
  void add(std::string e) {
    std::lock_guard lock(mutex);
    list.push_back(std::move(e));
  }
};

// A client's request failed: an error unless kpid is being killed.
void failed(Errors& errors, const std::atomic<bool>& killing, const std::string& who,
            const std::string& what) {
  if (!killing.load()) errors.add(who + ": " + what);
}

// GET `target` expecting 200 with a success envelope; the data, or nullopt after recording why.
std::optional<json::value> api_get(HttpClient& c, const std::string& target, Errors& errors,
                                   const std::atomic<bool>& killing, const std::string& who,
                                   bool* connection_lost) {
  HttpResponse r;
  try {
    r = c.request("GET", target);
  } catch (const std::exception& e) {
    failed(errors, killing, who, e.what());
    *connection_lost = true;
    return std::nullopt;
  }
  json::value body;
  boost::system::error_code ec;
  body = json::parse(r.body, ec);
  if (r.status != 200 || ec || !body.is_object() || json_str(body, "status") != "success" ||
      !body.as_object().contains("data")) {
    errors.add(who + ": GET " + target + " answered " + std::to_string(r.status) + ": " +
               tail(r.body, 300));
    return std::nullopt;
  }
  return body.at("data");
}

// ---------------------------------------------------------------------------------------------
// Webhook deliveries

struct Delivery {
  std::string key;
  std::string created;  // created_at: RFC 3339 with milliseconds, comparable as text
  std::string event;
  std::string alert_id;
  std::string okr_id;
  std::string body;
};

Delivery parse_delivery(const ReceivedRequest& r) {
  Delivery d;
  auto header = [&](const char* name) {
    auto it = r.headers.find(name);
    return it == r.headers.end() ? std::string() : it->second;
  };
  d.key = header("idempotency-key");
  d.event = header("x-kpid-event");
  d.body = r.body;
  INFO("webhook request " << d.event << " " << d.key << ": " << tail(r.body, 600));
  json::value v;
  REQUIRE_NOTHROW(v = json::parse(r.body));
  REQUIRE(v.is_object());
  CHECK(json_str(v, "idempotency_key") == d.key);
  CHECK(json_str(v, "event") == d.event);
  d.alert_id = json_str(v.at("alert"), "id");
  if (const json::value* okr = v.as_object().if_contains("okr")) d.okr_id = json_str(*okr, "id");
  // "<episode>-<event>" (README "Shards and HA replicas")
  const std::string episode = json_str(v.at("alert"), "episode");
  CHECK(episode.size() == 32);
  CHECK(d.key.starts_with(episode + "-" + d.event));
  d.created = json_str(v, "created_at");
  return d;
}

// The webhook's answers: 503 during an outage, else 200. Only the request callback switches
// them (it runs on the receiver's thread right after each request is recorded, before the next
// one is), so the answer to every recorded request is known exactly.
struct WebhookOutage {
  std::atomic<bool> wanted{false};
  std::mutex mutex;
  bool down = false;
  std::vector<bool> answered_ok;  // per recorded request, in order

  void on_request(RecordingReceiver& hook) {
    std::lock_guard lock(mutex);
    answered_ok.push_back(!down);
    if (wanted.load() != down) {
      down = wanted.load();
      hook.respond_with(down ? 503 : 200, down ? "down for the test" : "{}");
    }
  }
  // The requests answered 200 so far.
  std::vector<ReceivedRequest> delivered(const RecordingReceiver& hook) {
    std::vector<bool> ok;
    {
      std::lock_guard lock(mutex);
      ok = answered_ok;
    }
    std::vector<ReceivedRequest> out;
    const auto all = hook.requests();
    for (size_t i = 0; i < std::min(ok.size(), all.size()); ++i) {
      if (ok[i]) out.push_back(all[i]);
    }
    return out;
  }
};

// Checks what the webhook accepted against the outbox's promise: notifications in outbox order;
// one is accepted again only when it was the last one accepted but kpid died before it saw the
// answer: at most `kills` times, with the same key and body. Same key, same body in every
// attempt; no alert or OKR is announced under two keys.
void check_deliveries(const std::vector<Delivery>& all_attempts,
                      const std::vector<Delivery>& accepted, int kills) {
  std::map<std::string, std::string> body_of_key;
  for (const Delivery& d : all_attempts) {
    auto [it, fresh] = body_of_key.emplace(d.key, d.body);
    INFO(d.event << " key " << d.key);
    if (!fresh) CHECK(it->second == d.body);
  }
  std::map<std::string, std::set<std::string>> keys_of;  // "<event> <alert or okr>" -> keys
  std::optional<Delivery> last;
  int resent = 0;
  for (size_t i = 0; i < accepted.size(); ++i) {
    const Delivery& d = accepted[i];
    INFO("accepted delivery " << i << ": " << d.event << " key " << d.key);
    if (last && d.key == last->key) {
      ++resent;
    } else if (last) {
      CHECK(d.created >= last->created);  // outbox order is creation order
    }
    last = d;
    const std::string subject = d.event == "okr.draft_opened" ? "okr " + d.okr_id : d.alert_id;
    keys_of[d.event + " " + subject].insert(d.key);
  }
  INFO(resent << " notifications accepted twice after " << kills << " kills");
  CHECK(resent <= kills);
  for (const auto& [subject, keys] : keys_of) {
    INFO(subject << " was sent under " << keys.size() << " keys");
    CHECK(keys.size() == 1);
  }
}

}  // namespace

TEST_CASE(
    "crash: kill -9 under mixed load (writes, queries, alert delivery) keeps samples, "
    "alerts and OKRs",
    "[crash][durability][alert][okr]") {
  WebhookOutage outage;  // before the receiver, whose callback uses it
  RecordingReceiver hook;
  hook.on_request([&](const ReceivedRequest&) { outage.on_request(hook); });
  Kpid k({.config_toml = config_toml(hook.url() + "/hook")});
  const int64_t start = (now_ms() / kHour) * kHour - 10 * kHour;
  std::mt19937_64 rng(std::random_device{}());

  // Writers' series, in the past (no KPI reads them); lat and err, written now by the driver.
  std::vector<std::vector<SeriesModel>> writer_series(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    for (int s = 0; s < kSeriesPerWriter; ++s) {
      const std::string ws = std::to_string(w), ss = std::to_string(s);
      writer_series[w].push_back(
          {"mixed,w=" + ws + ",s=" + ss, "mixed{w=\"" + ws + "\",s=\"" + ss + "\"}", {}});
    }
  }
  std::vector<int64_t> writer_next_ts(kWriters);
  for (int w = 0; w < kWriters; ++w) writer_next_ts[w] = start + w * 7;
  SeriesModel lat_series{"lat", "lat", {}};
  SeriesModel err_series{"err", "err", {}};
  const int64_t driver_from = now_ms() - 1000;

  ApiModel api;
  int kills = 0;
  int driver_step = 0;

  k.start();
  constexpr int kRounds = 5;
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    std::atomic<bool> stop{false};
    std::atomic<bool> killing{false};
    Errors errors;
    std::vector<int> writer_requests(kWriters, 0);
    std::atomic<int> queries{0};
    std::atomic<int> admin_actions{0};
    const uint16_t port = k.http_port();
    {
      std::vector<std::jthread> threads;
      // Declared after the threads, so it ends first: should the test thread throw, the clients
      // stop instead of being joined forever.
      struct StopOnExit {
        std::atomic<bool>& stop;
        ~StopOnExit() { stop = true; }
      } stop_on_exit{stop};
      // Writers: mostly new samples, sometimes backfill hours back, sometimes overwrites.
      for (int w = 0; w < kWriters; ++w) {
        threads.emplace_back([&, w] {
          HttpClient c(port, 5s);
          std::mt19937_64 wrng(1000 * round + w);
          auto& series = writer_series[w];
          int64_t& next_ts = writer_next_ts[w];
          while (!stop.load()) {
            std::vector<Sample> batch;
            std::string body;
            const int kind = static_cast<int>(wrng() % 10);
            for (auto& m : series) {
              for (int i = 0; i < 10; ++i) {
                int64_t ts = next_ts + i * 100;
                if (kind == 0) {
                  ts = next_ts - (2 + static_cast<int64_t>(wrng() % 5)) * kHour -
                       static_cast<int64_t>(wrng() % kHour);
                } else if (kind == 1 && !m.samples.empty()) {  // overwrite a written sample
                  const int64_t first = m.samples.begin()->first;
                  const int64_t span = m.samples.rbegin()->first - first + 1;
                  ts = m.samples.lower_bound(first + static_cast<int64_t>(wrng() % span))->first;
                }
                const double v = static_cast<double>(wrng() % 100'000) / 100.0;
                batch.push_back({&m, ts, v});
                body += m.line_key + " value=" + number_text(v) + " " + std::to_string(ts) + "\n";
              }
            }
            if (kind >= 2) next_ts += 1000;
            std::string error;
            if (!write_batch(c, batch, body, error)) {
              failed(errors, killing, "writer " + std::to_string(w), error);
              return;
            }
            ++writer_requests[w];
            std::this_thread::sleep_for(5ms);
          }
        });
      }
      // Driver: every 100 ms a sample of lat and err, each in and out of breach.
      threads.emplace_back([&] {
        HttpClient c(port, 5s);
        while (!stop.load()) {
          const int i = driver_step++;
          const double lat = (i / 12) % 2 == 0 ? 900 + i % 7 : 100 + i % 7;
          const double err = (i / 17) % 2 == 1 ? 7 + i % 3 : 0.5;
          const int64_t ts = unique_now_ms();
          const std::string body = lat_series.line_key + " value=" + number_text(lat) + " " +
                                   std::to_string(ts) + "\n" + err_series.line_key +
                                   " value=" + number_text(err) + " " + std::to_string(ts) + "\n";
          std::string error;
          if (!write_batch(c, {{&lat_series, ts, lat}, {&err_series, ts, err}}, body, error)) {
            failed(errors, killing, "driver", error);
            return;
          }
          std::this_thread::sleep_for(100ms);
        }
      });
      // Query clients: instant and range queries, KPIs; 200 with a success envelope or, once
      // kpid is being killed, a connection error.
      for (int q = 0; q < kQueryClients; ++q) {
        threads.emplace_back([&, q] {
          HttpClient c(port, 5s);
          std::mt19937_64 qrng(77 * round + q);
          while (!stop.load()) {
            const int64_t now = now_ms();
            std::string target;
            switch (qrng() % 4) {
              case 0:
                target = "/api/v1/query?query=" +
                         url_encode("mixed{w=\"" + std::to_string(qrng() % kWriters) + "\"}") +
                         "&time=" + fmt_seconds(start + static_cast<int64_t>(qrng() % (2 * kHour)));
                break;
              case 1:
                target = "/api/v1/query_range?query=" + url_encode("max_over_time(lat[10s])") +
                         "&start=" + fmt_seconds(now - 60'000) + "&end=" + fmt_seconds(now) +
                         "&step=1";
                break;
              case 2:
                target = "/api/v1/query_range?query=" +
                         url_encode("sum by (s) (count_over_time(mixed[1h]))") +
                         "&start=" + fmt_seconds(start) + "&end=" + fmt_seconds(start + 4 * kHour) +
                         "&step=600";
                break;
              default: target = "/api/v1/kpis"; break;
            }
            bool lost = false;
            if (!api_get(c, target, errors, killing, "query client", &lost) && lost) return;
            ++queries;
            std::this_thread::sleep_for(10ms);
          }
        });
      }
      // Observer: what the alert and OKR APIs show.
      threads.emplace_back([&] {
        HttpClient c(port, 5s);
        while (!stop.load()) {
          bool lost = false;
          if (auto alerts = api_get(c, "/api/v1/alerts", errors, killing, "observer", &lost)) {
            for (const auto& a : alerts->as_array()) api.saw_alert(a.as_object());
          }
          if (auto okrs = api_get(c, "/api/v1/okrs", errors, killing, "observer", &lost)) {
            for (const auto& o : okrs->as_array()) api.saw_okr(o.as_object());
          }
          if (lost) return;
          std::this_thread::sleep_for(40ms);
        }
      });
      // Admin: acknowledges odd-numbered firing alerts; accepts, edits and closes odd-numbered
      // drafts and dismisses even-numbered ones, one step at a time.
      threads.emplace_back([&] {
        HttpClient c(port, 5s);
        auto act = [&](const std::string& method, const std::string& target,
                       const std::string& body, HttpResponse& r) {
          try {
            r = c.request(method, target, body, kJson);
            return true;
          } catch (const std::exception& e) {
            failed(errors, killing, "admin", e.what());
            return false;
          }
        };
        while (!stop.load()) {
          bool lost = false;
          auto firing = api_get(c, "/api/v1/alerts?state=firing&acknowledged=false", errors,
                                killing, "admin", &lost);
          if (lost) return;
          for (const auto& a : firing ? firing->as_array() : json::array{}) {
            api.saw_alert(a.as_object());
            const std::string id = json_str(a, "id");
            if (std::stoi(id) % 2 == 0) continue;
            {
              std::lock_guard lock(api.mutex);
              api.alerts[id].ack_in_flight = true;
            }
            HttpResponse r;
            if (!act("POST", "/api/v1/alerts/" + id + "/ack",
                     R"({"author":"oncall","comment":"ack )" + id + "\"}", r)) {
              return;
            }
            if (r.status == 200) api.saw_alert(r.json().at("data").as_object());
            std::lock_guard lock(api.mutex);
            AlertModel& m = api.alerts[id];
            m.ack_in_flight = false;
            if (r.status == 200) {
              const json::value data = r.json().at("data");
              m.acknowledged = data.at("acknowledged");
              m.notified = m.notified || jbool(data, "notified");
              ++admin_actions;
            } else if (r.status != 409) {  // 409: resolved meanwhile
              errors.add("admin: ack " + id + " answered " + std::to_string(r.status) + ": " +
                         r.body);
            }
          }
          auto okrs = api_get(c, "/api/v1/okrs", errors, killing, "admin", &lost);
          if (lost) return;
          for (const auto& o : okrs ? okrs->as_array() : json::array{}) {
            api.saw_okr(o.as_object());
            const std::string id = json_str(o, "id");
            const std::string state = json_str(o, "state");
            // Decimal ids, or "e" and hex digits (drafts opened by an alert episode).
            const bool odd = (std::stoi(id.substr(id.size() - 1), nullptr, 16) % 2) == 1;
            const std::string objective = json_str(o, "objective");
            const bool edited = objective.ends_with(" (edited)");
            std::string what, method = "POST", target = "/api/v1/okrs/" + id, body;
            if (state == "draft" && odd) {
              what = "accept";
              target += "/accept";
              body = R"({"author":"alice"})";
            } else if (state == "draft") {
              what = "dismiss";
              target += "/dismiss";
              body = R"({"author":"alice","comment":"known"})";
            } else if (state == "active" && !edited) {
              what = "edit";
              method = "PATCH";
              body = R"({"author":"bob","objective":")" + objective + " (edited)\"}";
            } else if (state == "active") {
              what = "close";
              target += "/close";
              body = R"({"author":"carol","outcome":"missed"})";
            } else {
              continue;
            }
            {
              std::lock_guard lock(api.mutex);
              OkrModel& m = api.okrs[id];
              m.in_flight = what;
              if (what == "edit") m.edit_in_flight = objective + " (edited)";
            }
            HttpResponse r;
            if (!act(method, target, body, r)) return;
            std::lock_guard lock(api.mutex);
            OkrModel& m = api.okrs[id];
            m.in_flight.reset();
            m.edit_in_flight.reset();
            if (r.status == 200) {
              const json::object result = r.json().at("data").as_object();
              m.acked.push_back({what, result});
              if (jarr(result, "history").size() >= jarr(m.seen, "history").size()) {
                m.seen = result;
              }
              ++admin_actions;
            } else {
              errors.add("admin: " + what + " OKR " + id + " answered " + std::to_string(r.status) +
                         ": " + r.body);
            }
            break;  // one step per round trip, so kills land between steps too
          }
          std::this_thread::sleep_for(80ms);
        }
      });

      // The webhook goes away for a while: in odd rounds until after the kill, so the outbox
      // holds notifications when kpid dies; in even rounds it comes back before.
      const auto round_length = std::chrono::milliseconds(2500 + rng() % 2500);
      const auto outage_at = std::chrono::milliseconds(500 + rng() % 1000);
      const auto outage_length = std::chrono::milliseconds(300 + rng() % 700);
      std::this_thread::sleep_for(outage_at);
      outage.wanted = true;
      if (round % 2 == 0) {
        std::this_thread::sleep_for(outage_length);
        outage.wanted = false;
        std::this_thread::sleep_for(round_length - outage_at - outage_length);
      } else {
        std::this_thread::sleep_for(round_length - outage_at);
      }
      killing = true;
      k.kill9();
      stop = true;
    }
    {
      std::lock_guard lock(errors.mutex);
      INFO(errors.list.size() << " client errors before the kill, first: "
                              << (errors.list.empty() ? "" : errors.list.front()));
      CHECK(errors.list.empty());
    }
    for (int w = 0; w < kWriters; ++w) CHECK(writer_requests[w] > 0);
    CHECK(queries.load() > 0);

    ++kills;
    k.start();
    outage.wanted = false;

    // Samples.
    for (int w = 0; w < kWriters; ++w) {
      for (auto& m : writer_series[w])
        check_series(k, m, start - 10 * kHour, writer_next_ts[w] + kHour);
    }
    check_series(k, lat_series, driver_from, now_ms() + 60'000);
    check_series(k, err_series, driver_from, now_ms() + 60'000);

    // Alerts, OKRs and the notifications they call for.
    std::set<std::string> expected;  // "<event> <alert id>" or "okr.draft_opened okr <id>"
    std::lock_guard lock(api.mutex);
    INFO(api.alerts.size() << " alerts and " << api.okrs.size() << " OKRs seen so far, "
                           << admin_actions.load() << " admin actions acknowledged this round");
    for (auto& [id, m] : api.alerts) {
      if (m.seen.empty()) continue;  // only an unanswered ack of an alert never listed
      INFO("alert " << id << " as last seen: " << json::serialize(m.seen));
      const HttpResponse r = k.get("/api/v1/alerts/" + id);
      const std::string seen_state = json_str(m.seen, "state");
      if (r.status == 404) {
        // Only a pending alert may be gone: its breach ended before `for`.
        CHECK(seen_state == "pending");
        CHECK(m.acknowledged.is_null());
        continue;
      }
      const json::value data = require_api_data(r);
      const json::object& a = data.as_object();
      INFO("after the restart: " << json::serialize(a));
      CHECK(json_str(a, "kpi") == json_str(m.seen, "kpi"));
      CHECK(json_str(a, "condition") == json_str(m.seen, "condition"));
      CHECK(alert_rank(json_str(a, "state")) >= alert_rank(seen_state));
      CHECK(jat(a, "pending_since") == jat(m.seen, "pending_since"));
      if (alert_rank(seen_state) >= 1) CHECK(jat(a, "firing_since") == jat(m.seen, "firing_since"));
      if (seen_state == "resolved") CHECK(jat(a, "resolved_at") == jat(m.seen, "resolved_at"));
      if (m.notified) CHECK(jbool(a, "notified"));
      if (!m.acknowledged.is_null()) {
        CHECK(jat(a, "acknowledged") == m.acknowledged);
      } else if (m.ack_in_flight) {
        m.acknowledged = jat(a, "acknowledged");  // the unanswered ack may have been applied
      } else {
        CHECK(jat(a, "acknowledged").is_null());
      }
      m.ack_in_flight = false;
      if (seen_state == "firing" || m.notified) expected.insert("alert.firing " + id);
      if (seen_state == "resolved" && m.notified) expected.insert("alert.resolved " + id);
      // An acknowledgement that was kept, answered or not, was queued in the same write.
      if (!m.acknowledged.is_null() && m.notified) expected.insert("alert.acknowledged " + id);
    }
    for (auto& [id, m] : api.okrs) {
      if (m.seen.empty()) continue;
      INFO("OKR " << id << " as last seen: " << json::serialize(m.seen));
      const HttpResponse r = k.get("/api/v1/okrs/" + id);
      INFO("after the restart: " << r.status << " " << tail(r.body, 3000));
      REQUIRE(r.status == 200);
      const json::object o = require_api_data(r).as_object();
      for (const char* field : {"kpi", "owner", "created_at", "period", "warnings"}) {
        INFO("field " << field);
        CHECK(jat(o, field) == jat(m.seen, field));
      }
      const std::string seen_state = json_str(m.seen, "state");
      const std::string state = json_str(o, "state");
      CHECK(okr_rank(state) >= okr_rank(seen_state));
      if (okr_rank(seen_state) == 2) CHECK(state == seen_state);
      // Linked alerts and history only grow.
      const auto& seen_alerts = jarr(m.seen, "alerts");
      const auto& alerts = jarr(o, "alerts");
      CHECK(alerts.size() >= seen_alerts.size());
      for (size_t i = 0; i < std::min(alerts.size(), seen_alerts.size()); ++i) {
        CHECK(alerts[i] == seen_alerts[i]);
      }
      const auto& seen_history = jarr(m.seen, "history");
      const auto& history = jarr(o, "history");
      CHECK(history.size() >= seen_history.size());
      for (size_t i = 0; i < std::min(history.size(), seen_history.size()); ++i) {
        INFO("history entry " << i);
        CHECK(history[i] == seen_history[i]);
      }
      // Key results as drafted (the admin edits only the objective).
      for (const auto& seen_kr : jarr(m.seen, "key_results")) {
        const json::value* kr = nullptr;
        for (const auto& candidate : jarr(o, "key_results")) {
          if (json_str(candidate, "id") == json_str(seen_kr, "id")) kr = &candidate;
        }
        INFO("key result " << json_str(seen_kr, "id"));
        REQUIRE(kr != nullptr);
        for (const char* field :
             {"kind", "kpi", "description", "start", "target", "unit", "direction"}) {
          INFO("field " << field);
          CHECK(jat(kr->as_object(), field) == jat(seen_kr.as_object(), field));
        }
      }
      // Every acknowledged action holds.
      std::string objective = json_str(m.seen, "objective");
      for (const auto& action : m.acked) {
        INFO("acknowledged " << action.what << ": " << json::serialize(action.result));
        if (action.what == "accept") {
          CHECK(okr_rank(state) >= 1);
          CHECK(jat(o, "accepted_at") == jat(action.result, "accepted_at"));
        } else if (action.what == "edit") {
          objective = json_str(action.result, "objective");
        } else {
          CHECK(state == json_str(action.result, "state"));
          CHECK(jat(o, "outcome") == jat(action.result, "outcome"));
          CHECK(jat(o, "closed_at") == jat(action.result, "closed_at"));
        }
      }
      if (m.edit_in_flight && json_str(o, "objective") == *m.edit_in_flight) {
        objective = *m.edit_in_flight;  // the unanswered edit was applied
      }
      CHECK(json_str(o, "objective") == objective);
      m.in_flight.reset();
      m.edit_in_flight.reset();
      m.seen = o;  // the truth for the next round
      expected.insert("okr.draft_opened okr " + id);
    }

    // Every notification of what the API showed arrives, eventually.
    std::vector<Delivery> deliveries;
    std::set<std::string> missing;
    const bool all_delivered = eventually(
        [&] {
          std::set<std::string> got;
          for (const auto& r : outage.delivered(hook)) {
            const std::string event =
                r.headers.count("x-kpid-event") ? r.headers.at("x-kpid-event") : "";
            const json::value v = json::parse(r.body);
            got.insert(event == "okr.draft_opened" ? event + " okr " + json_str(v.at("okr"), "id")
                                                   : event + " " + json_str(v.at("alert"), "id"));
          }
          missing.clear();
          std::set_difference(expected.begin(), expected.end(), got.begin(), got.end(),
                              std::inserter(missing, missing.end()));
          return missing.empty();
        },
        15s, 100ms);
    {
      INFO(expected.size() << " notifications expected, missing: " << missing.size()
                           << ", first: " << (missing.empty() ? "" : *missing.begin()));
      CHECK(all_delivered);
    }
    std::vector<Delivery> attempts;
    for (const auto& r : hook.requests()) attempts.push_back(parse_delivery(r));
    for (const auto& r : outage.delivered(hook)) deliveries.push_back(parse_delivery(r));
    check_deliveries(attempts, deliveries, kills);
  }
  const size_t total_alerts = api.alerts.size();
  const size_t total_okrs = api.okrs.size();
  INFO(total_alerts << " alerts, " << total_okrs << " OKRs, " << hook.requests().size()
                    << " webhook deliveries");
  CHECK(total_alerts >= 4);
  CHECK(total_okrs >= 2);
}
