#include "kpid/server/options.h"

namespace kpid::server {

std::vector<std::string> keys_needing_restart(const HttpOptions& running, const HttpOptions& next) {
  std::vector<std::string> keys;
  auto check = [&](const char* key, bool changed) {
    if (changed) keys.emplace_back(key);
  };
  check("http.listen", running.listen != next.listen);
  check("http.threads", running.threads != next.threads);
  check("http.request_timeout", running.request_timeout != next.request_timeout);
  check("http.idle_timeout", running.idle_timeout != next.idle_timeout);
  check("http.max_connections", running.max_connections != next.max_connections);
  check("http.tls (on or off)", running.tls.enabled() != next.tls.enabled());
  check("http.tls.min_version", running.tls.min_version != next.tls.min_version);
  return keys;
}

HttpOptions reloaded(const HttpOptions& running, const HttpOptions& next) {
  HttpOptions out = running;
  out.max_body_bytes = next.max_body_bytes;
  out.rate_limit = next.rate_limit;
  out.rate_limit_burst = next.rate_limit_burst;
  return out;
}

}  // namespace kpid::server
