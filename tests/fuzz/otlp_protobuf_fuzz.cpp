// Fuzzes the OTLP protobuf decoder (POST /v1/metrics, Content-Type application/x-protobuf) and
// the delta accumulator behind it; what is checked is listed in otlp_check.h. The seed is made
// with `protoc --encode` from corpus/otlp_protobuf/seed-request.txtpb (see that file).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "otlp_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpid::fuzz::run_otlp(std::string_view(reinterpret_cast<const char*>(data), size),
                       kpid::ingest::OtlpEncoding::kProtobuf);
  return 0;
}
