// GET /api/v1/status/buildinfo and /api/v1/status/tsdb, in Prometheus' shapes.
#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "build_info.h"
#include "handlers.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

namespace {

struct Stat {
  std::string_view name;
  uint64_t value;
};

// The `limit` largest by value, largest first; ties by name, so the answer is stable (Prometheus
// leaves ties in its maps' order).
void append_top(std::string& out, std::vector<Stat>& stats, size_t limit) {
  const auto by_value = [](const Stat& a, const Stat& b) {
    return a.value != b.value ? a.value > b.value : a.name < b.name;
  };
  const size_t n = std::min(limit, stats.size());
  std::partial_sort(stats.begin(), stats.begin() + static_cast<std::ptrdiff_t>(n), stats.end(),
                    by_value);
  out.push_back('[');
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out.push_back(',');
    out.append(R"({"name":)");
    append_json_string(out, stats[i].name);
    out.append(R"(,"value":)");
    out.append(std::to_string(stats[i].value));
    out.push_back('}');
  }
  out.push_back(']');
}

}  // namespace

Response handle_buildinfo(const Request& request) {
  if (request.method() != http::verb::get) return prom_method_not_allowed(request, "GET");
  std::string data = R"({"version":)";
  append_json_string(data, build_info::kVersion);
  data.append(R"(,"revision":)");
  append_json_string(data, build_info::kRevision);
  data.append(R"(,"branch":)");
  append_json_string(data, build_info::kBranch);
  data.append(R"(,"buildUser":)");
  append_json_string(data, build_info::kBuildUser);
  data.append(R"(,"buildDate":)");
  append_json_string(data, build_info::kBuildDate);
  // Prometheus' field for its toolchain; kpid's is a C++ compiler.
  data.append(R"(,"goVersion":)");
  append_json_string(data, build_info::kCompiler);
  data.push_back('}');
  return api_success(request, data);
}

Response handle_tsdb_status(const Request& request, const store::SampleStore& store) {
  if (request.method() != http::verb::get) return prom_method_not_allowed(request, "GET");
  Params params(request);
  size_t limit = 10;
  if (const std::string* l = params.get("limit"); l != nullptr && !l->empty()) {
    auto n = parse_go_int(*l);
    if (!n || *n < 1) return api_error(request, "limit must be a positive number");
    limit = static_cast<size_t>(*n);
  }
  // Counted from the index's label sets. The label strings are the store's (they live as long as
  // it does), so the maps hold views, not copies.
  struct NameStats {
    std::unordered_map<std::string_view, uint64_t> series_by_value;
    uint64_t value_bytes = 0;  // sum over series of the value's length, as Prometheus counts it
  };
  std::unordered_map<std::string_view, NameStats> by_name;
  const auto all = store.select({});
  for (const auto& ref : all) {
    for (const auto& l : ref.labels->items()) {
      NameStats& n = by_name[l.name];
      ++n.series_by_value[l.value];
      n.value_bytes += l.value.size();
    }
  }
  std::vector<std::string> pair_names;  // "name=value", owned here for the views below
  size_t pairs = 0;
  for (const auto& [name, n] : by_name) pairs += n.series_by_value.size();
  pair_names.reserve(pairs);
  std::vector<Stat> metrics, values_per_name, bytes_per_name, series_per_pair;
  values_per_name.reserve(by_name.size());
  bytes_per_name.reserve(by_name.size());
  series_per_pair.reserve(pairs);
  for (const auto& [name, n] : by_name) {
    values_per_name.push_back({name, n.series_by_value.size()});
    bytes_per_name.push_back({name, n.value_bytes});
    for (const auto& [value, count] : n.series_by_value) {
      if (name == kMetricNameLabel) metrics.push_back({value, count});
      std::string& pair = pair_names.emplace_back();
      pair.reserve(name.size() + 1 + value.size());
      pair.append(name).append("=").append(value);
      series_per_pair.push_back({pair, count});
    }
  }
  const store::HeadStats head = store.head_stats();
  std::string data = R"({"headStats":{"numSeries":)";
  data += std::to_string(all.size());
  data += R"(,"numLabelPairs":)";
  data += std::to_string(pairs);
  data += R"(,"chunkCount":)";
  data += std::to_string(head.series);
  data += R"(,"minTime":)";
  data += std::to_string(head.min_time);
  data += R"(,"maxTime":)";
  data += std::to_string(head.max_time);
  data += R"(},"seriesCountByMetricName":)";
  append_top(data, metrics, limit);
  data += R"(,"labelValueCountByLabelName":)";
  append_top(data, values_per_name, limit);
  data += R"(,"memoryInBytesByLabelName":)";
  append_top(data, bytes_per_name, limit);
  data += R"(,"seriesCountByLabelValuePair":)";
  append_top(data, series_per_pair, limit);
  data.push_back('}');
  return api_success(request, data);
}

}  // namespace kpid::server::detail
