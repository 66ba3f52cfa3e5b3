#include "kpid/net/http_client.h"

#include "kpid/net/client_auth.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kpid/version.h"
#include "support/recording_receiver.h"

using namespace kpid;
using namespace kpid::net;
using Catch::Contains;
using kpid::testing::ReceiverOptions;
using kpid::testing::RecordingReceiver;
using tcp = boost::asio::ip::tcp;
using Headers = std::vector<std::pair<std::string, std::string>>;

namespace {

const std::string kTlsDir = KPID_SOURCE_DIR "/tests/data/tls";

Url url_of(const std::string& text) {
  auto url = parse_url(text);
  REQUIRE(url.is_ok());
  return *url;
}

template <typename T>
Status error_of(const Result<T>& r) {
  REQUIRE_FALSE(r.is_ok());
  return r.status();
}

std::string parse_error(const std::string& text) {
  INFO(text);
  auto status = error_of(parse_url(text));
  CHECK(status.code() == StatusCode::kInvalidArgument);
  return status.message();
}

ReceiverOptions tls_receiver(const std::string& name) {
  ReceiverOptions options;
  options.tls = true;
  options.cert_file = kTlsDir + "/" + name + ".crt";
  options.key_file = kTlsDir + "/" + name + ".key";
  return options;
}

HttpClientOptions with_ca(const std::string& name, DurationMs timeout = 5'000) {
  HttpClientOptions options;
  options.timeout = timeout;
  options.ca_file = kTlsDir + "/" + name + ".crt";
  return options;
}

// A port nothing listens on: bound once by the kernel's choice, then released.
uint16_t closed_port() {
  boost::asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
  return acceptor.local_endpoint().port();
}

}  // namespace

TEST_CASE("parse_url splits scheme, host, port and target", "[http_client]") {
  auto u = url_of("http://example.com");
  CHECK_FALSE(u.tls);
  CHECK(u.host == "example.com");
  CHECK(u.port == 80);
  CHECK(u.target == "/");
  CHECK(u.text == "http://example.com");

  u = url_of("HTTPS://Events.PagerDuty.com:8443/v2/enqueue?x=1&y=%20#frag");
  CHECK(u.tls);
  CHECK(u.host == "events.pagerduty.com");
  CHECK(u.port == 8443);
  CHECK(u.target == "/v2/enqueue?x=1&y=%20");

  u = url_of("https://alerts.example.com/");
  CHECK(u.port == 443);
  CHECK(u.target == "/");

  u = url_of("http://host?only=query");
  CHECK(u.target == "/?only=query");

  u = url_of("http://[::1]:9093/api/v2/alerts");
  CHECK(u.host == "::1");
  CHECK(u.port == 9093);
  CHECK(u.target == "/api/v2/alerts");
  CHECK(origin_of(u) == "http://[::1]:9093");

  u = url_of("https://[2001:db8::7]");
  CHECK(u.host == "2001:db8::7");
  CHECK(u.port == 443);

  u = url_of("http://127.0.0.1:65535/x");
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == 65535);
  CHECK(origin_of(u) == "http://127.0.0.1:65535");
}

TEST_CASE("parse_url says what is wrong", "[http_client]") {
  CHECK(parse_error("ftp://x") == "unsupported scheme 'ftp' in 'ftp://x' (use http or https)");
  CHECK_THAT(parse_error(""), Contains("empty URL"));
  CHECK_THAT(parse_error("example.com/x"), Contains("missing scheme in 'example.com/x'"));
  CHECK_THAT(parse_error("http://"), Contains("missing host in 'http://'"));
  CHECK_THAT(parse_error("http://:8080/x"), Contains("missing host"));
  CHECK_THAT(parse_error("http://h:0/"), Contains("port out of range '0'"));
  CHECK_THAT(parse_error("http://h:65536/"), Contains("port out of range '65536'"));
  CHECK_THAT(parse_error("http://h:80a/"), Contains("invalid port '80a'"));
  CHECK_THAT(parse_error("http://h:/"), Contains("empty port"));
  CHECK_THAT(parse_error("http://[::1/"), Contains("unterminated '['"));
  CHECK_THAT(parse_error("http://[not:v6]:80/"), Contains("invalid IPv6 address 'not:v6'"));
  CHECK_THAT(parse_error("http://[::1]x/"), Contains("unexpected 'x' after ']'"));
  CHECK_THAT(parse_error("http://a b/"), Contains("spaces and control characters"));
  CHECK_THAT(parse_error("http://a%62/"), Contains("invalid character '%' in host 'a%62'"));

  // Credentials are refused and never echoed.
  std::string userinfo = parse_error("https://user:s3cret@example.com/");
  CHECK_THAT(userinfo, Contains("user info"));
  CHECK_THAT(userinfo, !Contains("s3cret"));
}

