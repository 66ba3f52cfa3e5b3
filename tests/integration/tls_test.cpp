// TLS on the HTTP and TCP line-protocol listeners: HTTPS and line protocol over TLS against a
// CA made in the test, what a plain or silent client gets, certificate reload on SIGHUP (good
// and broken pairs) and the config errors --check-config gives for bad TLS settings.

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr const char* kOpenssl = OPENSSL_BINARY;
constexpr const char* kKpictl = KPICTL_BINARY;

// The hex serial number of an X509 certificate (as `openssl x509 -serial` prints it).
std::string serial_hex(X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string out = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

// The serial of the (first) certificate in a PEM file.
std::string serial_of_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  REQUIRE(f != nullptr);
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  REQUIRE(cert != nullptr);
  std::string out = serial_hex(cert);
  X509_free(cert);
  return out;
}

void openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{kOpenssl};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_command(argv);
  INFO("openssl " << args.front() << ":\n" << r.out << r.err);
  REQUIRE(r.exit_code == 0);
}

// A test CA, two server certificates it signed for IP 127.0.0.1 (serials 1001 and 1002) and a
// key that belongs to neither. The keys are P-256: fast to make.
struct Certs {
  TempDir dir;
  std::string ca = dir.file("ca.pem");
  std::string cert1 = dir.file("server1.pem");
  std::string key1 = dir.file("server1.key");
  std::string cert2 = dir.file("server2.pem");
  std::string key2 = dir.file("server2.key");
  std::string other_key = dir.file("other.key");

  Certs() {
    openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", dir.file("ca.key"), "-out", ca, "-days", "2", "-subj", "/CN=kpid test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
             "keyUsage=critical,keyCertSign,cRLSign"});
    write_file(dir.file("server.ext"),
               "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
               "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n");
    for (const auto& [cert, key, serial] :
         {std::tuple{cert1, key1, "1001"}, std::tuple{cert2, key2, "1002"}}) {
      openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
               "-keyout", key, "-out", cert + ".csr", "-subj", "/CN=127.0.0.1"});
      openssl({"x509", "-req", "-in", cert + ".csr", "-CA", ca, "-CAkey", dir.file("ca.key"),
               "-set_serial", serial, "-days", "2", "-out", cert, "-extfile",
               dir.file("server.ext")});
    }
    openssl(
        {"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", other_key});
  }
};

