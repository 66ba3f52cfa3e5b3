// GET /api/v1/metadata: what senders said of their metric families (remote write metadata), in
// Prometheus' shape: {"status":"success","data":{"family":[{"type","help","unit"}]}}.
#include <boost/json.hpp>

#include "handlers.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

Response handle_metadata(const Request& request, const ingest::MetricMetadataStore& metadata) {
  // Prometheus routes only GET here (POST is its 405, which Grafana falls back to GET on).
  if (request.method() != http::verb::get) return prom_method_not_allowed(request, "GET");
  Params params(request);
  // As Prometheus: `limit` < 0 (or absent) for every family, 0 for none; `limit_per_metric` > 0
  // caps each family's entries. kpid keeps one entry per family (the latest a sender gave), so
  // the latter only has to be a number.
  int64_t limit = -1;
  if (const std::string* l = params.get("limit"); l != nullptr && !l->empty()) {
    auto n = parse_go_int(*l);
    if (!n) return api_error(request, "limit must be a number");
    limit = *n;
  }
  if (const std::string* l = params.get("limit_per_metric"); l != nullptr && !l->empty()) {
    if (!parse_go_int(*l)) return api_error(request, "limit_per_metric must be a number");
  }
  const std::string* metric = params.get("metric");
  boost::json::object data;
  if (limit != 0) {
    const size_t families = limit < 0 ? 0 : static_cast<size_t>(limit);
    for (const auto& [family, m] : metadata.list(metric != nullptr ? *metric : "", families)) {
      data[family] = boost::json::array{
          boost::json::object{{"type", m.type}, {"help", m.help}, {"unit", m.unit}}};
    }
  }
  return api_success(request, boost::json::serialize(data));
}

}  // namespace kpid::server::detail
