#include "kpid/forward/forwarder.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include "kpid/core/labels.h"
#include "kpid/forward/encode.h"
#include "kpid/forward/queue.h"
#include "kpid/forward/retry.h"
#include "kpid/net/client_auth.h"
#include "kpid/net/http_client.h"
#include "kpid/query/selector.h"

namespace kpid::forward {

namespace {

constexpr const char* kOrigins[] = {"samples", "kpis", "slos", "alerts", "rules"};
constexpr size_t kOriginCount = std::size(kOrigins);
// Match decisions remembered per series; the cache starts over past this.
constexpr size_t kKeepCacheMax = 1 << 20;
// The longest a sender sleeps before looking at its queue again (max_age drops, a stop).
constexpr DurationMs kIdleWakeMs = 1'000;

// One series always lands on the same shard, so its samples go out in order.
size_t shard_of(store::SeriesId id, size_t shards) {
  return static_cast<size_t>((id * 0x9E3779B97F4A7C15ull) >> 33) % shards;
}

struct Families {
  prometheus::Family<prometheus::Gauge>* pending;
  prometheus::Family<prometheus::Gauge>* pending_bytes;
  prometheus::Family<prometheus::Gauge>* oldest_age;
  prometheus::Family<prometheus::Counter>* sent;
  prometheus::Family<prometheus::Counter>* failed;
  prometheus::Family<prometheus::Counter>* dropped;
  prometheus::Family<prometheus::Gauge>* shards;
  prometheus::Family<prometheus::Counter>* requests;
  prometheus::Family<prometheus::Counter>* retries;
  prometheus::Family<prometheus::Counter>* fallbacks;
};

Families register_families(prometheus::Registry& r) {
  Families f{};
  f.pending = &prometheus::BuildGauge()
                   .Name("kpid_remote_write_pending_samples")
                   .Help("Samples queued for a remote write destination, not yet acknowledged.")
                   .Register(r);
  f.pending_bytes = &prometheus::BuildGauge()
                         .Name("kpid_remote_write_pending_bytes")
                         .Help("Bytes of a remote write destination's durable queue.")
                         .Register(r);
  f.oldest_age = &prometheus::BuildGauge()
                      .Name("kpid_remote_write_oldest_pending_age_seconds")
                      .Help("Age of the oldest sample queued for a destination (0 when none).")
                      .Register(r);
  f.sent = &prometheus::BuildCounter()
                .Name("kpid_remote_write_samples_sent_total")
                .Help("Samples a remote write destination acknowledged (2xx).")
                .Register(r);
  f.failed = &prometheus::BuildCounter()
                  .Name("kpid_remote_write_samples_failed_total")
                  .Help(
                      "Samples dropped because the destination refused them (4xx other than "
                      "429).")
                  .Register(r);
  f.dropped = &prometheus::BuildCounter()
                   .Name("kpid_remote_write_samples_dropped_total")
                   .Help(
                       "Samples dropped from a destination's queue unsent, by reason "
                       "(queue_full: past max_bytes, too_old: past max_age).")
                   .Register(r);
  f.shards = &prometheus::BuildGauge()
                  .Name("kpid_remote_write_shards")
                  .Help("Parallel senders of a remote write destination.")
                  .Register(r);
  f.requests = &prometheus::BuildCounter()
                    .Name("kpid_remote_write_requests_total")
                    .Help(
                        "Remote write requests by the receiver's status code (\"error\": no "
                        "answer).")
                    .Register(r);
  f.retries = &prometheus::BuildCounter()
                   .Name("kpid_remote_write_retries_total")
                   .Help("Remote write requests retried (connection error, 5xx, 429).")
                   .Register(r);
  f.fallbacks = &prometheus::BuildCounter()
                     .Name("kpid_remote_write_protocol_fallbacks_total")
                     .Help(
                         "Destinations that answered 415 to remote write 2.0 and were sent 1.0 "
                         "from then on.")
                     .Register(r);
  return f;
}

}  // namespace

struct Forwarder::Destination {
  Destination(RemoteWriteOptions o, net::Url url, Families& f)
      : options(std::move(o)), origin(std::move(url)), queue(options.name, options.queue) {
    const prometheus::Labels l{{"destination", options.name}};
    pending = &f.pending->Add(l);
    pending_bytes = &f.pending_bytes->Add(l);
    oldest_age = &f.oldest_age->Add(l);
    sent = &f.sent->Add(l);
    failed = &f.failed->Add(l);
    dropped_full = &f.dropped->Add({{"destination", options.name}, {"reason", "queue_full"}});
    dropped_old = &f.dropped->Add({{"destination", options.name}, {"reason", "too_old"}});
    shards_gauge = &f.shards->Add(l);
    retries = &f.retries->Add(l);
    fallbacks = &f.fallbacks->Add(l);
    requests = f.requests;
    version = options.protocol == "2.0" ? WireVersion::k2 : WireVersion::k1;
    shards = options.queue.min_shards;
    shards_gauge->Set(shards);
  }

