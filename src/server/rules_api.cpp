// GET /api/v1/rules: the Prometheus rule groups kpid evaluates, in Prometheus' shape (groups,
// rules with health, lastError, evaluationTime, lastEvaluation, alerts), so Grafana reads them
// as it reads Prometheus'.
#include <charconv>
#include <cmath>
#include <string>

#include <boost/json.hpp>

#include "handlers.h"
#include "kpid/core/json.h"
#include "kpid/rules/evaluator.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

// Go's strconv.FormatFloat(v, 'e', -1, 64), as Prometheus writes an alert's value.
std::string go_exp(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  return std::string(buf, r.ptr);
}

json::object string_map(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

}  // namespace

Response handle_rules_api(const Request& request, const rules::RuleEvaluator* evaluator) {
  if (request.method() != http::verb::get && request.method() != http::verb::head &&
      request.method() != http::verb::post) {
    return prom_method_not_allowed(request, "GET, POST");
  }
  const Params params(request);
  const std::string* type = params.get("type");
  const bool alerts_only = type != nullptr && *type == "alert";
  const bool records_only = type != nullptr && *type == "record";
  if (type != nullptr && !type->empty() && !alerts_only && !records_only) {
    return api_error(request, "unsupported type \"" + *type + "\"");
  }
  json::array groups;
  for (const auto& g : evaluator ? evaluator->status() : std::vector<rules::GroupStatus>{}) {
    json::array rules;
    for (size_t i = 0; i < g.definition.rules.size() && i < g.rules.size(); ++i) {
      const rules::RuleDef& def = g.definition.rules[i];
      const rules::RuleStatus& st = g.rules[i];
      if ((alerts_only && !def.alerting) || (records_only && def.alerting)) continue;
      json::object r;
      r["name"] = def.name;
      r["query"] = def.expr_text;
      if (def.alerting) {
        std::string state = "inactive";
        json::array alerts;
        for (const auto& a : st.alerts) {
          if (a.state == rules::AlertState::kFiring) state = "firing";
          if (a.state == rules::AlertState::kPending && state == "inactive") state = "pending";
          alerts.push_back(json::object{{"labels", string_map(a.labels)},
                                        {"annotations", string_map(a.annotations)},
                                        {"state", rules::alert_state_name(a.state)},
                                        {"activeAt", rfc3339_value(a.active_at)},
                                        {"value", go_exp(a.value)}});
        }
        r["state"] = state;
        r["duration"] = static_cast<double>(def.for_duration) / 1000;
        r["keepFiringFor"] = static_cast<double>(def.keep_firing_for) / 1000;
        r["labels"] = string_map(def.labels);
        r["annotations"] = string_map(def.annotations);
        r["alerts"] = std::move(alerts);
        r["type"] = "alerting";
      } else {
        r["labels"] = string_map(def.labels);
        r["type"] = "recording";
      }
      r["health"] = st.health;
      if (!st.last_error.empty()) r["lastError"] = st.last_error;
      r["evaluationTime"] = st.evaluation_seconds;
      r["lastEvaluation"] = st.last_evaluation == 0 ? json::value("0001-01-01T00:00:00Z")
                                                    : rfc3339_value(st.last_evaluation);
      rules.push_back(std::move(r));
    }
    if (rules.empty() && type != nullptr && !type->empty()) continue;
    groups.push_back(json::object{
        {"name", g.definition.name},
        {"file", g.definition.file},
        {"rules", std::move(rules)},
        {"interval", static_cast<double>(g.interval) / 1000},
        {"limit", g.definition.limit},
        {"evaluationTime", g.evaluation_seconds},
        {"lastEvaluation", g.last_evaluation == 0 ? json::value("0001-01-01T00:00:00Z")
                                                  : rfc3339_value(g.last_evaluation)}});
  }
  return api_success(request, json::serialize(json::object{{"groups", std::move(groups)}}));
}

}  // namespace kpid::server::detail
