// alert_bench: breach-to-webhook latency of the real kpid binary on loopback (bench/README.md,
// "Alerts").
//
//   alert_bench [--kpid PATH] [--kpis N] [--reps R] [--load-rate S] [--sync]
//
// Starts a recording webhook receiver and kpid (temporary data dir, free loopback ports) with a
// probe KPI whose crit rule fires at once (for = 0) and resolves at once, plus N other KPIs with
// alert rules on series of their own (written once, healthy). Then R times: write a healthy
// probe sample and wait for the previous alert's alert.resolved; take the time, POST a
// breaching sample to /write, and wait for the webhook to receive alert.firing. Prints
// p50/p90/p99/max of that interval: a sample's arrival through ingest, the KPI evaluation,
// the alerter, the outbox write and the HTTP delivery. --load-rate S adds a client writing S
// samples/s (5000-line posts) of series no KPI watches meanwhile; --sync runs kpid with
// storage.sync = true (every write, the outbox's too, fsynced).
//
// kpid and the temporary dir are removed on exit.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include "bench_common.h"
#include "bench_text.h"
#include "support/recording_receiver.h"

namespace {

using Steady = std::chrono::steady_clock;
using kpid_bench::fixed;
using kpid_bench::HttpClient;
using kpid_bench::percentiles;

constexpr const char* kUsage =
    R"(usage: alert_bench [--kpid PATH] [--kpis N] [--reps R] [--load-rate S] [--sync]

Breach-to-webhook latency of a real kpid on loopback: R times, from just before POSTing a
breaching sample to /write until the webhook receiver has the alert.firing notification.
  --kpid PATH   the kpid binary (default: the one built with this bench)
  --kpis N      other KPIs with alert rules besides the probe (default 200)
  --reps R      breaches to time (default 500)
  --load-rate S background ingest meanwhile: S samples/s on unwatched series (default 0)
  --sync        kpid with storage.sync = true: writes are fsynced before they are acknowledged
)";

uint16_t free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::address_v4::loopback(), 0});
  return a.local_endpoint().port();
}

