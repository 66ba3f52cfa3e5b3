#include "kpid/core/host_port.h"

#include <arpa/inet.h>

#include <charconv>

namespace kpid {

Result<HostPort> parse_host_port(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Status::invalid_argument("invalid listen address \"" + std::string(text) + "\": " + why +
                                    " (expected HOST:PORT, e.g. 127.0.0.1:9470)");
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("missing port");
  std::string host(text.substr(0, colon));
  std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    in6_addr addr6{};
    if (inet_pton(AF_INET6, host.c_str(), &addr6) != 1) return bad("not an IPv6 address");
  } else if (host != "localhost") {
    in_addr addr4{};
    if (inet_pton(AF_INET, host.c_str(), &addr4) != 1) {
      return bad("host must be an IP address or localhost");
    }
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return bad("port must be a number from 0 to 65535");
  }
  return HostPort{host, static_cast<uint16_t>(port)};
}

}  // namespace kpid
