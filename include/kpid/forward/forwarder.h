#pragma once
// Remote write out: every [[remote_write]] destination gets what it asked for (ingested samples,
// recording-rule results), queued durably before the write that brought them is acknowledged,
// then sent by its own sender thread in shards, with retries, until the receiver takes them.
// At least once: a sample may arrive twice (a retry after a lost answer, a restart before the
// acknowledgement was recorded), never not at all unless the drop policy or a 4xx dropped it,
// which is counted and logged.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/deadline.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/forward/options.h"
#include "kpid/metrics/metrics.h"
#include "kpid/store/sample_store.h"
#include "kpid/store/state_store.h"

namespace kpid::forward {

// What the config loader cannot check alone: the url parses, and every selector of match and
// drop. On failure the error's message starts with the key ("match: ...", "url: ...").
Status check(const RemoteWriteOptions& destination);

class Forwarder final : public store::SampleObserver {
 public:
  // Checks every destination (url, selectors of match and drop, send), naming its source
  // ("kpid.toml:12: remote_write.vm.match: ...") on failure. `store` gives series their labels;
  // `state` holds the queues. Both, and `metrics` and `clock`, must outlive the forwarder.
  static Result<std::unique_ptr<Forwarder>> create(std::vector<RemoteWriteOptions> destinations,
                                                   store::StateStore& state,
                                                   const store::SampleStore& store,
                                                   metrics::Metrics& metrics, const Clock& clock);
  ~Forwarder() override;

  // Reads what the queues held when kpid stopped (before start() and before any write).
  Status load();
  // Ingested batches are passed on to `next` (the KPI evaluator) once queued; may be null.
  void set_next(store::SampleObserver* next) { next_ = next; }
  // Starts one sender thread per destination.
  void start();
  // Stops the senders: sends in flight are cancelled, and what the receivers have not
  // acknowledged stays queued for the next start. Idempotent.
  void stop(Deadline deadline = Deadline::never());

  // The ingest path (SampleObserver): queues `samples` for every destination that sends
  // "samples", atomically, then tells `next`. Not ok (unavailable) when the queue write failed:
  // the write must not be acknowledged. Thread-safe.
  Status record(std::span<const store::Sample> samples) override;
  void observe(std::span<const store::Sample> samples) override;

  // Queues samples of stored series from another origin (recording-rule results: Origin::kRules)
  // for the destinations that send it. Thread-safe.
  Status enqueue(Origin origin, std::span<const store::Sample> samples);
  // As enqueue(), for one destination only (all when `destination` is empty): kpid's own
  // series are snapshot on each destination's self_interval.
  Status enqueue_to(std::string_view destination, Origin origin,
                    std::span<const store::Sample> samples);
  // Whether any destination sends `origin`.
  bool wants(Origin origin) const;

  // Introspection for tests and the status line: -1 / 0 for an unknown destination.
  uint64_t pending_samples(std::string_view destination) const;
  int shards(std::string_view destination) const;

  struct Destination;

 private:
  Forwarder(store::StateStore& state, const store::SampleStore& store, metrics::Metrics& metrics,
            const Clock& clock);

  store::StateStore& state_;
  const store::SampleStore& store_;
  const Clock& clock_;
  store::SampleObserver* next_ = nullptr;
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with the metrics' scrape hook
};

}  // namespace kpid::forward
