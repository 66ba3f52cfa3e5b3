// The backup endpoints:
//   POST /api/v1/admin/backup    [?dir=DIR | {"dir": DIR}]   an online backup; 200 with
//        {"id", "dir", "timestamp", "size_bytes", "files", "format_version"}
//   GET  /api/v1/admin/backups   [?dir=DIR]                   {"dir", "backups": [...]}
// DIR defaults to storage.backup_dir. Storage failures answer 503 (retry) or 500; a directory
// that is not a backup directory 500 with RocksDB's reason.
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "handlers.h"
#include "kpid/core/json.h"

namespace kpid::server::detail {

namespace json = boost::json;
namespace http = boost::beast::http;

namespace {

json::object backup_json(const store::BackupInfo& b) {
  std::string when;
  append_rfc3339(when, b.timestamp_s * 1000);
  return json::object{{"id", b.id},
                      {"timestamp", when},
                      {"size_bytes", b.size_bytes},
                      {"files", b.files},
                      {"format_version", b.format_version}};
}

Response failure(const Request& request, const Status& s) {
  if (s.code() == StatusCode::kInvalidArgument) return api_error(request, s.message());
  if (s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kResourceExhausted) {
    auto r = api_error(request, http::status::service_unavailable, "unavailable", s.message());
    r.set(http::field::retry_after, "10");
    return r;
  }
  return api_error(request, http::status::internal_server_error, "internal", s.message());
}

}  // namespace

Response handle_backup_api(const Request& request, bool list, const RouterServices& services) {
  const bool post = request.method() == http::verb::post;
  if (list ? request.method() != http::verb::get : !post) {
    return method_not_allowed(request, list ? "GET" : "POST");
  }
  std::string dir;
  Params params(request);
  if (const std::string* d = params.get("dir")) dir = *d;
  if (post && dir.empty() && !request.body().empty() &&
      request[http::field::content_type].starts_with("application/json")) {
    auto body = body_object(request);
    if (!body) return api_error(request, body.status().message());
    if (const auto* d = body->if_contains("dir")) {
      if (!d->is_string()) return api_error(request, "\"dir\" must be a string");
      dir = std::string(d->as_string());
    }
  }
  if (dir.empty()) dir = services.backup_dir;
  if (!services.backup || !services.list_backups || dir.empty()) {
    return api_error(request, http::status::service_unavailable, "unavailable",
                     "backups are not available in this kpid");
  }
  if (list) {
    auto backups = services.list_backups(dir);
    if (!backups) return failure(request, backups.status());
    json::array items;
    for (const auto& b : *backups) items.push_back(backup_json(b));
    return api_success(request,
                       to_json_text(json::object{{"dir", dir}, {"backups", std::move(items)}}));
  }
  spdlog::info("backup requested over HTTP into {}", dir);
  auto info = services.backup(dir);
  if (!info) return failure(request, info.status());
  json::object out = backup_json(*info);
  out["dir"] = dir;
  return api_success(request, to_json_text(out));
}

}  // namespace kpid::server::detail
