#include "kpid/query/options.h"

namespace kpid::query {

std::vector<std::string> keys_needing_restart(const QueryOptions& running,
                                              const QueryOptions& next) {
  std::vector<std::string> keys;
  if (running.max_concurrency != next.max_concurrency) keys.emplace_back("query.max_concurrency");
  if (running.max_queued != next.max_queued) keys.emplace_back("query.max_queued");
  if (running.worker_priority != next.worker_priority) {
    keys.emplace_back("query.worker_priority");
  }
  return keys;
}

QueryOptions reloaded(const QueryOptions& running, const QueryOptions& next) {
  QueryOptions out = next;
  out.max_concurrency = running.max_concurrency;
  out.max_queued = running.max_queued;
  out.worker_priority = running.worker_priority;
  return out;
}

}  // namespace kpid::query
