#include <algorithm>
#include <tuple>

#include "kpid/datasource/options.h"

namespace kpid::datasource {

namespace {

auto fields(const DatasourceOptions& d) {
  const auto& a = d.auth;
  return std::tie(d.name, d.url, d.timeout, d.max_concurrency, d.batch_size, d.down_for,
                  a.bearer_token, a.bearer_token_file, a.basic_username, a.basic_password,
                  a.basic_password_file, a.headers, a.ca_file, a.cert_file, a.key_file,
                  a.insecure_skip_verify);
}

}  // namespace

std::vector<std::string> keys_needing_restart(const std::vector<DatasourceOptions>& running,
                                              const std::vector<DatasourceOptions>& next) {
  std::vector<std::string> keys;
  auto find = [](const std::vector<DatasourceOptions>& list, const std::string& name) {
    return std::find_if(list.begin(), list.end(),
                        [&](const DatasourceOptions& d) { return d.name == name; });
  };
  for (const auto& d : next) {
    auto it = find(running, d.name);
    if (it == running.end() || fields(*it) != fields(d)) keys.push_back("datasource." + d.name);
  }
  for (const auto& d : running) {
    if (find(next, d.name) == next.end()) keys.push_back("datasource." + d.name);
  }
  return keys;
}

}  // namespace kpid::datasource
