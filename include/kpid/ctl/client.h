#pragma once
// kpictl's view of the kpid HTTP API: one keep-alive connection to the server, answers unwrapped
// from the {"status":"success","data":...} envelope, and failures as values whose code says
// whose fault it was (see exit_code_of).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "kpid/core/status.h"
#include "kpid/core/time.h"
#include "kpid/net/http_client.h"

namespace kpid::ctl {

// Exit codes: what a script can rely on.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;      // kpid refused the request (4xx), or a check failed
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnavailable = 3;  // kpid unreachable, timed out, or failed (5xx)
inline constexpr int kExitThreshold = 4;    // status --fail-on: a KPI is at or beyond the level

// kExitRefused for the caller's mistakes (invalid_argument, not_found, already_exists),
// kExitUnavailable for everything on the server's or network's side.
int exit_code_of(const Status& status);

struct ClientOptions {
  DurationMs timeout = 10'000;
  std::string ca_file;  // https: trusted CAs; "" uses the system's
  std::string token;    // sent as "Authorization: Bearer <token>" when not empty
};

class ApiClient {
 public:
  // `base_url` is kpid's root ("http://127.0.0.1:9470"); a path in it ("https://h/kpid") is
  // kept as a prefix of every request, for kpid behind a reverse proxy.
  static Result<ApiClient> open(std::string_view base_url, ClientOptions options);

  // GET, POST, PATCH or DELETE of an /api/v1 path (with its query); the answer's "data".
  // A non-2xx answer becomes an error carrying kpid's message: 400, 405 and 409 are
  // invalid_argument (409 says "conflict: ..."), 404 not_found, 5xx unavailable.
  Result<boost::json::value> get(std::string_view path);
  Result<boost::json::value> call(std::string_view method, std::string_view path,
                                  const boost::json::value* body);

  // A request whose answer is not the JSON envelope (line-protocol writes, markdown). A request
  // that got no answer fails with the full URL, path included, the method and what failed:
  // "cannot reach kpid at http://127.0.0.1:9470/write?precision=ns (POST): connect to
  // 127.0.0.1:9470 failed: Connection refused (is kpid running there? ...)".
  Result<net::OutboundResponse> raw(
      std::string_view method, std::string_view path, std::string_view body,
      const std::vector<std::pair<std::string, std::string>>& headers);

  // raw(), but the error of an unanswered request says only what failed ("connect to
  // 127.0.0.1:9470 failed: Connection refused"), for callers that retry and word their own.
  Result<net::OutboundResponse> send(
      std::string_view method, std::string_view path, std::string_view body,
      const std::vector<std::pair<std::string, std::string>>& headers);

  // The whole URL of an API path, as requests go to it ("http://127.0.0.1:9470/readyz").
  std::string url_of(std::string_view path) const;

  // Closes the kept-alive connection; the next request connects again.
  void close() { http_.close(); }

  // The server's root URL as given, for messages ("cannot reach kpid at ...").
  const std::string& base_url() const { return base_url_; }

 private:
  ApiClient(net::HttpClient http, std::string base_url, std::string prefix, std::string token)
      : http_(std::move(http)),
        base_url_(std::move(base_url)),
        prefix_(std::move(prefix)),
        token_(std::move(token)) {}

  net::HttpClient http_;
  std::string base_url_;
  std::string prefix_;  // path prefix without a trailing slash; "" at the root
  std::string token_;
};

// An error of a non-2xx answer: kpid's JSON "error" (or its plain-text body) with the status.
Status status_of_answer(int http_status, std::string_view body);

// Percent-encodes all but unreserved characters, for a path segment or a query value.
std::string url_escape(std::string_view text);

// Query-string parts: "a=1&b=x%20y" from pairs whose value is not empty.
std::string query_string(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace kpid::ctl
