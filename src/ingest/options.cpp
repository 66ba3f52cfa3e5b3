#include "kpid/ingest/options.h"

namespace kpid::ingest {

std::vector<std::string> keys_needing_restart(const LineOptions& running, const LineOptions& next) {
  std::vector<std::string> keys;
  auto check = [&](const char* key, bool changed) {
    if (changed) keys.emplace_back(key);
  };
  check("line.listen", running.listen != next.listen);
  check("line.error_log_interval", running.error_log_interval != next.error_log_interval);
  check("line.max_connections", running.max_connections != next.max_connections);
  check("line.tls (on or off)", running.tls.enabled() != next.tls.enabled());
  check("line.tls.min_version", running.tls.min_version != next.tls.min_version);
  return keys;
}

std::vector<std::string> keys_needing_restart(const IngestOptions& running,
                                              const IngestOptions& next) {
  std::vector<std::string> keys;
  if (running.native_histogram_max_buckets != next.native_histogram_max_buckets) {
    keys.emplace_back("ingest.native_histogram_max_buckets");
  }
  if (running.db_label != next.db_label) keys.emplace_back("ingest.db_label");
  return keys;
}

LineOptions reloaded(const LineOptions& running, const LineOptions& next) {
  LineOptions out = running;
  out.max_line_bytes = next.max_line_bytes;
  return out;
}

}  // namespace kpid::ingest