// A TLS connection to 127.0.0.1:port that trusts only `ca_file` and requires the certificate
// to name IP 127.0.0.1: HTTP/1.1 requests on one keep-alive connection (never reconnecting, so
// a test sees when the server closed it), or raw bytes. Throws std::runtime_error on errors.
class TlsClient {
 public:
  TlsClient(uint16_t port, const std::string& ca_file, std::chrono::milliseconds timeout = 10s)
      : timeout_(timeout), context_(ssl::context::tls_client) {
    context_.load_verify_file(ca_file);
    context_.set_verify_mode(ssl::verify_peer);
    stream_.emplace(ioc_, context_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(stream_->native_handle()), "127.0.0.1");
    beast::error_code ec;
    lowest().expires_after(timeout_);
    lowest().async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                           [&](beast::error_code e) { ec = e; });
    run();
    check(ec, "connect");
    lowest().expires_after(timeout_);
    stream_->async_handshake(ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
    run();
    check(ec, "TLS handshake");
  }
  ~TlsClient() { close(); }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  HttpResponse request(std::string_view method, std::string_view target,
                       std::string_view body = {}) {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.body() = std::string(body);
    req.keep_alive(true);
    req.prepare_payload();
    beast::error_code ec;
    lowest().expires_after(timeout_);
    http::async_write(*stream_, req, [&](beast::error_code e, size_t) { ec = e; });
    run();
    check(ec, "write");
    http::response_parser<http::string_body> parser;
    parser.body_limit((std::numeric_limits<std::uint64_t>::max)());
    lowest().expires_after(timeout_);
    http::async_read(*stream_, buffer_, parser, [&](beast::error_code e, size_t) { ec = e; });
    run();
    check(ec, "read");
    HttpResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    for (const auto& f : parser.get()) {
      std::string name(f.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      out.headers[name] = std::string(f.value());
    }
    out.body = std::move(parser.get().body());
    return out;
  }

  void send(std::string_view data) {
    beast::error_code ec;
    lowest().expires_after(timeout_);
    asio::async_write(*stream_, asio::buffer(data.data(), data.size()),
                      [&](beast::error_code e, size_t) { ec = e; });
    run();
    check(ec, "send");
  }

  // The serial of the certificate the server presented on this connection.
  std::string peer_serial() {
    X509* cert = SSL_get1_peer_certificate(stream_->native_handle());
    if (cert == nullptr) throw std::runtime_error("no peer certificate");
    std::string out = serial_hex(cert);
    X509_free(cert);
    return out;
  }

  // close_notify, then the socket; errors are ignored (the server may be gone).
  void close() {
    if (!stream_ || !lowest().socket().is_open()) return;
    lowest().expires_after(2s);
    stream_->async_shutdown([](beast::error_code) {});
    run();
    lowest().close();
  }

 private:
  beast::tcp_stream& lowest() { return stream_->next_layer(); }
  void run() {
    ioc_.restart();
    ioc_.run();
  }
  static void check(const beast::error_code& ec, const char* what) {
    if (ec) throw std::runtime_error(std::string(what) + ": " + ec.message());
  }

  std::chrono::milliseconds timeout_;
  asio::io_context ioc_;
  ssl::context context_;
  std::optional<ssl::stream<beast::tcp_stream>> stream_;
  beast::flat_buffer buffer_;
};

// kpid with TLS on both listeners, serving the pair at DIR/server.pem and DIR/server.key (a
// copy the test replaces before a reload), request_timeout 1s. The harness's Kpid waits for
// readiness over plain HTTP, so this one waits over HTTPS.
class TlsKpid {
 public:
  explicit TlsKpid(const Certs& certs) : certs_(certs) {
    write_file(cert_file(), read_file(certs.cert1));
    write_file(key_file(), read_file(certs.key1));
    write_config();
    process_ = std::make_unique<BackgroundProcess>(
        "kpid",
        std::vector<std::string>{kKpidBinary, "--config", dir_.file("kpid.toml"), "--data-dir",
                                 dir_.file("data")},
        dir_.file("kpid.log"));
    static const std::regex http_re(R"(HTTP listening on 127\.0\.0\.1:(\d+))");
    static const std::regex line_re(R"(line protocol listening on 127\.0\.0\.1:(\d+))");
    std::string why = "timed out";
    const bool ready = eventually(
        [&] {
          if (!process_->running()) {
            why = "kpid exited";
            return true;
          }
          const std::string text = log();
          std::smatch m;
          if (http_port_ == 0 && std::regex_search(text, m, http_re)) {
            http_port_ = static_cast<uint16_t>(std::stoi(m[1]));
          }
          if (line_port_ == 0 && std::regex_search(text, m, line_re)) {
            line_port_ = static_cast<uint16_t>(std::stoi(m[1]));
          }
          if (http_port_ == 0 || line_port_ == 0) return false;
          try {
            why = "GET /readyz over HTTPS";
            return TlsClient(http_port_, certs_.ca, 2s).request("GET", "/readyz").status == 200;
          } catch (const std::exception& e) {
            why = std::string("GET /readyz over HTTPS: ") + e.what();
            return false;
          }
        },
        15s, 50ms);
    INFO("kpid start: " << why << "\nlog:\n" << tail(log(), 6000));
    REQUIRE(ready);
    REQUIRE(process_->running());
  }

  uint16_t http_port() const { return http_port_; }
  uint16_t line_port() const { return line_port_; }
  std::string cert_file() const { return dir_.file("server.pem"); }
  std::string key_file() const { return dir_.file("server.key"); }
  std::string log() const { return read_file(dir_.file("kpid.log")); }
  const TempDir& dir() const { return dir_; }

  // Rewrites kpid.toml with `extra` added to [http] and the line listener's TLS on or off.
  void write_config(const std::string& http_extra = "", bool line_tls = true) const {
    const std::string tls =
        "cert_file = \"" + cert_file() + "\"\nkey_file = \"" + key_file() + "\"\n";
    write_file(dir_.file("kpid.toml"),
               "[http]\nlisten = \"127.0.0.1:0\"\nrequest_timeout = \"1s\"\n" + http_extra +
                   "[http.tls]\n" + tls + "[line]\nlisten = \"127.0.0.1:0\"\n" +
                   (line_tls ? "[line.tls]\n" + tls : std::string()) +
                   "[log]\nlevel = \"debug\"\n");
  }

