#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "handlers.h"
#include "kpid/ingest/otlp.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

namespace {

constexpr size_t kErrorsInMessage = 10;
constexpr size_t kErrorsListed = 100;

}  // namespace

InflateResult inflate_body(std::string_view in, uint64_t limit, std::string& out) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return InflateResult::kCorrupt;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  InflateResult result = InflateResult::kOk;
  char chunk[64 << 10];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof chunk;
    int rc = inflate(&zs, Z_NO_FLUSH);
    size_t produced = sizeof chunk - zs.avail_out;
    if (out.size() + produced > limit) {
      result = InflateResult::kTooLarge;
      break;
    }
    out.append(chunk, produced);
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members (as `cat a.gz b.gz` makes) continue the body.
      if (zs.avail_in > 0 && inflateReset(&zs) == Z_OK) continue;
      break;
    }
    if (rc != Z_OK || (zs.avail_in == 0 && produced == 0)) {
      result = InflateResult::kCorrupt;
      break;
    }
  }
  inflateEnd(&zs);
  return result;
}

ingest::Protocol protocol_of(WriteApi api) {
  switch (api) {
    case WriteApi::kRemote: return ingest::Protocol::kRemoteWrite;
    case WriteApi::kOtlpProtobuf:
    case WriteApi::kOtlpJson: return ingest::Protocol::kOtlp;
    default: return ingest::Protocol::kHttp;
  }
}

namespace {

// The gRPC status code OTLP/HTTP puts in an error body for an HTTP status.
int32_t grpc_code(http::status status) {
  switch (status) {
    case http::status::bad_request:
    case http::status::unsupported_media_type: return 3;  // INVALID_ARGUMENT
    case http::status::unauthorized: return 16;           // UNAUTHENTICATED
    case http::status::forbidden: return 7;               // PERMISSION_DENIED
    case http::status::method_not_allowed: return 12;     // UNIMPLEMENTED
    case http::status::payload_too_large:
    case http::status::too_many_requests: return 8;     // RESOURCE_EXHAUSTED
    case http::status::service_unavailable: return 14;  // UNAVAILABLE
    default: return 13;                                 // INTERNAL
  }
}

}  // namespace

Response write_error(const Request& request, WriteApi api, http::status status,
                     std::string_view message, std::string_view extra) {
  if (api == WriteApi::kRemote) {
    return make_response(request, status, std::string(message) + "\n", "text/plain; charset=utf-8");
  }
  if (api == WriteApi::kOtlpProtobuf || api == WriteApi::kOtlpJson) {
    const bool json = api == WriteApi::kOtlpJson;
    return make_response(
        request, status,
        ingest::rpc_status(json ? ingest::OtlpEncoding::kJson : ingest::OtlpEncoding::kProtobuf,
                           grpc_code(status), message),
        json ? "application/json" : "application/x-protobuf");
  }
  std::string body = "{\"error\":";
  append_json_string(body, message);
  if (api == WriteApi::kV2) {
    // InfluxDB 2.x clients read "code" and "message".
    std::string_view code = "invalid";
    if (status == http::status::payload_too_large) code = "request too large";
    if (status == http::status::service_unavailable) code = "unavailable";
    if (status == http::status::internal_server_error) code = "internal error";
    body.append(",\"code\":\"").append(code).append("\"");
    body.append(",\"message\":");
    append_json_string(body, message);
  }
  body.append(extra);
  body.push_back('}');
  return json_response(request, status, std::move(body));
}

std::unique_ptr<ingest::WritePipeline> PipelinePool::acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      auto p = std::move(free_.back());
      free_.pop_back();
      return p;
    }
  }
  return std::make_unique<ingest::WritePipeline>(store_, metrics_, clock_, observer_);
}

void PipelinePool::release(std::unique_ptr<ingest::WritePipeline> pipeline) {
  std::lock_guard lock(mutex_);
  free_.push_back(std::move(pipeline));
}

Response write_pushback(const Request& request, WriteApi api, const store::Pushback& pushback,
                        ingest::IngestMetrics& metrics) {
  metrics.pushback(protocol_of(api), pushback.reason);
  auto r = write_error(request, api, http::status::service_unavailable,
                       "write not taken, nothing was stored: " + pushback.message);
  const DurationMs seconds = std::max<DurationMs>(1, (pushback.retry_after + 999) / 1000);
  r.set(http::field::retry_after, std::to_string(seconds));
  return r;
}