std::string config(uint16_t receiver_port, int kpis, bool sync) {
  std::string c = std::string(sync ? "[storage]\nsync = true\n\n" : "") + R"toml([alerting]
retry_initial = "10ms"
retry_max = "1s"

[[receiver]]
name = "bench"
type = "webhook"
url = "http://127.0.0.1:)toml" +
                  std::to_string(receiver_port) + R"toml(/hook"
secret = "bench-secret"

[[kpi]]
id = "probe"
owner = "bench"
unit = "ms"
direction = "lower_is_better"
stale_after = "1h"
[kpi.value]
selector = 'probe_latency_ms'
over_time = "last"
window = "1h"
[kpi.band]
warn = 100
crit = 200
[[kpi.alert]]
condition = "crit"
)toml";
  for (int i = 0; i < kpis; ++i) {
    const std::string n = std::to_string(i);
    c += "\n[[kpi]]\nid = \"other_" + n + "\"\nowner = \"team_" + std::to_string(i % 20) +
         "\"\ndirection = \"lower_is_better\"\nstale_after = \"1h\"\n[kpi.value]\n"
         "selector = 'other_latency_ms{kpi=\"" +
         n +
         "\"}'\nover_time = \"avg\"\n"
         "window = \"5m\"\n[kpi.band]\nwarn = 100\ncrit = 200\n[[kpi.alert]]\n"
         "condition = \"crit\"\nfor = \"1m\"\n[[kpi.alert]]\ncondition = \"no_data\"\n"
         "for = \"10m\"\n";
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  std::string kpid = KPID_BINARY;
  int kpis = 200;
  int reps = 500;
  int load_rate = 0;
  bool sync = false;
  kpid_bench::Flags flags("alert_bench", argc, argv, 1);
  while (flags.next()) {
    if (flags.flag() == "--help" || flags.flag() == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (flags.flag() == "--kpid") {
      kpid = flags.value();
    } else if (flags.flag() == "--kpis") {
      kpis = flags.integer(0, 100'000);
    } else if (flags.flag() == "--reps") {
      reps = flags.integer(1, 1'000'000);
    } else if (flags.flag() == "--sync") {
      sync = true;
    } else if (flags.flag() == "--load-rate") {
      load_rate = flags.integer(0, 10'000'000);
    } else {
      flags.fail("unknown flag " + flags.arg());
    }
  }

  char dir_template[] = "/tmp/alert-bench-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  kpid::testing::RecordingReceiver receiver;
  const uint16_t http_port = free_port();
  { std::ofstream(dir + "/kpid.toml") << config(receiver.port(), kpis, sync); }
  const std::string listen = "127.0.0.1:" + std::to_string(http_port);
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string log = dir + "/kpid.log";
    freopen(log.c_str(), "w", stderr);
    freopen(log.c_str(), "a", stdout);
    execl(kpid.c_str(), kpid.c_str(), "--config", (dir + "/kpid.toml").c_str(), "--data-dir",
          (dir + "/data").c_str(), "--http-listen", listen.c_str(), "--line-listen", "",
          "--log-level", "warn", static_cast<char*>(nullptr));
    _exit(127);
  }
  auto cleanup = [&] {
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    std::filesystem::remove_all(dir);
  };

  HttpClient client(http_port, "alert_bench");
  const auto deadline = Steady::now() + std::chrono::seconds(30);
  while (true) {
    try {
      if (client.request(boost::beast::http::verb::get, "/readyz").status == 200) break;
    } catch (const std::exception&) {
      client.close();
    }
    if (Steady::now() > deadline) {
      std::cerr << "alert_bench: kpid did not become ready; see its log\n";
      cleanup();
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string others;
  for (int i = 0; i < kpis; ++i)
    others += "other_latency_ms,kpi=" + std::to_string(i) + " value=50\n";
  if (!others.empty()) client.request(boost::beast::http::verb::post, "/write", others);

  std::cout << "== alert_bench: probe KPI among " << kpis << " other KPIs with alert rules, "
            << reps << " breaches, webhook on loopback, background load " << load_rate
            << " samples/s" << (sync ? ", storage.sync = true" : "") << "\n";
  // Background ingest: 5000-line posts of series no KPI watches, paced to load_rate.
  std::atomic<bool> stop_load{false};
  std::atomic<int64_t> loaded{0};
  std::thread load;
  if (load_rate > 0) {
    load = std::thread([&] {
      HttpClient writer(http_port, "alert_bench-load");
      constexpr int kLines = 5000;
      const auto period = std::chrono::duration<double>(static_cast<double>(kLines) / load_rate);
      auto next = Steady::now();
      int64_t step = 0;
      std::string body;
      while (!stop_load.load()) {
        body.clear();
        for (int i = 0; i < kLines; ++i) {
          body += "load,host=h" + std::to_string(i % 500) + " v" + std::to_string(i / 500) + "=" +
                  std::to_string(step % 1000) + "\n";
        }
        ++step;
        writer.request(boost::beast::http::verb::post, "/write", body);
        loaded += kLines;
        next += std::chrono::duration_cast<Steady::duration>(period);
        std::this_thread::sleep_until(next);
      }
    });
  }
  const auto load_start = Steady::now();
  std::vector<double> latencies_us;
  latencies_us.reserve(static_cast<size_t>(reps));
  // Only one notification is expected at a time, so the receiver is emptied after each.
  auto wait_for = [&](std::string_view event) -> std::optional<Steady::time_point> {
    if (!receiver.wait_for(1, std::chrono::seconds(10))) return std::nullopt;
    auto requests = receiver.requests();
    receiver.clear();
    auto it = requests[0].headers.find("x-kpid-event");
    if (requests.size() != 1 || it == requests[0].headers.end() || it->second != event) {
      std::cerr << "alert_bench: expected one " << event << " notification, got " << requests.size()
                << " (first: " << (it == requests[0].headers.end() ? "?" : it->second) << ")\n";
      return std::nullopt;
    }
    return requests[0].at;
  };
  int failures = 0;
  for (int i = 0; i < reps; ++i) {
    client.request(boost::beast::http::verb::post, "/write", "probe latency_ms=50\n");
    if (i > 0 && !wait_for("alert.resolved")) {
      ++failures;
      break;
    }
    const auto start = Steady::now();
    client.request(boost::beast::http::verb::post, "/write", "probe latency_ms=500\n");
    auto arrived = wait_for("alert.firing");
    if (!arrived) {
      ++failures;
      break;
    }
    latencies_us.push_back(std::chrono::duration<double, std::micro>(*arrived - start).count());
  }
  stop_load = true;
  if (load.joinable()) load.join();
  const double load_seconds = std::chrono::duration<double>(Steady::now() - load_start).count();
  cleanup();
  if (load_rate > 0) {
    std::cout << "background load: " << fixed(static_cast<double>(loaded.load()) / load_seconds, 0)
              << " samples/s achieved\n";
  }
  if (failures > 0) {
    std::cerr << "alert_bench: a notification went missing or was wrong (after "
              << latencies_us.size() << " breaches)\n";
    return 1;
  }
  auto p = percentiles(latencies_us);
  std::cout << "RESULT breach->webhook latency us  p50 " << fixed(p.p50, 0) << "  p90 "
            << fixed(p.p90, 0) << "  p99 " << fixed(p.p99, 0) << "  max " << fixed(p.max, 0)
            << "  (" << latencies_us.size() << " breaches)\n";
  return 0;
}
