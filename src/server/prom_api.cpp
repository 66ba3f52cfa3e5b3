// The Prometheus HTTP API subset Grafana and promtool use, with Prometheus' JSON shapes.
#include <algorithm>
#include <chrono>
#include <limits>

#include "handlers.h"
#include "kpid/core/labels.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

namespace {

// Prometheus' defaults when start/end are absent: all of time.
constexpr TimestampMs kMinTime = std::numeric_limits<int64_t>::min() / 2;
constexpr TimestampMs kMaxTime = std::numeric_limits<int64_t>::max() / 2;

void append_metric(std::string& out, const Labels& labels) {
  out.push_back('{');
  bool first = true;
  for (const auto& l : labels.items()) {
    if (!first) out.push_back(',');
    first = false;
    append_json_string(out, l.name);
    out.push_back(':');
    append_json_string(out, l.value);
  }
  out.push_back('}');
}

void append_point(std::string& out, const store::Point& p) {
  out.push_back('[');
  append_unix_seconds(out, p.timestamp);
  out.append(",\"");
  append_prom_float(out, p.value);
  out.append("\"]");
}

// Starts the `index`-th element of a result list: {"metric":{...},"<field>": — the caller
// appends the sample(s) and the closing brace.
void open_series(std::string& out, size_t index, const Labels& labels, const char* field) {
  if (index > 0) out.push_back(',');
  out.append(R"({"metric":)");
  append_metric(out, labels);
  out.append(",\"");
  out.append(field);
  out.append("\":");
}

void append_string_list(std::string& out, const std::vector<std::string>& items) {
  out.push_back('[');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_json_string(out, items[i]);
  }
  out.push_back(']');
}

// An evaluation error as Prometheus reports it: 422 "execution" for a query that cannot be
// evaluated (e.g. many-to-many matching) or that is over query.max_samples, 503 "timeout" past
// its deadline, 503 "canceled" when kpid stops it (shutting down), 503 when the store is
// unavailable, else 500.
Response exec_error(const Request& request, const Status& status) {
  http::status code = http::status::internal_server_error;
  const char* type = "internal";
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kResourceExhausted:
      code = http::status::unprocessable_entity;
      type = "execution";
      break;
    case StatusCode::kDeadlineExceeded:
      code = http::status::service_unavailable;
      type = "timeout";
      break;
    case StatusCode::kCancelled:
      code = http::status::service_unavailable;
      type = "canceled";
      break;
    case StatusCode::kUnavailable:
      code = http::status::service_unavailable;
      type = "unavailable";
      break;
    default: break;
  }
  std::string body = R"({"status":"error","errorType":")";
  body += type;
  body += R"(","error":)";
  append_json_string(body, status.message());
  body.push_back('}');
  return json_response(request, code, std::move(body));
}

// {"resultType":...,"result":...} of an evaluated query.
std::string result_data(const query::QueryResult& r) {
  std::string data = R"({"resultType":")";
  data += query::result_type_name(r.type);
  data += R"(","result":)";
  switch (r.type) {
    case query::ValueType::kScalar: append_point(data, {r.time, r.scalar}); break;
    case query::ValueType::kString:
      data.push_back('[');
      append_unix_seconds(data, r.time);
      data.push_back(',');
      append_json_string(data, r.string);
      data.push_back(']');
      break;
    case query::ValueType::kVector:
      data.push_back('[');
      for (size_t i = 0; i < r.series.size(); ++i) {
        const auto& s = r.series[i];
        open_series(data, i, *s.labels, "value");
        append_point(data, s.points.front());
        data.push_back('}');
      }
      data.push_back(']');
      break;
    case query::ValueType::kMatrix:
      data.push_back('[');
      for (size_t n = 0; n < r.series.size(); ++n) {
        const auto& s = r.series[n];
        open_series(data, n, *s.labels, "values");
        data.push_back('[');
        for (size_t i = 0; i < s.points.size(); ++i) {
          if (i > 0) data.push_back(',');
          append_point(data, s.points[i]);
        }
        data.append("]}");
      }
      data.push_back(']');
      break;
  }
  data.push_back('}');
  return data;
}

// The limits of one query: the budget's, with the deadline brought forward by a `timeout`
// parameter (Prometheus' duration or float seconds) shorter than query.timeout.
Result<query::QueryLimits> limits_of(const Params& params, const QueryBudget& budget) {
  DurationMs timeout = budget.timeout;
  if (const std::string* t = params.get("timeout"); t != nullptr) {
    auto asked = parse_step(*t);
    if (!asked)
      return Status::invalid_argument("invalid parameter \"timeout\": " + asked.status().message());
    if (*asked <= 0) {
      return Status::invalid_argument("invalid parameter \"timeout\": must be positive");
    }
    timeout = std::min(timeout, *asked);
  }
  query::QueryLimits limits;
  limits.deadline = budget.received + std::chrono::milliseconds(timeout);
  limits.max_samples = budget.max_samples;
  limits.cancel = budget.cancel;
  return limits;
}

