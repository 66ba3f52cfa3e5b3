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

LineOptions reloaded(const LineOptions& running, const LineOptions& next) {
  LineOptions out = running;
  out.max_line_bytes = next.max_line_bytes;
  return out;
}

}  // namespace kpid::ingest