Response storage_failed(const Request& request, WriteApi api, const Status& storage,
                        PipelinePool& pipelines) {
  if (auto pushback = pipelines.store().pushback()) {
    return write_pushback(request, api, pushback, pipelines.metrics());
  }
  const bool retry = storage.code() == StatusCode::kUnavailable ||
                     storage.code() == StatusCode::kResourceExhausted;
  auto r = write_error(
      request, api, retry ? http::status::service_unavailable : http::status::internal_server_error,
      "storing the write failed, nothing was stored: " + storage.message());
  if (retry) r.set(http::field::retry_after, "1");
  return r;
}

std::optional<Response> request_body(const Request& request, WriteApi api, uint64_t max_body_bytes,
                                     std::string_view& body, std::string& inflated) {
  body = request.body();
  const std::string_view encoding = request[http::field::content_encoding];
  if (encoding == "gzip" || encoding == "x-gzip") {
    switch (inflate_body(body, max_body_bytes, inflated)) {
      case InflateResult::kOk: break;
      case InflateResult::kTooLarge:
        return write_error(request, api, http::status::payload_too_large,
                           "decompressed request body exceeds the limit of " +
                               std::to_string(max_body_bytes) + " bytes (http.max_body_bytes)");
      case InflateResult::kCorrupt:
        return write_error(request, api, http::status::bad_request,
                           "request body is not valid gzip data");
    }
    body = inflated;
  } else if (!encoding.empty() && encoding != "identity") {
    return write_error(
        request, api, http::status::unsupported_media_type,
        "unsupported Content-Encoding \"" + std::string(encoding) + "\"; use gzip or none");
  }
  return std::nullopt;
}

Response handle_write(const Request& request, WriteApi api, PipelinePool& pipelines,
                      uint64_t max_body_bytes, std::string_view db_label) {
  if (request.method() != http::verb::post) {
    auto r =
        write_error(request, api, http::status::method_not_allowed, "method not allowed: use POST");
    r.set(http::field::allow, "POST");
    return r;
  }
  Params params(request);
  const std::string* precision_text = params.get("precision");
  auto precision = ingest::parse_precision(precision_text ? *precision_text : "");
  if (!precision)
    return write_error(request, api, http::status::bad_request, precision.status().message());

  std::string_view body;
  std::string inflated;
  if (auto refused = request_body(request, api, max_body_bytes, body, inflated)) return *refused;

  const std::string* database = params.get(api == WriteApi::kV2 ? "bucket" : "db");
  auto pipeline = pipelines.acquire();
  pipeline->set_db_label(db_label, database != nullptr && !db_label.empty() ? *database : "");
  ingest::WriteResult result =
      pipeline->write(body, *precision, ingest::Protocol::kHttp, kErrorsListed);
  pipelines.release(std::move(pipeline));

  if (!result.storage) return storage_failed(request, api, result.storage, pipelines);
  if (result.lines_rejected == 0) return make_response(request, http::status::no_content, "", "");

  std::string message = "partial write: " + std::to_string(result.lines_rejected) + " of " +
                        std::to_string(result.lines_rejected + result.lines_accepted) +
                        " lines rejected";
  for (size_t i = 0; i < result.errors.size() && i < kErrorsInMessage; ++i) {
    message += "\nline " + std::to_string(result.errors[i].line) + ": " + result.errors[i].message;
  }
  if (result.lines_rejected > kErrorsInMessage) {
    message += "\n... and " + std::to_string(result.lines_rejected - kErrorsInMessage) + " more";
  }
  std::string extra = ",\"rejected_lines\":[";
  for (size_t i = 0; i < result.errors.size(); ++i) {
    if (i > 0) extra.push_back(',');
    extra += "{\"line\":" + std::to_string(result.errors[i].line) + ",\"error\":";
    append_json_string(extra, result.errors[i].message);
    extra.push_back('}');
  }
  extra.push_back(']');
  return write_error(request, api, http::status::bad_request, message, extra);
}

namespace {

// The messages remote write's Content-Type names in its proto= parameter.
constexpr const char* kRemoteWriteV1 = "prometheus.WriteRequest";
constexpr const char* kRemoteWriteV2 = "io.prometheus.write.v2.Request";

}  // namespace

