// GET /api/v1/slos/rules and /api/v1/slos/{id}/rules: the running SLOs as a Prometheus rule
// file (slo/prometheus_rules.h), for `kpictl slo rules` and for teams that alert from
// Prometheus.
#include <vector>

#include "handlers.h"
#include "kpid/slo/prometheus_rules.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

namespace {

// The interval of an SLO that has none; compiled definitions always carry theirs.
constexpr DurationMs kDefaultSloInterval = 30'000;

}  // namespace

std::optional<std::string_view> slo_rules_id(std::string_view path) {
  constexpr std::string_view kPrefix = "/api/v1/slos/";
  constexpr std::string_view kSuffix = "/rules";
  if (path == "/api/v1/slos/rules") return std::string_view();
  if (!path.starts_with(kPrefix) || !path.ends_with(kSuffix)) return std::nullopt;
  const std::string_view id =
      path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size());
  if (id.empty() || id.find('/') != std::string_view::npos) return std::nullopt;
  return id;
}

Response handle_slo_rules(const Request& request, std::string_view id, const slo::Tracker& slos) {
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    return method_not_allowed(request, "GET, HEAD");
  }
  std::vector<slo::Definition> definitions;
  for (const auto& view : slos.list()) {
    if (view.definition == nullptr) continue;
    if (id.empty() || view.definition->id == id) definitions.push_back(*view.definition);
  }
  if (!id.empty() && definitions.empty()) {
    return api_error(request, http::status::not_found, "not_found",
                     "no SLO with id \"" + std::string(id) + "\"");
  }
  return make_response(request, http::status::ok,
                       slo::prometheus_rules(definitions, kDefaultSloInterval), "application/yaml");
}

}  // namespace kpid::server::detail
