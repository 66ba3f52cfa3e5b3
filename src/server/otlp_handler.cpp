// POST /v1/metrics: OTLP/HTTP metrics export (https://opentelemetry.io/docs/specs/otlp/).

#include <algorithm>

#include "handlers.h"
#include "kpid/ingest/otlp.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

namespace {

constexpr size_t kErrorsListed = 100;
constexpr size_t kErrorsInMessage = 10;

}  // namespace

WriteApi otlp_api(const Request& request) {
  const auto [media, proto] = protobuf_content_type(request[http::field::content_type]);
  return media == "application/x-protobuf" ? WriteApi::kOtlpProtobuf : WriteApi::kOtlpJson;
}

Response handle_otlp_metrics(const Request& request, PipelinePool& pipelines,
                             ingest::MetricMetadataStore& metadata,
                             ingest::DeltaAccumulator& deltas,
                             const ingest::RemoteWriteLimits& limits) {
  const uint64_t max_body_bytes = limits.max_bytes;
  const WriteApi api = otlp_api(request);
  const ingest::OtlpEncoding encoding = api == WriteApi::kOtlpProtobuf
                                            ? ingest::OtlpEncoding::kProtobuf
                                            : ingest::OtlpEncoding::kJson;
  if (request.method() != http::verb::post) {
    auto r =
        write_error(request, api, http::status::method_not_allowed, "method not allowed: use POST");
    r.set(http::field::allow, "POST");
    return r;
  }
  const auto [media, proto] = protobuf_content_type(request[http::field::content_type]);
  if (media != "application/x-protobuf" && media != "application/json") {
    return write_error(request, api, http::status::unsupported_media_type,
                       "unsupported Content-Type \"" + media +
                           "\": OTLP/HTTP sends application/x-protobuf or application/json");
  }
  std::string_view body;
  std::string inflated;
  if (auto refused = request_body(request, api, max_body_bytes, body, inflated)) return *refused;

  auto pipeline = pipelines.acquire();
  Result<ingest::OtlpWriteResult> written = pipeline->write_otlp_body(
      body, encoding, &deltas, limits.max_histogram_buckets, kErrorsListed);
  // Metadata once the samples are stored.
  Status recorded = Status::ok();
  if (written && written->write.storage) {
    recorded = metadata.record(pipeline->last_otlp_request()->write.metadata);
  }
  pipelines.release(std::move(pipeline));
  if (!written) {
    return write_error(request, api, http::status::bad_request,
                       "OTLP body not decoded, nothing was stored: " + written.status().message());
  }
  const ingest::OtlpWriteResult& result = *written;
  if (!result.write.storage) return storage_failed(request, api, result.write.storage, pipelines);
  for (const Status* s : {&result.deltas, static_cast<const Status*>(&recorded)}) {
    if (s->is_ok()) continue;
    // The samples are stored; a retry stores the same values again and records what failed.
    auto r = write_error(request, api, http::status::service_unavailable,
                         "samples stored, not recorded: " + s->message());
    r.set(http::field::retry_after, "5");
    return r;
  }
  std::string message;
  if (result.rejected_points > 0) {
    // Senders log the message and do not retry the refused points: they would fail again.
    message = std::to_string(result.rejected_points) + " of " + std::to_string(result.points) +
              " data points rejected, the others were stored";
    for (size_t i = 0; i < result.errors.size() && i < kErrorsInMessage; ++i) {
      message += "\n" + result.errors[i];
    }
    const size_t shown = std::min(result.errors.size(), kErrorsInMessage);
    if (result.write.lines_rejected > shown) {
      message +=
          "\n... and " + std::to_string(result.write.lines_rejected - shown) + " more refusals";
    }
  }
  return make_response(
      request, http::status::ok,
      ingest::export_response(encoding, static_cast<int64_t>(result.rejected_points), message),
      api == WriteApi::kOtlpProtobuf ? "application/x-protobuf" : "application/json");
}

}  // namespace kpid::server::detail
