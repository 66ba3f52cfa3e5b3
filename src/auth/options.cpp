#include "kpid/auth/options.h"

namespace kpid::auth {

std::vector<std::string> keys_needing_restart(const AuthOptions& running, const AuthOptions& next) {
  std::vector<std::string> keys;
  if (running.audit_log != next.audit_log) keys.emplace_back("auth.audit_log");
  if (running.allow_unauthenticated != next.allow_unauthenticated) {
    keys.emplace_back("auth.allow_unauthenticated");
  }
  return keys;
}

}  // namespace kpid::auth
