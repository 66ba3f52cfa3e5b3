#pragma once
// What the OTLP fuzz targets (otlp_protobuf_fuzz.cpp, otlp_json_fuzz.cpp) check of a decode:
// besides "no crash, no leak, no undefined behaviour, no exception",
// - a body that is not decoded fails with invalid_argument and a message;
// - every series has one sample, a valid metric name (__name__) and valid label names with
//   non-empty values; every rejection says where and why; every series and rejection maps to
//   a data point of the request;
// - delta points have a time, sorted labels, a bucket count per bound (+1) and a scale of at
//   most 8, and adding them up (DeltaAccumulator over an in-memory state) hands out one-sample
//   series and commits;
// - a reused decoder forgets the previous body.

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "kpid/core/labels.h"
#include "kpid/ingest/delta_accumulator.h"
#include "kpid/ingest/otlp.h"

namespace kpid::fuzz {

class MemoryState final : public store::StateStore {
 public:
  Status write_state(std::span<const std::pair<std::string, std::string>> puts,
                     std::span<const std::string>) override {
    for (const auto& [k, v] : puts) records_[k] = v;
    return Status::ok();
  }
  Result<std::optional<std::string>> get_state(std::string_view) const override {
    return std::optional<std::string>();
  }
  Status scan_state(
      std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& visit) const override {
    for (const auto& [k, v] : records_) {
      if (k.starts_with(prefix) && !visit(k, v)) break;
    }
    return Status::ok();
  }
  Status scan_state_reverse(
      std::string_view,
      const std::function<bool(std::string_view, std::string_view)>&) const override {
    return Status::ok();
  }

 private:
  std::map<std::string, std::string> records_;
};

inline void check_series(const ingest::RemoteWriteRequest& write) {
  for (const auto& s : write.series) {
    check(s.samples.size() == 1, "a series has one sample");
    bool named = false;
    for (const auto& l : s.labels) {
      check(!l.value.empty(), "no empty label value", l.name);
      if (l.name == "__name__") {
        named = true;
        check(is_metric_name(l.value), "__name__ is a valid metric name", l.value);
      } else {
        check(is_label_name(l.name), "label names are valid", l.name);
      }
    }
    check(named, "a series has __name__");
  }
}

inline void check_otlp(std::string_view body, ingest::OtlpEncoding encoding,
                       ingest::OtlpDecoder& decoder) {
  ingest::OtlpRequest out;
  const Status st = decoder.decode(body, encoding, out);
  if (!st.is_ok()) {
    check(st.code() == StatusCode::kInvalidArgument, "decode error is invalid_argument",
          st.to_string());
    check(!st.message().empty(), "decode error has a message");
    return;
  }
  for (const auto& d : out.deltas) {
    check(d.end_ns > 0, "a delta has a time");
    check(d.point < out.points.size(), "a delta maps to a point");
    check(std::is_sorted(d.labels.begin(), d.labels.end(),
                         [](const auto& a, const auto& b) { return a.name < b.name; }),
          "delta labels are sorted");
    if (d.kind == ingest::OtlpDelta::Kind::kHistogram) {
      check(d.bucket_counts.empty() ? d.bounds.empty()
                                    : d.bucket_counts.size() == d.bounds.size() + 1,
            "a delta histogram has a count per bucket");
    }
    check(d.kind != ingest::OtlpDelta::Kind::kExponentialHistogram || d.scale <= 8,
          "delta exponential scales are at most 8");
  }
  MemoryState state;
  ingest::DeltaAccumulator deltas(state);
  {
    auto batch = deltas.begin();
    for (const auto& d : out.deltas) {
      const std::string refused = batch.add(d, decoder.builder());
      if (!refused.empty()) decoder.builder().reject(d.point, "delta", refused);
    }
    decoder.builder().finish(out.write, out.point_of_index);
    check(batch.commit([](size_t) { return true; }).is_ok(), "delta totals commit");
  }
  check_series(out.write);
  check(out.point_of_index.size() == out.write.series.size() + out.write.rejected.size(),
        "every series and rejection has an index");
  for (size_t p : out.point_of_index) check(p < out.points.size(), "indices map to points");
  for (const auto& r : out.write.rejected) {
    check(!r.reason.empty() && !r.series.empty(), "a rejection says where and why");
  }
  // The totals written read back.
  ingest::DeltaAccumulator reloaded(state);
  check(reloaded.load().is_ok(), "delta totals load back");
  check(reloaded.streams() == deltas.streams(), "every stream loads back");
}

inline void run_otlp(std::string_view input, ingest::OtlpEncoding encoding) {
  ingest::OtlpDecoder decoder;
  check_otlp(input, encoding, decoder);
  // Again, on the same decoder: nothing of the first decode may show.
  check_otlp(input, encoding, decoder);
}

}  // namespace kpid::fuzz
