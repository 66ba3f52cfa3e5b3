// SIGTERM ends kpid within shutdown_timeout, exit 0, in every state an operator meets: idle,
// mid-ingest at full rate, right after a kill -9 recovery, while RocksDB compacts, with a query
// running, with a receiver that accepts connections and never answers, with thousands of
// undelivered notifications, and while a one-year baseline is computed. After each stop, the
// next start finds everything that was acknowledged: samples, alerts, acks and OKR changes.
#include <csignal>

#include <atomic>
#include <boost/asio.hpp>
#include <cstdlib>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"
#include "support/recording_receiver.h"

using namespace kpid_it;
namespace json = boost::json;
using kpid::testing::RecordingReceiver;

namespace {

// The deadline the tests give kpid, and how much longer the process may take to be gone after
// it (the sanitizers' exit work, reaping).
constexpr auto kDeadline = 4s;
constexpr auto kExitSlack = 1500ms;
const std::string kDeadlineToml = "shutdown_timeout = \"4s\"\n";

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// SIGTERM, then REQUIREs exit 0 within the deadline (plus slack) and the log's account of it:
// every step with its duration, and the total.
void stop_within_deadline(Kpid& k) {
  const auto t0 = Clock::now();
  const int status = k.stop(kDeadline + kExitSlack + 5s);
  const int64_t took = ms_since(t0);
  INFO("kpid exited with " << status << " after " << took << " ms; log:\n" << k.log_tail(6000));
  CHECK(status == 0);
  CHECK(took <=
        std::chrono::duration_cast<std::chrono::milliseconds>(kDeadline + kExitSlack).count());
  const std::string log = k.log();
  CHECK(contains(log, "shutdown: stop accepting took"));
  CHECK(contains(log, "shutdown: close storage took"));
  CHECK(contains(log, "kpid stopped in"));
}

// A loopback TCP server that accepts connections and reads whatever comes, never answering: a
// receiver that hangs. Runs its own thread; closes everything on destruction.
class SilentServer {
 public:
  SilentServer() : acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~SilentServer() {
    boost::asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      for (auto& s : sockets_) s->close(ignored);
    });
    io_.stop();
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_.load(); }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, boost::asio::ip::tcp::socket s) {
      if (ec) return;
      ++connections_;
      auto socket = std::make_shared<boost::asio::ip::tcp::socket>(std::move(s));
      sockets_.push_back(socket);
      read(socket);
      accept();
    });
  }
  void read(std::shared_ptr<boost::asio::ip::tcp::socket> socket) {
    socket->async_read_some(boost::asio::buffer(buffer_),
                            [this, socket](boost::system::error_code ec, size_t) {
                              if (!ec) read(socket);
                            });
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<boost::asio::ip::tcp::socket>> sockets_;
  std::array<char, 4096> buffer_{};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

// A latency KPI over series `id` (lower is better, crit above 200) with a crit alert that fires
// at once; `okr` adds a [kpi.okr] that drafts an OKR as soon as the alert fires.
std::string alert_kpi_toml(const std::string& id, bool okr = false) {
  std::string t = "[[kpi]]\nid = \"" + id + "\"\nowner = \"payments\"\nunit = \"ms\"\n" +
                  "direction = \"lower_is_better\"\nstale_after = \"1h\"\n[kpi.value]\n" +
                  "selector = '" + id + "'\nover_time = \"last\"\nwindow = \"1h\"\n" +
                  "[kpi.band]\ntarget = 50\nwarn = 100\ncrit = 200\n" +
                  "[[kpi.alert]]\ncondition = \"crit\"\n";
  if (okr) {
    t += "[kpi.okr]\nafter = \"0s\"\nseverities = [\"critical\"]\nrelated = [\"" + id +
         "_errors\"]\ngraduate_after = \"1h\"\n";
    // The guardrail the draft keeps: an error-rate KPI beside it.
    t += "[[kpi]]\nid = \"" + id + "_errors\"\nowner = \"payments\"\n" +
         "direction = \"lower_is_better\"\n[kpi.value]\nselector = '" + id +
         "_errors'\nover_time = \"last\"\nwindow = \"1h\"\n[kpi.band]\nwarn = 5\ncrit = 10\n";
  }
  return t;
}

std::string webhook_toml(const std::string& url, const std::string& timeout = "30s") {
  return "[[receiver]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"" + url + "\"\ntimeout = \"" +
         timeout + "\"\n";
}

const std::string kAlertingToml =
    "[alerting]\nexternal_url = \"http://kpid.example\"\nretry_initial = \"50ms\"\n"
    "retry_max = \"200ms\"\n";

std::string alert_id_when_firing(const Kpid& k, const std::string& kpi) {
  std::string id;
  const bool firing = eventually(
      [&] {
        auto alerts = get_alerts(k, "kpi=" + kpi + "&state=firing");
        if (alerts.empty()) return false;
        id = json_str(alerts[0], "id");
        return true;
      },
      10s, 25ms);
  INFO("the alert of " << kpi << " did not fire; alerts: " << json::serialize(get_alerts(k)));
  REQUIRE(firing);
  return id;
}

// POST /write?precision=ms, REQUIREing 204; bodies of many thousand lines take a while under
// the sanitizers on a busy machine.
void write_slowly(const Kpid& k, const std::string& body) {
  const auto r = http_request(k.http_port(), "POST", "/write?precision=ms", body, {}, 120s);
  INFO(r.body);
  REQUIRE(r.status == 204);
}

// Sums sample counts per series of `metric` over everything stored (an instant query of
// count_over_time over a long range at `at_ms`).
double stored_count(const Kpid& k, const std::string& metric, int64_t at_ms,
                    const std::string& range = "30d") {
  // Counting every sample of weeks of history takes seconds under the sanitizers on a busy
  // machine: a longer client timeout than the harness's default.
  const std::string q = "sum(count_over_time(" + metric + "[" + range + "]))";
  const auto r = http_request(
      k.http_port(), "GET", "/api/v1/query?query=" + url_encode(q) + "&time=" + fmt_seconds(at_ms),
      "", {}, 120s);
  INFO("GET /api/v1/query " << q << " answered " << r.status << ": " << r.body);
  REQUIRE(r.status == 200);
  const auto result = require_api_data(r).as_object().at("result").as_array();
  if (result.empty()) return 0;
  return num(std::string(result[0].at("value").as_array()[1].as_string()));
}

}  // namespace

