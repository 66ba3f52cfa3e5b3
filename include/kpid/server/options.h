#pragma once
// The HTTP server's options: the [http] table of the config, parsed straight into this struct
// (the rate limit is the router's, the thread count the daemon's network threads). What a
// reload may change is decided here too.

#include <cstdint>
#include <string>
#include <vector>

#include "kpid/core/time.h"
#include "kpid/net/tls_options.h"

namespace kpid::server {

struct HttpOptions {
  std::string listen = "127.0.0.1:9470";  // HOST:PORT; port 0: the kernel picks one
  int threads = 2;                        // network threads (they also serve the line listener)
  uint64_t max_body_bytes = 25ull << 20;
  // To read a request once its first byte arrived (header, then body), and to write the answer;
  // also bounds a TLS handshake, on both listeners.
  DurationMs request_timeout = 30'000;
  DurationMs idle_timeout = 120'000;  // a keep-alive connection with no request is closed
  int64_t max_connections = 1024;     // live connections; more are closed as soon as accepted
  double rate_limit = 0;              // requests per second per client address; 0: no limit
  double rate_limit_burst = 0;        // requests a client may make at once; 0: rate_limit
  net::TlsOptions tls;                // HTTPS when tls.enabled()
};

// The [http] keys that differ between the running options and a reloaded config and take
// effect only after a restart (the listener, its threads and timeouts; TLS on or off).
std::vector<std::string> keys_needing_restart(const HttpOptions& running, const HttpOptions& next);

// The running options with what a reload changes taken from `next`: the body limit, the rate
// limit and the certificate files (the rest keeps its running value until a restart).
HttpOptions reloaded(const HttpOptions& running, const HttpOptions& next);

}  // namespace kpid::server
