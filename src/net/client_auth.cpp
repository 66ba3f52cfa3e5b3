#include "kpid/net/client_auth.h"

#include <fstream>
#include <sstream>

namespace kpid::net {
namespace {

// A credentials file's contents without the trailing newline editors add.
Result<std::string> read_secret(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::unavailable("cannot read " + std::string(what) + " file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  std::string secret = text.str();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  return secret;
}

}  // namespace

std::string base64_encode(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(data[i])) << 16) | (uint32_t(uint8_t(data[i + 1])) << 8) |
                 uint8_t(data[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == data.size()) {
    uint32_t v = uint32_t(uint8_t(data[i])) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    uint32_t v = (uint32_t(uint8_t(data[i])) << 16) | (uint32_t(uint8_t(data[i + 1])) << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> auth_headers(
    const ClientAuthOptions& auth) {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(auth.headers.size() + 1);
  if (!auth.bearer_token.empty()) {
    headers.emplace_back("Authorization", "Bearer " + auth.bearer_token);
  } else if (!auth.bearer_token_file.empty()) {
    auto token = read_secret(auth.bearer_token_file, "bearer_token");
    if (!token) return token.status();
    headers.emplace_back("Authorization", "Bearer " + *token);
  } else if (!auth.basic_username.empty()) {
    std::string password = auth.basic_password;
    if (!auth.basic_password_file.empty()) {
      auto secret = read_secret(auth.basic_password_file, "basic_auth password");
      if (!secret) return secret.status();
      password = std::move(*secret);
    }
    headers.emplace_back("Authorization",
                         "Basic " + base64_encode(auth.basic_username + ":" + password));
  }
  headers.insert(headers.end(), auth.headers.begin(), auth.headers.end());
  return headers;
}

HttpClientOptions client_options(const ClientAuthOptions& auth, DurationMs timeout,
                                 size_t max_response_bytes) {
  HttpClientOptions o;
  o.timeout = timeout;
  o.ca_file = auth.ca_file;
  o.cert_file = auth.cert_file;
  o.key_file = auth.key_file;
  o.insecure_skip_verify = auth.insecure_skip_verify;
  o.max_response_bytes = max_response_bytes;
  return o;
}

}  // namespace kpid::net
