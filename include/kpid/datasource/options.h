#pragma once
// [[datasource]]: a Prometheus-compatible query API (Prometheus, VictoriaMetrics single or
// cluster vmselect, Mimir, Thanos Query) that KPIs and SLOs can be evaluated on.

#include <cstddef>
#include <string>
#include <vector>

#include "kpid/core/source_pos.h"
#include "kpid/core/time.h"
#include "kpid/net/client_auth.h"

namespace kpid::datasource {

struct DatasourceOptions {
  std::string name;  // unique; letters, digits, '_', '.' and '-'
  // Base of the API: kpid appends /api/v1/query and /api/v1/query_range.
  std::string url;
  DurationMs timeout = 30'000;   // one request, connect to last byte
  size_t max_concurrency = 4;    // requests in flight to the source at once
  size_t batch_size = 50;        // KPI queries combined into one request
  DurationMs down_for = 60'000;  // failing this long raises datasource_down (0: at once)
  net::ClientAuthOptions auth;
  SourcePos pos;  // the [[datasource]] header
};

// Sources are made at start: a reload that adds, removes or changes a [[datasource]] names it
// here ("datasource.NAME") and the running ones stay until a restart.
std::vector<std::string> keys_needing_restart(const std::vector<DatasourceOptions>& running,
                                              const std::vector<DatasourceOptions>& next);

}  // namespace kpid::datasource