// A query that waited for a pool worker past its deadline does not start.
Status started_in_time(const query::QueryLimits& limits) {
  if (std::chrono::steady_clock::now() >= limits.deadline) {
    return Status::deadline_exceeded("query timed out in query queue");
  }
  return Status::ok();
}

Response query_instant(const Request& request, const Params& params, const query::Engine& engine,
                       const Clock& clock, const QueryBudget& budget) {
  const std::string* q = params.get("query");
  if (q == nullptr) return api_error(request, "invalid parameter \"query\": missing parameter");
  auto time = time_param(params, "time", clock.now_ms());
  if (!time) return api_error(request, time.status().message());
  auto limits = limits_of(params, budget);
  if (!limits) return api_error(request, limits.status().message());
  auto expr = query::parse_promql(*q);
  if (!expr) {
    return api_error(request, "invalid parameter \"query\": " + expr.status().message());
  }
  if (auto st = started_in_time(*limits); !st) return exec_error(request, st);
  auto result = engine.instant(**expr, *time, nullptr, *limits);
  if (!result) return exec_error(request, result.status());
  return api_success(request, result_data(*result));
}

Response query_range(const Request& request, const Params& params, const query::Engine& engine,
                     const QueryBudget& budget) {
  const std::string* q = params.get("query");
  if (q == nullptr) return api_error(request, "invalid parameter \"query\": missing parameter");
  for (const char* required : {"start", "end", "step"}) {
    if (params.get(required) == nullptr) {
      return api_error(request,
                       "invalid parameter \"" + std::string(required) + "\": missing parameter");
    }
  }
  auto start = time_param(params, "start", 0);
  if (!start) return api_error(request, start.status().message());
  auto end = time_param(params, "end", 0);
  if (!end) return api_error(request, end.status().message());
  auto step = parse_step(*params.get("step"));
  if (!step) return api_error(request, "invalid parameter \"step\": " + step.status().message());
  auto limits = limits_of(params, budget);
  if (!limits) return api_error(request, limits.status().message());
  if (auto st = engine.check_range(*start, *end, *step); !st) {
    return api_error(request, st.message());
  }
  auto expr = query::parse_promql(*q);
  if (!expr) {
    return api_error(request, "invalid parameter \"query\": " + expr.status().message());
  }
  if (auto st = query::Engine::check_range_expr(**expr); !st) {
    return api_error(request, "invalid parameter \"query\": " + st.message());
  }
  if (auto st = started_in_time(*limits); !st) return exec_error(request, st);
  auto result = engine.range(**expr, *start, *end, *step, nullptr, *limits);
  if (!result) return exec_error(request, result.status());
  return api_success(request, result_data(*result));
}

struct Window {
  TimestampMs start;
  TimestampMs end;
};

Result<Window> window_params(const Params& params) {
  auto start = time_param(params, "start", kMinTime);
  if (!start) return start.status();
  auto end = time_param(params, "end", kMaxTime);
  if (!end) return end.status();
  if (*end < *start) {
    return Status::invalid_argument("end timestamp must not be before start time");
  }
  return Window{*start, *end};
}

// A scan's failure: a limit's (timeout, cancelled) or the store's as for queries, else the
// selectors' fault.
bool scan_stopped(const Status& status) {
  return status.code() == StatusCode::kDeadlineExceeded ||
         status.code() == StatusCode::kCancelled || status.code() == StatusCode::kUnavailable ||
         status.code() == StatusCode::kIoError;
}

// The `limit` of series and label lookups as Prometheus parses it: absent or 0 for none, a
// negative or non-integer value is bad_data.
Result<size_t> limit_param(const Params& params) {
  const std::string* text = params.get("limit");
  if (text == nullptr || text->empty()) return size_t{0};
  auto n = parse_go_int(*text);
  if (!n) return Status::invalid_argument("invalid parameter \"limit\": " + n.status().message());
  if (*n < 0)
    return Status::invalid_argument("invalid parameter \"limit\": limit must be non-negative");
  return static_cast<size_t>(*n);
}

// Keeps the first `limit` entries (0: all); Prometheus warns when it cut any.
template <typename T>
void truncate_to(std::vector<T>& items, size_t limit, std::vector<std::string>& warnings) {
  if (limit == 0 || items.size() <= limit) return;
  items.resize(limit);
  warnings.emplace_back("results truncated due to limit");
}

