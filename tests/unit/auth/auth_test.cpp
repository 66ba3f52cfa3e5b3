#include <catch2/catch.hpp>

#include "kpid/auth/auth.h"

using namespace kpid;
using namespace kpid::auth;

namespace {

auth::AuthOptions with_tokens(std::initializer_list<std::pair<std::string, std::string>> tokens) {
  auth::AuthOptions c;
  for (const auto& [name, role] : tokens) {
    c.tokens.push_back({name, {role}, hash_token(name + "-secret-token-text"), {}});
  }
  return c;
}

}  // namespace

TEST_CASE("tokens are SHA-256 digests and roles combine", "[auth]") {
  CHECK(hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(parse_role("admin") == Role::kAdmin);
  CHECK_FALSE(parse_role("root"));
  Identity admin{"a", static_cast<uint8_t>(Role::kAdmin)};
  CHECK(admin.may(Role::kAdmin));
  CHECK(admin.may(Role::kRead));  // admins read what they act on
  CHECK_FALSE(admin.may(Role::kWrite));
  Identity writer{"w", static_cast<uint8_t>(Role::kWrite)};
  CHECK_FALSE(writer.may(Role::kRead));
}

TEST_CASE("Access decides 401, 403 or allowed, and is open without tokens", "[auth]") {
  std::vector<config::ConfigError> errors;
  auto tokens = TokenSet::load(with_tokens({{"w", "write"}, {"r", "read"}}), errors);
  REQUIRE(tokens);
  REQUIRE(errors.empty());
  Access access(std::move(*tokens), {"/healthz"});
  CHECK(access.enabled());
  using O = Access::Outcome;
  CHECK(access.check("/write", "", Role::kWrite).outcome == O::kUnauthenticated);
  CHECK(access.check("/write", "Bearer nope", Role::kWrite).outcome == O::kUnauthenticated);
  CHECK(access.check("/write", "Bearer w-secret-token-text", Role::kWrite).outcome == O::kAllowed);
  CHECK(access.check("/write", "token  w-secret-token-text ", Role::kWrite).outcome == O::kAllowed);
  auto denied = access.check("/write", "Bearer r-secret-token-text", Role::kWrite);
  CHECK(denied.outcome == O::kForbidden);
  CHECK(denied.message == "token \"r\" lacks the write role");
  CHECK(access.check("/healthz", "", Role::kRead).outcome == O::kAllowed);
  CHECK(access.check("/healthz", "Bearer r-secret-token-text", Role::kRead).who.name == "r");

  access.set(TokenSet(), {});
  CHECK_FALSE(access.enabled());
  auto open = access.check("/write", "", Role::kWrite);
  CHECK(open.outcome == O::kAllowed);
  CHECK(open.who.name == "anonymous");
}
