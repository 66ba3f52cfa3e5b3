#include "kpid/auth/auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "kpid/core/json.h"

namespace kpid::auth {

namespace {

std::array<uint8_t, 32> digest_of(std::string_view text) {
  std::array<uint8_t, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), d.data());
  return d;
}

std::optional<std::array<uint8_t, 32>> parse_digest(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  std::array<uint8_t, 32> d{};
  for (size_t i = 0; i < 32; ++i) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return d;
}

// "read,admin" or a list → role bits; the first unknown name is returned in `bad`.
uint8_t roles_of(const std::vector<std::string>& names, std::string& bad) {
  uint8_t bits = 0;
  for (const auto& n : names) {
    auto r = parse_role(n);
    if (!r) {
      if (bad.empty()) bad = n;
      continue;
    }
    bits |= static_cast<uint8_t>(*r);
  }
  return bits;
}

}  // namespace

std::optional<Role> parse_role(std::string_view name) {
  if (name == "write") return Role::kWrite;
  if (name == "read") return Role::kRead;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

const char* role_name(Role role) {
  switch (role) {
    case Role::kWrite: return "write";
    case Role::kRead: return "read";
    case Role::kAdmin: return "admin";
  }
  return "?";
}

std::string hash_token(std::string_view token) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : digest_of(token)) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

bool Identity::may(Role role) const {
  // Admins read what they act on.
  const uint8_t granted = roles & static_cast<uint8_t>(Role::kAdmin)
                              ? roles | static_cast<uint8_t>(Role::kRead)
                              : roles;
  return (granted & static_cast<uint8_t>(role)) != 0;
}

Result<TokenSet> TokenSet::load(const auth::AuthOptions& config,
                                std::vector<config::ConfigError>& errors) {
  TokenSet set;
  const size_t errors_before = errors.size();
  for (const auto& t : config.tokens) {
    Token token;
    token.name = t.name;
    std::string bad;
    token.roles = roles_of(t.roles, bad);
    auto digest = parse_digest(t.sha256);
    // The config loader reported malformed entries already; skip them here.
    if (!digest || !bad.empty() || token.roles == 0) continue;
    token.digest = *digest;
    set.tokens_.push_back(std::move(token));
  }
  if (!config.tokens_file.empty()) {
    // Relative to the config file, like `include`.
    std::filesystem::path path = config.tokens_file;
    if (path.is_relative() && !config.tokens_file_pos.file.empty()) {
      path = std::filesystem::path(config.tokens_file_pos.file).parent_path() / path;
    }
    const std::string file = path.string();
    std::ifstream in(file);
    if (!in) {
      errors.push_back({config.tokens_file_pos.file, config.tokens_file_pos.line,
                        config.tokens_file_pos.column, "auth.tokens_file",
                        "cannot read " + file + ": " + std::strerror(errno)});
    }
    std::string line;
    int number = 0;
    while (in && std::getline(in, line)) {
      ++number;
      auto fail = [&](std::string message) {
        errors.push_back({file, number, 0, "auth.tokens_file", std::move(message)});
      };
      std::istringstream fields(line);
      std::string name, roles, hex, extra;
      fields >> name;
      if (name.empty() || name.starts_with('#')) continue;
      fields >> roles >> hex >> extra;
      if (hex.empty() || !extra.empty()) {
        fail("expected \"NAME ROLE[,ROLE] SHA256\" (whitespace-separated)");
        continue;
      }
      std::vector<std::string> names;
      for (size_t start = 0; start <= roles.size();) {
        const size_t comma = std::min(roles.find(',', start), roles.size());
        names.push_back(roles.substr(start, comma - start));
        start = comma + 1;
      }
      Token token;
      token.name = name;
      std::string bad;
      token.roles = roles_of(names, bad);
      if (!bad.empty()) {
        fail("unknown role \"" + bad + "\"; expected write, read or admin");
        continue;
      }
      auto digest = parse_digest(hex);
      if (!digest) {
        fail("expected the token's SHA-256 as 64 lowercase hex digits (kpid --hash-token)");
        continue;
      }
      token.digest = *digest;
      const bool duplicate = std::any_of(set.tokens_.begin(), set.tokens_.end(),
                                         [&](const Token& t) { return t.name == name; });
      if (duplicate) {
        fail("duplicate token name \"" + name + "\"");
        continue;
      }
      set.tokens_.push_back(std::move(token));
    }
  }
  if (errors.size() > errors_before) {
    return Status::invalid_argument(errors[errors_before].to_string());
  }
  return set;
}

