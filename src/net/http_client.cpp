#include "kpid/net/http_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <chrono>
#include <limits>
#include <optional>
#include <stdexcept>
#include <variant>

#include "kpid/version.h"

namespace kpid::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

namespace {

bool is_tchar(char c) {
  // RFC 9110 token characters, for methods and header names.
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string host_for_uri(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

Result<uint16_t> parse_port(std::string_view digits, std::string_view text) {
  auto bad = [&](const char* why) {
    return Status::invalid_argument(std::string(why) + " '" + std::string(digits) + "' in '" +
                                    std::string(text) + "' (expected 1-65535)");
  };
  if (digits.empty()) return Status::invalid_argument("empty port in '" + std::string(text) + "'");
  if (digits.size() > 5 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad("invalid port");
  }
  unsigned value = 0;
  for (char c : digits) value = value * 10 + static_cast<unsigned>(c - '0');
  if (value == 0 || value > 65535) return bad("port out of range");
  return static_cast<uint16_t>(value);
}

}  // namespace

Result<Url> parse_url(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (text.empty()) return Status::invalid_argument("empty URL (expected http:// or https://)");
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Status::invalid_argument("invalid character in URL " + quoted +
                                      ": spaces and control characters must be percent-encoded");
    }
  }
  Url url;
  url.text = std::string(text);
  auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    return Status::invalid_argument("missing scheme in " + quoted + " (use http:// or https://)");
  }
  std::string scheme(text.substr(0, scheme_end));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme == "https") {
    url.tls = true;
  } else if (scheme != "http") {
    return Status::invalid_argument("unsupported scheme '" + scheme + "' in " + quoted +
                                    " (use http or https)");
  }
  std::string_view rest = text.substr(scheme_end + 3);
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    // The text is not repeated: it holds the credentials.
    return Status::invalid_argument(
        "user info ('user:password@') in a URL is not supported: send credentials in a header");
  }

  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Status::invalid_argument("unterminated '[' in the host of " + quoted);
    }
    std::string v6(authority.substr(1, close - 1));
    error_code ec;
    asio::ip::make_address_v6(v6, ec);
    if (ec) {
      return Status::invalid_argument("invalid IPv6 address '" + v6 + "' in " + quoted);
    }
    url.host = v6;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return Status::invalid_argument("unexpected '" + std::string(after) + "' after ']' in " +
                                        quoted);
      }
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    std::string_view host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (host.empty()) return Status::invalid_argument("missing host in " + quoted);
    for (char c : host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
        return Status::invalid_argument("invalid character '" + std::string(1, c) + "' in host '" +
                                        std::string(host) + "' of " + quoted);
      }
    }
    // Host names are case-insensitive; one spelling keeps SNI and messages uniform.
    url.host.reserve(host.size());
    for (char c : host) url.host += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (has_port) {
    auto port = parse_port(port_text, text);
    if (!port) return port.status();
    url.port = *port;
  } else {
    url.port = url.tls ? 443 : 80;
  }

  // The fragment is for the client only and never sent.
  tail = tail.substr(0, tail.find('#'));
  url.target = tail.empty() || tail.front() != '/' ? "/" + std::string(tail) : std::string(tail);
  return url;
}

std::string origin_of(const Url& url) {
  return std::string(url.tls ? "https://" : "http://") + host_for_uri(url.host) + ":" +
         std::to_string(url.port);
}

struct HttpClient::Impl {
  // One attempt's failure: `stale` means nothing of a response arrived on a reused connection,
  // so the request may be sent again on a fresh one.
  struct Failure {
    Status status;
    bool stale = false;
  };
  struct Outcome {
    error_code ec;
    size_t bytes = 0;
  };
  // Completion handler for any of the operations used here; records the outcome.
  struct Recorder {
    std::optional<Outcome>* out;
    void operator()(error_code ec) const { out->emplace(Outcome{ec, 0}); }
    void operator()(error_code ec, size_t n) const { out->emplace(Outcome{ec, n}); }
    void operator()(error_code ec, const tcp::endpoint&) const { out->emplace(Outcome{ec, 0}); }
  };

  Impl(Url url, HttpClientOptions opts)
      : origin(std::move(url)),
        options(std::move(opts)),
        origin_text(origin_of(origin)),
        address(host_for_uri(origin.host) + ":" + std::to_string(origin.port)),
        ip_literal(is_ip_literal(origin.host)) {
    if (origin.tls) setup_tls();
  }

