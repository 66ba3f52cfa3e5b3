#include "kpid/alert/outbox.h"
#include "kpid/alert/episode.h"
#include "kpid/core/json.h"
#include "kpid/core/text.h"
#include "kpid/core/worker_thread.h"

#include <algorithm>
#include <cmath>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

namespace kpid::alert {

namespace json = boost::json;

namespace {

constexpr std::string_view kPrefix = "outbox/";
constexpr std::string_view kSeqKey = "meta/outbox_seq";
// How long a stop lets a delivery in flight finish before cancelling it.
constexpr DurationMs kStopGraceMs = 1'000;

// Its severity and owner route the alert to `r`, and the alert (an SLO's, configured with
// receivers) does not name only others.
bool routes_to(const Receiver& r, const Alert& alert) {
  if (!alert.receivers.empty() &&
      std::find(alert.receivers.begin(), alert.receivers.end(), r.name) == alert.receivers.end()) {
    return false;
  }
  return r.routes(alert.severity, alert.owner);
}

std::string key_of(uint64_t seq) {
  std::string key(kPrefix);
  append_big_endian(key, seq, 8);
  return key;
}

// One kept-alive HTTP(S) client per receiver; each is used only by its receiver's thread.
class HttpTransport final : public Transport {
 public:
  explicit HttpTransport(const std::vector<Receiver>& receivers) {
    for (const auto& r : receivers) {
      net::HttpClientOptions options;
      options.timeout = r.timeout;
      options.ca_file = r.ca_file;
      auto client = std::make_unique<net::HttpClient>(r.url, options);
      if (auto s = client->ready(); !s) {
        spdlog::error("receiver {}: {} (every delivery to it will fail)", r.name, s.message());
      }
      clients_.emplace(r.name, std::move(client));
    }
  }

  Result<net::OutboundResponse> send(const Receiver& receiver,
                                     const OutboundRequest& request) override {
    return clients_.at(receiver.name)->send("POST", request.target, request.body, request.headers);
  }

  void cancel() override {
    for (auto& [name, client] : clients_) client->cancel();
  }

 private:
  std::map<std::string, std::unique_ptr<net::HttpClient>> clients_;
};

}  // namespace

struct Outbox::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : depth(prometheus::BuildGauge()
                  .Name("kpid_outbox_depth")
                  .Help("Notifications waiting in the outbox for delivery, by receiver.")
                  .Register(r)),
        delivered(prometheus::BuildCounter()
                      .Name("kpid_outbox_delivered_total")
                      .Help("Notifications a receiver accepted (2xx), by receiver.")
                      .Register(r)),
        failures(prometheus::BuildCounter()
                     .Name("kpid_outbox_delivery_failures_total")
                     .Help("Delivery attempts that failed (network error, timeout or non-2xx "
                           "answer), by receiver.")
                     .Register(r)),
        expired(prometheus::BuildCounter()
                    .Name("kpid_outbox_expired_total")
                    .Help("Notifications dropped undelivered after alerting.notification_max_age, "
                          "by receiver.")
                    .Register(r)),
        latency(prometheus::BuildHistogram()
                    .Name("kpid_outbox_delivery_latency_seconds")
                    .Help("From a notification entering the outbox to its receiver accepting "
                          "it, by receiver.")
                    .Register(r)) {}

  prometheus::Family<prometheus::Gauge>& depth;
  prometheus::Family<prometheus::Counter>& delivered;
  prometheus::Family<prometheus::Counter>& failures;
  prometheus::Family<prometheus::Counter>& expired;
  prometheus::Family<prometheus::Histogram>& latency;
};

struct Outbox::Worker {
  const Receiver* receiver = nullptr;
  std::deque<Notification> queue;
  bool in_flight = false;  // queue.front() is being sent
  int attempts = 0;        // failed attempts of queue.front()
  TimestampMs next_attempt = 0;
  std::map<std::string, TimestampMs> lease_sent;  // Alertmanager: alert id -> last queued
  std::condition_variable wake;
  WorkerThread thread;
  prometheus::Gauge* depth = nullptr;
  prometheus::Counter* delivered = nullptr;
  prometheus::Counter* failures = nullptr;
  prometheus::Counter* expired = nullptr;
  prometheus::Histogram* latency = nullptr;

