#pragma once
// The durable queue of one remote write destination: records of samples (series id, timestamp,
// value) in the state store's RocksDB, one key per record under "forward/<name>/<seq>", so they
// share the samples' write-ahead log and survive kill -9 and restarts. Records leave the queue
// only when the receiver acknowledged them (2xx), when a receiver refused them for good (4xx),
// or by the drop policy: past max_bytes or max_age the oldest whole records not being sent
// are dropped first.

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/forward/options.h"
#include "kpid/store/sample_store.h"
#include "kpid/store/state_store.h"

namespace kpid::forward {

// A record's value: enqueue time (ms), sample count, then 24 bytes per sample (series id,
// timestamp, value bits), little-endian.
void encode_record(TimestampMs enqueued, std::span<const store::Sample> samples, std::string& out);
// Appends a record's samples to `out`; its enqueue time in `enqueued`. Fails on a malformed value.
Status decode_record(std::string_view value, TimestampMs& enqueued,
                     std::vector<store::Sample>& out);

// What a drop removed: whole records, for the dropped metric and the warning.
struct Dropped {
  uint64_t samples = 0;
  size_t records = 0;
  std::vector<std::string> keys;  // to erase from the state store
};

// The in-memory index of a destination's records; the values stay in the state store.
// Thread-safe.
class Queue {
 public:
  Queue(std::string name, QueueOptions options);

  const std::string& name() const { return name_; }
  // "forward/<name>/": every record key starts with it.
  const std::string& prefix() const { return prefix_; }

  // Rebuilds the index from the state store (at start, before any enqueue).
  Status load(const store::StateStore& state);

  // The key the next record takes; reserve() then committed() (after the write succeeded)
  // must be called under the caller's enqueue lock so sequence numbers stay in order.
  std::string reserve_key();
  void committed(TimestampMs enqueued, uint32_t samples, uint32_t bytes);

  // Records past max_bytes (reason queue_full) or older than max_age at `now` (too_old), oldest
  // first, skipping those being sent; removed from the index. The caller erases the keys.
  Dropped drop_full();
  Dropped drop_old(TimestampMs now);

  // Up to the oldest records holding about `max_samples` samples (at least one record), not
  // already being sent: their keys, which are now in flight until finished().
  std::vector<std::string> take(uint64_t max_samples);
  // The in-flight records are done (sent, or refused for good): removed from the index.
  // Returns their keys for the caller to erase.
  std::vector<std::string> finished();
  // The in-flight records go back to pending (a stop before they were acknowledged).
  void requeue();

  uint64_t pending_samples() const;
  uint64_t pending_bytes() const;
  // Enqueue time of the oldest record; nullopt when empty.
  std::optional<TimestampMs> oldest() const;
  size_t records() const;

 private:
  struct Entry {
    uint64_t seq;
    TimestampMs enqueued;
    uint32_t samples;
    uint32_t bytes;
  };
  std::string key_of(uint64_t seq) const;
  void pop_front_into(Dropped& out);

  std::string name_;
  std::string prefix_;
  QueueOptions options_;
  mutable std::mutex mutex_;
  std::deque<Entry> entries_;  // in sequence order
  size_t in_flight_ = 0;       // the first entries, being sent
  uint64_t next_seq_ = 1;
  uint64_t samples_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace kpid::forward
