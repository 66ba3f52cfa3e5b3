#pragma once
// Who may do what: bearer tokens with roles, kept only as SHA-256 digests and compared in
// constant time, and the audit log of admin actions.
//
// Roles: `write` sends samples (/write, /api/v2/write); `read` reads series, KPIs, alerts,
// silences and OKRs; `admin` acknowledges, silences, changes OKRs and compacts, and may read
// too. With no token configured at all, everything is open (kpid then refuses to listen beyond
// loopback unless auth.allow_unauthenticated says otherwise; see app::load_all).

#include <array>
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/config/config.h"
#include "kpid/core/status.h"
#include "kpid/core/time.h"

namespace kpid::auth {

enum class Role : uint8_t { kWrite = 1, kRead = 2, kAdmin = 4 };

// "write", "read", "admin"; nullopt for anything else.
std::optional<Role> parse_role(std::string_view name);
const char* role_name(Role role);

// The lowercase hex SHA-256 of a token's text: what config and token files hold.
std::string hash_token(std::string_view token);

struct Token {
  std::string name;
  uint8_t roles = 0;  // Role bits
  std::array<uint8_t, 32> digest{};
};

// Who made a request: the token's name, or "anonymous" while auth is off.
struct Identity {
  std::string name;
  uint8_t roles = 0;
  bool may(Role role) const;
};

// The tokens in force. Immutable once built; Access swaps whole sets on reload.
class TokenSet {
 public:
  // From [[auth.token]] tables and auth.tokens_file. Errors name the file, line and key:
  // "tokens:3: auth.tokens_file: unknown role \"root\"; expected write, read or admin".
  static Result<TokenSet> load(const auth::AuthOptions& config,
                               std::vector<config::ConfigError>& errors);

  bool empty() const { return tokens_.empty(); }
  size_t size() const { return tokens_.size(); }
  // The token whose digest matches the SHA-256 of `presented`, comparing every configured
  // digest in constant time (no early exit, so timing says nothing about which one matched).
  std::optional<Identity> find(std::string_view presented) const;

 private:
  std::vector<Token> tokens_;
};

// Append-only JSON lines of admin actions: {"time", "token", "method", "target", "status",
// "author"}. Each line is written and flushed before the answer is sent.
class AuditLog {
 public:
  // "" for no log (tests of other modules). Opening creates the file (mode 0640).
  static Result<std::unique_ptr<AuditLog>> open(const std::string& path);

  void record(TimestampMs time, std::string_view token, std::string_view method,
              std::string_view target, unsigned status, std::string_view author);
  const std::string& path() const { return path_; }

 private:
  explicit AuditLog(std::string path) : path_(std::move(path)) {}
  std::string path_;
  std::mutex mutex_;
  std::ofstream out_;
};

// The decision for one request, shared by every HTTP connection; tokens are replaced on reload.
class Access {
 public:
  Access(TokenSet tokens, std::vector<std::string> open_paths);

  // Replaces the token set and open paths (SIGHUP). Requests in flight finish with the old.
  void set(TokenSet tokens, std::vector<std::string> open_paths);
  bool enabled() const;
  bool is_open(std::string_view path) const;

  // Whether a request may go on: the identity behind its Authorization header ("Bearer T", or
  // InfluxDB 2.x's "Token T"), or why not (no or unknown token: 401; a token without the
  // role: 403).
  enum class Outcome { kAllowed, kUnauthenticated, kForbidden };
  struct Decision {
    Outcome outcome = Outcome::kAllowed;
    Identity who;
    std::string message;  // for 401/403 answers
  };
  // `required` is the role the route needs; open paths and auth-off answer kAllowed.
  Decision check(std::string_view path, std::string_view authorization, Role required) const;

 private:
  struct State {
    TokenSet tokens;
    std::vector<std::string> open_paths;
  };
  mutable std::mutex mutex_;
  std::shared_ptr<const State> state_;
};

}  // namespace kpid::auth