  void update_depth() {
    if (depth != nullptr) depth->Set(static_cast<double>(queue.size()));
  }
};

Outbox::Outbox(store::StateStore& state, std::vector<Receiver> receivers, metrics::Metrics* metrics,
               const Clock& clock, OutboxOptions options, Transport* transport)
    : state_(state),
      writer_(state, metrics, "outbox"),
      receivers_(std::move(receivers)),
      clock_(clock),
      options_(options),
      transport_(transport),
      random_(std::random_device{}()) {
  if (transport_ == nullptr) {
    http_ = std::make_unique<HttpTransport>(receivers_);
    transport_ = http_.get();
  }
  if (metrics != nullptr) metrics_ = std::make_unique<Metrics>(metrics->registry());
  for (const auto& r : receivers_) {
    auto w = std::make_unique<Worker>();
    w->receiver = &r;
    if (metrics_) {
      const std::map<std::string, std::string> labels{{"receiver", r.name}};
      w->depth = &metrics_->depth.Add(labels);
      w->delivered = &metrics_->delivered.Add(labels);
      w->failures = &metrics_->failures.Add(labels);
      w->expired = &metrics_->expired.Add(labels);
      w->latency = &metrics_->latency.Add(
          labels, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                          0.1, 0.25, 1, 5, 30, 300, 3600});
    }
    workers_.push_back(std::move(w));
  }
}

Outbox::~Outbox() { stop(); }

void Outbox::set_source(std::string external_url) {
  std::lock_guard lock(mutex_);
  source_ = std::move(external_url);
}

Status Outbox::load() {
  std::lock_guard lock(mutex_);
  if (auto s = store::read_sequence(state_, kSeqKey, next_seq_); !s) return s;
  std::vector<std::string> orphans;
  auto s = state_.scan_state(kPrefix, [&](std::string_view key, std::string_view value) {
    auto record = parse_record(value);
    Result<Notification> n =
        record ? notification_from_json(*record) : Result<Notification>(record.status());
    if (!n) {
      spdlog::error("outbox: dropping an unreadable notification: {}", n.status().message());
      orphans.emplace_back(key);
      return true;
    }
    auto it = std::find_if(workers_.begin(), workers_.end(),
                           [&](const auto& w) { return w->receiver->name == n->receiver; });
    if (it == workers_.end()) {
      spdlog::warn(
          "outbox: dropping a {} notification of alert {} for receiver {}, which is no "
          "longer configured",
          n->event, n->alert_id, n->receiver);
      orphans.emplace_back(key);
      return true;
    }
    next_seq_ = std::max(next_seq_, n->seq + 1);
    (*it)->queue.push_back(std::move(*n));
    return true;
  });
  if (!s) return s;
  for (auto& w : workers_) w->update_depth();
  if (!orphans.empty())
    return writer_.write("dropping unreadable or orphaned entries", {}, orphans);
  return Status::ok();
}

void Outbox::start() {
  for (auto& w : workers_) {
    Worker* worker = w.get();
    w->thread.start([this, worker] { run(*worker); });
  }
}

void Outbox::stop(Deadline deadline) {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& w : workers_) w->wake.notify_all();
  }
  // A delivery in flight gets a moment to finish (a receiver that answers promptly is not sent
  // the notification again after the restart); then it is cancelled and its notification stays
  // at the head of its queue, in the store.
  const Deadline grace = deadline.min(Deadline::after(kStopGraceMs));
  bool all_done = true;
  for (auto& w : workers_) all_done = w->thread.wait(grace) && all_done;
  if (!all_done) transport_->cancel();
  for (auto& w : workers_) {
    if (!w->thread.wait(deadline)) {
      spdlog::warn("outbox: delivery to {} still running at the stop deadline", w->receiver->name);
    }
  }
  for (auto& w : workers_) w->thread.join();
}

Result<std::vector<std::string>> Outbox::enqueue(std::string_view event, const Alert& alert,
                                                 const json::object& snapshot,
                                                 const json::object& okr, const Records& with) {
  return enqueue_to(event, alert, snapshot, okr, false, with);
}