TEST_CASE("POST over http delivers method, target, headers and body", "[http_client]") {
  RecordingReceiver receiver;
  HttpClient client(url_of(receiver.url() + "/api/v2/alerts"), {});
  REQUIRE(client.ready().is_ok());

  auto r = client.send("POST", "", R"([{"labels":{"alertname":"x"}}])",
                       {{"Content-Type", "application/json"}, {"X-Kpid-Signature", "sha256=ab"}});
  REQUIRE(r.is_ok());
  CHECK(r->status == 200);
  CHECK(r->body == "{}");
  CHECK_FALSE(r->body_truncated);

  REQUIRE(receiver.wait_for(1, std::chrono::seconds(5)));
  auto got = receiver.requests().at(0);
  CHECK(got.method == "POST");
  CHECK(got.target == "/api/v2/alerts");
  CHECK(got.body == R"([{"labels":{"alertname":"x"}}])");
  CHECK(got.headers["content-type"] == "application/json");
  CHECK(got.headers["x-kpid-signature"] == "sha256=ab");
  CHECK(got.headers["host"] == "127.0.0.1:" + std::to_string(receiver.port()));
  CHECK(got.headers["user-agent"] == std::string("kpid/") + kVersion);
  CHECK(got.headers["content-length"] == std::to_string(got.body.size()));

  // An explicit target, a caller's User-Agent and Host win; a wrong Content-Length does not.
  r = client.send(
      "PUT", "/other?q=1", "abc",
      {{"User-Agent", "custom/1"}, {"Host", "alerts.example"}, {"Content-Length", "99"}});
  REQUIRE(r.is_ok());
  REQUIRE(receiver.wait_for(2, std::chrono::seconds(5)));
  got = receiver.requests().at(1);
  CHECK(got.method == "PUT");
  CHECK(got.target == "/other?q=1");
  CHECK(got.headers["user-agent"] == "custom/1");
  CHECK(got.headers["host"] == "alerts.example");
  CHECK(got.headers["content-length"] == "3");
  CHECK(got.body == "abc");
}

TEST_CASE("non-2xx statuses are responses, not errors", "[http_client]") {
  RecordingReceiver receiver;
  HttpClient client(url_of(receiver.url()), {});
  for (int status : {200, 202, 204, 400, 404, 429, 500, 503}) {
    INFO(status);
    std::string body = status == 204 ? "" : "status " + std::to_string(status);
    receiver.respond_with(status, body, "text/plain");
    auto r = client.send("POST", "/", "{}", {});
    REQUIRE(r.is_ok());
    CHECK(r->status == status);
    CHECK(r->body == body);
  }
}

