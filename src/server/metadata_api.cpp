// GET /api/v1/metadata: what senders said of their metric families (remote write metadata), in
// Prometheus' shape: {"status":"success","data":{"family":[{"type","help","unit"}]}}.
#include <boost/json.hpp>

#include "handlers.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

Response handle_metadata(const Request& request, const ingest::MetricMetadataStore& metadata) {
  Params params(request);
  size_t limit = 0;
  if (const std::string* l = params.get("limit"); l != nullptr && !l->empty()) {
    char* end = nullptr;
    const long long n = std::strtoll(l->c_str(), &end, 10);
    if (end == nullptr || *end != '\0') {
      return api_error(request, "invalid parameter \"limit\": \"" + *l + "\" is not a number");
    }
    limit = n > 0 ? static_cast<size_t>(n) : 0;  // Prometheus: 0 or negative means no limit
  }
  const std::string* metric = params.get("metric");
  boost::json::object data;
  for (const auto& [family, m] : metadata.list(metric != nullptr ? *metric : "", limit)) {
    data[family] = boost::json::array{
        boost::json::object{{"type", m.type}, {"help", m.help}, {"unit", m.unit}}};
  }
  return api_success(request, boost::json::serialize(data));
}

}  // namespace kpid::server::detail