void Outbox::refresh_leases(const Alert& alert, const json::object& snapshot) {
  if (auto r = enqueue_to(kFiringEvent, alert, snapshot, {}, true, {}); !r) {
    spdlog::error("outbox: queueing lease renewals of alert {}: {}", alert.id,
                  r.status().message());
  }
}

std::vector<std::string> Outbox::routes(std::string_view event, const Alert& alert) const {
  std::vector<std::string> names;
  for (const auto& r : receivers_) {
    if (routes_to(r, alert) && takes(r.type, event)) names.push_back(r.name);
  }
  return names;
}

void Outbox::forget(const std::string& alert_id) {
  std::lock_guard lock(mutex_);
  for (auto& w : workers_) w->lease_sent.erase(alert_id);
}

Result<std::vector<std::string>> Outbox::enqueue_to(std::string_view event, const Alert& alert,
                                                    const json::object& snapshot,
                                                    const json::object& okr, bool leases_only,
                                                    const Records& with) {
  std::vector<std::string> names;
  std::vector<std::pair<std::string, std::string>> puts;
  std::vector<std::string> erase;
  std::vector<std::pair<Worker*, Notification>> added;
  std::lock_guard lock(mutex_);
  const TimestampMs now = clock_.now_ms();
  uint64_t seq = next_seq_;
  for (auto& w : workers_) {
    const Receiver& r = *w->receiver;
    const bool alertmanager = r.type == ReceiverType::kAlertmanager;
    if (!routes_to(r, alert) || !takes(r.type, event)) continue;
    if (leases_only) {
      auto it = w->lease_sent.find(alert.id);
      if (!alertmanager || (it != w->lease_sent.end() && now - it->second < r.resend_interval)) {
        continue;
      }
    }
    Notification n;
    n.seq = seq++;
    n.receiver = r.name;
    n.event = std::string(event);
    n.alert_id = alert.id;
    n.created = now;
    n.source = source_;
    n.alert = snapshot;
    n.okr = okr;
    n.key = notification_key(alert, event);
    if (alertmanager) {
      // Alertmanager keeps state: the newest notification of an alert replaces a waiting one.
      for (size_t i = w->in_flight ? 1 : 0; i < w->queue.size(); ++i) {
        if (w->queue[i].alert_id == alert.id) erase.push_back(key_of(w->queue[i].seq));
      }
    }
    puts.emplace_back(key_of(n.seq), to_json_text(to_json(n)));
    names.push_back(r.name);
    added.emplace_back(w.get(), std::move(n));
  }
  puts.insert(puts.end(), with.begin(), with.end());
  const std::string what = std::string(event) + " of alert " + alert.id;
  if (added.empty()) {
    if (!with.empty()) {
      if (auto s = writer_.write(what, with); !s) return s;
    }
    return names;
  }
  puts.emplace_back(std::string(kSeqKey), std::to_string(seq));
  if (auto s = writer_.write(what, puts, erase); !s) return s;
  next_seq_ = seq;
  for (auto& [w, n] : added) {
    if (w->receiver->type == ReceiverType::kAlertmanager) {
      auto& q = w->queue;
      const size_t first = w->in_flight ? 1 : 0;
      const std::string& alert_id = n.alert_id;  // clang 14 cannot capture a structured binding
      q.erase(
          std::remove_if(q.begin() + static_cast<std::ptrdiff_t>(std::min(first, q.size())),
                         q.end(), [&](const Notification& x) { return x.alert_id == alert_id; }),
          q.end());
      if (n.event == kFiringEvent) {
        w->lease_sent[n.alert_id] = now;
      } else {
        w->lease_sent.erase(n.alert_id);
      }
    }
    w->queue.push_back(std::move(n));
    w->update_depth();
    w->wake.notify_one();
  }
  return names;
}

size_t Outbox::depth(const std::string& receiver) const {
  std::lock_guard lock(mutex_);
  for (const auto& w : workers_) {
    if (w->receiver->name == receiver) return w->queue.size();
  }
  return 0;
}

DurationMs Outbox::backoff(int attempts) {
  double delay =
      static_cast<double>(options_.retry_initial) * std::pow(2.0, std::min(attempts - 1, 40));
  delay = std::min(delay, static_cast<double>(options_.retry_max));
  // Jitter: receivers that come back are not hit by every kpid at the same instant.
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return std::max<DurationMs>(1, static_cast<DurationMs>(delay * jitter(random_)));
}

