#include "kpid/query/engine.h"

#include <algorithm>
#include <set>

#include "kpid/query/selector.h"

namespace kpid::query {

Engine::Engine(const store::SampleStore& store, QueryOptions options)
    : store_(store),
      lookback_delta_(options.lookback_delta),
      max_points_(options.max_points_per_series) {}

void Engine::set_options(QueryOptions options) {
  lookback_delta_.store(options.lookback_delta);
  max_points_.store(options.max_points_per_series);
}

QueryOptions Engine::options() const { return {lookback_delta_.load(), max_points_.load()}; }

Result<std::vector<InstantSample>> Engine::instant(std::string_view selector,
                                                   TimestampMs time) const {
  auto matchers = parse_selector(selector);
  if (!matchers) return matchers.status();
  DurationMs lookback = lookback_delta_.load();
  std::vector<InstantSample> out;
  std::vector<store::Point> points;
  for (const auto& ref : store_.select(*matchers)) {
    points.clear();
    if (auto s = store_.read(ref.id, time - lookback + 1, time, points); !s) return s;
    if (points.empty()) continue;
    out.push_back({ref.labels, {time, points.back().value}});
  }
  return out;
}

Result<std::vector<RangeSeries>> Engine::range(std::string_view selector, TimestampMs start,
                                               TimestampMs end, DurationMs step) const {
  if (end < start) {
    return Status::invalid_argument("end timestamp must not be before start time");
  }
  if (step <= 0) {
    return Status::invalid_argument(
        "zero or negative query resolution step widths are not accepted. Try a positive "
        "integer");
  }
  int64_t max_points = max_points_.load();
  if ((end - start) / step >= max_points) {
    return Status::invalid_argument("exceeded maximum resolution of " +
                                    std::to_string(max_points) +
                                    " points per timeseries. Try decreasing the query "
                                    "resolution (?step=XX)");
  }
  auto matchers = parse_selector(selector);
  if (!matchers) return matchers.status();
  DurationMs lookback = lookback_delta_.load();
  std::vector<RangeSeries> out;
  std::vector<store::Point> samples;
  for (const auto& ref : store_.select(*matchers)) {
    samples.clear();
    if (auto s = store_.read(ref.id, start - lookback + 1, end, samples); !s) return s;
    if (samples.empty()) continue;
    RangeSeries series{ref.labels, {}};
    // Walk steps and samples together: the latest sample at or before t, within the lookback.
    size_t next = 0;
    for (TimestampMs t = start; t <= end; t += step) {
      while (next < samples.size() && samples[next].timestamp <= t) ++next;
      if (next > 0 && samples[next - 1].timestamp > t - lookback) {
        series.points.push_back({t, samples[next - 1].value});
      }
      if (end - t < step) break;  // avoid overflow past end
    }
    if (!series.points.empty()) out.push_back(std::move(series));
  }
  return out;
}

Result<std::vector<store::SeriesRef>> Engine::series(std::span<const std::string> selectors,
                                                     TimestampMs start, TimestampMs end) const {
  std::set<store::SeriesId> seen;
  std::vector<store::SeriesRef> out;
  for (const auto& selector : selectors) {
    auto matchers = parse_selector(selector);
    if (!matchers) return matchers.status();
    for (const auto& ref : store_.select(*matchers)) {
      if (seen.count(ref.id) != 0) continue;
      auto has = store_.has_samples(ref.id, start, end);
      if (!has) return has.status();
      if (!*has) continue;
      seen.insert(ref.id);
      out.push_back(ref);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.labels->items() < b.labels->items(); });
  return out;
}

Result<std::vector<std::string>> Engine::label_names(std::span<const std::string> selectors,
                                                     TimestampMs start, TimestampMs end) const {
  if (selectors.empty()) return store_.label_names();
  auto refs = series(selectors, start, end);
  if (!refs) return refs.status();
  std::set<std::string> names;
  for (const auto& ref : *refs) {
    for (const auto& l : ref.labels->items()) names.insert(l.name);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Result<std::vector<std::string>> Engine::label_values(std::string_view name,
                                                      std::span<const std::string> selectors,
                                                      TimestampMs start, TimestampMs end) const {
  if (selectors.empty()) return store_.label_values(name);
  auto refs = series(selectors, start, end);
  if (!refs) return refs.status();
  std::set<std::string> values;
  for (const auto& ref : *refs) {
    if (auto v = ref.labels->get(name); !v.empty()) values.insert(std::string(v));
  }
  return std::vector<std::string>(values.begin(), values.end());
}

}  // namespace kpid::query
