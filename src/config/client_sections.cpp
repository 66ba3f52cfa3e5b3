// The credentials and TLS settings of a server kpid calls ([[datasource]], [[remote_write]]).

#include <cctype>
#include <filesystem>

#include "loader.h"

namespace kpid::config::detail {
namespace {

bool is_header_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (std::isalnum(c) == 0 &&
        std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool icase_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string Loader::config_relative(const std::string& path) const {
  if (std::filesystem::path p(path); !path.empty() && p.is_relative()) {
    return (std::filesystem::path(file_).parent_path() / p).string();
  }
  return path;
}

void Loader::load_client_auth(const toml::table& t, const std::string& section,
                              net::ClientAuthOptions& c) {
  get_string(t, section, "bearer_token", c.bearer_token);
  get_string(t, section, "bearer_token_file", c.bearer_token_file);
  c.bearer_token_file = config_relative(c.bearer_token_file);
  if (!c.bearer_token.empty() && !c.bearer_token_file.empty()) {
    error(*t.get("bearer_token_file"), section + ".bearer_token_file",
          "give bearer_token or bearer_token_file, not both");
  }
  if (const toml::table* basic = table_at(t, section, "basic_auth")) {
    const std::string s = section + ".basic_auth";
    check_keys(*basic, s, std::array{"username", "password", "password_file"});
    get_string(*basic, s, "username", c.basic_username);
    get_string(*basic, s, "password", c.basic_password);
    get_string(*basic, s, "password_file", c.basic_password_file);
    c.basic_password_file = config_relative(c.basic_password_file);
    if (c.basic_username.empty()) error(*basic, s + ".username", "is required");
    if (!c.basic_password.empty() && !c.basic_password_file.empty()) {
      error(*basic->get("password_file"), s + ".password_file",
            "give password or password_file, not both");
    }
    if (!c.bearer_token.empty() || !c.bearer_token_file.empty()) {
      error(*basic, s, "give a bearer token or basic_auth, not both");
    }
  }
  if (const toml::table* headers = table_at(t, section, "headers")) {
    for (const auto& [key, node] : *headers) {
      const std::string name(key.str());
      const std::string where = section + ".headers." + name;
      const auto* value = node.as_string();
      if (value == nullptr) {
        error(node, where, "must be a string");
        continue;
      }
      const std::string& text = value->get();
      if (!is_header_token(name)) {
        error_at(key.source(), where, "\"" + name + "\" is not an HTTP header name");
      } else if (text.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
        error(node, where, "header values must not contain CR, LF or NUL");
      } else if (icase_equal(name, "authorization") &&
                 (!c.bearer_token.empty() || !c.bearer_token_file.empty() ||
                  !c.basic_username.empty())) {
        error(node, where, "Authorization is already set by the bearer token or basic_auth");
      } else {
        c.headers.emplace_back(name, text);
      }
    }
  }
  if (const toml::table* tls = table_at(t, section, "tls")) {
    const std::string s = section + ".tls";
    check_keys(*tls, s, std::array{"ca_file", "cert_file", "key_file", "insecure_skip_verify"});
    get_string(*tls, s, "ca_file", c.ca_file);
    get_string(*tls, s, "cert_file", c.cert_file);
    get_string(*tls, s, "key_file", c.key_file);
    get_bool(*tls, s, "insecure_skip_verify", c.insecure_skip_verify);
    c.ca_file = config_relative(c.ca_file);
    c.cert_file = config_relative(c.cert_file);
    c.key_file = config_relative(c.key_file);
    if (c.cert_file.empty() != c.key_file.empty()) {
      error(*tls, s + (c.cert_file.empty() ? ".cert_file" : ".key_file"),
            std::string("is required with ") + (c.cert_file.empty() ? "key_file" : "cert_file"));
      c.cert_file.clear();
      c.key_file.clear();
    }
  }
}

}  // namespace kpid::config::detail