void Outbox::remove_head(Worker& w, const char* what) {
  uint64_t seq = 0;
  {
    std::lock_guard lock(mutex_);
    seq = w.queue.front().seq;
  }
  // Should the erase fail (logged and counted), the notification is sent again after a restart;
  // its idempotency key lets receivers drop it.
  const std::string erase[] = {key_of(seq)};
  (void)writer_.write(what, {}, erase);
  std::lock_guard lock(mutex_);
  w.queue.pop_front();
  w.in_flight = false;
  w.attempts = 0;
  w.next_attempt = 0;
  w.update_depth();
}

Outbox::Outcome Outbox::deliver_one(Worker& w) {
  Notification n;
  {
    std::lock_guard lock(mutex_);
    if (w.queue.empty()) return Outcome::kEmpty;
    n = w.queue.front();
    w.in_flight = true;
  }
  const Receiver& r = *w.receiver;
  const TimestampMs now = clock_.now_ms();
  if (now - n.created > options_.max_age) {
    remove_head(w, "dropping an expired notification");
    if (w.expired != nullptr) w.expired->Increment();
    spdlog::warn("outbox: {} notification of alert {} for {} expired undelivered after {}", n.event,
                 n.alert_id, r.name, format_duration(now - n.created));
    if (report_)
      report_(n, "expired",
              "undelivered to " + r.name + " after " + format_duration(now - n.created));
    return Outcome::kExpired;
  }

  auto response = transport_->send(r, render_request(r, n, now));
  const bool accepted = response && response->status >= 200 && response->status < 300;
  if (accepted) {
    // Should the erase fail, it would be sent again after a restart; the idempotency key lets
    // receivers drop it.
    remove_head(w, "removing a delivered notification");
    const TimestampMs done = clock_.now_ms();
    if (w.delivered != nullptr) w.delivered->Increment();
    if (w.latency != nullptr) w.latency->Observe(static_cast<double>(done - n.created) / 1000.0);
    if (report_) report_(n, "delivered", r.name + " answered " + std::to_string(response->status));
    return Outcome::kDelivered;
  }

  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      // Cancelled as the outbox stops, not the receiver's fault: the notification stays at the
      // head of the queue, in the store, for the next start.
      w.in_flight = false;
      return Outcome::kStopped;
    }
  }
  std::string detail;
  if (!response) {
    detail = response.status().message();
  } else {
    std::string body = response->body.substr(0, 200);
    detail = "answered " + std::to_string(response->status) + (body.empty() ? "" : ": " + body);
  }
  DurationMs delay = 0;
  int attempts = 0;
  {
    std::lock_guard lock(mutex_);
    w.in_flight = false;
    attempts = ++w.attempts;
    delay = backoff(attempts);
    w.next_attempt = clock_.now_ms() + delay;
  }
  if (w.failures != nullptr) w.failures->Increment();
  spdlog::warn("outbox: delivering {} of alert {} to {} failed (attempt {}): {}; retrying in {}",
               n.event, n.alert_id, r.name, attempts, detail, format_duration(delay));
  if (report_) report_(n, "failed", r.name + ": " + detail);
  return Outcome::kFailed;
}

void Outbox::run(Worker& w) {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (w.queue.empty()) {
      w.wake.wait(lock);
      continue;
    }
    const TimestampMs now = clock_.now_ms();
    if (now < w.next_attempt) {
      w.wake.wait_for(lock, std::chrono::milliseconds(w.next_attempt - now));
      continue;
    }
    lock.unlock();
    deliver_one(w);
    lock.lock();
  }
}

size_t Outbox::deliver_due() {
  size_t delivered = 0;
  for (auto& w : workers_) {
    while (true) {
      {
        std::lock_guard lock(mutex_);
        if (w->queue.empty() || clock_.now_ms() < w->next_attempt) break;
      }
      const Outcome outcome = deliver_one(*w);
      if (outcome == Outcome::kDelivered) ++delivered;
      if (outcome != Outcome::kDelivered && outcome != Outcome::kExpired) break;
    }
  }
  return delivered;
}

}  // namespace kpid::alert
