// The evaluator's Prometheus families and each KPI's gauges in them.

#include <map>
#include <string>

#include "evaluator_internal.h"
#include "records.h"

namespace kpid::kpi {

Evaluator::Metrics::Metrics(prometheus::Registry& r)
    : value(prometheus::BuildGauge()
                .Name("kpid_kpi_value")
                .Help("The KPI's current value (NaN while it has none).")
                .Register(r)),
      baseline(prometheus::BuildGauge()
                   .Name("kpid_kpi_baseline")
                   .Help("The KPI's baseline (normal operating range) by bound: lower, "
                         "center, upper.")
                   .Register(r)),
      threshold(prometheus::BuildGauge()
                    .Name("kpid_kpi_threshold")
                    .Help("The KPI's configured thresholds by level (target, warn, crit); "
                          "in_range KPIs also carry side=\"low|high\".")
                    .Register(r)),
      status(prometheus::BuildGauge()
                 .Name("kpid_kpi_status")
                 .Help("1 for the KPI's current status (ok, warn, crit, anomalous, no_data), "
                       "0 for the others.")
                 .Register(r)),
      evaluations(prometheus::BuildCounter()
                      .Name("kpid_kpi_evaluations_total")
                      .Help("KPI evaluations by trigger: sample (new data), timer (windows "
                            "moving on), baseline (a refreshed baseline).")
                      .Register(r)),
      by_sample(&evaluations.Add({{"trigger", "sample"}})),
      by_timer(&evaluations.Add({{"trigger", "timer"}})),
      by_baseline(&evaluations.Add({{"trigger", "baseline"}})) {}

void Evaluator::Metrics::add(Slot& s) {
  const Definition& d = *s.definition;
  const std::map<std::string, std::string> labels = {{"kpi", d.id}, {"owner", d.owner}};
  auto with = [&](const char* name, std::string value) {
    auto l = labels;
    l.emplace(name, std::move(value));
    return l;
  };
  s.value_gauge = &value.Add(labels);
  for (Health h : {Health::kOk, Health::kWarn, Health::kCrit, Health::kAnomalous, Health::kNoData,
                   Health::kUnknown}) {
    // Only a KPI on a data source can be unknown: local ones keep their five gauges.
    if (h == Health::kUnknown && d.datasource.empty()) continue;
    s.status_gauges[static_cast<int>(h)] = &status.Add(with("status", std::string(health_name(h))));
  }
  if (d.band) {
    for (const auto& [name, v] : records::thresholds_of(d.direction, *d.band)) {
      auto l = labels;
      if (auto underscore = name.find('_'); underscore != std::string::npos) {
        l.emplace("level", name.substr(0, underscore));
        l.emplace("side", name.substr(underscore + 1));
      } else {
        l.emplace("level", name);
      }
      auto* g = &threshold.Add(l);
      g->Set(v);
      s.threshold_gauges.push_back(g);
    }
  }
}

void Evaluator::Metrics::set_baseline(Slot& s, const Baseline& b) {
  if (s.baseline_gauges[0] == nullptr) {
    const Definition& d = *s.definition;
    int i = 0;
    for (const char* bound : {"lower", "center", "upper"}) {
      s.baseline_gauges[i++] = &baseline.Add({{"kpi", d.id}, {"owner", d.owner}, {"bound", bound}});
    }
  }
  s.baseline_gauges[0]->Set(b.lower);
  s.baseline_gauges[1]->Set(b.center);
  s.baseline_gauges[2]->Set(b.upper);
}

void Evaluator::Metrics::remove(Slot& s) {
  if (s.value_gauge) value.Remove(s.value_gauge);
  for (auto*& g : s.status_gauges) {
    if (g) status.Remove(g);
    g = nullptr;
  }
  for (auto*& g : s.baseline_gauges) {
    if (g) baseline.Remove(g);
    g = nullptr;
  }
  for (auto* g : s.threshold_gauges) threshold.Remove(g);
  s.threshold_gauges.clear();
  s.value_gauge = nullptr;
}

}  // namespace kpid::kpi