  RemoteWriteOptions options;
  net::Url origin;
  bool origins[kOriginCount] = {};
  std::vector<std::vector<LabelMatcher>> match;
  std::vector<std::vector<LabelMatcher>> drop;
  std::unordered_map<store::SeriesId, bool> keep;  // under the enqueue lock
  Queue queue;
  std::atomic<WireVersion> version{WireVersion::k1};
  std::atomic<int> shards{1};                             // written by the sender thread only
  std::vector<std::unique_ptr<net::HttpClient>> clients;  // one per shard, max_shards
  std::vector<Encoder> encoders;
  std::thread thread;
  std::mutex mutex;  // guards stopping; wake waits on it
  std::condition_variable wake;
  bool stopping = false;
  prometheus::Gauge* pending;
  prometheus::Gauge* pending_bytes;
  prometheus::Gauge* oldest_age;
  prometheus::Counter* sent;
  prometheus::Counter* failed;
  prometheus::Counter* dropped_full;
  prometheus::Counter* dropped_old;
  prometheus::Gauge* shards_gauge;
  prometheus::Counter* retries;
  prometheus::Counter* fallbacks;
  prometheus::Family<prometheus::Counter>* requests;

  bool wants(store::SeriesId id, const store::SampleStore& store) {
    if (match.empty() && drop.empty()) return true;
    auto [it, inserted] = keep.try_emplace(id, false);
    if (!inserted) return it->second;
    const auto labels = store.labels(id);
    if (labels == nullptr) return false;
    bool kept = match.empty();
    for (const auto& m : match) kept = kept || matches_all(*labels, m);
    for (const auto& d : drop) kept = kept && !matches_all(*labels, d);
    if (keep.size() > kKeepCacheMax) keep.clear();
    keep[id] = kept;
    return kept;
  }

