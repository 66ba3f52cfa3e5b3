#pragma once
// kpid's own series for remote write (send = "kpis", "slos", "alerts"): every destination's
// self_interval, a snapshot of the kpid_kpi_* / kpid_slo_* gauges and counters as /metrics
// shows them, and of ALERTS{alertname, alertstate, ...}=1 for every pending or firing alert,
// stamped with the snapshot time.
//
// The queue records reference series by store id (labels are looked up when a batch is sent),
// so each snapshot series is resolved in the store first: the store learns the series (its
// index entry; no samples are stored), and the queue keeps one record format and its
// durability. A series that was in a destination's previous snapshot and is not in this one
// (a resolved alert, a removed KPI) gets a stale marker, as Prometheus marks an ended series.

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include <prometheus/metric_family.h>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/forward/forwarder.h"
#include "kpid/forward/options.h"
#include "kpid/store/sample_store.h"

namespace kpid::forward {

// One series of a snapshot: its labels (with __name__) and value.
struct OwnSeries {
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Appends the gauge, counter and untyped series of the families whose name starts with
// `prefix` (histograms and summaries are left out).
void append_families(const std::vector<prometheus::MetricFamily>& families, std::string_view prefix,
                     std::vector<OwnSeries>& out);

// ALERTS{alertname, alertstate, ...labels}=1 as Prometheus writes it; `state` is "pending" or
// "firing". An alertname or alertstate among `labels` is replaced.
OwnSeries alert_series(const std::string& alertname, const std::string& state,
                       std::map<std::string, std::string> labels);

class OwnSeriesWriter {
 public:
  // The snapshot of one kind (kKpis, kSlos or kAlerts); called on the writer's thread.
  using Snapshot = std::function<std::vector<OwnSeries>(Origin)>;

  // `destinations` are the [[remote_write]] options (those sending none of kpis, slos, alerts
  // are ignored). Everything referenced must outlive the writer.
  OwnSeriesWriter(Forwarder& forwarder, store::SampleStore& store,
                  const std::vector<RemoteWriteOptions>& destinations, Snapshot snapshot,
                  const Clock& clock);
  ~OwnSeriesWriter();

  // Whether any destination sends kpid's own series (otherwise start() has nothing to do).
  bool active() const { return !destinations_.empty(); }

  // Snapshots for the destinations due at `now` and queues them. Not ok when resolving a
  // series or queueing failed (the next round tries again).
  Status run_once(TimestampMs now);

  // Starts the thread (a snapshot at once, then on each destination's interval). Idempotent.
  void start();
  void stop();

 private:
  struct Destination {
    std::string name;
    DurationMs interval;
    std::vector<Origin> origins;
    TimestampMs next_due = 0;
    std::map<Origin, std::unordered_set<store::SeriesId>> previous;
  };

  Forwarder& forwarder_;
  store::SampleStore& store_;
  Snapshot snapshot_;
  const Clock& clock_;
  std::vector<Destination> destinations_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
};

}  // namespace kpid::forward
