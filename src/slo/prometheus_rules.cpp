// SLOs as a Prometheus rule file. The YAML is written by hand: every scalar the SLO supplies is
// a double-quoted YAML string, so no id, expression or owner can break the file's structure.

#include "kpid/slo/prometheus_rules.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <variant>

#include "kpid/query/promql.h"

namespace kpid::slo {

namespace {

// A YAML double-quoted scalar.
std::string yaml_quote(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\x%02x", u);
          out += buffer;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

// A PromQL double-quoted string (Go's quoting rules for the characters ids may hold).
std::string promql_quote(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += ch;
  }
  return out + "\"";
}

// A number PromQL reads back as the same double, without noise digits ("0.001", not
// "0.0010000000000000009" for 1 - 99.9 / 100: the digits past 12 are rounding of the
// objective, not part of it).
std::string number_text(double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.12g", v);
  return buffer;
}

std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

// rate() of a counter expression over `window`, summed: directly over a selector (a sum of
// counters is rated series by series, as Prometheus recommends, and costs no subquery), else
// over a subquery at the SLO's interval, which is how often kpid samples the expression too.
std::string rate_of(const std::string& expr, const std::string& window, const std::string& step) {
  const std::string text = trimmed(expr);
  if (const std::string selector = counted_selector(text); !selector.empty()) {
    return "sum(rate(" + selector + "[" + window + "]))";
  }
  return "sum(rate((" + text + ")[" + window + ":" + step + "]))";
}

std::string comparison_of(std::string_view op) {
  if (op == "lt") return "<";
  if (op == "lte") return "<=";
  if (op == "gt") return ">";
  return ">=";  // gte; compile() admits no other
}

// The error ratio of `d` over `window`, or "" when Prometheus cannot compute it.
std::string error_ratio(const Definition& d, const std::string& window, const std::string& step) {
  if (d.kind == SliKind::kEvents) {
    const std::string total = rate_of(d.total, window, step);
    if (!d.bad.empty()) return rate_of(d.bad, window, step) + " / " + total;
    return "(" + total + " - " + rate_of(d.good, window, step) + ") / " + total;
  }
  if (!d.slice_expr.empty()) {
    // One slice per step: 1 while good, 0 while bad, absent without a value (skipped, as kpid
    // skips it) unless no_data counts the slice as good or bad.
    const std::string text = trimmed(d.slice_expr);
    auto parsed = query::parse_promql(text);
    const bool scalar = parsed && (*parsed)->type == query::ValueType::kScalar;
    const std::string value = scalar ? "vector(" + text + ")" : "(" + text + ")";
    std::string slice =
        value + " " + comparison_of(d.slice_op) + " bool " + number_text(d.slice_threshold);
    if (d.no_data == "good") slice = "(" + slice + ") or on() vector(1)";
    if (d.no_data == "bad") slice = "(" + slice + ") or on() vector(0)";
    return "1 - avg_over_time((" + slice + ")[" + window + ":" + step + "])";
  }
  // A KPI's status: kpid exports it as kpid_kpi_status{kpi, status} = 1 for the current one.
  // Good slices over known ones; a no_data slice is known only when no_data is good or bad.
  std::set<std::string> good;
  for (kpi::Health h : d.good_statuses) {
    if (h != kpi::Health::kNoData && h != kpi::Health::kUnknown) {
      good.emplace(kpi::health_name(h));
    }
  }
  if (d.no_data == "good") good.emplace("no_data");
  std::string good_regex;
  for (const auto& s : good) good_regex += (good_regex.empty() ? "" : "|") + s;
  const std::string kpi = "kpi=" + promql_quote(d.kpi);
  const std::string good_sel = "kpid_kpi_status{" + kpi + ",status=~\"" + good_regex + "\"}";
  const std::string known_sel = d.no_data == "skip"
                                    ? "kpid_kpi_status{" + kpi + ",status!=\"no_data\"}"
                                    : "kpid_kpi_status{" + kpi + "}";
  if (good.empty())
    return "sum_over_time(sum(" + known_sel + ")[" + window + ":" + step +
           "]) / sum_over_time(sum(" + known_sel + ")[" + window + ":" + step + "])";
  return "1 - sum_over_time(sum(" + good_sel + ")[" + window + ":" + step +
         "]) / sum_over_time(sum(" + known_sel + ")[" + window + ":" + step + "])";
}

// Appends the SLO's group; false (and a comment) when it has none.
bool append_slo(std::string& out, const Definition& d, DurationMs eval_interval) {
  if (d.alerts.empty()) {
    out += "  # SLO " + d.id + " has no burn-rate alerts: nothing to record or alert on.\n";
    return false;
  }
  const DurationMs interval = d.interval > 0 ? d.interval : eval_interval;
  const std::string step = format_duration(interval);
  const std::string slo_label = "slo=" + promql_quote(d.id);
  std::set<DurationMs> windows;
  for (const auto& a : d.alerts) {
    windows.insert(a.long_window);
    windows.insert(a.short_window);
  }

  out += "  - name: " + yaml_quote("kpid-slo-" + d.id) + "\n";
  out += "    interval: " + step + "\n";
  if (d.kind == SliKind::kTimeSlices && d.slice_expr.empty()) {
    out += "    # The SLI is KPI " + d.kpi +
           "'s status: these rules read kpid's kpid_kpi_status gauge, so this Prometheus must "
           "scrape kpid's /metrics.\n";
  }
  out += "    rules:\n";
  for (DurationMs w : windows) {
    out += "      - record: " + error_ratio_record_name(w) + "\n";
    out += "        expr: " + yaml_quote(error_ratio(d, format_duration(w), step)) + "\n";
    out += "        labels:\n";
    out += "          slo: " + yaml_quote(d.id) + "\n";
  }
  const std::string budget = number_text(d.budget());
  for (const auto& a : d.alerts) {
    const std::string lng = error_ratio_record_name(a.long_window) + "{" + slo_label + "}";
    const std::string shrt = error_ratio_record_name(a.short_window) + "{" + slo_label + "}";
    const std::string over = " > (" + number_text(a.factor) + " * " + budget + ")";
    std::string expr = lng + over + " and " + shrt + over;
    if (a.hysteresis > 0) {
      // kpid resolves a firing alert only once a window falls below factor - hysteresis: while
      // it fires (ALERTS from the previous evaluation), the lower bar holds it.
      const std::string held = " > (" + number_text(a.factor - a.hysteresis) + " * " + budget + ")";
      expr = "(" + expr + ") or (" + lng + held + " and " + shrt + held +
             " and on(slo) ALERTS{alertname=" + promql_quote(a.name) + ",alertstate=\"firing\"," +
             slo_label + "})";
    }
    out += "      - alert: " + yaml_quote(a.name) + "\n";
    out += "        expr: " + yaml_quote(expr) + "\n";
    out += "        for: " + format_duration(a.for_duration) + "\n";
    if (a.clear_for > 0) out += "        keep_firing_for: " + format_duration(a.clear_for) + "\n";
    out += "        labels:\n";
    out += "          slo: " + yaml_quote(d.id) + "\n";
    if (!a.severity.empty()) out += "          severity: " + yaml_quote(a.severity) + "\n";
    if (!d.owner.empty()) out += "          owner: " + yaml_quote(d.owner) + "\n";
    out += "        annotations:\n";
    out += "          summary: " +
           yaml_quote(d.name + " (SLO " + d.id + ", objective " + number_text(d.objective) +
                      "%) is burning its error budget faster than " + number_text(a.factor) +
                      "x over both " + format_duration(a.long_window) + " and " +
                      format_duration(a.short_window)) +
           "\n";
  }
  return true;
}

}  // namespace

std::string error_ratio_record_name(DurationMs window) {
  return "slo:sli_error:ratio_rate" + format_duration(window);
}

std::string prometheus_rules(std::span<const Definition> slos, DurationMs eval_interval) {
  std::string out =
      "# Prometheus rules generated by kpid from its SLOs: per SLO the error ratio over each\n"
      "# window its burn-rate alerts use, and those alerts. Burn rate = error ratio / (1 - "
      "objective).\n";
  std::string groups;
  bool any = false;
  for (const auto& d : slos) any = append_slo(groups, d, eval_interval) || any;
  // A list of only comments would be a null `groups`, which is no list.
  return out + (any ? "groups:\n" : "groups: []\n") + groups;
}

}  // namespace kpid::slo
