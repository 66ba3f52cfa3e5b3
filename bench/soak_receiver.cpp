// soak_receiver: the webhook end of bench/soak.sh. Listens on 127.0.0.1 (an ephemeral port,
// printed as "soak_receiver listening on 127.0.0.1:PORT"), answers every request 200, and
// counts kpid's webhook notifications by X-Kpid-Event, checking each one's
// X-Kpid-Signature (HMAC-SHA256 of the body under --secret) and Idempotency-Key (a key seen
// twice is a redelivery). Logs one line per notification; on SIGTERM or SIGINT prints the
// counts and exits 0.
//
//   soak_receiver [--secret S]
//
// It reuses the tests' RecordingReceiver, whose record of requests it empties every second
// so that memory stays flat however long the soak runs.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <unordered_set>

#include "bench_common.h"
#include "support/recording_receiver.h"

namespace {

constexpr const char* kUsage = R"(usage: soak_receiver [--secret S]

A loopback webhook receiver for bench/soak.sh: prints "soak_receiver listening on
127.0.0.1:PORT", answers every request 200, counts kpid's notifications by X-Kpid-Event and
checks their X-Kpid-Signature (HMAC-SHA256 under S; default "soak-secret") and
Idempotency-Key (duplicates). Prints the counts on SIGTERM or SIGINT and exits 0.
)";

std::string hmac_sha256_hex(const std::string& key, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 15]);
  }
  return out;
}

std::string header(const kpid::testing::ReceivedRequest& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

// The "kpi" of the notification's alert, for the log line (the body is kpid's JSON).
std::string kpi_of(const std::string& body) {
  const std::string needle = "\"kpi\":\"";
  auto at = body.find(needle);
  if (at == std::string::npos) return "?";
  at += needle.size();
  return body.substr(at, body.find('"', at) - at);
}

struct Counts {
  std::mutex mutex;
  std::map<std::string, int64_t> by_event;
  int64_t total = 0;
  int64_t bad_signature = 0;
  int64_t duplicates = 0;
  int64_t not_webhook = 0;  // anything but POST /hook
  std::unordered_set<std::string> keys;
};

}  // namespace

int main(int argc, char** argv) {
  std::string secret = "soak-secret";
  kpid_bench::Flags flags("soak_receiver", argc, argv, 1);
  while (flags.next()) {
    if (flags.flag() == "--help" || flags.flag() == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (flags.flag() == "--secret") {
      secret = flags.value();
    } else {
      flags.fail("unknown flag " + flags.arg());
    }
  }

  // Blocked before the receiver's thread exists, so only sigtimedwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Counts counts;
  const auto t0 = std::chrono::steady_clock::now();
  kpid::testing::RecordingReceiver receiver;
  receiver.on_request([&](const kpid::testing::ReceivedRequest& r) {
    const std::string event = header(r, "x-kpid-event");
    const std::string key = header(r, "idempotency-key");
    const bool signed_ok =
        header(r, "x-kpid-signature") == "sha256=" + hmac_sha256_hex(secret, r.body);
    std::lock_guard lock(counts.mutex);
    ++counts.total;
    if (r.method != "POST" || r.target != "/hook") ++counts.not_webhook;
    ++counts.by_event[event.empty() ? "(none)" : event];
    if (!signed_ok) ++counts.bad_signature;
    if (!counts.keys.insert(key).second) ++counts.duplicates;
    const double t = std::chrono::duration<double>(r.at - t0).count();
    std::printf("%9.3f %s %s key %s%s%s\n", t, event.c_str(), kpi_of(r.body).c_str(), key.c_str(),
                signed_ok ? "" : " BAD SIGNATURE", r.target == "/hook" ? "" : " WRONG TARGET");
    std::fflush(stdout);
  });
  std::printf("soak_receiver listening on 127.0.0.1:%u\n", receiver.port());
  std::fflush(stdout);

  const timespec second{1, 0};
  while (sigtimedwait(&stop_signals, nullptr, &second) < 0) receiver.clear();
  receiver.stop();

  std::lock_guard lock(counts.mutex);
  std::printf("RESULT webhook notifications received %lld", static_cast<long long>(counts.total));
  const char* sep = " (";
  for (const auto& [event, n] : counts.by_event) {
    std::printf("%s%s %lld", sep, event.c_str(), static_cast<long long>(n));
    sep = ", ";
  }
  std::printf("%s; bad signatures %lld, duplicate keys %lld, not POST /hook %lld\n",
              counts.by_event.empty() ? "" : ")", static_cast<long long>(counts.bad_signature),
              static_cast<long long>(counts.duplicates),
              static_cast<long long>(counts.not_webhook));
  auto n = [&](const char* e) {
    auto it = counts.by_event.find(e);
    return static_cast<long long>(it == counts.by_event.end() ? 0 : it->second);
  };
  std::printf(
      "WEBHOOK received=%lld firing=%lld resolved=%lld repeat=%lld other=%lld "
      "bad_signature=%lld duplicates=%lld not_webhook=%lld\n",
      static_cast<long long>(counts.total), n("alert.firing"), n("alert.resolved"),
      n("alert.repeat"),
      static_cast<long long>(counts.total) - n("alert.firing") - n("alert.resolved") -
          n("alert.repeat"),
      static_cast<long long>(counts.bad_signature), static_cast<long long>(counts.duplicates),
      static_cast<long long>(counts.not_webhook));
  return 0;
}
