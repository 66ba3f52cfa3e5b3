#pragma once
// How kpid authenticates to a server it calls (a [[datasource]], a [[remote_write]]
// destination): bearer token or basic auth, extra headers (e.g. X-Scope-OrgID for Mimir and
// Cortex tenants), and TLS trust and client certificate. Prometheus' http_config keys, in TOML.

#include <string>
#include <utility>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/net/http_client.h"

namespace kpid::net {

struct ClientAuthOptions {
  // At most one of the bearer token (inline or from a file) and basic auth is set.
  std::string bearer_token;
  std::string bearer_token_file;  // re-read on every request, so a rotated token takes effect
  std::string basic_username;     // basic auth when set
  std::string basic_password;
  std::string basic_password_file;  // re-read on every request
  // Sent with every request; names are HTTP tokens, values free of CR, LF and NUL.
  std::vector<std::pair<std::string, std::string>> headers;
  // https: CA bundle to trust ("" uses the system's), and a client certificate and key (both or
  // neither) for servers that require mutual TLS.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure_skip_verify = false;  // do not verify the server's certificate (testing only)
};

// The headers one request carries: Authorization (from the token or password file as it reads
// now) and the extra headers. Fails with unavailable, naming the file, when a credentials file
// cannot be read (so the caller treats it as a failed request and tries again later).
Result<std::vector<std::pair<std::string, std::string>>> auth_headers(
    const ClientAuthOptions& auth);

// Client options for a server with `auth`'s TLS settings.
HttpClientOptions client_options(const ClientAuthOptions& auth, DurationMs timeout,
                                 size_t max_response_bytes);

// RFC 4648 base64 with padding.
std::string base64_encode(std::string_view data);

}  // namespace kpid::net