Response series(const Request& request, const Params& params, const query::Engine& engine,
                const QueryBudget& budget) {
  auto limit = limit_param(params);
  if (!limit) return api_error(request, limit.status().message());
  auto selectors = params.all("match[]");
  if (selectors.empty()) return api_error(request, "no match[] parameter provided");
  auto window = window_params(params);
  if (!window) return api_error(request, window.status().message());
  auto limits = limits_of(params, budget);
  if (!limits) return api_error(request, limits.status().message());
  if (auto st = started_in_time(*limits); !st) return exec_error(request, st);
  auto result = engine.series(selectors, window->start, window->end, *limits);
  if (!result) {
    if (scan_stopped(result.status())) return exec_error(request, result.status());
    return api_error(request, "invalid parameter \"match[]\": " + result.status().message());
  }
  std::vector<std::string> warnings;
  truncate_to(*result, *limit, warnings);
  std::string data = "[";
  for (size_t i = 0; i < result->size(); ++i) {
    if (i > 0) data.push_back(',');
    append_metric(data, *(*result)[i].labels);
  }
  data.push_back(']');
  return api_success(request, data, warnings);
}

Response labels(const Request& request, const Params& params, const query::Engine& engine,
                std::string_view values_of, const QueryBudget& budget) {
  auto limit = limit_param(params);
  if (!limit) return api_error(request, limit.status().message());
  auto window = window_params(params);
  if (!window) return api_error(request, window.status().message());
  auto limits = limits_of(params, budget);
  if (!limits) return api_error(request, limits.status().message());
  if (auto st = started_in_time(*limits); !st) return exec_error(request, st);
  auto selectors = params.all("match[]");
  Result<std::vector<std::string>> result =
      values_of.empty()
          ? engine.label_names(selectors, window->start, window->end, *limits)
          : engine.label_values(values_of, selectors, window->start, window->end, *limits);
  if (!result) {
    if (scan_stopped(result.status())) return exec_error(request, result.status());
    return api_error(request, "invalid parameter \"match[]\": " + result.status().message());
  }
  std::vector<std::string> warnings;
  truncate_to(*result, *limit, warnings);
  std::string data;
  append_string_list(data, *result);
  return api_success(request, data, warnings);
}

// kpid keeps no exemplars: after checking the parameters as Prometheus does, the answer is the
// empty list Prometheus gives for series without exemplars.
Response query_exemplars(const Request& request, const Params& params) {
  auto start = time_param(params, "start", kMinTime);
  if (!start) return api_error(request, start.status().message());
  auto end = time_param(params, "end", kMaxTime);
  if (!end) return api_error(request, end.status().message());
  if (*end < *start) {
    return api_error(request, "end timestamp must not be before start timestamp");
  }
  const std::string* q = params.get("query");
  auto expr = query::parse_promql(q != nullptr ? *q : std::string());
  if (!expr) return api_error(request, expr.status().message());
  return api_success(request, "[]");
}

}  // namespace

Response handle_prom_api(const Request& request, std::string_view endpoint,
                         const query::Engine& engine, const Clock& clock,
                         const QueryBudget& budget) {
  constexpr std::string_view kLabel = "label/";
  constexpr std::string_view kValues = "/values";
  const bool label_values = endpoint.starts_with(kLabel) && endpoint.ends_with(kValues) &&
                            endpoint.size() > kLabel.size() + kValues.size();
  // The methods Prometheus routes: GET and POST, but only GET for label values (so Grafana,
  // set to POST, falls back to GET there as it does with Prometheus).
  const bool get = request.method() == http::verb::get;
  const bool post = request.method() == http::verb::post;
  if (label_values && !get) return prom_method_not_allowed(request, "GET");
  if (!get && !post) return prom_method_not_allowed(request, "GET, POST");
  Params params(request);
  if (endpoint == "query") return query_instant(request, params, engine, clock, budget);
  if (endpoint == "query_range") return query_range(request, params, engine, budget);
  if (endpoint == "query_exemplars") return query_exemplars(request, params);
  if (endpoint == "format_query") return handle_format_query(request, params);
  if (endpoint == "parse_query") return handle_parse_query(request, params);
  if (endpoint == "series") return series(request, params, engine, budget);
  if (endpoint == "labels") return labels(request, params, engine, {}, budget);
  if (label_values) {
    std::string name = std::string(
        endpoint.substr(kLabel.size(), endpoint.size() - kLabel.size() - kValues.size()));
    if (!is_label_name(name)) {
      std::string message = "invalid label name: ";
      append_json_string(message, name);
      return api_error(request, message);
    }
    return labels(request, params, engine, name, budget);
  }
  return make_response(
      request, http::status::not_found,
      "404 page not found: no API endpoint /api/v1/" + std::string(endpoint) + "\n",
      "text/plain; charset=utf-8");
}

}  // namespace kpid::server::detail
