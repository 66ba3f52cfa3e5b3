#pragma once
// Listen addresses ("HOST:PORT", "[IPv6]:PORT"), as the config and the listeners take them.

#include <cstdint>
#include <string>
#include <string_view>

#include "kpid/core/status.h"

namespace kpid {

struct HostPort {
  std::string host;  // an IPv4/IPv6 literal or "localhost"
  uint16_t port = 0;
};

// Parses "HOST:PORT" or "[IPv6]:PORT"; errors say what is wrong.
Result<HostPort> parse_host_port(std::string_view text);

}  // namespace kpid