std::pair<std::string, std::string> protobuf_content_type(std::string_view value) {
  auto lower = [](std::string_view v) {
    std::string out(v);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
  };
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  const size_t semi = value.find(';');
  std::string media = lower(trim(value.substr(0, semi)));
  std::string proto;
  for (size_t at = semi; at != std::string_view::npos;) {
    const size_t next = value.find(';', at + 1);
    std::string_view param = trim(value.substr(
        at + 1, next == std::string_view::npos ? std::string_view::npos : next - at - 1));
    if (lower(param.substr(0, 6)) == "proto=") proto = std::string(trim(param.substr(6)));
    at = next;
  }
  return {std::move(media), std::move(proto)};
}

Response handle_remote_write(const Request& request, PipelinePool& pipelines,
                             ingest::MetricMetadataStore& metadata,
                             const ingest::RemoteWriteLimits& limits) {
  constexpr WriteApi api = WriteApi::kRemote;
  if (request.method() != http::verb::post) {
    auto r =
        write_error(request, api, http::status::method_not_allowed, "method not allowed: use POST");
    r.set(http::field::allow, "POST");
    return r;
  }
  const auto [media, proto] = protobuf_content_type(request[http::field::content_type]);
  if (!media.empty() && media != "application/x-protobuf") {
    return write_error(
        request, api, http::status::unsupported_media_type,
        "unsupported Content-Type \"" + media + "\": remote write sends application/x-protobuf");
  }
  ingest::RemoteWriteVersion version = ingest::RemoteWriteVersion::kV1;
  if (proto == kRemoteWriteV2) {
    version = ingest::RemoteWriteVersion::kV2;
  } else if (!proto.empty() && proto != kRemoteWriteV1) {
    // A sender falls back to another version on 415.
    return write_error(request, api, http::status::unsupported_media_type,
                       "unsupported remote write message proto=" + proto + ": kpid takes proto=" +
                           kRemoteWriteV1 + " (1.0) and proto=" + kRemoteWriteV2 + " (2.0)");
  }
  const std::string_view encoding = request[http::field::content_encoding];
  if (!encoding.empty() && encoding != "snappy") {
    return write_error(request, api, http::status::unsupported_media_type,
                       "unsupported Content-Encoding \"" + std::string(encoding) +
                           "\": remote write bodies are snappy-compressed");
  }

  auto pipeline = pipelines.acquire();
  Result<ingest::WriteResult> written =
      pipeline->write_remote_body(request.body(), version, limits, kErrorsListed);
  // Metadata once the samples are stored (a request may carry only metadata).
  Status recorded = Status::ok();
  if (written && written->storage) {
    recorded = metadata.record(pipeline->last_remote_request()->metadata);
  }
  pipelines.release(std::move(pipeline));
  // 2.0 senders read what was written from these, on every answer.
  auto respond = [&](Response r) {
    if (version != ingest::RemoteWriteVersion::kV2) return r;
    const bool stored = written && written->storage && recorded;
    r.set("X-Prometheus-Remote-Write-Samples-Written",
          std::to_string(stored ? written->float_samples_written : 0));
    r.set("X-Prometheus-Remote-Write-Histograms-Written",
          std::to_string(stored ? written->histograms_written : 0));
    r.set("X-Prometheus-Remote-Write-Exemplars-Written", "0");
    return r;
  };
  if (!written) {
    return respond(write_error(
        request, api, http::status::bad_request,
        "remote write body not decoded, nothing was stored: " + written.status().message()));
  }
  const ingest::WriteResult& result = *written;
  if (!result.storage) return respond(storage_failed(request, api, result.storage, pipelines));
  if (!recorded) {
    // The samples are stored; a retry stores them again (the same values) and the metadata.
    auto r = write_error(request, api, http::status::service_unavailable,
                         "samples stored, metadata not recorded: " + recorded.message());
    r.set(http::field::retry_after, "5");
    return respond(std::move(r));
  }
  if (result.lines_rejected == 0) {
    return respond(make_response(request, http::status::no_content, "", ""));
  }
  // The others are stored; a sender does not retry a 400, and the refused would fail again.
  std::string message = "partial write: " + std::to_string(result.lines_rejected) + " of " +
                        std::to_string(result.lines_rejected + result.lines_accepted) +
                        " series not stored, the others were";
  for (size_t i = 0; i < result.errors.size() && i < kErrorsInMessage; ++i) {
    message +=
        "\nseries " + std::to_string(result.errors[i].line) + ": " + result.errors[i].message;
  }
  if (result.lines_rejected > kErrorsInMessage) {
    message += "\n... and " + std::to_string(result.lines_rejected - kErrorsInMessage) + " more";
  }
  return respond(write_error(request, api, http::status::bad_request, message));
}

}  // namespace kpid::server::detail