  bool is_stopping() {
    std::lock_guard lock(mutex);
    return stopping;
  }
};

struct Forwarder::Impl {
  Families families{};
  std::vector<std::unique_ptr<Destination>> destinations;
  // One enqueue at a time: sequence numbers follow the order of the state writes.
  std::mutex enqueue_mutex;
  std::vector<std::pair<std::string, std::string>> puts;
  std::vector<size_t> put_destination;
  std::vector<store::Sample> filtered;
  bool started = false;
};

namespace {

void warn_dropped(const std::string& name, const Dropped& d, std::string_view why) {
  spdlog::warn("remote write {}: dropped {} samples ({} queue records) unsent: {}", name, d.samples,
               d.records, why);
}

}  // namespace

Status check(const RemoteWriteOptions& o) {
  if (auto url = net::parse_url(o.url); !url) {
    return Status::invalid_argument("url: " + url.status().message());
  }
  for (const auto* list : {&o.match, &o.drop}) {
    for (const std::string& s : *list) {
      if (auto m = query::parse_selector(s); !m) {
        return Status::invalid_argument(std::string(list == &o.match ? "match" : "drop") + ": \"" +
                                        s + "\": " + m.status().message());
      }
    }
  }
  return Status::ok();
}

Forwarder::Forwarder(store::StateStore& state, const store::SampleStore& store,
                     metrics::Metrics& metrics, const Clock& clock)
    : state_(state), store_(store), clock_(clock), impl_(std::make_shared<Impl>()) {
  impl_->families = register_families(metrics.registry());
  std::weak_ptr<Impl> weak = impl_;
  const Clock* c = &clock_;
  metrics.on_scrape([weak, c] {
    auto impl = weak.lock();
    if (!impl) return;
    const TimestampMs now = c->now_ms();
    for (auto& d : impl->destinations) {
      d->pending->Set(static_cast<double>(d->queue.pending_samples()));
      d->pending_bytes->Set(static_cast<double>(d->queue.pending_bytes()));
      const auto oldest = d->queue.oldest();
      d->oldest_age->Set(oldest ? static_cast<double>(std::max<TimestampMs>(0, now - *oldest)) / 1e3
                                : 0.0);
    }
  });
}

Result<std::unique_ptr<Forwarder>> Forwarder::create(std::vector<RemoteWriteOptions> destinations,
                                                     store::StateStore& state,
                                                     const store::SampleStore& store,
                                                     metrics::Metrics& metrics,
                                                     const Clock& clock) {
  std::unique_ptr<Forwarder> f(new Forwarder(state, store, metrics, clock));
  for (auto& o : destinations) {
    const std::string where =
        (o.source.empty() ? std::string() : o.source + ": ") + "remote_write." + o.name;
    auto url = net::parse_url(o.url);
    if (!url) return Status::invalid_argument(where + ".url: " + url.status().message());
    auto d = std::make_unique<Destination>(o, *url, f->impl_->families);
    for (const std::string& s : o.send) {
      const auto* it = std::find(std::begin(kOrigins), std::end(kOrigins), s);
      if (it == std::end(kOrigins)) {
        return Status::invalid_argument(where + ".send: unknown value \"" + s + "\"");
      }
      d->origins[static_cast<size_t>(it - std::begin(kOrigins))] = true;
    }
    auto compile = [&](const std::vector<std::string>& selectors, const char* key,
                       std::vector<std::vector<LabelMatcher>>& out) -> Status {
      for (const std::string& s : selectors) {
        auto m = query::parse_selector(s);
        if (!m) {
          return Status::invalid_argument(where + "." + key + ": \"" + s +
                                          "\": " + m.status().message());
        }
        out.push_back(std::move(*m));
      }
      return Status::ok();
    };
    if (auto s = compile(o.match, "match", d->match); !s) return s;
    if (auto s = compile(o.drop, "drop", d->drop); !s) return s;
    f->impl_->destinations.push_back(std::move(d));
  }
  return f;
}

Forwarder::~Forwarder() { stop(); }

Status Forwarder::load() {
  for (auto& d : impl_->destinations) {
    if (auto s = d->queue.load(state_); !s) {
      return Status(s.code(), "remote write " + d->options.name + ": " + s.message());
    }
    if (d->queue.records() > 0) {
      spdlog::info("remote write {}: {} samples queued from before the restart", d->options.name,
                   d->queue.pending_samples());
    }
  }
  return Status::ok();
}

bool Forwarder::wants(Origin origin) const {
  for (const auto& d : impl_->destinations) {
    if (d->origins[static_cast<size_t>(origin)]) return true;
  }
  return false;
}

void Forwarder::observe(std::span<const store::Sample> samples) {
  if (auto s = record(samples); !s) spdlog::error("{}", s.message());
}

Status Forwarder::record(std::span<const store::Sample> samples) {
  if (auto s = enqueue(Origin::kSamples, samples); !s) return s;
  if (next_ != nullptr) next_->observe(samples);
  return Status::ok();
}

Status Forwarder::enqueue(Origin origin, std::span<const store::Sample> samples) {
  return enqueue_to({}, origin, samples);
}

Status Forwarder::enqueue_to(std::string_view destination, Origin origin,
                             std::span<const store::Sample> samples) {
  if (samples.empty() || impl_->destinations.empty()) return Status::ok();
  Impl& impl = *impl_;
  std::lock_guard lock(impl.enqueue_mutex);
  const TimestampMs now = clock_.now_ms();
  impl.puts.resize(impl.destinations.size());
  impl.put_destination.clear();
  size_t count = 0;
  for (size_t i = 0; i < impl.destinations.size(); ++i) {
    Destination& d = *impl.destinations[i];
    if (!d.origins[static_cast<size_t>(origin)]) continue;
    if (!destination.empty() && d.options.name != destination) continue;
    std::span<const store::Sample> kept = samples;
    if (!d.match.empty() || !d.drop.empty()) {
      impl.filtered.clear();
      for (const store::Sample& s : samples) {
        if (d.wants(s.series, store_)) impl.filtered.push_back(s);
      }
      if (impl.filtered.empty()) continue;
      kept = impl.filtered;
    }
    auto& [key, value] = impl.puts[count++];
    key = d.queue.reserve_key();
    encode_record(now, kept, value);
    impl.put_destination.push_back(i);
  }
  if (count == 0) return Status::ok();
  if (auto s = state_.write_state(std::span(impl.puts.data(), count)); !s) {
    spdlog::error("remote write: queueing {} samples failed: {}", samples.size(), s.message());
    return Status::unavailable("queueing the samples for remote write failed: " + s.message());
  }
  for (size_t k = 0; k < count; ++k) {
    Destination& d = *impl.destinations[impl.put_destination[k]];
    const std::string& value = impl.puts[k].second;
    d.queue.committed(now, static_cast<uint32_t>((value.size() - 12) / 24),
                      static_cast<uint32_t>(value.size()));
    Dropped dropped = d.queue.drop_full();
    if (dropped.records > 0) {
      // Dropping is best effort: a record whose erase fails is sent after a restart instead.
      if (auto s = state_.write_state({}, dropped.keys); !s) {
        spdlog::error("remote write {}: erasing dropped records: {}", d.options.name, s.message());
      }
      d.dropped_full->Increment(static_cast<double>(dropped.samples));
      warn_dropped(d.options.name, dropped, "the queue is over max_bytes");
    }
    {
      // Taken so the sender cannot miss the wake between its check and its wait.
      std::lock_guard wake_lock(d.mutex);
    }
    d.wake.notify_all();
  }
  return Status::ok();
}

namespace {

struct SendContext {
  Forwarder::Destination& d;
  const store::SampleStore& store;
  const Clock& clock;
};

// Waits `delay` unless the destination stops first; false when it stops.
bool pause(Forwarder::Destination& d, DurationMs delay) {
  std::unique_lock lock(d.mutex);
  return !d.wake.wait_for(lock, std::chrono::milliseconds(delay), [&] { return d.stopping; });
}

}  // namespace

// Sends one shard's samples in batches of max_samples_per_send, each until it is acknowledged
// or refused. False when the destination stopped first (the batch was not acknowledged).
static bool send_shard(Forwarder::Destination& d, size_t shard, const store::SampleStore& store,
                       const Clock& clock, std::span<const store::Sample> samples) {
  const QueueOptions& q = d.options.queue;
  const LabelsOf labels_of = [&store](store::SeriesId id) { return store.labels(id); };
  std::mt19937_64 random(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (size_t at = 0; at < samples.size();) {
    size_t end = std::min(samples.size(), at + static_cast<size_t>(q.max_samples_per_send));
    auto batch = samples.subspan(at, end - at);
    for (int attempt = 0;;) {
      const WireVersion version = d.version.load();
      size_t skipped = 0;
      const std::string& body = d.encoders[shard].encode(batch, labels_of, version, skipped);
      std::vector<std::pair<std::string, std::string>> headers;
      int status = 0;
      std::string answer;
      std::string retry_after;
      if (auto auth = net::auth_headers(d.options.auth); !auth) {
        answer = auth.status().message();
      } else {
        headers = std::move(*auth);
        headers.emplace_back("Content-Encoding", "snappy");
        headers.emplace_back("Content-Type", std::string(content_type(version)));
        headers.emplace_back("X-Prometheus-Remote-Write-Version",
                             std::string(version_header(version)));
        auto response = d.clients[shard]->send("POST", "", body, headers);
        if (response) {
          status = response->status;
          answer = response->body.substr(0, 512);
          retry_after = response->retry_after;
        } else {
          answer = response.status().message();
        }
      }
      d.requests
          ->Add({{"destination", d.options.name},
                 {"code", status == 0 ? "error" : std::to_string(status)}})
          .Increment();
      const Verdict verdict = classify(status, version == WireVersion::k2);
      if (verdict == Verdict::kSent) {
        d.sent->Increment(static_cast<double>(batch.size() - skipped));
        break;
      }
      if (verdict == Verdict::kUnsupported) {
        WireVersion expected = WireVersion::k2;
        if (d.version.compare_exchange_strong(expected, WireVersion::k1)) {
          spdlog::warn(
              "remote write {}: the receiver answered 415 to remote write 2.0; sending "
              "1.0 from now on",
              d.options.name);
          d.fallbacks->Increment();
        }
        continue;
      }
      if (verdict == Verdict::kRefused) {
        d.failed->Increment(static_cast<double>(batch.size()));
        spdlog::error("remote write {}: the receiver refused {} samples with {} (not retried): {}",
                      d.options.name, batch.size(), status, answer);
        break;
      }
      if (d.is_stopping()) return false;
      std::optional<DurationMs> delay;
      if (status == 429 || status == 503) delay = parse_retry_after(retry_after, clock.now_ms());
      if (!delay) delay = backoff_delay(attempt, q.min_backoff, q.max_backoff, unit(random));
      if (attempt == 0) {
        spdlog::warn("remote write {}: sending {} samples failed ({}); retrying in {} ms",
                     d.options.name, batch.size(),
                     status == 0 ? answer : std::to_string(status) + ": " + answer, *delay);
      } else {
        spdlog::debug("remote write {}: attempt {} failed ({}); retrying in {} ms", d.options.name,
                      attempt + 1, status == 0 ? answer : std::to_string(status), *delay);
      }
      ++attempt;
      d.retries->Increment();
      if (!pause(d, *delay)) return false;
    }
    at = end;
  }
  return true;
}

namespace {

// The sender thread of one destination: a round takes the oldest records (up to one full batch
// per shard), splits their samples by series over the shards, sends the shards in parallel and
// erases the records once every shard's batches were acknowledged or refused. Rounds run one
// after the other, so a series' samples leave in order whatever the shard count.
void run_sender(Forwarder::Destination& d, store::StateStore& state,
                const store::SampleStore& store, const Clock& clock) {
  const QueueOptions& q = d.options.queue;
  const auto per_send = static_cast<uint64_t>(q.max_samples_per_send);
  std::vector<store::Sample> round;
  std::vector<std::vector<store::Sample>> parts(static_cast<size_t>(q.max_shards));
  int failures = 0;
  while (!d.is_stopping()) {
    if (Dropped old = d.queue.drop_old(clock.now_ms()); old.records > 0) {
      if (auto s = state.write_state({}, old.keys); !s) {
        spdlog::error("remote write {}: erasing dropped records: {}", d.options.name, s.message());
      }
      d.dropped_old->Increment(static_cast<double>(old.samples));
      warn_dropped(d.options.name, old, "older than max_age");
    }
    // A full batch, or the oldest sample waited batch_send_deadline.
    const uint64_t pending = d.queue.pending_samples();
    const auto oldest = d.queue.oldest();
    const TimestampMs age = oldest ? clock.now_ms() - *oldest : 0;
    if (pending == 0 || (pending < per_send && age < q.batch_send_deadline)) {
      if (pending == 0 && d.shards.load() != q.min_shards) {
        // Caught up, with nothing in flight: back to the fewest shards.
        spdlog::info("remote write {}: caught up, {} shards (was {})", d.options.name, q.min_shards,
                     d.shards.load());
        d.shards = q.min_shards;
        d.shards_gauge->Set(q.min_shards);
      }
      std::unique_lock lock(d.mutex);
      const DurationMs wait =
          pending == 0 ? kIdleWakeMs
                       : std::clamp<DurationMs>(q.batch_send_deadline - age, 1, kIdleWakeMs);
      d.wake.wait_for(lock, std::chrono::milliseconds(wait), [&] {
        // The first record of an empty queue starts its deadline; a full batch goes at once.
        const uint64_t now_pending = d.queue.pending_samples();
        return d.stopping || (pending == 0 ? now_pending > 0 : now_pending >= per_send);
      });
      continue;
    }
    const auto n = static_cast<size_t>(d.shards.load());
    const std::vector<std::string> keys = d.queue.take(per_send * n);
    round.clear();
    Status read = Status::ok();
    for (const std::string& key : keys) {
      auto value = state.get_state(key);
      if (!value) {
        read = value.status();
        break;
      }
      if (!*value) continue;  // erased by a drop that raced with this round
      TimestampMs enqueued = 0;
      if (auto s = decode_record(**value, enqueued, round); !s) {
        spdlog::error("remote write {}: skipping an unreadable queue record: {}", d.options.name,
                      s.message());
      }
    }
    if (!read) {
      d.queue.requeue();
      spdlog::error("remote write {}: reading the queue: {}", d.options.name, read.message());
      if (!pause(d, backoff_delay(failures++, q.min_backoff, q.max_backoff, 1.0))) break;
      continue;
    }
    failures = 0;
    for (auto& p : parts) p.clear();
    for (const store::Sample& s : round) parts[shard_of(s.series, n)].push_back(s);
    for (size_t i = 0; i < n; ++i) {
      // Stable: a series' samples keep their queue order.
      std::stable_sort(
          parts[i].begin(), parts[i].end(),
          [](const store::Sample& a, const store::Sample& b) { return a.series < b.series; });
    }
    std::vector<char> done(n, 0);
    {
      std::vector<std::thread> workers;
      for (size_t i = 1; i < n; ++i) {
        if (parts[i].empty()) {
          done[i] = 1;
          continue;
        }
        workers.emplace_back(
            [&, i] { done[i] = send_shard(d, i, store, clock, parts[i]) ? 1 : 0; });
      }
      done[0] = send_shard(d, 0, store, clock, parts[0]) ? 1 : 0;
      for (auto& w : workers) w.join();
    }
    if (std::find(done.begin(), done.end(), 0) != done.end()) {
      d.queue.requeue();  // stopping: the records stay for the next start
      break;
    }
    const std::vector<std::string> finished = d.queue.finished();
    if (auto s = state.write_state({}, finished); !s) {
      // They were sent; a restart sends them again (at least once).
      spdlog::error("remote write {}: erasing sent records: {}", d.options.name, s.message());
    }
    // Grow while the backlog outruns the shards; shrink once caught up. Between rounds, so
    // nothing is in flight when the split changes.
    const uint64_t left = d.queue.pending_samples();
    const auto next_oldest = d.queue.oldest();
    const TimestampMs lag = next_oldest ? clock.now_ms() - *next_oldest : 0;
    const int before = d.shards.load();
    int shards = before;
    if (lag > q.batch_send_deadline && left > per_send * n) {
      shards = std::min(q.max_shards, shards * 2);
    } else if (left < per_send && shards > q.min_shards) {
      shards = std::max(q.min_shards, shards - 1);
    }
    if (shards != before) {
      spdlog::info("remote write {}: {} shards (was {}; {} samples pending, oldest {} ms)",
                   d.options.name, shards, before, left, lag);
      d.shards = shards;
      d.shards_gauge->Set(shards);
    }
  }
}

}  // namespace

void Forwarder::start() {
  if (impl_->started) return;
  impl_->started = true;
  for (auto& dp : impl_->destinations) {
    Destination& d = *dp;
    const auto options = net::client_options(d.options.auth, d.options.timeout, 64 << 10);
    for (int i = 0; i < d.options.queue.max_shards; ++i) {
      d.clients.push_back(std::make_unique<net::HttpClient>(d.origin, options));
    }
    d.encoders.resize(static_cast<size_t>(d.options.queue.max_shards));
    if (auto s = d.clients.front()->ready(); !s) {
      spdlog::error("remote write {}: {} (every send will fail)", d.options.name, s.message());
    }
    d.thread = std::thread([this, &d] { run_sender(d, state_, store_, clock_); });
  }
}

void Forwarder::stop(Deadline) {
  // Sends in flight are cancelled at once: the queue keeps whatever was not acknowledged, so
  // there is nothing a stop would gain by waiting for a receiver.
  for (auto& d : impl_->destinations) {
    {
      std::lock_guard lock(d->mutex);
      d->stopping = true;
    }
    d->wake.notify_all();
    for (auto& c : d->clients) c->cancel();
  }
  for (auto& d : impl_->destinations) {
    if (d->thread.joinable()) d->thread.join();
  }
}

uint64_t Forwarder::pending_samples(std::string_view destination) const {
  for (const auto& d : impl_->destinations) {
    if (d->options.name == destination) return d->queue.pending_samples();
  }
  return 0;
}

int Forwarder::shards(std::string_view destination) const {
  for (const auto& d : impl_->destinations) {
    if (d->options.name == destination) return d->shards.load();
  }
  return -1;
}

}  // namespace kpid::forward
