#pragma once
// The outbox: every notification is written to the state store before it is sent, then
// delivered by one thread per receiver, in order, until the receiver answers 2xx. A failure
// backs off exponentially (with jitter) from alerting.retry_initial to retry_max; a
// notification older than notification_max_age is dropped and counted. Entries survive
// restarts (keys "outbox/<be64 seq>").
//
// Alertmanager receivers take the alert's state, not a log of events: a newer notification for
// the same alert replaces one still waiting, and firing alerts are re-sent every
// resend_interval to keep their lease.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kpid/alert/alert.h"
#include "kpid/alert/notification.h"
#include "kpid/alert/rules.h"
#include "kpid/core/deadline.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/metrics/metrics.h"
#include "kpid/net/http_client.h"
#include "kpid/store/state_store.h"
#include "kpid/store/state_writer.h"

namespace kpid::alert {

struct OutboxOptions {
  DurationMs max_age = 24 * 3'600'000;
  DurationMs retry_initial = 1'000;
  DurationMs retry_max = 5 * 60'000;
};

// Sends one request to a receiver. The default sends HTTP(S) with a kept-alive client per
// receiver; tests substitute their own. Called only from that receiver's delivery thread.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual Result<net::OutboundResponse> send(const Receiver& receiver,
                                             const OutboundRequest& request) = 0;
  // Thread-safe: ends sends in flight at once (with an error) and fails later ones; the outbox
  // calls it as it stops. The default does nothing (a transport whose sends are short).
  virtual void cancel() {}
};

// What happened to a notification, for the alert's timeline: "delivered", "failed" (with the
// error or status), "expired".
using DeliveryReport =
    std::function<void(const Notification& n, std::string_view outcome, const std::string& detail)>;

class Outbox {
 public:
  // `transport` null: HTTP(S). `metrics` may be null. Everything must outlive the outbox.
  Outbox(store::StateStore& state, std::vector<Receiver> receivers, metrics::Metrics* metrics,
         const Clock& clock, OutboxOptions options, Transport* transport = nullptr);
  ~Outbox();

  // Reads the notifications a previous run left undelivered (before start()). Entries for a
  // receiver no longer configured are dropped with a warning.
  Status load();
  void set_report(DeliveryReport report) { report_ = std::move(report); }
  // Starts one delivery thread per receiver.
  void start();
  // Stops the delivery threads: a delivery in flight gets up to a second to finish, then is
  // cancelled (a receiver that accepts the connection and never answers does not hold the
  // stop) and its notification stays in the outbox for the next start, as does everything
  // undelivered. Waits for the threads; past
  // `deadline` it logs which receiver it still waits for.
  void stop(Deadline deadline = Deadline::never());

  // State records to write in the same atomic batch as the notifications (the alert or OKR
  // the event is about), so a crash leaves both or neither.
  using Records = std::vector<std::pair<std::string, std::string>>;

  // Writes `event` for the alert to every receiver that routes its severity and owner and takes
  // the event, together with `with` (written even when no receiver takes the event); durable
  // when it returns, and queued in memory only then. Returns the receivers' names, or
  // unavailable when the write failed (nothing queued, nothing written).
  Result<std::vector<std::string>> enqueue(std::string_view event, const Alert& alert,
                                           const boost::json::object& snapshot,
                                           const boost::json::object& okr = {},
                                           const Records& with = {});
  // The receivers that take `event` for the alert (its severity and owner routed, the event
  // one the receiver's type takes), as enqueue() would queue it.
  std::vector<std::string> routes(std::string_view event, const Alert& alert) const;
  // Re-sends a firing alert to each Alertmanager receiver it routes to whose resend_interval
  // has passed since it last got it.
  void refresh_leases(const Alert& alert, const boost::json::object& snapshot);
  // Forgets lease times of an alert that no longer fires.
  void forget(const std::string& alert_id);

  // Notifications waiting (including one in flight) for `receiver`.
  size_t depth(const std::string& receiver) const;
  const std::vector<Receiver>& receivers() const { return receivers_; }
  // kpid's external URL, the "source" of notifications queued from now on.
  void set_source(std::string external_url);

  // Delivers what is due once on the calling thread, for every receiver (tests, with no
  // threads started). Returns how many notifications were delivered.
  size_t deliver_due();

 private:
  struct Worker;
  struct Metrics;
  Result<std::vector<std::string>> enqueue_to(std::string_view event, const Alert& alert,
                                              const boost::json::object& snapshot,
                                              const boost::json::object& okr, bool leases_only,
                                              const Records& with);
  enum class Outcome { kEmpty, kDelivered, kExpired, kFailed, kStopped };
  Outcome deliver_one(Worker& w);
  // Erases the in-flight head of `w`'s queue from the store and the queue.
  void remove_head(Worker& w, const char* what);
  void run(Worker& w);
  DurationMs backoff(int attempts);

  store::StateStore& state_;
  store::StateWriter writer_;  // outbox entries: written before they are queued in memory
  std::vector<Receiver> receivers_;
  const Clock& clock_;
  OutboxOptions options_;
  Transport* transport_;
  std::unique_ptr<Transport> http_;
  std::unique_ptr<Metrics> metrics_;
  DeliveryReport report_;
  std::string source_;

  mutable std::mutex mutex_;  // sequence numbers, queues, lease times, the random generator
  uint64_t next_seq_ = 1;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mt19937_64 random_;
  bool stopping_ = false;
};

}  // namespace kpid::alert
