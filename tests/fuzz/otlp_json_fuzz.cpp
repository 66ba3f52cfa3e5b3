// Fuzzes the OTLP/JSON decoder (POST /v1/metrics, Content-Type application/json) and the delta
// accumulator behind it; what is checked is listed in otlp_check.h.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "otlp_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpid::fuzz::run_otlp(std::string_view(reinterpret_cast<const char*>(data), size),
                       kpid::ingest::OtlpEncoding::kJson);
  return 0;
}
