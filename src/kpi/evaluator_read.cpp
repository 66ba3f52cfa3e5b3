// The evaluator's read side: current views, status history and chart series.

#include <algorithm>
#include <map>

#include "evaluator_internal.h"
#include "history.h"
#include "records.h"

namespace kpid::kpi {

using detail::kNaN;
using records::band_from;
using records::key_prefix;
using records::parse_health;
using records::parse_numbers;
using records::thresholds_of;
using records::time_of_key;

std::vector<KpiView> Evaluator::list() const {
  std::vector<KpiView> out;
  for (const auto& slot : slots()) {
    std::lock_guard lock(slot->mutex);
    out.push_back(slot->view);
  }
  return out;
}

std::optional<KpiView> Evaluator::get(std::string_view id) const {
  for (const auto& slot : slots()) {
    if (slot->definition->id != id) continue;
    std::lock_guard lock(slot->mutex);
    return slot->view;
  }
  return std::nullopt;
}

Result<std::vector<StatusChange>> Evaluator::history(std::string_view id, size_t limit) const {
  std::vector<StatusChange> out;
  const std::string prefix = key_prefix(id, "status");
  auto s = state_.scan_state_reverse(prefix, [&](std::string_view key, std::string_view value) {
    if (out.size() >= limit) return false;
    size_t space = value.find(' ');
    auto h = parse_health(value.substr(0, space));
    if (!h) return true;
    double v = kNaN;
    if (space != std::string_view::npos) {
      auto numbers = parse_numbers(value.substr(space + 1));
      if (!numbers.empty()) v = numbers.front();
    }
    out.push_back({time_of_key(key, prefix.size()), *h, v});
    return true;
  });
  if (!s) return s;
  std::reverse(out.begin(), out.end());
  return out;
}

Result<KpiSeries> Evaluator::series(std::string_view id, TimestampMs start, TimestampMs end,
                                    DurationMs step) const {
  auto view = get(id);
  if (!view) return Status::not_found("no KPI with id \"" + std::string(id) + "\"");
  if (auto s = engine_.check_range(start, end, step); !s) return s;
  const Definition& d = *view->definition;
  KpiSeries out;
  auto value = detail::value_points(engine_, d, d.numerator.window,
                                    d.denominator ? d.denominator->window : 0, start, end, step);
  if (!value) return value.status();
  out.value = std::move(value).value();

  // Baseline snapshots and band records: each applies from its time until the next.
  struct Snapshot {
    TimestampMs time;
    std::vector<double> values;
  };
  auto load = [&](std::string_view kind, std::vector<Snapshot>& into) -> Status {
    const std::string prefix = key_prefix(id, kind);
    return state_.scan_state(prefix, [&](std::string_view key, std::string_view value) {
      into.push_back({time_of_key(key, prefix.size()), parse_numbers(value)});
      return true;
    });
  };
  std::vector<Snapshot> baselines;
  std::vector<Snapshot> bands;
  if (auto s = load("baseline", baselines); !s) return s;
  if (auto s = load("band", bands); !s) return s;
  auto at = [](const std::vector<Snapshot>& list, TimestampMs t) -> const Snapshot* {
    auto it = std::upper_bound(list.begin(), list.end(), t,
                               [](TimestampMs x, const Snapshot& s) { return x < s.time; });
    return it == list.begin() ? nullptr : &*(it - 1);
  };
  std::map<std::string, std::vector<store::Point>> thresholds;
  std::vector<std::string> order;
  for (TimestampMs t = start; t <= end; t += step) {
    if (const Snapshot* b = at(baselines, t); b && b->values.size() >= 3) {
      out.baseline_lower.push_back({t, b->values[0]});
      out.baseline_center.push_back({t, b->values[1]});
      out.baseline_upper.push_back({t, b->values[2]});
    }
    // Before the first band record, the first one (the band as first configured) applies.
    const Snapshot* band_record = bands.empty() ? nullptr : at(bands, t);
    if (band_record == nullptr && !bands.empty()) band_record = &bands.front();
    auto b = band_record ? band_from(band_record->values) : std::nullopt;
    if (!b) continue;
    for (const auto& [name, v] : thresholds_of(d.direction, *b)) {
      auto& points = thresholds[name];
      if (points.empty() && std::find(order.begin(), order.end(), name) == order.end()) {
        order.push_back(name);
      }
      points.push_back({t, v});
    }
  }
  for (const auto& name : order) out.thresholds.emplace_back(name, std::move(thresholds[name]));
  return out;
}

}  // namespace kpid::kpi