  // SIGHUP, then waits until the reload is over (its last log line).
  void reload() {
    const auto count = [&] {
      const std::string text = log();
      size_t n = 0;
      for (size_t at = 0; (at = text.find("configuration reloaded from", at)) != std::string::npos;
           ++at) {
        ++n;
      }
      return n;
    };
    const size_t before = count();
    REQUIRE(::kill(process_->pid(), SIGHUP) == 0);
    INFO(tail(log()));
    REQUIRE(eventually([&] { return count() > before; }));
  }

 private:
  const Certs& certs_;
  TempDir dir_;
  std::unique_ptr<BackgroundProcess> process_;
  uint16_t http_port_ = 0;
  uint16_t line_port_ = 0;
};

// GET /api/v1/query over HTTPS: the result array.
json::array query(TlsClient& client, const std::string& expr, int64_t ms) {
  auto r =
      client.request("GET", "/api/v1/query?query=" + url_encode(expr) + "&time=" + fmt_seconds(ms));
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json().as_object().at("data").as_object().at("result").as_array();
}

}  // namespace

TEST_CASE("tls: HTTPS write then query returns the data, and kpictl talks HTTPS", "[tls]") {
  Certs certs;
  TlsKpid k(certs);
  TlsClient client(k.http_port(), certs.ca);
  CHECK(client.peer_serial() == serial_of_file(certs.cert1));
  const int64_t t = base_ms();
  auto w = client.request("POST", "/write?precision=ms",
                          "tls_write,host=a value=42 " + std::to_string(t));
  INFO(w.body);
  REQUIRE(w.status == 204);
  // The same keep-alive connection serves the query.
  auto result = query(client, "tls_write", t);
  REQUIRE(result.size() == 1);
  CHECK(result[0].as_object().at("value").as_array()[1].as_string() == "42");

  const std::string url = "https://127.0.0.1:" + std::to_string(k.http_port());
  auto status = run_command({kKpictl, "--url", url, "--ca-file", certs.ca, "status"});
  INFO(status.out << status.err);
  CHECK(status.exit_code == 0);
  // Without the test CA, verification fails: the certificate really is checked.
  auto untrusted = run_command({kKpictl, "--url", url, "status"});
  CHECK(untrusted.exit_code != 0);
  CHECK(icontains(untrusted.err, "certificate"));
}

TEST_CASE("tls: line protocol over TLS stores lines", "[tls]") {
  Certs certs;
  TlsKpid k(certs);
  const int64_t t = base_ms();
  {
    TlsClient line(k.line_port(), certs.ca);
    CHECK(line.peer_serial() == serial_of_file(certs.cert1));
    const std::string ns = std::to_string(t) + "000000";
    line.send("tls_tcp,host=a value=1 " + ns + "\ntls_tcp,host=b value=2 " + ns + "\n");
    // The last line has no newline: taken at the clean end of the stream (close_notify).
    line.send("tls_tcp,host=c value=3 " + ns);
    line.close();
  }
  TlsClient client(k.http_port(), certs.ca);
  CHECK(eventually([&] { return query(client, "tls_tcp", t).size() == 3; }));
  CHECK(query(client, "sum(tls_tcp)", t)[0].as_object().at("value").as_array()[1].as_string() ==
        "6");
}

