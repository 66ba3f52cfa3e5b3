// Faults from the outside: clients that send half a request and stall (slowloris), a
// notification receiver that hangs and one that answers slowly, too many connections, a client
// over its request rate. kpid keeps serving everyone else, bounds what the stalled ones hold,
// and delivers once the receiver answers again.

#include <sys/socket.h>

#include <atomic>
#include <csignal>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"
#include "support/recording_receiver.h"

using namespace kpid_it;
namespace json = boost::json;
using kpid::testing::ReceivedRequest;
using kpid::testing::RecordingReceiver;

namespace {

std::string kpi_with_alert() {
  return "[[kpi]]\nid = \"lat\"\nname = \"Latency\"\nowner = \"payments\"\nunit = \"ms\"\n"
         "direction = \"lower_is_better\"\nstale_after = \"1h\"\n[kpi.value]\nselector = 'lat'\n"
         "over_time = \"last\"\nwindow = \"1h\"\n[kpi.band]\nwarn = 500\ncrit = 800\n"
         "[[kpi.alert]]\ncondition = \"crit\"\n";
}

// Milliseconds a fresh GET /healthz takes.
double healthz_ms(const Kpid& k) {
  const auto start = Clock::now();
  REQUIRE(k.get("/healthz").status == 200);
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

TEST_CASE("fault: clients that send half a request and stall are dropped and hold no worker",
          "[fault]") {
  // One worker thread: if a stalled client could hold it, nobody else would be served. The
  // idle timeout stays at its 2 minutes: a started request is bounded by request_timeout.
  Kpid k({.config_toml = "[http]\nthreads = 1\nrequest_timeout = \"1s\"\n"});
  k.start();
  std::vector<std::unique_ptr<TcpClient>> stalled;
  for (int i = 0; i < 100; ++i) {
    stalled.push_back(std::make_unique<TcpClient>(k.http_port()));
    // Half of them stop inside the headers, half inside a body they announced.
    stalled.back()->send(i % 2 == 0 ? std::string("GET /api/v1/que")
                                    : std::string("POST /write HTTP/1.1\r\nHost: x\r\n"
                                                  "Content-Length: 1000\r\n\r\nlat value=1"));
  }
  // Everyone else is served at once while they hang.
  for (int i = 0; i < 5; ++i) CHECK(healthz_ms(k) < 500);
  k.write_ok("lat value=300 " + std::to_string(now_ms()), "ms");

  // After request_timeout every stalled connection is closed by kpid.
  const bool all_closed = eventually(
      [&] {
        for (auto& c : stalled) {
          if (c->peer_open()) return false;
        }
        return true;
      },
      5s, 50ms);
  CHECK(all_closed);
  // Nothing of the half-sent body was stored: only the one complete write.
  REQUIRE(k.query("count_over_time(lat[1h])", fmt_seconds(now_ms())).size() == 1);
  CHECK(num(k.query("count_over_time(lat[1h])", fmt_seconds(now_ms()))[0].value) == 1);
}

TEST_CASE(
    "fault: a receiver that hangs delays neither another receiver nor ingest, and gets "
    "the notification once it answers",
    "[fault]") {
  RecordingReceiver fast;
  RecordingReceiver slow;
  std::atomic<bool> hang{true};
  slow.on_request([&](const ReceivedRequest&) {
    // Hangs far past kpid's timeout for this receiver, then answers normally.
    for (int i = 0; i < 30 && hang.load(); ++i) std::this_thread::sleep_for(100ms);
  });
  Kpid k({.config_toml = "[alerting]\nretry_initial = \"100ms\"\nretry_max = \"500ms\"\n"
                         "[[receiver]]\nname = \"fast\"\ntype = \"webhook\"\nurl = \"" +
                         fast.url() +
                         "/hook\"\n"
                         "[[receiver]]\nname = \"slow\"\ntype = \"webhook\"\nurl = \"" +
                         slow.url() + "/hook\"\ntimeout = \"300ms\"\n" + kpi_with_alert()});
  k.start();
  write_value_now(k, "lat", 300);
  const auto breach = Clock::now();
  write_value_now(k, "lat", 900);

  // The fast receiver hears of it at once, whatever the slow one does.
  REQUIRE(fast.wait_for(1, 5s));
  const auto fast_latency = fast.requests()[0].at - breach;
  CHECK(fast_latency < 2s);
  CHECK(contains(fast.requests()[0].body, "\"event\":\"alert.firing\""));

  // Ingest and queries are not held up while the slow receiver hangs.
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    write_value_now(k, "other", i);
    CHECK(Clock::now() - start < 500ms);
    CHECK(healthz_ms(k) < 500);
  }

  // Its deliveries time out and are retried: the alert's timeline says so.
  const std::string id = json_str(get_alerts(k, "state=firing")[0], "id");
  CHECK(eventually(
      [&] {
        const json::object detail = get_alert_detail(k, id);
        for (const auto& e : detail.at("timeline").as_array()) {
          if (json_str(e, "kind") == "failed" && contains(json::serialize(e), "slow") &&
              contains(json::serialize(e), "timed out")) {
            return true;
          }
        }
        return false;
      },
      10s, 100ms));

  // Once it answers, it gets alert.firing: every attempt the same notification, one key.
  hang = false;
  CHECK(eventually(
      [&] {
        json::value detail = get_alert_detail(k, id);
        for (const auto& e : detail.at("timeline").as_array()) {
          if (json_str(e, "kind") == "delivered" && contains(json::serialize(e), "slow")) {
            return true;
          }
        }
        return false;
      },
      15s, 100ms));
  const auto got = slow.requests();
  REQUIRE(got.size() >= 2);  // at least one timed-out attempt, then the answered one
  for (const auto& r : got) {
    CHECK(contains(r.body, "\"event\":\"alert.firing\""));
    CHECK(r.headers.at("idempotency-key") == got[0].headers.at("idempotency-key"));
  }
}

TEST_CASE("fault: beyond max_connections new connections are closed at once and counted",
          "[fault]") {
  Kpid k({.config_toml = "[http]\nmax_connections = 20\nrequest_timeout = \"2s\"\n"
                         "[line]\nmax_connections = 5\n"});
  k.start();
  std::vector<std::unique_ptr<TcpClient>> held;
  for (int i = 0; i < 20; ++i) {
    held.push_back(std::make_unique<TcpClient>(k.http_port()));
    held.back()->send("GET /heal");  // half a request: the connection stays until the timeout
  }
  // Let kpid accept all twenty, then one more is closed as soon as it is accepted.
  std::this_thread::sleep_for(200ms);
  TcpClient extra(k.http_port());
  CHECK(eventually([&] { return !extra.peer_open(); }, 1s, 10ms));
  // Line protocol: five held connections, the sixth closed at once.
  std::vector<std::unique_ptr<TcpClient>> lines;
  for (int i = 0; i < 5; ++i) lines.push_back(std::make_unique<TcpClient>(k.line_port()));
  std::this_thread::sleep_for(200ms);
  TcpClient sixth(k.line_port());
  CHECK(eventually([&] { return !sixth.peer_open(); }, 1s, 10ms));
  CHECK(lines[0]->peer_open());

  // Once the stalled ones time out, kpid serves again and says what it refused.
  CHECK(eventually(
      [&] {
        try {
          return k.get("/healthz").status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      5s, 100ms));
  const std::string metrics = k.metrics();
  CHECK(contains(metrics, "kpid_connections_refused_total{listener=\"http\"} "));
  CHECK_FALSE(contains(metrics, "kpid_connections_refused_total{listener=\"http\"} 0\n"));
  CHECK(contains(metrics, "kpid_connections_refused_total{listener=\"line\"} 1\n"));
  CHECK(contains(k.log(), "HTTP: 20 connections open, the limit"));
}

TEST_CASE(
    "fault: a client over http.rate_limit gets 429 with Retry-After, others and probes "
    "do not",
    "[fault]") {
  Kpid k({.config_toml = "[http]\nrate_limit = 5\nrate_limit_burst = 5\n"});
  k.start();
  HttpClient c(k.http_port());
  // The burst passes, the next request is refused and says when to come back.
  for (int i = 0; i < 5; ++i) REQUIRE(c.request("GET", "/api/v1/labels").status == 200);
  HttpResponse limited = c.request("GET", "/api/v1/labels");
  REQUIRE(limited.status == 429);
  CHECK(std::stoi(limited.header("retry-after")) >= 1);
  CHECK(contains(limited.body, "http.rate_limit"));
  // Health probes are never limited.
  for (int i = 0; i < 20; ++i) REQUIRE(c.request("GET", "/healthz").status == 200);
  // A write refused this way is refused before its body is read, and the connection closed.
  std::string body;
  for (int i = 0; i < 1000; ++i) body += "rl value=" + std::to_string(i) + "\n";
  HttpResponse write = c.request("POST", "/write", body);
  CHECK(write.status == 429);
  CHECK(icontains(write.header("connection"), "close"));

  // After a pause at 5/s the client may go on; the refusals were counted.
  std::this_thread::sleep_for(1200ms);
  require_empty_at(k, "rl_value", now_ms());
  const std::string metrics = k.metrics();
  CHECK(metric_value(metrics, "kpid_http_rate_limited_total").value_or(0) >= 2);
  CHECK(metric_value(metrics, "kpid_http_requests_total", {{"code", "429"}}).value_or(0) >= 2);

  // SIGHUP applies a new limit at once: 0 turns it off.
  k.write_config("[http]\nrate_limit = 0\n");
  k.send_signal(SIGHUP);
  REQUIRE(eventually([&] { return contains(k.log(), "configuration reloaded"); }));
  for (int i = 0; i < 50; ++i) REQUIRE(c.request("GET", "/api/v1/labels").status == 200);
}

TEST_CASE(
    "fault: a receiver that answers slowly gets every notification in order, once each, "
    "and holds up no one else",
    "[fault]") {
  RecordingReceiver fast;
  RecordingReceiver slow;
  // Slow but within its timeout: every attempt succeeds, so none may be retried.
  slow.on_request([](const ReceivedRequest&) { std::this_thread::sleep_for(700ms); });
  Kpid k({.config_toml = "[alerting]\nretry_initial = \"100ms\"\nretry_max = \"500ms\"\n"
                         "[[receiver]]\nname = \"fast\"\ntype = \"webhook\"\nurl = \"" +
                         fast.url() +
                         "/hook\"\n"
                         "[[receiver]]\nname = \"slow\"\ntype = \"webhook\"\nurl = \"" +
                         slow.url() + "/hook\"\ntimeout = \"3s\"\n" + kpi_with_alert()});
  k.start();
  write_value_now(k, "lat", 300);

  // Three breaches, each fires and resolves: six notifications. The fast receiver has each
  // within two seconds of its cause while the slow one still works through the first ones.
  size_t expected = 0;
  for (int cycle = 0; cycle < 3; ++cycle) {
    for (double value : {900.0, 300.0}) {
      const auto start = Clock::now();
      write_value_now(k, "lat", value);
      CHECK(Clock::now() - start < 500ms);
      CHECK(healthz_ms(k) < 500);
      ++expected;
      INFO("notification " << expected);
      REQUIRE(fast.wait_for(expected, 2s));
    }
  }
  CHECK(slow.requests().size() < expected);

  // The slow receiver gets the same six, in the same order, each once.
  REQUIRE(slow.wait_for(expected, 15s));
  std::this_thread::sleep_for(300ms);  // no late retries either
  auto what = [](const std::vector<ReceivedRequest>& got) {
    std::vector<std::string> out;
    for (const auto& r : got) {
      const json::object body = json::parse(r.body).as_object();
      out.push_back(json_str(body, "event") + " " + json_str(body.at("alert").as_object(), "id"));
    }
    return out;
  };
  const auto from_fast = what(fast.requests());
  const auto from_slow = what(slow.requests());
  CHECK(from_slow == from_fast);
  REQUIRE(from_slow.size() == expected);
  std::set<std::string> keys;
  for (const auto& r : slow.requests()) keys.insert(r.headers.at("idempotency-key"));
  CHECK(keys.size() == expected);
  CHECK(metric_value(k.metrics(), "kpid_outbox_delivery_failures_total", {{"receiver", "slow"}})
            .value_or(0) == 0);
}
