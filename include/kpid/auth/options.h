#pragma once
// Who may use the API: the [auth] table and its [[auth.token]] tables, parsed straight into these
// structs by the config (see auth.h). What a reload may change is decided here too.

#include <string>
#include <vector>

#include "kpid/core/source_pos.h"

namespace kpid::auth {

// [[auth.token]]: a bearer token, kept only as the SHA-256 of its text.
struct TokenOptions {
  std::string name;
  std::vector<std::string> roles;  // write, read, admin
  std::string sha256;              // 64 hex digits
  SourcePos pos;
};

// [auth]: who may use the API (see include/kpid/auth/auth.h).
struct AuthOptions {
  std::vector<TokenOptions> tokens;
  std::string tokens_file;  // more tokens, "NAME ROLES SHA256" lines; re-read on SIGHUP
  SourcePos tokens_file_pos;
  // Paths answered without a token (the dashboard's page and files always are).
  std::vector<std::string> open = {"/healthz", "/readyz", "/metrics"};
  // Listen beyond loopback with no token configured (and TCP line protocol, which carries
  // none); refused unless true.
  bool allow_unauthenticated = false;
  std::string audit_log;  // admin actions, JSON lines; "" = <data_dir>/audit.log
};

// The [auth] keys that differ between the running options and a reloaded config and take effect
// only after a restart (tokens and open paths reload).
std::vector<std::string> keys_needing_restart(const AuthOptions& running, const AuthOptions& next);

}  // namespace kpid::auth