TEST_CASE("tls: plain HTTP to the HTTPS port gets an error and kpid keeps serving", "[tls]") {
  Certs certs;
  TlsKpid k(certs);
  const std::string answer = raw_http(
      k.http_port(), "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 5s);
  INFO(answer);
  CHECK(raw_status(answer) == 400);
  CHECK(contains(answer, "HTTPS"));
  // Plain bytes that are not HTTP either get at most a TLS alert before the close.
  CHECK(raw_status(raw_http(k.http_port(), "hello\r\n\r\n", 5s)) == 0);
  CHECK(raw_status(raw_http(k.line_port(), "plain,host=a value=1\n", 5s)) == 0);
  TlsClient client(k.http_port(), certs.ca);
  CHECK(client.request("GET", "/readyz").status == 200);
  CHECK(contains(k.log(), "TLS handshake failed"));
  CHECK_FALSE(contains(k.log(), "[error]"));
}

TEST_CASE("tls: a client that never handshakes is dropped after the timeout, others are served",
          "[tls]") {
  Certs certs;
  TlsKpid k(certs);
  const auto start = Clock::now();
  TcpClient silent_http(k.http_port());
  TcpClient silent_line(k.line_port());
  CHECK(silent_http.peer_open());
  CHECK(silent_line.peer_open());
  // Meanwhile others are served, on both ports.
  for (int i = 0; i < 3; ++i) {
    TlsClient client(k.http_port(), certs.ca);
    CHECK(client.request("GET", "/readyz").status == 200);
    TlsClient line(k.line_port(), certs.ca);
    line.send("tls_busy value=1\n");
  }
  CHECK(eventually([&] { return !silent_http.peer_open() && !silent_line.peer_open(); }, 10s));
  // http.request_timeout is 1s; allow for scheduling.
  CHECK(Clock::now() - start >= 900ms);
  TlsClient after(k.http_port(), certs.ca);
  CHECK(after.request("GET", "/readyz").status == 200);
}

TEST_CASE("tls: SIGHUP serves new certificate files to new connections, open ones keep working",
          "[tls]") {
  Certs certs;
  TlsKpid k(certs);
  const std::string old_serial = serial_of_file(certs.cert1);
  const std::string new_serial = serial_of_file(certs.cert2);
  REQUIRE(old_serial != new_serial);
  TlsClient open(k.http_port(), certs.ca);
  REQUIRE(open.request("GET", "/readyz").status == 200);
  TlsClient open_line(k.line_port(), certs.ca);
  CHECK(open.peer_serial() == old_serial);

  write_file(k.cert_file(), read_file(certs.cert2));
  write_file(k.key_file(), read_file(certs.key2));
  k.reload();
  INFO(tail(k.log()));
  CHECK(contains(k.log(), "reload: http.tls certificate and key re-read"));
  CHECK(contains(k.log(), "reload: line.tls certificate and key re-read"));

  TlsClient fresh(k.http_port(), certs.ca);
  CHECK(fresh.peer_serial() == new_serial);
  CHECK(fresh.request("GET", "/readyz").status == 200);
  TlsClient fresh_line(k.line_port(), certs.ca);
  CHECK(fresh_line.peer_serial() == new_serial);
  // The connections opened before keep their session and certificate.
  CHECK(open.request("GET", "/readyz").status == 200);
  CHECK(open.peer_serial() == old_serial);
  const int64_t t = base_ms();
  open_line.send("tls_reload value=5 " + std::to_string(t) + "000000\n");
  CHECK(eventually([&] { return query(fresh, "tls_reload", t).size() == 1; }));
}

TEST_CASE("tls: SIGHUP with a broken pair logs it and keeps serving the running certificate",
          "[tls]") {
  Certs certs;
  TlsKpid k(certs);
  const std::string old_serial = serial_of_file(certs.cert1);

  // The certificate of the second pair with a key of neither, and a smaller body limit: the
  // pair is refused, the rest of the reload applies.
  write_file(k.cert_file(), read_file(certs.cert2));
  write_file(k.key_file(), read_file(certs.other_key));
  k.write_config("max_body_bytes = \"1KiB\"\n");
  k.reload();
  {
    INFO(tail(k.log()));
    CHECK(contains(k.log(), "http.tls.key_file"));
    CHECK(contains(k.log(), "does not match the certificate"));
    CHECK(contains(k.log(), "the running certificate and key are kept"));
    CHECK_FALSE(contains(k.log(), "reload rejected"));
  }
  TlsClient client(k.http_port(), certs.ca);
  CHECK(client.peer_serial() == old_serial);
  CHECK(client.request("POST", "/write", std::string(2048, 'x')).status == 413);
  TlsClient line(k.line_port(), certs.ca);
  CHECK(line.peer_serial() == old_serial);

  // An unreadable file is refused the same way.
  write_file(k.cert_file(), read_file(certs.cert1));
  std::remove(k.key_file().c_str());
  k.reload();
  CHECK(contains(k.log(), "cannot read key file " + k.key_file()));
  CHECK(TlsClient(k.http_port(), certs.ca).peer_serial() == old_serial);

  // Turning TLS off needs a restart: the listener stays on TLS.
  write_file(k.key_file(), read_file(certs.key1));
  k.write_config("", false);
  k.reload();
  CHECK(contains(k.log(), "line.tls (on or off) changed; it takes effect after a restart"));
  CHECK(TlsClient(k.line_port(), certs.ca).peer_serial() == old_serial);
}

TEST_CASE("tls: check-config names the bad TLS keys", "[tls]") {
  Certs certs;
  TempDir dir;
  const auto check = [&](const std::string& toml) {
    write_file(dir.file("kpid.toml"), toml);
    return run_command({kKpidBinary, "--config", dir.file("kpid.toml"), "--check-config"});
  };
  const std::string file = dir.file("kpid.toml");

  // Relative paths are relative to the config file, not to the working directory.
  write_file(dir.file("server.pem"), read_file(certs.cert1));
  write_file(dir.file("server.key"), read_file(certs.key1));
  auto good = check(
      "[http.tls]\ncert_file = \"server.pem\"\nkey_file = \"server.key\"\nmin_version = \"1.3\"\n");
  INFO(good.out << good.err);
  CHECK(good.exit_code == 0);

  // Line 3 col 12 is key_file's value; line 6 col 13 the line listener's cert_file value.
  auto bad = check("[http.tls]\ncert_file = \"" + certs.cert1 + "\"\nkey_file = \"" +
                   certs.other_key + "\"\nmin_version = \"1.1\"\n[line.tls]\ncert_file = \"" +
                   dir.file("missing.pem") + "\"\nkey_file = \"" + certs.key1 + "\"\n");
  INFO(bad.out << bad.err);
  CHECK(bad.exit_code == 1);
  CHECK(contains(bad.err, file + ":3:12: http.tls.key_file: private key " + certs.other_key +
                              " does not match the certificate in " + certs.cert1));
  CHECK(contains(bad.err, file + ":4:15: http.tls.min_version: unknown value \"1.1\""));
  CHECK(contains(bad.err, file + ":6:13: line.tls.cert_file: cannot read certificate file " +
                              dir.file("missing.pem")));
  // A key file given as the certificate is not a certificate.
  auto not_cert =
      check("[http.tls]\ncert_file = \"" + certs.key1 + "\"\nkey_file = \"" + certs.key1 + "\"\n");
  CHECK(not_cert.exit_code == 1);
  CHECK(contains(not_cert.err, file + ":2:13: http.tls.cert_file: cannot load certificate chain"));
  // An encrypted key is refused rather than asking for a passphrase.
  openssl({"pkey", "-in", certs.key1, "-aes256", "-passout", "pass:secret", "-out",
           dir.file("encrypted.key")});
  auto encrypted = check("[http.tls]\ncert_file = \"" + certs.cert1 + "\"\nkey_file = \"" +
                         dir.file("encrypted.key") + "\"\n");
  CHECK(encrypted.exit_code == 1);
  CHECK(contains(encrypted.err, file + ":3:12: http.tls.key_file: cannot load private key " +
                                    dir.file("encrypted.key") + ": it is encrypted"));
  // Half a pair.
  auto half =
      check("[line]\nlisten = \"127.0.0.1:0\"\n[line.tls]\nkey_file = \"" + certs.key1 + "\"\n");
  CHECK(half.exit_code == 1);
  CHECK(contains(half.err, file + ":3:1: line.tls.cert_file: is required with key_file"));
  // kpictl check-config runs the same checks; kpid refuses to start.
  auto ctl = run_command({kKpictl, "check-config", file});
  CHECK(ctl.exit_code == 1);
  CHECK(contains(ctl.err, "line.tls.cert_file"));
  check("[http.tls]\ncert_file = \"" + certs.cert1 + "\"\nkey_file = \"" + certs.other_key +
        "\"\n");
  auto start = run_command({kKpidBinary, "--config", file, "--data-dir", dir.file("data"),
                            "--http-listen", "127.0.0.1:0", "--line-listen", "127.0.0.1:0"},
                           {}, 20s);
  CHECK(start.exit_code == 1);
  CHECK(contains(start.err, "http.tls.key_file"));
}
