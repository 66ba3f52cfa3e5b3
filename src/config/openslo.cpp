// OpenSLO v1 documents into slo::SloOptions. Referenced documents (SLI, AlertPolicy,
// AlertCondition, DataSource) are converted once, before the SLOs, so an error in one shared
// by several SLOs is reported once, where it was written.
#include "kpid/config/openslo.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <initializer_list>
#include <optional>
#include <set>
#include <string_view>

#include "kpid/core/time.h"
#include "loader.h"

namespace kpid::config {

namespace {

constexpr std::string_view kApiVersion = "openslo/v1";
constexpr std::string_view kIdChars =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
constexpr std::initializer_list<const char*> kKinds = {
    "SLO",     "SLI",       "AlertPolicy", "AlertCondition", "AlertNotificationTarget",
    "Service", "DataSource"};

std::string join(std::initializer_list<const char*> items) {
  std::string out;
  for (const char* item : items) out += (out.empty() ? "" : ", ") + std::string(item);
  return out;
}

bool one_of(const std::string& value, std::initializer_list<const char*> items) {
  return std::any_of(items.begin(), items.end(), [&](const char* i) { return value == i; });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// One YAML document with apiVersion openslo/v1.
struct Doc {
  const std::string* file = nullptr;
  YAML::Node root;
  std::string kind;
  std::string name;
  SourcePos pos;
};

// Where errors about a document go: its file and "KIND NAME".
struct Ctx {
  const std::string* file = nullptr;
  std::string label;
};

// A converted SLI: events (ratio) or a threshold expression.
struct Sli {
  bool ok = false;
  std::optional<slo::EventsOptions> events;
  std::string threshold_expr;
  SourcePos threshold_pos;
};

struct Condition {
  bool ok = false;
  slo::BurnAlertOptions alert;
};

struct Policy {
  bool ok = false;
  std::vector<slo::BurnAlertOptions> alerts;
  std::vector<std::string> receivers;
};

class Importer {
 public:
  Importer(const std::vector<alert::ReceiverOptions>& receivers,
           std::map<std::string, SourcePos>& slo_ids, std::vector<ConfigError>& errors)
      : receivers_(receivers), slo_ids_(slo_ids), errors_(errors) {}

  void add(const OpenSloSource& source) {
    std::vector<YAML::Node> roots;
    try {
      roots = YAML::LoadAll(source.text);
    } catch (const YAML::Exception& e) {
      errors_.push_back({source.file, e.mark.is_null() ? 0 : e.mark.line + 1,
                         e.mark.is_null() ? 0 : e.mark.column + 1, "",
                         "YAML syntax error: " + e.msg});
      return;
    }
    for (size_t i = 0; i < roots.size(); ++i) add_document(source.file, roots[i], i + 1);
  }

  void finish(std::vector<slo::SloOptions>& out) {
    for (const Doc& d : docs_) {
      if (d.kind == "DataSource") convert_data_source(d);
    }
    for (const Doc& d : docs_) {
      if (d.kind == "AlertNotificationTarget") targets_.insert(d.name);
      if (d.kind == "SLI") {
        const Ctx c{d.file, "SLI " + d.name};
        slis_[d.name] = convert_sli(c, d.root["spec"], "spec");
      }
      if (d.kind == "AlertCondition") {
        conditions_[d.name] =
            convert_condition(Ctx{d.file, "AlertCondition " + d.name}, d.root, d.name, "");
      }
    }
    for (const Doc& d : docs_) {
      if (d.kind == "AlertPolicy") {
        policies_[d.name] = convert_policy(Ctx{d.file, "AlertPolicy " + d.name}, d.root, "");
      }
    }
    for (const Doc& d : docs_) {
      if (d.kind != "SLO") continue;
      slo::SloOptions s;
      if (convert_slo(d, s)) out.push_back(std::move(s));
    }
  }

 private:
  void fail(const Ctx& c, const YAML::Node& at, const std::string& path, std::string message) {
    const YAML::Mark m = at.IsDefined() ? at.Mark() : YAML::Mark::null_mark();
    std::string key = c.label;
    if (!path.empty()) key += (key.empty() ? "" : ": ") + path;
    errors_.push_back({*c.file, m.is_null() ? 0 : m.line + 1, m.is_null() ? 0 : m.column + 1,
                       std::move(key), std::move(message)});
  }

  SourcePos pos_of(const Ctx& c, const YAML::Node& n) const {
    const YAML::Mark m = n.IsDefined() ? n.Mark() : YAML::Mark::null_mark();
    return SourcePos{*c.file, m.is_null() ? 0 : m.line + 1, m.is_null() ? 0 : m.column + 1};
  }

  static std::string at(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  // A mapping whose keys are all in `known`; false (after an error) when not a mapping.
  bool check_map(const Ctx& c, const YAML::Node& n, const std::string& path,
                 std::initializer_list<const char*> known) {
    if (!n.IsDefined()) return false;  // reported as missing by the caller
    if (!n.IsMap()) {
      fail(c, n, path, "expected a mapping");
      return false;
    }
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string("?");
      if (!one_of(key, known)) {
        fail(c, it->first, at(path, key), "unknown field; kpid reads " + join(known));
      }
    }
    return true;
  }

  // `map[key]` when present; an error naming `path.key` when required and missing.
  YAML::Node field(const Ctx& c, const YAML::Node& map, const std::string& path, const char* key,
                   bool required) {
    const YAML::Node n = map[key];
    if (!n.IsDefined() && required) fail(c, map, at(path, key), "is required");
    return n;
  }

  std::optional<std::string> get_string(const Ctx& c, const YAML::Node& map,
                                        const std::string& path, const char* key, bool required) {
    const YAML::Node n = field(c, map, path, key, required);
    if (!n.IsDefined()) return std::nullopt;
    if (!n.IsScalar() || n.Scalar().empty()) {
      fail(c, n, at(path, key), "expected a non-empty string");
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<double> get_number(const Ctx& c, const YAML::Node& map, const std::string& path,
                                   const char* key, bool required) {
    const YAML::Node n = field(c, map, path, key, required);
    if (!n.IsDefined()) return std::nullopt;
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !std::isfinite(v)) {
      fail(c, n, at(path, key), "expected a number");
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> get_bool(const Ctx& c, const YAML::Node& map, const std::string& path,
                               const char* key) {
    const YAML::Node n = map[key];
    if (!n.IsDefined()) return std::nullopt;
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
      fail(c, n, at(path, key), "expected true or false");
      return std::nullopt;
    }
    return v;
  }

  std::optional<DurationMs> get_duration(const Ctx& c, const YAML::Node& map,
                                         const std::string& path, const char* key, bool required,
                                         DurationMs min) {
    const YAML::Node n = map[key];
    auto text = get_string(c, map, path, key, required);
    if (!text) return std::nullopt;
    auto d = parse_duration(*text);
    if (!d) {
      fail(c, n, at(path, key), d.status().message());
      return std::nullopt;
    }
    if (*d < min) {
      fail(c, n, at(path, key), "must be at least " + format_duration(min));
      return std::nullopt;
    }
    return *d;
  }

  void add_document(const std::string& file, const YAML::Node& root, size_t index) {
    if (root.IsNull()) return;  // an empty document, e.g. after a trailing ---
    const Ctx c{&file, "document " + std::to_string(index)};
    if (!root.IsMap()) {
      fail(c, root, "", "expected a mapping with apiVersion, kind, metadata and spec");
      return;
    }
    auto api = get_string(c, root, "", "apiVersion", true);
    auto kind = get_string(c, root, "", "kind", true);
    if (!api || !kind) return;
    if (*api != kApiVersion) {
      fail(c, root["apiVersion"], "apiVersion",
           "unsupported apiVersion \"" + *api + "\"; kpid imports openslo/v1");
      return;
    }
    if (!one_of(*kind, kKinds)) {
      fail(c, root["kind"], "kind",
           "unknown kind \"" + *kind + "\"; expected one of " + join(kKinds));
      return;
    }
    Doc d{&file, root, *kind, "", pos_of(c, root)};
    const Ctx kc{&file, *kind + " (" + c.label + ")"};
    if (!check_map(kc, root, "", {"apiVersion", "kind", "metadata", "spec"})) return;
    const YAML::Node meta = field(kc, root, "", "metadata", true);
    if (!meta.IsDefined() ||
        !check_map(kc, meta, "metadata", {"name", "displayName", "labels", "annotations"})) {
      return;
    }
    auto name = get_string(kc, meta, "metadata", "name", true);
    if (!name) return;
    d.name = *name;
    if (d.kind != "Service" && !field(kc, root, "", "spec", true).IsDefined()) return;
    if (d.kind != "SLO" && d.kind != "Service") {
      auto [it, fresh] = named_.emplace(d.kind + "/" + d.name, d.pos);
      if (!fresh) {
        fail(Ctx{&file, d.kind + " " + d.name}, meta["name"], "metadata.name",
             "duplicate " + d.kind + " name; first defined at " + it->second.file + ":" +
                 std::to_string(it->second.line));
        return;
      }
    }
    docs_.push_back(std::move(d));
  }

  void convert_data_source(const Doc& d) {
    const Ctx c{d.file, "DataSource " + d.name};
    const YAML::Node spec = d.root["spec"];
    if (!check_map(c, spec, "spec", {"description", "type", "connectionDetails"})) return;
    if (auto type = get_string(c, spec, "spec", "type", true)) data_sources_[d.name] = *type;
  }

  // {metricSource: {metricSourceRef?, type, spec: {query}}} -> the PromQL query.
  std::optional<std::string> convert_metric(const Ctx& c, const YAML::Node& n,
                                            const std::string& path, SourcePos& pos) {
    if (!check_map(c, n, path, {"metricSource"})) return std::nullopt;
    const std::string mpath = at(path, "metricSource");
    const YAML::Node source = field(c, n, path, "metricSource", true);
    if (!source.IsDefined() || !check_map(c, source, mpath, {"metricSourceRef", "type", "spec"})) {
      return std::nullopt;
    }
    std::optional<std::string> type = get_string(c, source, mpath, "type", false);
    if (auto ref = get_string(c, source, mpath, "metricSourceRef", false)) {
      auto it = data_sources_.find(*ref);
      if (it == data_sources_.end()) {
        fail(c, source["metricSourceRef"], at(mpath, "metricSourceRef"),
             "no DataSource named \"" + *ref + "\" in the OpenSLO files");
        return std::nullopt;
      }
      if (!type) type = it->second;
    } else if (!type) {
      fail(c, source, at(mpath, "type"), "is required (or a metricSourceRef to a DataSource)");
      return std::nullopt;
    }
    if (lower(*type) != "prometheus") {
      fail(c, source["type"].IsDefined() ? source["type"] : source, at(mpath, "type"),
           "unsupported metric source type \"" + *type +
               "\"; kpid evaluates Prometheus queries (type: Prometheus) over its own store");
      return std::nullopt;
    }
    const YAML::Node spec = field(c, source, mpath, "spec", true);
    if (!spec.IsDefined() || !check_map(c, spec, at(mpath, "spec"), {"query"})) {
      return std::nullopt;
    }
    auto query = get_string(c, spec, at(mpath, "spec"), "query", true);
    if (query) pos = pos_of(c, spec["query"]);
    return query;
  }

  Sli convert_sli(const Ctx& c, const YAML::Node& spec, const std::string& path) {
    Sli sli;
    const size_t before = errors_.size();
    if (!check_map(c, spec, path, {"description", "thresholdMetric", "ratioMetric"})) return sli;
    const YAML::Node ratio = spec["ratioMetric"];
    const YAML::Node threshold = spec["thresholdMetric"];
    if (ratio.IsDefined() == threshold.IsDefined()) {
      fail(c, spec, path,
           ratio.IsDefined() ? "give ratioMetric or thresholdMetric, not both"
                             : "needs ratioMetric (good or bad, and total counters) or "
                               "thresholdMetric");
      return sli;
    }
    if (threshold.IsDefined()) {
      auto q = convert_metric(c, threshold, at(path, "thresholdMetric"), sli.threshold_pos);
      if (q) sli.threshold_expr = *q;
    } else {
      const std::string rpath = at(path, "ratioMetric");
      if (!check_map(c, ratio, rpath, {"counter", "good", "bad", "total", "rawType", "raw"})) {
        return sli;
      }
      for (const char* key : {"raw", "rawType"}) {
        if (ratio[key].IsDefined()) {
          fail(c, ratio[key], at(rpath, key),
               "raw ratios (a precomputed ratio metric) are not supported: kpid needs good or "
               "bad, and total counters");
        }
      }
      auto counter = get_bool(c, ratio, rpath, "counter");
      if (!ratio["counter"].IsDefined()) {
        fail(c, ratio, at(rpath, "counter"), "is required; kpid supports counter: true");
      } else if (counter && !*counter) {
        fail(c, ratio["counter"], at(rpath, "counter"),
             "kpid takes the increase of counters over each window; counter: false (gauges) is "
             "not supported");
      }
      slo::EventsOptions events;
      events.pos = pos_of(c, ratio);
      if (ratio["good"].IsDefined() == ratio["bad"].IsDefined()) {
        fail(c, ratio, rpath,
             ratio["good"].IsDefined() ? "give good or bad, not both"
                                       : "needs good or bad: the counter of good (or bad) events");
      }
      if (ratio["good"].IsDefined()) {
        if (auto q = convert_metric(c, ratio["good"], at(rpath, "good"), events.good_pos)) {
          events.good = *q;
        }
      }
      if (ratio["bad"].IsDefined()) {
        if (auto q = convert_metric(c, ratio["bad"], at(rpath, "bad"), events.bad_pos)) {
          events.bad = *q;
        }
      }
      if (field(c, ratio, rpath, "total", true).IsDefined()) {
        if (auto q = convert_metric(c, ratio["total"], at(rpath, "total"), events.total_pos)) {
          events.total = *q;
        }
      }
      sli.events = std::move(events);
    }
    sli.ok = errors_.size() == before;
    return sli;
  }

  static std::string severity_of(const std::string& openslo) {
    const std::string s = lower(openslo);
    if (s == "page" || s == "critical" || s == "high") return "critical";
    if (s == "ticket" || s == "warning" || s == "medium" || s == "low") return "warning";
    return "error";
  }

  // An AlertCondition document, or one written inline in a policy (`prefix` its path there).
  Condition convert_condition(const Ctx& c, const YAML::Node& doc, const std::string& name,
                              const std::string& prefix) {
    Condition out;
    const size_t before = errors_.size();
    const std::string path = at(prefix, "spec");
    const YAML::Node spec = doc["spec"];
    if (!spec.IsDefined()) {
      fail(c, doc, path, "is required");
      return out;
    }
    if (!check_map(c, spec, path, {"description", "severity", "condition"})) return out;
    slo::BurnAlertOptions& a = out.alert;
    a.name = name;
    a.pos = pos_of(c, doc);
    if (auto severity = get_string(c, spec, path, "severity", true)) {
      a.severity = severity_of(*severity);
    }
    const std::string cpath = at(path, "condition");
    const YAML::Node cond = field(c, spec, path, "condition", true);
    if (cond.IsDefined() &&
        check_map(c, cond, cpath, {"kind", "op", "threshold", "lookbackWindow", "alertAfter"})) {
      if (auto kind = get_string(c, cond, cpath, "kind", true); kind && *kind != "burnrate") {
        fail(c, cond["kind"], at(cpath, "kind"),
             "unsupported condition kind \"" + *kind + "\"; kpid supports burnrate");
      }
      if (auto op = get_string(c, cond, cpath, "op", true); op && *op != "gt" && *op != "gte") {
        fail(c, cond["op"], at(cpath, "op"),
             "unsupported op \"" + *op + "\"; a burn-rate alert fires above its threshold (gt)");
      }
      if (auto threshold = get_number(c, cond, cpath, "threshold", true)) {
        if (*threshold > 0) {
          a.factor = *threshold;
        } else {
          fail(c, cond["threshold"], at(cpath, "threshold"), "must be above 0");
        }
      }
      // The short window is 1/12 of the long one, the SRE workbook's ratio (1h and 5m).
      if (auto lookback = get_duration(c, cond, cpath, "lookbackWindow", true, 60'000)) {
        a.long_window = *lookback;
        a.short_window = std::max<DurationMs>(*lookback / 12, 1'000);
      }
      if (auto after = get_duration(c, cond, cpath, "alertAfter", false, 0)) {
        a.for_duration = *after;
      }
    }
    out.ok = errors_.size() == before;
    return out;
  }

  // An AlertPolicy document, or one written inline in an SLO (`prefix` its path there).
  Policy convert_policy(const Ctx& c, const YAML::Node& doc, const std::string& prefix) {
    Policy out;
    const size_t before = errors_.size();
    const std::string path = at(prefix, "spec");
    const YAML::Node spec = doc["spec"];
    if (!spec.IsDefined()) {
      fail(c, doc, path, "is required");
      return out;
    }
    if (!check_map(c, spec, path,
                   {"description", "alertWhenNoData", "alertWhenResolved", "alertWhenBreaching",
                    "conditions", "notificationTargets"})) {
      return out;
    }
    for (const char* key : {"alertWhenNoData", "alertWhenResolved", "alertWhenBreaching"}) {
      get_bool(c, spec, path, key);
    }
    const YAML::Node conditions = field(c, spec, path, "conditions", true);
    if (conditions.IsDefined() && (!conditions.IsSequence() || conditions.size() == 0)) {
      fail(c, conditions, at(path, "conditions"), "expected a list of one or more conditions");
    } else if (conditions.IsDefined()) {
      for (size_t i = 0; i < conditions.size(); ++i) {
        const YAML::Node item = conditions[i];
        const std::string ipath = at(path, "conditions[" + std::to_string(i) + "]");
        if (item.IsMap() && item["conditionRef"].IsDefined()) {
          if (!check_map(c, item, ipath, {"conditionRef"})) continue;
          auto ref = get_string(c, item, ipath, "conditionRef", true);
          if (!ref) continue;
          auto it = conditions_.find(*ref);
          if (it == conditions_.end()) {
            fail(c, item["conditionRef"], at(ipath, "conditionRef"),
                 "no AlertCondition named \"" + *ref + "\" in the OpenSLO files");
          } else if (it->second.ok) {
            out.alerts.push_back(it->second.alert);
          } else {
            out.ok = false;  // reported where the condition is written
            return out;
          }
        } else if (auto name = inline_name(c, item, ipath, "AlertCondition", "conditionRef")) {
          Condition cond = convert_condition(c, item, *name, ipath);
          if (cond.ok) out.alerts.push_back(std::move(cond.alert));
        }
      }
    }
    const YAML::Node targets = spec["notificationTargets"];
    if (targets.IsDefined() && !targets.IsSequence()) {
      fail(c, targets, at(path, "notificationTargets"), "expected a list");
    } else if (targets.IsDefined()) {
      for (size_t i = 0; i < targets.size(); ++i) {
        const YAML::Node item = targets[i];
        const std::string ipath = at(path, "notificationTargets[" + std::to_string(i) + "]");
        std::optional<std::string> name;
        if (item.IsMap() && item["targetRef"].IsDefined()) {
          if (!check_map(c, item, ipath, {"targetRef"})) continue;
          name = get_string(c, item, ipath, "targetRef", true);
          if (name && targets_.count(*name) == 0) {
            fail(c, item["targetRef"], at(ipath, "targetRef"),
                 "no AlertNotificationTarget named \"" + *name + "\" in the OpenSLO files");
            continue;
          }
        } else {
          name = inline_name(c, item, ipath, "AlertNotificationTarget", "targetRef");
        }
        // A target named like a [[receiver]] routes there; others go through the usual routes.
        if (name && std::any_of(receivers_.begin(), receivers_.end(),
                                [&](const auto& r) { return r.name == *name; })) {
          out.receivers.push_back(*name);
        }
      }
    }
    out.ok = errors_.size() == before;
    return out;
  }

  // An inline object {kind: KIND, metadata: {name}, spec}: its name, after checking it.
  std::optional<std::string> inline_name(const Ctx& c, const YAML::Node& item,
                                         const std::string& path, const std::string& kind,
                                         const char* ref_key) {
    if (!item.IsMap()) {
      fail(c, item, path, std::string("expected {") + ref_key + ": NAME} or an inline " + kind);
      return std::nullopt;
    }
    if (!check_map(c, item, path, {"kind", "metadata", "spec"})) return std::nullopt;
    if (auto k = get_string(c, item, path, "kind", true); k && *k != kind) {
      fail(c, item["kind"], at(path, "kind"), "expected " + kind + " here, got " + *k);
      return std::nullopt;
    }
    const YAML::Node meta = field(c, item, path, "metadata", true);
    if (!meta.IsDefined() || !check_map(c, meta, at(path, "metadata"),
                                        {"name", "displayName", "labels", "annotations"})) {
      return std::nullopt;
    }
    return get_string(c, meta, at(path, "metadata"), "name", true);
  }

  bool convert_window(const Ctx& c, const YAML::Node& spec, slo::SloOptions& s) {
    const YAML::Node windows = field(c, spec, "spec", "timeWindow", true);
    if (!windows.IsDefined()) return false;
    s.window_pos = pos_of(c, windows);
    if (!windows.IsSequence() || windows.size() != 1) {
      fail(c, windows, "spec.timeWindow", "expected a list of exactly one time window");
      return false;
    }
    const YAML::Node w = windows[0];
    const std::string path = "spec.timeWindow[0]";
    if (!check_map(c, w, path, {"duration", "isRolling", "calendar"})) return false;
    auto duration = get_string(c, w, path, "duration", true);
    const bool rolling = get_bool(c, w, path, "isRolling").value_or(false);
    if (const YAML::Node cal = w["calendar"]; cal.IsDefined()) {
      const std::string cpath = at(path, "calendar");
      if (rolling) fail(c, cal, cpath, "goes with isRolling: false");
      if (check_map(c, cal, cpath, {"startTime", "timeZone"})) {
        get_string(c, cal, cpath, "startTime", false);
        auto zone = get_string(c, cal, cpath, "timeZone", false);
        if (zone && !one_of(*zone, {"UTC", "Etc/UTC", "GMT", "Etc/GMT"})) {
          fail(c, cal["timeZone"], at(cpath, "timeZone"),
               "kpid's calendar windows are months and quarters in UTC; got \"" + *zone + "\"");
        }
      }
    }
    if (!duration) return false;
    const YAML::Node dnode = w["duration"];
    if (!rolling) {
      if (*duration == "1M") {
        s.window = "month";
      } else if (*duration == "1Q" || *duration == "3M") {
        s.window = "quarter";
      } else {
        fail(c, dnode, at(path, "duration"),
             "kpid's calendar windows are one month (1M) or one quarter (1Q or 3M); got \"" +
                 *duration + "\" (or set isRolling: true)");
        return false;
      }
      return true;
    }
    if (!duration->empty() && one_of(duration->substr(duration->size() - 1), {"M", "Q", "Y"})) {
      fail(c, dnode, at(path, "duration"),
           "a rolling window needs a fixed length such as 28d or 4w; months, quarters and years "
           "are calendar windows (isRolling: false)");
      return false;
    }
    auto length = parse_duration(*duration);
    if (!length || *length < 3'600'000 || *length > 400 * 86'400'000LL) {
      fail(c, dnode, at(path, "duration"),
           "expected a rolling duration from 1h to 400d such as 28d; got \"" + *duration + "\"");
      return false;
    }
    s.window = *duration;
    return true;
  }

  static void set_owner(const YAML::Node& meta, const YAML::Node& spec, slo::SloOptions& s) {
    // A node's type may be asked only when it is defined (yaml-cpp throws otherwise).
    auto scalar = [](const YAML::Node& n) { return n.IsDefined() && n.IsScalar(); };
    const YAML::Node labels = meta["labels"];
    if (labels.IsDefined() && labels.IsMap()) {
      const YAML::Node owner = labels["owner"];
      // OpenSLO label values are a string or a list of strings.
      if (scalar(owner)) s.owner = owner.Scalar();
      if (owner.IsDefined() && owner.IsSequence() && owner.size() > 0 && scalar(owner[0])) {
        s.owner = owner[0].Scalar();
      }
    }
    const YAML::Node annotations = meta["annotations"];
    if (s.owner.empty() && annotations.IsDefined() && annotations.IsMap() &&
        scalar(annotations["kpid.io/owner"])) {
      s.owner = annotations["kpid.io/owner"].Scalar();
    }
    if (s.owner.empty() && scalar(spec["service"])) s.owner = spec["service"].Scalar();
  }

  bool convert_slo(const Doc& d, slo::SloOptions& s) {
    const Ctx c{d.file, "SLO " + d.name};
    const size_t before = errors_.size();
    s.origin = "openslo";
    s.pos = d.pos;
    s.id = d.name;
    const YAML::Node meta = d.root["metadata"];
    if (s.id.size() > 128 || s.id.find_first_not_of(kIdChars) != std::string::npos) {
      fail(c, meta["name"], "metadata.name",
           "must be 1-128 characters of letters, digits, '_', '.' and '-' (it is the SLO id, in "
           "URLs and metric labels)");
    } else if (s.id == "rules") {
      fail(c, meta["name"], "metadata.name",
           "\"rules\" is reserved: GET /api/v1/slos/rules serves every SLO's Prometheus rules");
    } else if (auto [it, fresh] = slo_ids_.emplace(s.id, s.pos); !fresh) {
      fail(c, meta["name"], "metadata.name",
           "duplicate SLO id; first defined at " + it->second.file + ":" +
               std::to_string(it->second.line));
    }
    s.name = get_string(c, meta, "metadata", "displayName", false).value_or(s.id);
    const YAML::Node spec = d.root["spec"];
    if (!check_map(c, spec, "spec",
                   {"description", "service", "indicator", "indicatorRef", "budgetingMethod",
                    "timeWindow", "objectives", "alertPolicies"})) {
      return false;
    }
    s.description = get_string(c, spec, "spec", "description", false).value_or("");
    get_string(c, spec, "spec", "service", false);
    set_owner(meta, spec, s);

    // The SLI: inline or by reference.
    Sli sli;
    const YAML::Node inline_sli = spec["indicator"];
    const YAML::Node ref = spec["indicatorRef"];
    if (inline_sli.IsDefined() == ref.IsDefined()) {
      fail(c, spec, "spec",
           inline_sli.IsDefined() ? "give indicator or indicatorRef, not both"
                                  : "needs an indicator (an inline SLI) or an indicatorRef");
    } else if (ref.IsDefined()) {
      if (auto name = get_string(c, spec, "spec", "indicatorRef", true)) {
        auto it = slis_.find(*name);
        if (it == slis_.end()) {
          fail(c, ref, "spec.indicatorRef", "no SLI named \"" + *name + "\" in the OpenSLO files");
        } else if (!it->second.ok) {
          return false;  // reported where the SLI is written
        } else {
          sli = it->second;
        }
      }
    } else if (check_map(c, inline_sli, "spec.indicator", {"metadata", "spec"})) {
      const YAML::Node imeta = field(c, inline_sli, "spec.indicator", "metadata", true);
      if (imeta.IsDefined() && check_map(c, imeta, "spec.indicator.metadata",
                                         {"name", "displayName", "labels", "annotations"})) {
        get_string(c, imeta, "spec.indicator.metadata", "name", true);
      }
      if (field(c, inline_sli, "spec.indicator", "spec", true).IsDefined()) {
        sli = convert_sli(c, inline_sli["spec"], "spec.indicator.spec");
      }
    }

    // Budgeting method and the objective.
    std::string method;
    if (auto m = get_string(c, spec, "spec", "budgetingMethod", true)) {
      method = *m;
      if (!one_of(method, {"Occurrences", "Timeslices", "RatioTimeslices"})) {
        fail(c, spec["budgetingMethod"], "spec.budgetingMethod",
             "unknown budgeting method \"" + method +
                 "\"; expected Occurrences, Timeslices or RatioTimeslices");
        method.clear();
      }
    }
    if (sli.ok && !method.empty()) {
      if (sli.events && method != "Occurrences") {
        fail(c, spec["budgetingMethod"], "spec.budgetingMethod",
             "kpid supports budgetingMethod Occurrences for ratio SLIs (good or bad events over "
             "total events); " +
                 method + " would judge each slice by its ratio");
      } else if (!sli.events && method != "Timeslices") {
        fail(c, spec["budgetingMethod"], "spec.budgetingMethod",
             "a thresholdMetric SLI needs budgetingMethod Timeslices: kpid counts the slices "
             "in which the query meets the objective's op and value");
      }
    }
    convert_window(c, spec, s);

    const YAML::Node objectives = field(c, spec, "spec", "objectives", true);
    if (objectives.IsDefined() && (!objectives.IsSequence() || objectives.size() != 1)) {
      fail(c, objectives, "spec.objectives",
           objectives.IsSequence() && objectives.size() > 1
               ? "kpid takes one objective per SLO; write one SLO document per objective"
               : "expected a list of one objective");
    } else if (objectives.IsDefined()) {
      convert_objective(c, objectives[0], sli, s);
    }

    bool policies_ok = true;
    if (const YAML::Node policies = spec["alertPolicies"]; policies.IsDefined()) {
      policies_ok = convert_alert_policies(c, policies, s);
    }
    return policies_ok && errors_.size() == before;
  }

  void convert_objective(const Ctx& c, const YAML::Node& o, const Sli& sli, slo::SloOptions& s) {
    const std::string path = "spec.objectives[0]";
    for (const char* key : {"indicator", "indicatorRef", "compositeWeight"}) {
      if (o.IsMap() && o[key].IsDefined()) {
        fail(c, o[key], at(path, key),
             "composite SLOs (an indicator per objective) are not supported; give the SLO's "
             "indicator in spec");
      }
    }
    if (!check_map(c, o, path,
                   {"displayName", "op", "value", "target", "targetPercent", "timeSliceTarget",
                    "timeSliceWindow", "indicator", "indicatorRef", "compositeWeight"})) {
      return;
    }
    get_string(c, o, path, "displayName", false);
    const YAML::Node target = o["target"];
    const YAML::Node percent = o["targetPercent"];
    if (target.IsDefined() == percent.IsDefined()) {
      fail(c, o, path,
           target.IsDefined() ? "give target or targetPercent, not both"
                              : "needs target (e.g. 0.999) or targetPercent (e.g. 99.9)");
    } else if (target.IsDefined()) {
      s.objective_pos = pos_of(c, target);
      auto t = get_number(c, o, path, "target", true);
      if (t && !(*t > 0 && *t < 1)) {
        fail(c, target, at(path, "target"),
             "expected a number between 0 and 1 (exclusive), e.g. 0.999");
      } else if (t) {
        // 0.999 * 100 is 99.89999999999999 in binary: round to what was written.
        s.objective = std::round(*t * 100 * 1e9) / 1e9;
      }
    } else {
      s.objective_pos = pos_of(c, percent);
      auto p = get_number(c, o, path, "targetPercent", true);
      if (p && !(*p > 0 && *p < 100)) {
        fail(c, percent, at(path, "targetPercent"),
             "expected a percentage between 0 and 100 (exclusive), e.g. 99.9");
      } else if (p) {
        s.objective = *p;
      }
    }
    if (auto ts = get_number(c, o, path, "timeSliceTarget", false); ts && !(*ts > 0 && *ts <= 1)) {
      fail(c, o["timeSliceTarget"], at(path, "timeSliceTarget"),
           "expected a number above 0, at most 1");
    }
    if (auto slice = get_duration(c, o, path, "timeSliceWindow", false, 1'000)) {
      s.interval = *slice;  // each evaluation is one slice
    }
    const bool threshold = sli.ok && !sli.events;
    if (sli.events) {
      for (const char* key : {"op", "value"}) {
        if (o[key].IsDefined()) {
          fail(c, o[key], at(path, key), "goes with a thresholdMetric SLI, not a ratioMetric");
        }
      }
      s.events = sli.events;
    } else if (threshold) {
      slo::TimeSlicesOptions slices;
      slices.expr = sli.threshold_expr;
      slices.expr_pos = sli.threshold_pos;
      slices.pos = pos_of(c, o);
      if (auto op = get_string(c, o, path, "op", true)) {
        if (one_of(*op, {"lt", "lte", "gt", "gte"})) {
          slices.op = *op;
        } else {
          fail(c, o["op"], at(path, "op"),
               "unknown op \"" + *op + "\"; expected lt, lte, gt or gte");
        }
      }
      if (auto value = get_number(c, o, path, "value", true)) slices.threshold = *value;
      s.time_slices = std::move(slices);
    }
  }

  // False when a referenced policy has errors (reported there).
  bool convert_alert_policies(const Ctx& c, const YAML::Node& policies, slo::SloOptions& s) {
    if (!policies.IsSequence()) {
      fail(c, policies, "spec.alertPolicies", "expected a list");
      return true;
    }
    bool ok = true;
    std::set<std::string> names;
    for (size_t i = 0; i < policies.size(); ++i) {
      const YAML::Node item = policies[i];
      const std::string path = "spec.alertPolicies[" + std::to_string(i) + "]";
      Policy policy;
      std::optional<std::string> ref;
      const YAML::Node ref_node = item.IsMap() ? item["alertPolicyRef"] : item;
      if (item.IsScalar()) {
        ref = item.Scalar();
      } else if (item.IsMap() && ref_node.IsDefined()) {
        if (!check_map(c, item, path, {"alertPolicyRef"})) continue;
        ref = get_string(c, item, path, "alertPolicyRef", true);
        if (!ref) continue;
      } else if (inline_name(c, item, path, "AlertPolicy", "alertPolicyRef")) {
        policy = convert_policy(c, item, path);
      } else {
        continue;
      }
      if (ref) {
        auto it = policies_.find(*ref);
        if (it == policies_.end()) {
          fail(c, ref_node, item.IsScalar() ? path : at(path, "alertPolicyRef"),
               "no AlertPolicy named \"" + *ref + "\" in the OpenSLO files");
          continue;
        }
        policy = it->second;
        if (!policy.ok) {
          ok = false;  // reported where the policy is written
          continue;
        }
      }
      for (auto& a : policy.alerts) {
        if (!names.insert(a.name).second) {
          fail(c, item, path,
               "alert condition \"" + a.name + "\" is used twice in this SLO's alert policies");
          continue;
        }
        a.receivers = policy.receivers;
        s.alerts.push_back(std::move(a));
      }
    }
    // The SLO's policies replace the SRE workbook defaults, even when they hold no alert.
    s.default_alerts = false;
    return ok;
  }

  const std::vector<alert::ReceiverOptions>& receivers_;
  std::map<std::string, SourcePos>& slo_ids_;
  std::vector<ConfigError>& errors_;
  std::vector<Doc> docs_;
  std::map<std::string, SourcePos> named_;           // "KIND/name" of referable documents
  std::map<std::string, std::string> data_sources_;  // name -> type
  std::set<std::string> targets_;
  std::map<std::string, Sli> slis_;
  std::map<std::string, Condition> conditions_;
  std::map<std::string, Policy> policies_;
};

}  // namespace

void import_openslo(const std::vector<OpenSloSource>& sources,
                    const std::vector<alert::ReceiverOptions>& receivers,
                    std::map<std::string, SourcePos>& slo_ids, std::vector<slo::SloOptions>& out,
                    std::vector<ConfigError>& errors) {
  Importer importer(receivers, slo_ids, errors);
  for (const auto& source : sources) importer.add(source);
  try {
    importer.finish(out);
  } catch (const YAML::Exception& e) {
    // The walker checks each node's type before reading it; this is a broken invariant, kept
    // from ending the process.
    errors.push_back({"", 0, 0, "openslo", std::string("cannot import OpenSLO: ") + e.what()});
  }
}

void load_openslo(const std::string& source_name, Config& config,
                  std::map<std::string, SourcePos>& slo_ids, std::vector<ConfigError>& errors) {
  std::vector<OpenSloSource> sources;
  for (const auto& file :
       detail::expand_patterns(source_name, config.openslo, "openslo", "OpenSLO file", errors)) {
    auto text = detail::read_file(file);
    if (!text) {
      errors.push_back({file, 0, 0, "", "cannot open OpenSLO file"});
      continue;
    }
    sources.push_back({file, std::move(*text)});
  }
  if (!sources.empty()) import_openslo(sources, config.receivers, slo_ids, config.slos, errors);
}

}  // namespace kpid::config
