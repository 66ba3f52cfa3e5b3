// Fuzzes the remote write decoder, which reads what any sender POSTs to /api/v1/write. The
// input is decoded as the body itself (snappy, then protobuf), and compressed first, so the
// fuzzer reaches the protobuf, validation and native histogram code with bytes of its own
// choosing; each as 1.0 and as 2.0.
// Checked, besides "no crash, no leak, no undefined behaviour, no exception":
// - a body that is not decoded fails with invalid_argument and a message;
// - every series kept has a valid metric name (__name__), valid, unique label names and no
//   empty value, and at least one sample; out.samples counts those sent as samples; a series
//   made from a native histogram has one sample, and a bucket series an `le` label;
// - every rejected series says why; kept and rejected series never exceed the request's;
// - a reused decoder forgets the previous body.

#include <snappy.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "kpid/core/labels.h"
#include "kpid/ingest/remote_write.h"

namespace kpid::fuzz {
namespace {

const ingest::RemoteWriteLimits kLimits{1 << 20, 20};

void check_request(const Status& st, const ingest::RemoteWriteRequest& out) {
  if (!st.is_ok()) {
    check(st.code() == StatusCode::kInvalidArgument, "decode error is invalid_argument",
          st.to_string());
    check(!st.message().empty(), "decode error has a message");
    return;
  }
  size_t samples = 0;
  using Part = ingest::RemoteSeries::Part;
  for (const auto& s : out.series) {
    check(!s.samples.empty(), "a kept series has samples");
    if (s.part == Part::kSamples) {
      samples += s.samples.size();
    } else {
      check(s.samples.size() == 1, "a histogram part has one sample per histogram");
    }
    const bool has_le =
        std::any_of(s.labels.begin(), s.labels.end(), [](const auto& l) { return l.name == "le"; });
    if (s.part == Part::kHistogramBucket) check(has_le, "a bucket series has le");
    bool named = false;
    std::vector<std::string_view> names;
    for (const auto& l : s.labels) {
      check(!l.value.empty(), "no empty label value is kept");
      if (l.name == "__name__") {
        named = true;
        check(is_metric_name(l.value), "__name__ is a valid metric name", l.value);
      } else {
        check(is_label_name(l.name), "label names are valid", l.name);
      }
      names.push_back(l.name);
    }
    check(named, "a kept series has __name__");
    std::sort(names.begin(), names.end());
    check(std::adjacent_find(names.begin(), names.end()) == names.end(), "label names unique");
  }
  check(samples == out.samples, "out.samples counts the kept series' samples");
  for (const auto& r : out.rejected) check(!r.reason.empty(), "a rejection says why");
}

}  // namespace
}  // namespace kpid::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kpid::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  kpid::ingest::RemoteWriteDecoder decoder;
  kpid::ingest::RemoteWriteRequest out;
  std::string body;
  snappy::Compress(input.data(), input.size(), &body);
  for (auto version :
       {kpid::ingest::RemoteWriteVersion::kV1, kpid::ingest::RemoteWriteVersion::kV2}) {
    check_request(decoder.decode(input, version, kLimits, out), out);
    check_request(decoder.decode(body, version, kLimits, out), out);
  }
  return 0;
}
