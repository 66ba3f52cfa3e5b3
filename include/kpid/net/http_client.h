#pragma once
// Outbound HTTP/1.1 and HTTPS for alert delivery: URL parsing and a blocking client for one
// origin that keeps its connection alive between requests and bounds every request in time.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kpid/core/status.h"
#include "kpid/core/time.h"

namespace kpid::net {

// A parsed http:// or https:// URL.
struct Url {
  bool tls = false;          // https
  std::string host;          // a name, an IPv4 address or an IPv6 address without brackets
  uint16_t port = 0;         // explicit, or 80/443 by scheme
  std::string target = "/";  // path and query as given ("/" when the path is empty); no fragment
  std::string text;          // the text as given, for messages
};

// Parses an absolute http:// or https:// URL (scheme case-insensitive). IPv6 literals go in
// brackets ("http://[::1]:9093/api"); a fragment is dropped. Fails with invalid_argument and a
// message saying what is wrong, e.g. "unsupported scheme 'ftp' in 'ftp://x' (use http or
// https)". User info ("user:pass@host") is refused so credentials stay out of URLs and logs.
Result<Url> parse_url(std::string_view text);

// "scheme://host:port" of a URL, with brackets around IPv6 hosts; names the origin in messages.
std::string origin_of(const Url& url);

struct HttpClientOptions {
  // Bound on a whole send(): resolve, connect, TLS handshake, write and read, retry included.
  DurationMs timeout = 10'000;
  // PEM bundle of trusted CAs for https; "" uses the system's default verify paths.
  std::string ca_file;
  // PEM client certificate (chain) and its key, presented to servers that ask for one (mutual
  // TLS); both or neither.
  std::string cert_file;
  std::string key_file;
  // Skip verifying the server's certificate chain and name (testing only).
  bool insecure_skip_verify = false;
  // Longer response bodies are cut there (body_truncated); alert receivers answer briefly,
  // API clients such as kpictl read larger answers.
  size_t max_response_bytes = 1 << 20;
};

struct OutboundResponse {
  int status = 0;               // any status the server sent; non-2xx is not an error
  std::string body;             // at most options.max_response_bytes bytes
  bool body_truncated = false;  // the body was longer and was cut (the connection is closed)
  std::string retry_after{};    // the Retry-After header as sent; "" when absent
};

// Blocking HTTP/1.1 client for one origin (scheme://host:port). One request at a time: not
// thread-safe, meant to be owned by one delivery thread (it may move between threads between
// calls). It keeps the connection alive between requests and reconnects transparently when the
// server closed it: a request on a reused connection that fails before any byte of the response
// arrived is retried once on a fresh connection.
//
// https verifies the peer's certificate chain against ca_file (or the system roots) and that
// the certificate names the URL's host name or IP address; SNI is sent for host names.
//
// Errors come back as values whose message names the method, the origin and what failed (the
// path is left out since webhook URLs often carry secrets in it), e.g.
// "POST http://127.0.0.1:9: connect to 127.0.0.1:9 failed: Connection refused":
//   unavailable  the server could not be reached or did not answer in time: name resolution,
//                connect, timeout ("timed out after 10000 ms (reading the response)"), or the
//                connection closed before a response;
//   io_error     an established exchange went wrong: TLS handshake or certificate verification
//                ("TLS handshake with host:443 failed: certificate verify failed (...)"), a
//                malformed response, a connection dropped in the middle of the response;
//   invalid_argument  the request itself is unusable (bad header, unreadable ca_file).
class HttpClient {
 public:
  // Connects lazily, on the first send(). A ca_file that cannot be loaded makes every send()
  // fail with that error; ready() reports it up front.
  HttpClient(Url origin, HttpClientOptions options);
  // Closes the connection. May wait for a DNS lookup that a timed-out send() abandoned
  // (getaddrinfo cannot be interrupted).
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Ok unless the client cannot work at all (the TLS setup failed, e.g. an unreadable ca_file).
  Status ready() const;

  // Sends one request and waits for the whole response, at most options.timeout. `target` is
  // the path and query ("" means the origin URL's target). Adds Host and User-Agent
  // ("kpid/<version>") unless given in `headers`; Content-Length is always set from `body`
  // (a given Content-Length or Transfer-Encoding is replaced). Header names must be HTTP tokens
  // and values free of CR, LF and NUL.
  Result<OutboundResponse> send(std::string_view method, std::string_view target,
                                std::string_view body,
                                const std::vector<std::pair<std::string, std::string>>& headers);

  // Closes the kept-alive connection, if any; the next send() connects again.
  void close();

  // Thread-safe: aborts a send() in flight at once and makes every later one fail, both with
  // unavailable "cancelled: the client is stopping" (for a stop that must not wait for a
  // receiver that never answers). A lookup already inside getaddrinfo is abandoned, as on a
  // timeout.
  void cancel();

  const Url& origin() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpid::net
