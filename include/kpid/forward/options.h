#pragma once
// [[remote_write]]: where kpid forwards what it ingests and computes (Prometheus remote write),
// and the durable queue in front of each destination.

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "kpid/core/time.h"
#include "kpid/net/client_auth.h"

namespace kpid::forward {

// [remote_write.queue]: bounds of the durable queue and how the senders batch and retry.
struct QueueOptions {
  uint64_t max_bytes = 256ull << 20;    // older records are dropped past this (queue_full)
  DurationMs max_age = 12 * 3'600'000;  // records older than this are dropped (too_old)
  int min_shards = 1;                   // parallel senders, each owning a hash range of series
  int max_shards = 8;
  int max_samples_per_send = 2000;         // samples in one request
  DurationMs batch_send_deadline = 5'000;  // a partial batch waits at most this long
  DurationMs min_backoff = 100;            // first retry delay (full jitter below it doubling)
  DurationMs max_backoff = 30'000;
};

// Where a sample came from; `send` chooses which a destination takes.
enum class Origin : uint8_t { kSamples, kKpis, kSlos, kAlerts, kRules };

struct RemoteWriteOptions {
  std::string name;  // unique; the `destination` label of the metrics
  std::string url;   // the receiver's write endpoint, e.g. http://vm:8428/api/v1/write
  DurationMs timeout = 30'000;
  std::string protocol = "1.0";                 // "1.0" or "2.0" (falls back to 1.0 on a 415)
  std::vector<std::string> send = {"samples"};  // samples, kpis, slos, alerts, rules
  std::vector<std::string> match;  // selectors: keep only series matching one (empty: all)
  std::vector<std::string> drop;   // selectors: then drop series matching one
  // How often kpid's own series (send = kpis, slos, alerts) are collected and queued.
  DurationMs self_interval = 15'000;
  QueueOptions queue;
  net::ClientAuthOptions auth;
  // Where the table is, for errors found when its selectors are compiled ("file:line").
  std::string source;
};

// ["remote_write"] when the destinations differ: a reload keeps the running ones (their
// senders and queues are made at start).
inline std::vector<std::string> keys_needing_restart(const std::vector<RemoteWriteOptions>& running,
                                                     const std::vector<RemoteWriteOptions>& next) {
  auto key = [](const RemoteWriteOptions& o) {
    const QueueOptions& q = o.queue;
    const net::ClientAuthOptions& a = o.auth;
    return std::tie(o.name, o.url, o.timeout, o.protocol, o.send, o.match, o.drop, q.max_bytes,
                    q.max_age, q.min_shards, q.max_shards, q.max_samples_per_send,
                    q.batch_send_deadline, q.min_backoff, q.max_backoff, a.bearer_token,
                    a.bearer_token_file, a.basic_username, a.basic_password, a.basic_password_file,
                    a.headers, a.ca_file, a.cert_file, a.key_file, a.insecure_skip_verify,
                    o.self_interval);
  };
  bool same = running.size() == next.size();
  for (size_t i = 0; same && i < running.size(); ++i) same = key(running[i]) == key(next[i]);
  if (same) return {};
  return {"remote_write"};
}

}  // namespace kpid::forward
