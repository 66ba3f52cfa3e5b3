// GET /api/v1/cluster: this instance's shard and the owner of every configured KPI and SLO, so
// an operator (or kpictl cluster) sees where each one is evaluated.
#include "handlers.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

Response handle_cluster(const Request& request, const std::function<std::string()>& cluster) {
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    return method_not_allowed(request, "GET, HEAD");
  }
  if (!cluster) {
    return api_error(request, http::status::service_unavailable, "unavailable",
                     "the cluster view is not ready");
  }
  return api_success(request, cluster());
}

}  // namespace kpid::server::detail