std::optional<Identity> TokenSet::find(std::string_view presented) const {
  const auto digest = digest_of(presented);
  const Token* match = nullptr;
  for (const auto& t : tokens_) {
    // Every digest is compared in full; the match is remembered, not returned early.
    if (CRYPTO_memcmp(t.digest.data(), digest.data(), digest.size()) == 0) match = &t;
  }
  if (match == nullptr) return std::nullopt;
  return Identity{match->name, match->roles};
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path) {
  std::unique_ptr<AuditLog> log(new AuditLog(path));
  if (path.empty()) return log;
  // Created group-readable only: it names tokens and what they did.
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Status::io_error("cannot open the audit log " + path + ": " + std::strerror(errno));
  }
  ::close(fd);
  log->out_.open(path, std::ios::app);
  if (!log->out_) return Status::io_error("cannot open the audit log " + path);
  return log;
}

void AuditLog::record(TimestampMs time, std::string_view token, std::string_view method,
                      std::string_view target, unsigned status, std::string_view author) {
  if (path_.empty()) return;
  boost::json::object line{{"time", rfc3339_value(time)},
                           {"token", token},
                           {"method", method},
                           {"target", target},
                           {"status", status}};
  if (!author.empty()) line["author"] = author;
  std::lock_guard lock(mutex_);
  out_ << to_json_text(line) << '\n';
  out_.flush();
}

Access::Access(TokenSet tokens, std::vector<std::string> open_paths) {
  set(std::move(tokens), std::move(open_paths));
}

void Access::set(TokenSet tokens, std::vector<std::string> open_paths) {
  auto next = std::make_shared<const State>(State{std::move(tokens), std::move(open_paths)});
  std::lock_guard lock(mutex_);
  state_ = std::move(next);
}

bool Access::enabled() const {
  std::lock_guard lock(mutex_);
  return !state_->tokens.empty();
}

bool Access::is_open(std::string_view path) const {
  std::shared_ptr<const State> state;
  {
    std::lock_guard lock(mutex_);
    state = state_;
  }
  return std::find(state->open_paths.begin(), state->open_paths.end(), path) !=
         state->open_paths.end();
}

namespace {

// The password of "Basic base64(user:password)", as InfluxDB 1.x clients send their
// credentials; "" when `credentials` is not such base64.
std::string basic_password(std::string_view credentials) {
  while (!credentials.empty() && credentials.front() == ' ') credentials.remove_prefix(1);
  while (!credentials.empty() && credentials.back() == ' ') credentials.remove_suffix(1);
  if (credentials.empty() || credentials.size() % 4 != 0) return {};
  std::string decoded(credentials.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(credentials.data()),
                                static_cast<int>(credentials.size()));
  if (n < 0) return {};
  // EVP_DecodeBlock counts the padding's zero bytes too.
  size_t size = static_cast<size_t>(n);
  for (size_t pad = credentials.size(); pad > 0 && credentials[pad - 1] == '='; --pad) --size;
  decoded.resize(size);
  const size_t colon = decoded.find(':');
  return colon == std::string::npos ? std::string() : decoded.substr(colon + 1);
}

}  // namespace

Access::Decision Access::check(std::string_view path, std::string_view authorization,
                               Role required) const {
  std::shared_ptr<const State> state;
  {
    std::lock_guard lock(mutex_);
    state = state_;
  }
  Decision d;
  if (state->tokens.empty()) {
    d.who = Identity{"anonymous", 0xff};
    return d;
  }
  std::string_view token;
  std::string password;  // Basic credentials: the password is the token, the user a label
  if (authorization.size() > 6 &&
      std::equal(authorization.begin(), authorization.begin() + 6, "basic ",
                 [](char a, char b) { return std::tolower(a) == b; })) {
    password = basic_password(authorization.substr(6));
    token = password;
  }
  for (std::string_view scheme : {"Bearer ", "Token "}) {
    if (authorization.size() > scheme.size() &&
        std::equal(scheme.begin(), scheme.end(), authorization.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      token = authorization.substr(scheme.size());
    }
  }
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  std::optional<Identity> who = token.empty() ? std::nullopt : state->tokens.find(token);
  const bool open = std::find(state->open_paths.begin(), state->open_paths.end(), path) !=
                    state->open_paths.end();
  if (!who) {
    if (open) {
      d.who = Identity{"anonymous", 0};
      return d;
    }
    d.outcome = Outcome::kUnauthenticated;
    d.message = token.empty() ? "this endpoint needs a token: send \"Authorization: Bearer "
                                "<token>\" (InfluxDB clients: the token as password)"
                              : "unknown token";
    return d;
  }
  d.who = *who;
  if (!open && !who->may(required)) {
    d.outcome = Outcome::kForbidden;
    d.message = "token \"" + who->name + "\" lacks the " + role_name(required) + " role";
  }
  return d;
}

}  // namespace kpid::auth