TEST_CASE("bad requests are refused before anything is sent", "[http_client]") {
  RecordingReceiver receiver;
  HttpClient client(url_of(receiver.url()), {});
  auto status = error_of(client.send("POST", "/", "", {{"X-Bad", "a\r\nInjected: 1"}}));
  CHECK(status.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(status.message(), Contains("CR, LF or NUL"));
  status = error_of(client.send("POST", "/", "", {{"Bad Name", "x"}}));
  CHECK_THAT(status.message(), Contains("invalid header name 'Bad Name'"));
  status = error_of(client.send("PO ST", "/", "", {}));
  CHECK_THAT(status.message(), Contains("invalid HTTP method"));
  status = error_of(client.send("POST", "no-slash", "", {}));
  CHECK_THAT(status.message(), Contains("invalid request target 'no-slash'"));
  CHECK(receiver.requests().empty());
}

TEST_CASE("the connection is kept alive and re-established after the server closed it",
          "[http_client]") {
  RecordingReceiver receiver;
  HttpClient client(url_of(receiver.url()), {});
  for (int i = 0; i < 3; ++i) REQUIRE(client.send("POST", "/", "{}", {}).is_ok());
  auto got = receiver.requests();
  REQUIRE(got.size() == 3);
  CHECK(got[0].connection == got[1].connection);
  CHECK(got[1].connection == got[2].connection);

  // The server closed the idle connection: the next request goes out on a new one, no error.
  receiver.stop();
  receiver.start();
  REQUIRE(client.send("POST", "/", "{}", {}).is_ok());
  got = receiver.requests();
  REQUIRE(got.size() == 4);
  CHECK(got[3].connection != got[2].connection);

  // While the server is down: connection refused; once it is back, delivery resumes.
  receiver.stop();
  auto status = error_of(client.send("POST", "/", "{}", {}));
  CHECK(status.code() == StatusCode::kUnavailable);
  CHECK_THAT(status.message(), Contains("Connection refused"));
  receiver.start();
  REQUIRE(client.send("POST", "/", "{}", {}).is_ok());
  CHECK(receiver.requests().size() == 5);

  // close() drops the connection on our side.
  client.close();
  REQUIRE(client.send("POST", "/", "{}", {}).is_ok());
  got = receiver.requests();
  REQUIRE(got.size() == 6);
  CHECK(got[5].connection != got[4].connection);
}

TEST_CASE("connection refused names the method, origin and what failed", "[http_client]") {
  uint16_t port = closed_port();
  std::string address = "127.0.0.1:" + std::to_string(port);
  HttpClient client(url_of("http://" + address + "/secret/path"), {});
  auto status = error_of(client.send("POST", "", "{}", {}));
  CHECK(status.code() == StatusCode::kUnavailable);
  CHECK(status.message() ==
        "POST http://" + address + ": connect to " + address + " failed: Connection refused");
}

TEST_CASE("a server that never answers times out within the deadline", "[http_client]") {
  // Listening but never accepting: the kernel completes the handshake and the request sits
  // unread in the socket buffer.
  boost::asio::io_context io;
  tcp::acceptor silent(io, tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
  std::string origin = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());

  SECTION("http") {
    HttpClient client(url_of("http://" + origin), {.timeout = 300, .ca_file = ""});
    auto start = std::chrono::steady_clock::now();
    auto status = error_of(client.send("POST", "/", "{}", {}));
    auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(status.code() == StatusCode::kUnavailable);
    CHECK_THAT(status.message(), Contains("timed out after 300 ms (reading the response)"));
    CHECK(elapsed >= std::chrono::milliseconds(250));
    CHECK(elapsed < std::chrono::seconds(3));
  }
  SECTION("https handshake") {
    HttpClient client(url_of("https://" + origin), with_ca("receiver", 300));
    auto start = std::chrono::steady_clock::now();
    auto status = error_of(client.send("POST", "/", "{}", {}));
    auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK_THAT(status.message(),
               Contains("timed out after 300 ms (TLS handshake with " + origin + ")"));
    CHECK(elapsed < std::chrono::seconds(3));
  }
}

TEST_CASE("cancel ends a send waiting for a silent server at once, and later sends too",
          "[http_client]") {
  boost::asio::io_context io;
  tcp::acceptor silent(io, tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
  std::string origin = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  HttpClient client(url_of("http://" + origin), {.timeout = 30'000, .ca_file = ""});
  std::atomic<bool> sending{false};
  Status status;
  auto start = std::chrono::steady_clock::now();
  std::thread sender([&] {
    sending = true;
    status = error_of(client.send("POST", "/", "{}", {}));
  });
  while (!sending) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // waiting for the response
  client.cancel();
  sender.join();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK(status.code() == StatusCode::kUnavailable);
  CHECK_THAT(status.message(), Contains("cancelled"));
  // Cancelled for good: the next send fails at once.
  CHECK_THAT(error_of(client.send("POST", "/", "{}", {})).message(), Contains("cancelled"));
}

TEST_CASE("a response body beyond the cap is cut and the connection dropped", "[http_client]") {
  RecordingReceiver receiver;
  HttpClient client(url_of(receiver.url()), {});
  receiver.respond_with(200, std::string(HttpClientOptions{}.max_response_bytes + 100, 'x'),
                        "text/plain");
  auto r = client.send("POST", "/", "{}", {});
  REQUIRE(r.is_ok());
  CHECK(r->status == 200);
  CHECK(r->body.size() == HttpClientOptions{}.max_response_bytes);
  CHECK(r->body_truncated);

  receiver.respond_with(200, "ok", "text/plain");
  r = client.send("POST", "/", "{}", {});
  REQUIRE(r.is_ok());
  CHECK(r->body == "ok");
  auto got = receiver.requests();
  REQUIRE(got.size() == 2);
  CHECK(got[0].connection != got[1].connection);
}

TEST_CASE("https with the receiver's certificate as CA succeeds", "[http_client][tls]") {
  RecordingReceiver receiver(tls_receiver("receiver"));
  REQUIRE(receiver.url().rfind("https://127.0.0.1:", 0) == 0);

  SECTION("by IP address") {
    HttpClient client(url_of(receiver.url() + "/hook"), with_ca("receiver"));
    for (int i = 0; i < 2; ++i) {
      auto r = client.send("POST", "", "{\"n\":1}", {{"Content-Type", "application/json"}});
      REQUIRE(r.is_ok());
      CHECK(r->status == 200);
    }
    auto got = receiver.requests();
    REQUIRE(got.size() == 2);
    CHECK(got[0].target == "/hook");
    CHECK(got[0].body == "{\"n\":1}");
    CHECK(got[0].connection == got[1].connection);

    // Reconnects over TLS too.
    receiver.stop();
    receiver.start();
    REQUIRE(client.send("POST", "", "{}", {}).is_ok());
  }
  SECTION("by host name") {
    HttpClient client(url_of("https://localhost:" + std::to_string(receiver.port())),
                      with_ca("receiver"));
    auto r = client.send("POST", "/", "{}", {});
    REQUIRE(r.is_ok());
    CHECK(receiver.requests().at(0).headers["host"] ==
          "localhost:" + std::to_string(receiver.port()));
  }
}

TEST_CASE("https without the CA fails verification with the reason", "[http_client][tls]") {
  RecordingReceiver receiver(tls_receiver("receiver"));
  HttpClient client(url_of(receiver.url()), {.timeout = 5'000, .ca_file = ""});
  REQUIRE(client.ready().is_ok());
  auto status = error_of(client.send("POST", "/", "{}", {}));
  CHECK(status.code() == StatusCode::kIoError);
  std::string address = "127.0.0.1:" + std::to_string(receiver.port());
  CHECK_THAT(status.message(),
             Contains("POST https://" + address + ": TLS handshake with " + address +
                      " failed: certificate verify failed (self-signed certificate)"));
  CHECK(receiver.requests().empty());
}

TEST_CASE("https to a host the certificate does not name fails", "[http_client][tls]") {
  // Trusted (it is its own CA) but issued for other.invalid only.
  RecordingReceiver receiver(tls_receiver("other_host"));
  SECTION("IP address") {
    HttpClient client(url_of(receiver.url()), with_ca("other_host"));
    auto status = error_of(client.send("POST", "/", "{}", {}));
    CHECK(status.code() == StatusCode::kIoError);
    CHECK_THAT(status.message(), Contains("certificate verify failed (IP address mismatch)"));
  }
  SECTION("host name") {
    HttpClient client(url_of("https://localhost:" + std::to_string(receiver.port())),
                      with_ca("other_host"));
    auto status = error_of(client.send("POST", "/", "{}", {}));
    CHECK_THAT(status.message(), Contains("certificate verify failed (hostname mismatch)"));
  }
  CHECK(receiver.requests().empty());
}

TEST_CASE("an unreadable CA file is reported up front and by send", "[http_client][tls]") {
  HttpClient client(url_of("https://127.0.0.1:1"), with_ca("does_not_exist"));
  Status ready = client.ready();
  CHECK(ready.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(ready.message(), Contains("cannot load CA file '" + kTlsDir + "/does_not_exist.crt'"));
  auto status = error_of(client.send("POST", "/", "{}", {}));
  CHECK_THAT(status.message(), Contains("cannot load CA file"));
}

TEST_CASE("the receiver records requests for waiting tests and callbacks", "[http_client]") {
  RecordingReceiver receiver;
  std::atomic<int> seen{0};
  receiver.on_request([&](const kpid::testing::ReceivedRequest& request) {
    if (request.target == "/counted") ++seen;
  });
  HttpClient client(url_of(receiver.url()), {});
  REQUIRE(client.send("GET", "/counted", "", {}).is_ok());
  REQUIRE(client.send("DELETE", "/counted", "", {}).is_ok());
  CHECK(receiver.wait_for(2, std::chrono::seconds(5)));
  CHECK_FALSE(receiver.wait_for(3, std::chrono::milliseconds(50)));
  CHECK(seen == 2);
  CHECK(receiver.requests().at(0).method == "GET");
  receiver.clear();
  CHECK(receiver.requests().empty());
}

TEST_CASE("a HEAD response has no body and keeps the connection usable", "[http_client]") {
  RecordingReceiver receiver;
  receiver.respond_with(200, "hello", "text/plain");
  HttpClient client(url_of(receiver.url()), {});
  auto r = client.send("HEAD", "/", "", {});
  REQUIRE(r.is_ok());
  CHECK(r->status == 200);
  CHECK(r->body.empty());
  r = client.send("GET", "/", "", {});
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  CHECK(r->body == "hello");
  auto got = receiver.requests();
  REQUIRE(got.size() == 2);
  CHECK(got[0].connection == got[1].connection);
}

TEST_CASE("client auth: Authorization and extra headers", "[net][client_auth]") {
  using kpid::net::auth_headers;
  using kpid::net::base64_encode;
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("Aladdin:open sesame") == "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");

  kpid::net::ClientAuthOptions auth;
  auth.basic_username = "Aladdin";
  auth.basic_password = "open sesame";
  auth.headers = {{"X-Scope-OrgID", "tenant-1"}};
  auto h = auth_headers(auth);
  REQUIRE(h);
  REQUIRE(h->size() == 2);
  CHECK((*h)[0] ==
        std::pair<std::string, std::string>{"Authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="});
  CHECK((*h)[1].first == "X-Scope-OrgID");

  kpid::net::ClientAuthOptions token;
  token.bearer_token_file = "/nonexistent/kpid-token";
  auto missing = auth_headers(token);
  REQUIRE_FALSE(missing);
  CHECK(missing.status().message() == "cannot read bearer_token file '/nonexistent/kpid-token'");
}