TEST_CASE("shutdown: idle kpid exits 0 within shutdown_timeout and logs every step", "[shutdown]") {
  Kpid k({.config_toml = kDeadlineToml});
  k.start();
  stop_within_deadline(k);
}

TEST_CASE("shutdown: mid-ingest at full rate, every acknowledged batch is there after restart",
          "[shutdown][durability]") {
  Kpid k({.config_toml = kDeadlineToml});
  k.start();
  const int64_t base = (now_ms() / 1000) * 1000 - 3'600'000;
  constexpr int kWriters = 3;
  constexpr int kLines = 2000;
  std::atomic<bool> stop{false};
  std::array<std::atomic<int64_t>, kWriters> acked{};  // acknowledged samples per writer
  std::vector<std::jthread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      HttpClient c(k.http_port(), 10s);
      int64_t next = 0;
      while (!stop.load()) {
        std::string body;
        for (int i = 0; i < kLines; ++i) {
          body += "burst,w=" + std::to_string(w) + ",s=" + std::to_string(i % 50) + " value=1 " +
                  std::to_string(base + next + i / 50) + "\n";
        }
        HttpResponse r;
        try {
          r = c.request("POST", "/write?precision=ms", body);
        } catch (const std::exception&) {
          return;  // the connection closed under a stopping kpid: not acknowledged
        }
        if (r.status != 204) return;  // refused while stopping: not stored
        acked[w] += kLines;
        next += kLines / 50;
      }
    });
  }
  // The TCP listener is busy too: a line stream that is mid-batch when the signal comes.
  std::jthread tcp_writer([&] {
    try {
      TcpClient t(k.line_port());
      for (int64_t i = 0; !stop.load(); ++i) {
        std::string lines;
        for (int j = 0; j < 500; ++j) lines += "tcpburst value=1\n";
        t.send(lines);
      }
    } catch (const std::exception&) {
    }
  });
  REQUIRE(eventually([&] { return acked[0] + acked[1] + acked[2] >= 60'000; }, 30s, 10ms));
  stop_within_deadline(k);
  stop = true;
  writers.clear();
  tcp_writer.join();

  k.start();
  const int64_t total = acked[0] + acked[1] + acked[2];
  INFO("acknowledged " << total << " samples");
  CHECK(stored_count(k, "burst", now_ms()) == static_cast<double>(total));
  stop_within_deadline(k);
}

TEST_CASE("shutdown: right after a kill -9 recovery", "[shutdown][durability]") {
  Kpid k({.config_toml = kDeadlineToml + "[storage]\ncheckpoint_interval = \"1h\"\n"});
  k.start();
  const int64_t base = (now_ms() / 1000) * 1000 - 3'600'000;
  std::string body;
  for (int i = 0; i < 20'000; ++i) {
    body += "recovered,s=" + std::to_string(i % 20) + " value=" + std::to_string(i) + " " +
            std::to_string(base + i) + "\n";
  }
  k.write_ok(body, "ms");
  k.kill9();
  k.start();  // replays the head log
  stop_within_deadline(k);
  k.start();
  CHECK(stored_count(k, "recovered", now_ms()) == 20'000);
  stop_within_deadline(k);
}

TEST_CASE("shutdown: while RocksDB compacts, the stop cancels the compaction", "[shutdown]") {
  Kpid k({.config_toml = kDeadlineToml});
  k.start();
  // Backfill spread over many two-hour windows, so a full compaction has chunk pieces to fold.
  const int64_t base = (now_ms() / 3'600'000) * 3'600'000 - 20 * 86'400'000LL;
  int64_t written = 0;
  for (int batch = 0; batch < 16; ++batch) {
    std::string body;
    for (int i = 0; i < 25'000; ++i) {
      const int64_t t = base + (static_cast<int64_t>(batch) * 25'000 + i) / 200 * 60'000;
      body += "compacted,s=" + std::to_string(i % 200) + " value=" + std::to_string(i % 97) + " " +
              std::to_string(t) + "\n";
    }
    write_slowly(k, body);
    written += 25'000;
  }
  std::atomic<int> compact_status{0};
  std::jthread compactor([&] {
    try {
      compact_status =
          http_request(k.http_port(), "POST", "/api/v1/admin/compact", "", {}, 120s).status;
    } catch (const std::exception&) {
      compact_status = -1;  // the connection closed as kpid stopped
    }
  });
  std::this_thread::sleep_for(300ms);
  INFO("the compaction answered " << compact_status.load() << " before the signal");
  REQUIRE(compact_status.load() == 0);  // still compacting when the signal comes
  stop_within_deadline(k);
  compactor.join();
  CHECK(compact_status.load() != 204);  // it was cancelled, not reported as done

  k.start();
  CHECK(stored_count(k, "compacted", now_ms(), "25d") == static_cast<double>(written));
  stop_within_deadline(k);
}

TEST_CASE("shutdown: with a long query running, the query is cancelled", "[shutdown]") {
  Kpid k({.config_toml = kDeadlineToml});
  k.start();
  // 200 series of a day at one sample a minute.
  const int64_t end = (now_ms() / 60'000) * 60'000;
  const int64_t start = end - 86'400'000;
  for (int part = 0; part < 12; ++part) {
    std::string body;
    for (int s = 0; s < 200; ++s) {
      for (int m = part * 120; m < (part + 1) * 120; ++m) {
        body += "heavy,s=" + std::to_string(s) + " value=" + std::to_string(m % 60) + " " +
                std::to_string(start + m * 60'000LL) + "\n";
      }
    }
    write_slowly(k, body);
  }
  std::atomic<int> query_status{0};
  std::jthread client([&] {
    // Every step re-reads a day of every series: far longer than the deadline.
    const std::string q = "quantile_over_time(0.9, {__name__=~\".+\"}[1d])";
    try {
      query_status = http_request(k.http_port(), "GET",
                                  "/api/v1/query_range?query=" + url_encode(q) + "&start=" +
                                      fmt_seconds(start) + "&end=" + fmt_seconds(end) + "&step=15",
                                  "", {}, 120s)
                         .status;
    } catch (const std::exception&) {
      query_status = -1;
    }
  });
  std::this_thread::sleep_for(500ms);
  INFO("the query answered " << query_status.load() << " before the signal");
  REQUIRE(query_status.load() == 0);
  stop_within_deadline(k);
  client.join();
  CHECK(query_status.load() != 200);
}

TEST_CASE(
    "shutdown: a receiver that never answers does not hold the stop, and the notification "
    "is delivered once after the next start",
    "[shutdown][alert]") {
  SilentServer silent;
  Kpid k(
      {.config_toml = kDeadlineToml + kAlertingToml +
                      webhook_toml("http://127.0.0.1:" + std::to_string(silent.port()) + "/hook") +
                      alert_kpi_toml("latency", /*okr=*/true)});
  k.start();
  write_value_now(k, "latency", 500);
  const std::string id = alert_id_when_firing(k, "latency");
  REQUIRE(eventually([&] { return silent.connections() > 0; }, 10s));  // delivery in flight
  // An ack and an OKR acceptance are acknowledged before the stop.
  REQUIRE(k.post("/api/v1/alerts/" + id + "/ack", R"({"author":"alice","comment":"on it"})",
                 {{"Content-Type", "application/json"}})
              .status == 200);
  json::array okrs;
  REQUIRE(eventually(
      [&] {
        okrs = require_api_data(k.get("/api/v1/okrs")).as_array();
        return !okrs.empty();
      },
      10s));
  const std::string okr_id = json_str(okrs[0], "id");
  REQUIRE(k.post("/api/v1/okrs/" + okr_id + "/accept", R"({"author":"bob"})",
                 {{"Content-Type", "application/json"}})
              .status == 200);
  stop_within_deadline(k);

  // Next start with a receiver that answers: the firing notification (and the acknowledgement)
  // arrive, each once; the alert is still firing and acknowledged; the OKR still accepted.
  RecordingReceiver hook;
  k.write_config(kDeadlineToml + kAlertingToml + webhook_toml(hook.url() + "/hook") +
                 alert_kpi_toml("latency", /*okr=*/true));
  k.start();
  REQUIRE(hook.wait_for(1, 10s));
  std::this_thread::sleep_for(1500ms);
  std::multiset<std::string> events;
  for (const auto& r : hook.requests()) {
    auto it = r.headers.find("x-kpid-event");
    events.insert(it == r.headers.end() ? "?" : it->second);
  }
  CHECK(events.count("alert.firing") == 1);
  CHECK(events.count("alert.acknowledged") <= 1);
  const auto alert = get_alert_detail(k, id);
  CHECK(json_str(alert, "state") == "firing");
  REQUIRE(alert.at("acknowledged").is_object());
  CHECK(json_str(alert.at("acknowledged"), "author") == "alice");
  const auto okr = require_api_data(k.get("/api/v1/okrs/" + okr_id));
  CHECK(json_str(okr, "state") == "active");
  stop_within_deadline(k);
}

TEST_CASE(
    "shutdown: thousands of undelivered notifications stay in the outbox for the next "
    "start",
    "[shutdown][alert]") {
  constexpr int kKpis = 1000;
  // The receiver is down (nothing listens on its port) while the alerts fire.
  const uint16_t port = free_port();
  std::string config = kDeadlineToml + kAlertingToml +
                       webhook_toml("http://127.0.0.1:" + std::to_string(port) + "/hook", "2s");
  for (int i = 0; i < kKpis; ++i) config += alert_kpi_toml("lat" + std::to_string(i));
  Kpid k({.config_toml = config});
  k.start();
  std::string body;
  const int64_t t = unique_now_ms();
  for (int i = 0; i < kKpis; ++i)
    body += "lat" + std::to_string(i) + " value=500 " + std::to_string(t) + "\n";
  k.write_ok(body, "ms");
  REQUIRE(eventually(
      [&] {
        return metric_value(k.metrics(), "kpid_outbox_depth", {{"receiver", "hook"}}) ==
               static_cast<double>(kKpis);
      },
      60s, 100ms));
  stop_within_deadline(k);

  kpid::testing::ReceiverOptions options;
  options.port = port;
  RecordingReceiver hook(options);
  k.start();
  REQUIRE(hook.wait_for(kKpis, 60s));
  std::this_thread::sleep_for(1s);
  std::set<std::string> keys;
  for (const auto& r : hook.requests()) keys.insert(r.headers.at("idempotency-key"));
  CHECK(keys.size() == static_cast<size_t>(kKpis));
  CHECK(hook.requests().size() == static_cast<size_t>(kKpis));
  stop_within_deadline(k);
}

TEST_CASE("shutdown: while one-year baselines are computed", "[shutdown][kpi][long]") {
  // A year of hourly samples for 4 series, and KPIs with one-year baselines over them: each
  // baseline reads 8,760 hourly quantiles (several seconds under the sanitizers), so the stop
  // comes while one is being computed. (Storing a year of hourly samples costs about 10 s a
  // series under the sanitizers: more series would make the test slower, not the stop harder.)
  constexpr int kSeries = 4;
  const int64_t now = now_ms();
  const int64_t start = (now / 3'600'000) * 3'600'000 - 365 * 86'400'000LL;
  std::string config = kDeadlineToml;
  for (int i = 0; i < 8; ++i) {
    config += "[[kpi]]\nid = \"year" + std::to_string(i) +
              "\"\nowner = \"ops\"\ndirection = \"lower_is_better\"\n[kpi.value]\n"
              "selector = 'yearly'\nover_time = \"quantile\"\nquantile = 0.9\nwindow = \"1h\"\n"
              "across = \"max\"\n[kpi.band]\nwarn = 80\ncrit = 90\n[kpi.baseline]\n"
              "method = \"quantile\"\nwindow = \"365d\"\nmin_history = \"1d\"\n";
  }
  Kpid k({.config_toml = config});
  k.start();
  for (int s = 0; s < kSeries; ++s) {
    std::string body;
    for (int64_t h = 0; h < 365 * 24; ++h) {
      body += "yearly,s=" + std::to_string(s) + " value=" + std::to_string((h * 7 + s) % 100) +
              " " + std::to_string(start + h * 3'600'000) + "\n";
    }
    write_slowly(k, body);
  }
  REQUIRE(http_request(k.http_port(), "POST", "/api/v1/admin/compact", "", {}, 300s).status ==
          204);  // rollups for the baselines
  // A restart computes every baseline again from the year of history.
  CHECK(k.stop() == 0);
  k.start();
  std::this_thread::sleep_for(300ms);
  const auto kpis = require_api_data(k.get("/api/v1/kpis")).as_array();
  int computed = 0;
  for (const auto& kpi : kpis) {
    const auto& b = kpi.at("baseline");
    if (b.is_object() && !b.at("computed_at").is_null()) ++computed;
  }
  INFO(computed << " of 8 baselines were computed before the signal");
  REQUIRE(computed < 8);
  stop_within_deadline(k);
  // The computation in flight was cancelled, not waited for.
  CHECK(contains(k.log(), "history computation abandoned as kpid stops"));
  k.start();
  CHECK(stored_count(k, "yearly", now, "366d") == kSeries * 365.0 * 24);
  stop_within_deadline(k);
}
