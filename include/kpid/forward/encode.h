#pragma once
// Remote write request bodies kpid sends: samples grouped by series -> a protobuf WriteRequest
// (1.0) or io.prometheus.write.v2.Request (2.0), snappy block-compressed. Written by hand into
// reused buffers, so a steady sender does not allocate per sample.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kpid/core/labels.h"
#include "kpid/core/time.h"
#include "kpid/store/sample_store.h"

namespace kpid::forward {

enum class WireVersion { k1, k2 };

// "application/x-protobuf" (1.0) or "application/x-protobuf;proto=io.prometheus.write.v2.Request".
std::string_view content_type(WireVersion version);
// "0.1.0" or "2.0.0", for X-Prometheus-Remote-Write-Version.
std::string_view version_header(WireVersion version);

// The labels of a series id; null for one the store does not know.
using LabelsOf = std::function<std::shared_ptr<const Labels>(store::SeriesId)>;

// Not thread-safe: one per sender shard.
class Encoder {
 public:
  // Encodes `samples`, in which each series' samples are one contiguous run in send order, into
  // a compressed body (valid until the next call). Samples of a series without labels are left
  // out and counted in `skipped`.
  const std::string& encode(std::span<const store::Sample> samples, const LabelsOf& labels,
                            WireVersion version, size_t& skipped);

 private:
  void encode_v1(std::span<const store::Sample> samples, const LabelsOf& labels, size_t& skipped);
  void encode_v2(std::span<const store::Sample> samples, const LabelsOf& labels, size_t& skipped);
  uint32_t symbol(std::string_view s);

  std::string raw_;
  std::string series_;  // one series message while it is built
  std::string compressed_;
  // 2.0: the symbols table and each string's position in it.
  std::string symbols_;
  std::unordered_map<std::string_view, uint32_t> symbol_index_;
  // The labels symbol_index_'s views point into, held while one encode runs.
  std::vector<std::shared_ptr<const Labels>> held_;
  std::string refs_;
};

}  // namespace kpid::forward
