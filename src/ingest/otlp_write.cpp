// WritePipeline::write_otlp_body: OTLP bodies through the same store path as remote write.

#include <algorithm>
#include <limits>
#include <optional>

#include "kpid/ingest/delta_accumulator.h"
#include "kpid/ingest/otlp.h"
#include "kpid/ingest/write_pipeline.h"

namespace kpid::ingest {

Result<OtlpWriteResult> WritePipeline::write_otlp_body(std::string_view body, OtlpEncoding encoding,
                                                       DeltaAccumulator* deltas,
                                                       size_t max_histogram_buckets,
                                                       size_t max_errors) {
  if (!otlp_decoder_ || otlp_max_buckets_ != max_histogram_buckets) {
    otlp_decoder_ = std::make_unique<OtlpDecoder>(max_histogram_buckets);
    otlp_request_ = std::make_unique<OtlpRequest>();
    otlp_max_buckets_ = max_histogram_buckets;
  }
  OtlpRequest& request = *otlp_request_;
  if (auto s = otlp_decoder_->decode(body, encoding, request); !s) {
    metrics_.rejected(Protocol::kOtlp, "undecodable_body");
    return s;
  }
  OtlpSeriesBuilder& builder = otlp_decoder_->builder();

  // Totals are computed, stored and committed under the accumulator's lock, so two requests
  // never add to the same total at once.
  std::optional<DeltaAccumulator::Batch> batch;
  if (!request.deltas.empty() && deltas != nullptr) batch.emplace(deltas->begin());
  for (const OtlpDelta& d : request.deltas) {
    std::string refused =
        batch ? batch->add(d, builder) : std::string("delta temporality is not accepted here");
    if (!refused.empty()) {
      builder.reject(d.point, describe(request.points[d.point]), std::move(refused),
                     "out_of_order_delta");
    }
  }
  builder.finish(request.write, request.point_of_index);

  OtlpWriteResult result;
  result.points = request.points.size();
  // Every refusal is needed to tell which points were stored; the answer lists max_errors.
  result.write = write_remote(request.write, Protocol::kOtlp, std::numeric_limits<size_t>::max());
  otlp_series_.assign(request.points.size(), 0);
  otlp_refused_.assign(request.points.size(), 0);
  for (const RemoteSeries& s : request.write.series)
    ++otlp_series_[request.point_of_index[s.index]];
  std::vector<std::pair<size_t, std::string>> refusals;
  for (LineError& e : result.write.errors) {
    const size_t index = e.line - 1;
    const size_t point = request.point_of_index[index];
    if (otlp_refused_[point]++ == 0) ++result.rejected_points;
    // The decoder's rejections name their point; the store's name the series.
    const bool decoder = index >= request.write.series.size();
    refusals.emplace_back(
        point, decoder ? std::move(e.message) : describe(request.points[point]) + ": " + e.message);
  }
  // In request order, whichever stage refused them.
  std::stable_sort(refusals.begin(), refusals.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < refusals.size() && i < max_errors; ++i) {
    result.errors.push_back(std::move(refusals[i].second));
  }
  result.write.errors.clear();
  if (!result.write.storage) {
    result.rejected_points = result.points;
    return result;
  }
  if (batch) {
    result.deltas =
        batch->commit([&](size_t point) { return otlp_series_[point] > otlp_refused_[point]; });
  }
  return result;
}

}  // namespace kpid::ingest
