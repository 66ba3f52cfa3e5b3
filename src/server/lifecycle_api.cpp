// POST /-/reload, as Prometheus' lifecycle API has it: the same reload as SIGHUP, and an answer
// saying whether it was applied and, when not, why.
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "handlers.h"
#include "kpid/core/json.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

json::array strings(const std::vector<std::string>& list) {
  json::array out;
  for (const auto& s : list) out.emplace_back(s);
  return out;
}

}  // namespace

Response handle_reload(const Request& request, const std::function<ReloadOutcome()>& reload) {
  if (request.method() != http::verb::post && request.method() != http::verb::put) {
    return method_not_allowed(request, "POST, PUT");
  }
  if (!reload) {
    return api_error(request, http::status::service_unavailable, "unavailable",
                     "this kpid cannot reload over HTTP");
  }
  spdlog::info("reload requested over HTTP");
  const ReloadOutcome outcome = reload();
  json::object data{{"reloaded", outcome.reloaded},
                    {"config", outcome.config_path},
                    {"kpis", outcome.kpis},
                    {"alert_rules", outcome.alert_rules},
                    {"warnings", strings(outcome.warnings)},
                    {"restart_needed", strings(outcome.restart_needed)}};
  if (outcome.reloaded) return api_success(request, to_json_text(data));
  // Prometheus answers a failed reload with 500; this is the config's fault, not the server's,
  // so 422 like a query that cannot be executed. Either way not 2xx, so `curl -f` fails.
  json::object body{{"status", "error"},
                    {"errorType", "bad_data"},
                    {"error", outcome.error},
                    {"errors", strings(outcome.errors)},
                    {"data", std::move(data)}};
  return json_response(request, http::status::unprocessable_entity, to_json_text(body));
}

}  // namespace kpid::server::detail
