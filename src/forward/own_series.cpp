#include "kpid/forward/own_series.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include <spdlog/spdlog.h>

#include "kpid/core/labels.h"
#include "kpid/core/stale_marker.h"

namespace kpid::forward {

namespace {

constexpr Origin kOwnOrigins[] = {Origin::kKpis, Origin::kSlos, Origin::kAlerts};

const char* origin_name(Origin origin) {
  switch (origin) {
    case Origin::kKpis: return "kpis";
    case Origin::kSlos: return "slos";
    case Origin::kAlerts: return "alerts";
    default: return "";
  }
}

}  // namespace

void append_families(const std::vector<prometheus::MetricFamily>& families, std::string_view prefix,
                     std::vector<OwnSeries>& out) {
  for (const auto& family : families) {
    if (family.name.rfind(prefix, 0) != 0) continue;
    for (const auto& metric : family.metric) {
      OwnSeries s;
      switch (family.type) {
        case prometheus::MetricType::Gauge: s.value = metric.gauge.value; break;
        case prometheus::MetricType::Counter: s.value = metric.counter.value; break;
        case prometheus::MetricType::Untyped: s.value = metric.untyped.value; break;
        default: continue;
      }
      for (const auto& label : metric.label) s.labels[label.name] = label.value;
      s.labels[std::string(kMetricNameLabel)] = family.name;
      out.push_back(std::move(s));
    }
  }
}

OwnSeries alert_series(const std::string& alertname, const std::string& state,
                       std::map<std::string, std::string> labels) {
  OwnSeries s;
  s.labels = std::move(labels);
  s.labels[std::string(kMetricNameLabel)] = "ALERTS";
  s.labels["alertname"] = alertname;
  s.labels["alertstate"] = state;
  s.value = 1;
  return s;
}

OwnSeriesWriter::OwnSeriesWriter(Forwarder& forwarder, store::SampleStore& store,
                                 const std::vector<RemoteWriteOptions>& destinations,
                                 Snapshot snapshot, const Clock& clock)
    : forwarder_(forwarder), store_(store), snapshot_(std::move(snapshot)), clock_(clock) {
  for (const auto& o : destinations) {
    Destination d{o.name, std::max<DurationMs>(1, o.self_interval), {}, 0, {}};
    for (Origin origin : kOwnOrigins) {
      if (std::find(o.send.begin(), o.send.end(), origin_name(origin)) != o.send.end()) {
        d.origins.push_back(origin);
      }
    }
    if (!d.origins.empty()) destinations_.push_back(std::move(d));
  }
}

OwnSeriesWriter::~OwnSeriesWriter() { stop(); }

Status OwnSeriesWriter::run_once(TimestampMs now) {
  // One snapshot per kind for every destination due now, resolved to series ids once.
  std::map<Origin, std::vector<store::Sample>> taken;
  Status result = Status::ok();
  LabelsBuilder builder;
  for (auto& d : destinations_) {
    if (d.next_due > now) continue;
    d.next_due = now + d.interval;
    for (Origin origin : d.origins) {
      auto it = taken.find(origin);
      if (it == taken.end()) {
        std::vector<store::Sample> samples;
        for (const OwnSeries& s : snapshot_(origin)) {
          builder.clear();
          for (const auto& [name, value] : s.labels) builder.add(name, value);
          if (!builder.finish().empty()) continue;  // a repeated name cannot come from a map
          auto id = store_.resolve(builder.key());
          if (!id) {
            // One bad series (a store limit) must not hold back the others.
            spdlog::warn("remote write: own series {} skipped: {}", builder.key(),
                         id.status().message());
            continue;
          }
          samples.push_back({*id, now, s.value});
        }
        it = taken.emplace(origin, std::move(samples)).first;
      }
      std::vector<store::Sample> batch = it->second;
      std::unordered_set<store::SeriesId> current;
      for (const auto& s : batch) current.insert(s.series);
      auto& previous = d.previous[origin];
      for (store::SeriesId id : previous) {
        if (current.count(id) == 0) batch.push_back({id, now, kStaleNaN});
      }
      if (auto s = forwarder_.enqueue_to(d.name, origin, batch); !s) {
        result = s;
        continue;  // previous stays: the stale markers go with the next round
      }
      previous = std::move(current);
    }
  }
  return result;
}

void OwnSeriesWriter::start() {
  if (destinations_.empty() || thread_.joinable()) return;
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      const TimestampMs now = clock_.now_ms();
      if (auto s = run_once(now); !s) {
        spdlog::error("remote write: queueing kpid's own series: {}", s.message());
      }
      TimestampMs next = std::numeric_limits<TimestampMs>::max();
      for (const auto& d : destinations_) next = std::min(next, d.next_due);
      lock.lock();
      const DurationMs wait = std::max<DurationMs>(1, next - clock_.now_ms());
      wake_.wait_for(lock, std::chrono::milliseconds(wait), [this] { return stopping_; });
    }
  });
}

void OwnSeriesWriter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace kpid::forward
