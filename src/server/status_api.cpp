// GET /api/v1/status/buildinfo and /api/v1/status/tsdb, in Prometheus' shapes.
#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "build_info.h"
#include "handlers.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

namespace {

// One entry of a top list: `name` (for label pairs, `name`=`value`) and its count.
struct Stat {
  std::string_view name;
  std::string_view value;  // only for label pairs
  uint64_t count;
};

// The `limit` largest by count, largest first; ties by name, so the answer is stable (Prometheus
// leaves ties in its maps' order). The "name=value" strings of pairs are built only for those
// kept: an index has as many pairs as it has distinct label values.
void append_top(std::string& out, std::vector<Stat>& stats, size_t limit, bool pairs) {
  const auto by_count = [](const Stat& a, const Stat& b) {
    if (a.count != b.count) return a.count > b.count;
    return a.name != b.name ? a.name < b.name : a.value < b.value;
  };
  const size_t n = std::min(limit, stats.size());
  std::partial_sort(stats.begin(), stats.begin() + static_cast<std::ptrdiff_t>(n), stats.end(),
                    by_count);
  out.push_back('[');
  std::string pair;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out.push_back(',');
    out.append(R"({"name":)");
    if (pairs) {
      pair.assign(stats[i].name).append("=").append(stats[i].value);
      append_json_string(out, pair);
    } else {
      append_json_string(out, stats[i].name);
    }
    out.append(R"(,"value":)");
    out.append(std::to_string(stats[i].count));
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
  size_t pairs = 0;
  for (const auto& [name, n] : by_name) pairs += n.series_by_value.size();
  std::vector<Stat> metrics, values_per_name, bytes_per_name, series_per_pair;
  values_per_name.reserve(by_name.size());
  bytes_per_name.reserve(by_name.size());
  series_per_pair.reserve(pairs);
  for (const auto& [name, n] : by_name) {
    values_per_name.push_back({name, {}, n.series_by_value.size()});
    bytes_per_name.push_back({name, {}, n.value_bytes});
    for (const auto& [value, count] : n.series_by_value) {
      if (name == kMetricNameLabel) metrics.push_back({value, {}, count});
      series_per_pair.push_back({name, value, count});
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
  append_top(data, metrics, limit, false);
  data += R"(,"labelValueCountByLabelName":)";
  append_top(data, values_per_name, limit, false);
  data += R"(,"memoryInBytesByLabelName":)";
  append_top(data, bytes_per_name, limit, false);
  data += R"(,"seriesCountByLabelValuePair":)";
  append_top(data, series_per_pair, limit, true);
  data.push_back('}');
  return api_success(request, data);
}

}  // namespace kpid::server::detail
