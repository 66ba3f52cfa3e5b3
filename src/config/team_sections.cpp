// What reaches people: [alerting], [[receiver]], [okr] and [auth].
#include "loader.h"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace kpid::config::detail {

void Loader::load_okr(const toml::table& t, okr::OkrOptions& c) {
  check_keys(t, "okr", std::array{"max_open_per_owner"});
  get_int(t, "okr", "max_open_per_owner", 1, 1000, c.max_open_per_owner);
}

void Loader::load_auth(const toml::table& t, auth::AuthOptions& c) {
  check_keys(t, "auth",
             std::array{"token", "tokens_file", "open", "allow_unauthenticated", "audit_log"});
  get_string(t, "auth", "tokens_file", c.tokens_file);
  if (const toml::node* n = t.get("tokens_file")) c.tokens_file_pos = pos_of(*n);
  if (t.contains("open")) {
    c.open.clear();
    get_strings(t, "auth", "open", c.open);
    for (const auto& p : c.open) {
      if (!p.starts_with("/"))
        error(*t.get("open"), "auth.open", "\"" + p + "\" is not a path (starts with /)");
    }
  }
  get_bool(t, "auth", "allow_unauthenticated", c.allow_unauthenticated);
  get_string(t, "auth", "audit_log", c.audit_log);
  const toml::node* tokens = t.get("token");
  if (tokens == nullptr) return;
  const toml::array* tables = tokens->as_array();
  if (tables == nullptr || !tables->is_array_of_tables()) {
    error(*tokens, "auth.token", "expected [[auth.token]] tables");
    return;
  }
  for (const auto& element : *tables) {
    const toml::table& tt = *element.as_table();
    auth::TokenOptions token;
    token.pos = pos_of(tt);
    std::string section = "auth.token[" + std::to_string(c.tokens.size()) + "]";
    check_keys(tt, section, std::array{"name", "roles", "sha256"});
    if (require(tt, tt, section, "name")) {
      get_string(tt, section, "name", token.name);
      if (!token.name.empty()) section = "auth.token." + token.name;
      for (const auto& other : c.tokens) {
        if (!token.name.empty() && other.name == token.name) {
          error(*tt.get("name"), section + ".name",
                "duplicate token name; first defined at line " + std::to_string(other.pos.line));
        }
      }
    }
    if (require(tt, tt, section, "roles")) {
      get_strings(tt, section, "roles", token.roles);
      if (token.roles.empty())
        error(*tt.get("roles"), section + ".roles", "needs at least one role");
      for (const auto& r : token.roles) {
        if (r != "write" && r != "read" && r != "admin") {
          error(*tt.get("roles"), section + ".roles",
                "unknown role \"" + r + "\"; expected write, read or admin");
        }
      }
    }
    if (require(tt, tt, section, "sha256")) {
      get_string(tt, section, "sha256", token.sha256);
      const bool hex = token.sha256.size() == 64 &&
                       token.sha256.find_first_not_of("0123456789abcdef") == std::string::npos;
      if (!hex) {
        error(*tt.get("sha256"), section + ".sha256",
              "expected the token's SHA-256 as 64 lowercase hex digits (kpid --hash-token)");
      }
    }
    c.tokens.push_back(std::move(token));
  }
}

void Loader::load_alerting(const toml::table& t, alert::AlertingOptions& c) {
  check_keys(t, "alerting",
             std::array{"external_url", "repeat_interval", "notification_max_age", "retry_initial",
                        "retry_max", "resolved_retention"});
  get_string(t, "alerting", "external_url", c.external_url);
  if (const toml::node* n = t.get("external_url")) c.external_url_pos = pos_of(*n);
  get_duration(t, "alerting", "repeat_interval", 60'000, c.repeat_interval);
  get_duration(t, "alerting", "notification_max_age", 60'000, c.notification_max_age);
  get_duration(t, "alerting", "retry_initial", 10, c.retry_initial);
  get_duration(t, "alerting", "retry_max", 10, c.retry_max);
  if (c.retry_max < c.retry_initial) {
    error(t.contains("retry_max") ? *t.get("retry_max") : static_cast<const toml::node&>(t),
          "alerting.retry_max", "must not be below alerting.retry_initial");
  }
  get_duration(t, "alerting", "resolved_retention", 60'000, c.resolved_retention);
}

void Loader::load_receivers(const toml::node& node, std::vector<alert::ReceiverOptions>& out) {
  const toml::array* tables = node.as_array();
  if (tables == nullptr || !tables->is_array_of_tables()) {
    error(node, "receiver", "expected [[receiver]] tables");
    return;
  }
  for (const auto& element : *tables) {
    const toml::table& t = *element.as_table();
    alert::ReceiverOptions r;
    r.pos = pos_of(t);
    std::string section = "receiver[" + std::to_string(out.size()) + "]";
    if (require(t, t, section, "name")) {
      get_string(t, section, "name", r.name);
      if (!r.name.empty()) section = "receiver." + r.name;
      const toml::node& at = *t.get("name");
      if (at.is_string() && r.name.empty()) error(at, section + ".name", "must not be empty");
      for (const auto& other : out) {
        if (!r.name.empty() && other.name == r.name) {
          error(at, section + ".name",
                "duplicate receiver name; first defined at line " + std::to_string(other.pos.line));
        }
      }
    }
    check_keys(t, section,
               std::array{"name", "type", "url", "severities", "owners", "timeout", "ca_file",
                          "routing_key", "secret", "resend_interval"});
    if (require(t, t, section, "type")) {
      get_choice(t, section, "type", std::array{"alertmanager", "pagerduty", "webhook"}, r.type);
    }
    get_string(t, section, "url", r.url);
    if (const toml::node* n = t.get("url")) r.url_pos = pos_of(*n);
    if (r.url.empty() && (r.type == "alertmanager" || r.type == "webhook")) {
      error(t.contains("url") ? *t.get("url") : static_cast<const toml::node&>(t), section + ".url",
            "is required for type = \"" + r.type + "\"");
    }
    get_strings(t, section, "severities", r.severities);
    for (const auto& s : r.severities) {
      if (std::find(kSeverities.begin(), kSeverities.end(), s) == kSeverities.end()) {
        error(*t.get("severities"), section + ".severities",
              "unknown severity \"" + s + "\"; expected critical, error, warning or info");
      }
    }
    get_strings(t, section, "owners", r.owners);
    get_duration(t, section, "timeout", 100, r.timeout);
    get_string(t, section, "ca_file", r.ca_file);
    // Keys that only one type uses are refused on the others: they would have no effect.
    auto only_for = [&](const char* key, const char* type) {
      if (const toml::node* n = t.get(key); n && !r.type.empty() && r.type != type) {
        error(*n, section + "." + key, std::string("applies only to type = \"") + type + "\"");
        return false;
      }
      return true;
    };
    if (only_for("routing_key", "pagerduty")) get_string(t, section, "routing_key", r.routing_key);
    if (r.type == "pagerduty" && r.routing_key.empty()) {
      error(t.contains("routing_key") ? *t.get("routing_key") : static_cast<const toml::node&>(t),
            section + ".routing_key", "is required for type = \"pagerduty\"");
    }
    if (only_for("secret", "webhook")) get_string(t, section, "secret", r.secret);
    if (only_for("resend_interval", "alertmanager")) {
      get_duration(t, section, "resend_interval", 1'000, r.resend_interval);
    }
    out.push_back(std::move(r));
  }
}

}  // namespace kpid::config::detail