  void setup_tls() {
    tls.emplace(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
    tls->set_verify_mode(options.insecure_skip_verify ? ssl::verify_none : ssl::verify_peer);
    error_code ec;
    if (!options.cert_file.empty()) {
      tls->use_certificate_chain_file(options.cert_file, ec);
      if (ec) {
        setup = Status::invalid_argument("cannot load client certificate '" + options.cert_file +
                                         "': " + tls_reason(ec));
        return;
      }
      tls->use_private_key_file(options.key_file, ssl::context::pem, ec);
      if (ec) {
        setup = Status::invalid_argument("cannot load client key '" + options.key_file +
                                         "': " + tls_reason(ec));
        return;
      }
    }
    if (options.ca_file.empty()) {
      tls->set_default_verify_paths(ec);
      if (ec) setup = Status::io_error("cannot load the system's CA certificates: " + ec.message());
    } else {
      tls->load_verify_file(options.ca_file, ec);
      if (ec) {
        setup = Status::invalid_argument("cannot load CA file '" + options.ca_file +
                                         "': " + tls_reason(ec));
      }
    }
  }

  // OpenSSL's reason alone ("certificate verify failed"), without the library name asio adds.
  static std::string tls_reason(const error_code& ec) {
    if (ec.category() == asio::error::get_ssl_category()) {
      if (const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()))) {
        return reason;
      }
    }
    return ec.message();
  }

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  template <typename F>
  void with_stream(F&& f) {
    if (secure) {
      f(*secure);
    } else {
      f(*plain);
    }
  }

  // Runs the event loop until `outcome` is set. Every socket operation has the stream's
  // deadline, so it completes by itself (with beast::error::timeout at the latest).
  void drive(const std::optional<Outcome>& outcome) {
    while (!outcome) {
      if (io.stopped()) io.restart();
      // cancel() from another thread: abort what is under way (it completes with
      // operation_aborted, at once).
      if (cancelled.load()) abort_operations();
      if (io.run_one() == 0 && !outcome) {
        throw std::logic_error("HttpClient: waiting for an operation that was never started");
      }
    }
  }

  template <typename Start>
  Outcome run(Start&& start) {
    std::optional<Outcome> outcome;
    start(Recorder{&outcome});
    drive(outcome);
    return *outcome;
  }

  Status timed_out(const std::string& doing) const {
    return Status::unavailable("timed out after " + std::to_string(options.timeout) + " ms (" +
                               doing + ")");
  }

  // Cancels the stream's and the resolver's operations (on the thread driving `io`).
  void abort_operations() {
    resolver.cancel();
    if (plain || secure) lowest().cancel();
  }

  void close_connection() {
    if (plain || secure) {
      // No TLS close_notify: waiting for the peer's would let a slow peer hold us, and
      // HTTP/1.1 framing already tells a complete response from a truncated one.
      error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest().close();
    }
    secure.reset();
    plain.reset();
    buffer.clear();
  }

  // Resolves the origin's host within the deadline. getaddrinfo cannot be interrupted, so on
  // a timeout the lookup is abandoned: its handler owns its state and runs harmlessly later.
  Result<std::vector<tcp::endpoint>> resolve(SteadyClock::time_point deadline) {
    if (ip_literal) {
      return std::vector<tcp::endpoint>{{asio::ip::make_address(origin.host), origin.port}};
    }
    struct Lookup {
      error_code ec;
      std::vector<tcp::endpoint> endpoints;
      bool done = false;
    };
    auto lookup = std::make_shared<Lookup>();
    resolver.async_resolve(origin.host, std::to_string(origin.port), tcp::resolver::numeric_service,
                           [lookup](error_code ec, const tcp::resolver::results_type& results) {
                             lookup->ec = ec;
                             for (const auto& entry : results) {
                               lookup->endpoints.push_back(entry.endpoint());
                             }
                             lookup->done = true;
                           });
    while (!lookup->done) {
      if (io.stopped()) io.restart();
      if (cancelled.load()) {
        resolver.cancel();
        return Status::unavailable("cancelled while resolving " + origin.host);
      }
      if (io.run_one_until(deadline) == 0 && !lookup->done && SteadyClock::now() >= deadline) {
        resolver.cancel();
        return timed_out("resolving " + origin.host);
      }
    }
    if (lookup->ec) {
      return Status::unavailable("cannot resolve host '" + origin.host +
                                 "': " + lookup->ec.message());
    }
    return std::move(lookup->endpoints);
  }

  Status connect(SteadyClock::time_point deadline) {
    close_connection();
    auto endpoints = resolve(deadline);
    if (!endpoints) return endpoints.status();
    if (origin.tls) {
      secure.emplace(io, *tls);
    } else {
      plain.emplace(io);
    }
    lowest().expires_at(deadline);
    auto connected = run([&](auto handler) { lowest().async_connect(*endpoints, handler); });
    if (connected.ec) {
      Status s =
          connected.ec == beast::error::timeout
              ? timed_out("connecting to " + address)
              : Status::unavailable("connect to " + address + " failed: " + connected.ec.message());
      close_connection();
      return s;
    }
    if (secure) {
      SSL* handle = secure->native_handle();
      if (ip_literal) {
        // Certificates name IP addresses in iPAddress entries; SNI is for host names only.
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), origin.host.c_str());
      } else {
        SSL_set_tlsext_host_name(handle, origin.host.c_str());
        SSL_set_hostflags(handle, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set1_host(handle, origin.host.c_str());
      }
      auto shaken =
          run([&](auto handler) { secure->async_handshake(ssl::stream_base::client, handler); });
      if (shaken.ec) {
        Status s;
        if (shaken.ec == beast::error::timeout) {
          s = timed_out("TLS handshake with " + address);
        } else {
          std::string why = tls_reason(shaken.ec);
          long verify = SSL_get_verify_result(handle);
          if (verify != X509_V_OK) {
            why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
          }
          s = Status::io_error("TLS handshake with " + address + " failed: " + why);
        }
        close_connection();
        return s;
      }
    }
    return Status::ok();
  }

  // Writes the request and reads the response on the open connection.
  std::variant<OutboundResponse, Failure> exchange(http::request<http::string_body>& request,
                                                   bool reused, bool head) {
    auto written = run([&](auto handler) {
      with_stream([&](auto& stream) { http::async_write(stream, request, handler); });
    });
    if (written.ec) {
      if (written.ec == beast::error::timeout) return Failure{timed_out("sending the request")};
      return Failure{Status::unavailable("sending the request to " + address +
                                         " failed: " + written.ec.message()),
                     reused};
    }

    std::optional<http::response_parser<http::buffer_body>> parser;
    for (;;) {
      parser.emplace();
      parser->header_limit(64 << 10);
      // The body is capped below, while it is copied out of the parser.
      parser->body_limit(std::numeric_limits<std::uint64_t>::max());
      if (head) parser->skip(true);
      auto read = run([&](auto handler) {
        with_stream(
            [&](auto& stream) { http::async_read_header(stream, buffer, *parser, handler); });
      });
      if (read.ec) {
        bool nothing_read = read.bytes == 0 && buffer.size() == 0;
        return read_failure(read.ec, reused && nothing_read);
      }
      int code = parser->get().result_int();
      // An interim 1xx response precedes the real one.
      if (code < 100 || code >= 200 || code == 101) break;
    }

    OutboundResponse response;
    response.status = parser->get().result_int();
    response.retry_after = std::string(parser->get()[http::field::retry_after]);
    std::array<char, 16 << 10> chunk;
    while (!parser->is_done()) {
      parser->get().body().data = chunk.data();
      parser->get().body().size = chunk.size();
      auto read = run([&](auto handler) {
        with_stream([&](auto& stream) { http::async_read(stream, buffer, *parser, handler); });
      });
      error_code ec = read.ec;
      if (ec == http::error::need_buffer) ec = {};
      // Many TLS servers close without close_notify; for a body delimited by the connection's
      // end that is the end.
      if (ec == ssl::error::stream_truncated && parser->need_eof()) {
        ec = {};
        parser->put_eof(ec);
      }
      if (ec) return read_failure(ec, false);
      size_t n = chunk.size() - parser->get().body().size;
      size_t room = options.max_response_bytes - response.body.size();
      response.body.append(chunk.data(), std::min(n, room));
      if (n > room) {
        response.body_truncated = true;
        break;
      }
    }
    // The rest of a cut body is unread, so that connection cannot carry another request.
    if (response.body_truncated || !parser->keep_alive()) close_connection();
    return response;
  }

  Failure read_failure(const error_code& ec, bool stale) const {
    if (ec == beast::error::timeout) return Failure{timed_out("reading the response")};
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == ssl::error::stream_truncated) {
      if (stale) return Failure{Status::unavailable("connection closed"), true};
    }
    if (ec == http::error::end_of_stream) {
      return Failure{Status::unavailable("connection closed by " + address + " before a response")};
    }
    if (ec == http::error::partial_message || ec == ssl::error::stream_truncated) {
      return Failure{
          Status::io_error("connection closed by " + address + " in the middle of the response")};
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return Failure{Status::io_error("malformed response from " + address + ": " + ec.message())};
    }
    return Failure{
        Status::io_error("reading the response from " + address + " failed: " + ec.message())};
  }

  Status build_request(std::string_view method, std::string_view target, std::string_view body,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       http::request<http::string_body>& request) const {
    if (!is_token(method)) {
      return Status::invalid_argument("invalid HTTP method '" + std::string(method) + "'");
    }
    if (target.empty()) target = origin.target;
    if (target.front() != '/' || std::any_of(target.begin(), target.end(), [](char c) {
          return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
        })) {
      return Status::invalid_argument("invalid request target '" + std::string(target) +
                                      "': it must start with '/' and be percent-encoded");
    }
    request.version(11);
    request.method_string(method);
    request.target(target);
    for (const auto& [name, value] : headers) {
      if (!is_token(name)) {
        return Status::invalid_argument("invalid header name '" + name + "'");
      }
      if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
        return Status::invalid_argument("header '" + name + "' has a CR, LF or NUL in its value");
      }
      request.insert(name, value);
    }
    if (request.count(http::field::host) == 0) {
      bool default_port = origin.port == (origin.tls ? 443 : 80);
      request.set(http::field::host, default_port ? host_for_uri(origin.host) : address);
    }
    if (request.count(http::field::user_agent) == 0) {
      request.set(http::field::user_agent, std::string("kpid/") + kVersion);
    }
    // The body is sent whole, so its framing is ours to state.
    request.erase(http::field::content_length);
    request.erase(http::field::transfer_encoding);
    request.body() = std::string(body);
    request.prepare_payload();
    return Status::ok();
  }

  Result<OutboundResponse> send(std::string_view method, std::string_view target,
                                std::string_view body,
                                const std::vector<std::pair<std::string, std::string>>& headers) {
    const std::string prefix = std::string(method) + " " + origin_text + ": ";
    auto fail = [&](const Status& s) { return Status(s.code(), prefix + s.message()); };
    if (!setup) return fail(setup);
    http::request<http::string_body> request;
    if (auto s = build_request(method, target, body, headers, request); !s) return fail(s);

    const auto deadline = SteadyClock::now() + std::chrono::milliseconds(options.timeout);
    bool head = method == "HEAD";
    auto cancelled_status = [&] {
      close_connection();
      return fail(Status::unavailable("cancelled: the client is stopping"));
    };
    for (int attempt = 0;; ++attempt) {
      if (cancelled.load()) return cancelled_status();
      bool reused = plain || secure;
      if (!reused) {
        if (auto s = connect(deadline); !s) return cancelled.load() ? cancelled_status() : fail(s);
      }
      // A connection idle since the last request had its deadline pass long ago.
      lowest().expires_at(deadline);
      auto outcome = exchange(request, reused, head);
      if (auto* response = std::get_if<OutboundResponse>(&outcome)) return std::move(*response);
      auto& failure = std::get<Failure>(outcome);
      if (cancelled.load()) return cancelled_status();
      close_connection();
      // The server closed the kept-alive connection before we used it: not an error.
      if (failure.stale && attempt == 0) continue;
      return fail(failure.status);
    }
  }

  Url origin;
  HttpClientOptions options;
  std::string origin_text;  // "scheme://host:port"
  std::string address;      // "host:port"
  bool ip_literal = false;
  Status setup;
  std::atomic<bool> cancelled{false};  // set by cancel(), from any thread

  // io and tls are declared before the resolver and streams that use them, so they outlive them.
  asio::io_context io{1};
  std::optional<ssl::context> tls;
  tcp::resolver resolver{io};
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
};

HttpClient::HttpClient(Url origin, HttpClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(origin), std::move(options))) {}

HttpClient::~HttpClient() {
  if (impl_) impl_->close_connection();
}

HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Status HttpClient::ready() const { return impl_->setup; }

Result<OutboundResponse> HttpClient::send(
    std::string_view method, std::string_view target, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  return impl_->send(method, target, body, headers);
}

void HttpClient::close() { impl_->close_connection(); }

void HttpClient::cancel() {
  impl_->cancelled.store(true);
  // Wakes a send() waiting in the event loop, which then aborts its operations.
  asio::post(impl_->io, [] {});
}

const Url& HttpClient::origin() const { return impl_->origin; }

}  // namespace kpid::net
