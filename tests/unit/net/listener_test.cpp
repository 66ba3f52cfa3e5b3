// The connection layer on its own, with a small line protocol (echo_server.h): connection limit,
// idle and request timeouts, TLS, and the stop in three steps.

#include "kpid/net/listener.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "echo_server.h"
#include "support/raw_client.h"

using namespace kpid;
using namespace std::chrono_literals;
using Catch::Contains;
using kpid::testing::EchoServer;
using kpid::testing::RawClient;
using SteadyClock = std::chrono::steady_clock;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

const std::string kTlsDir = KPID_SOURCE_DIR "/tests/data/tls";

long long ms_since(SteadyClock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0).count();
}

net::ListenerOptions tls_options(const std::string& pair = "receiver") {
  net::ListenerOptions o;
  o.tls.emplace();
  o.tls->cert_file = kTlsDir + "/" + pair + ".crt";
  o.tls->key_file = kTlsDir + "/" + pair + ".key";
  return o;
}

// A blocking TLS client that trusts `ca_file` (the test certificates are their own CA); every
// read and write gives up after 5 s.
class TlsClient {
 public:
  TlsClient(uint16_t port, const std::string& ca_file) {
    context_.load_verify_file(ca_file);
    stream_.set_verify_mode(ssl::verify_peer);
    stream_.lowest_layer().connect({asio::ip::make_address("127.0.0.1"), port});
    timeval tv{5, 0};
    const int fd = stream_.lowest_layer().native_handle();
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  // Empty when it succeeded, else why not.
  std::string handshake() {
    boost::system::error_code ec;
    stream_.handshake(ssl::stream_base::client, ec);
    return ec ? ec.message() : std::string();
  }
  // Sends one request line and reads its answer line ("" if there was none).
  std::string request(const std::string& line) {
    boost::system::error_code ec;
    asio::write(stream_, asio::buffer(line + "\n"), ec);
    if (ec) return "";
    asio::read_until(stream_, asio::dynamic_buffer(buffer_), '\n', ec);
    if (ec) return "";
    const auto nl = buffer_.find('\n');
    std::string answer = buffer_.substr(0, nl);
    buffer_.erase(0, nl + 1);
    return answer;
  }
  // Reads until the server ends the connection: true when it sent close_notify first (a clean
  // TLS close rather than a cut).
  bool clean_close() {
    boost::system::error_code ec;
    char c;
    stream_.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof;
  }

 private:
  asio::io_context io_;
  ssl::context context_{ssl::context::tls_client};
  ssl::stream<tcp::socket> stream_{io_, context_};
  std::string buffer_;
};

}  // namespace

TEST_CASE("listener: a bind failure is returned, naming the listener and the address") {
  EchoServer first({});
  REQUIRE(first.start_status());
  net::ListenerOptions taken;
  taken.name = "second";
  taken.port = first.port();
  EchoServer second(taken);
  REQUIRE_FALSE(second.start_status());
  CHECK_THAT(second.start_status().message(),
             Contains("second: cannot bind 127.0.0.1:" + std::to_string(first.port())));
}

TEST_CASE("listener: beyond max_connections a connection is closed at once and counted") {
  net::ListenerOptions options;
  options.max_connections = 2;
  EchoServer server(options);
  REQUIRE(server.start_status());
  auto a = std::make_unique<RawClient>(server.port());
  RawClient b(server.port());
  a->send("a\n");
  b.send("b\n");
  CHECK_THAT(a->read_until("\n", 2s), Contains("echo: a"));
  CHECK_THAT(b.read_until("\n", 2s), Contains("echo: b"));
  CHECK(server.listener().connections() == 2);

  RawClient c(server.port());
  c.send("c\n");
  CHECK(c.closed_within(2s));
  CHECK(c.received().empty());
  CHECK(server.listener().refused() == 1);

  // Once one ends, there is room again.
  a.reset();
  for (int i = 0; i < 200 && server.listener().connections() > 1; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE(server.listener().connections() == 1);
  RawClient d(server.port());
  d.send("d\n");
  CHECK_THAT(d.read_until("\n", 2s), Contains("echo: d"));
  CHECK(server.listener().refused() == 1);
}

TEST_CASE(
    "listener: a started request must finish within its timeout, an idle connection may "
    "wait for the idle timeout") {
  net::ListenerOptions options;
  options.idle_timeout = 1500;
  EchoServer server(options, /*request_timeout=*/300);
  REQUIRE(server.start_status());
  const auto t0 = SteadyClock::now();
  RawClient silent(server.port());
  RawClient partial(server.port());
  RawClient answered(server.port());
  partial.send("half a requ");  // the request's first bytes: its timeout runs from here
  answered.send("hello\n");
  CHECK_THAT(answered.read_until("\n", 2s), Contains("echo: hello"));

  CHECK(partial.closed_within(3s));
  const auto partial_ms = ms_since(t0);
  CHECK(partial_ms >= 250);
  CHECK(partial_ms < 1200);
  CHECK(partial.received().empty());
  // The idle ones outlive the request timeout by far, then go too.
  CHECK_FALSE(silent.closed_within(500ms));
  CHECK_FALSE(answered.closed());
  CHECK(silent.closed_within(3s));
  CHECK(answered.closed_within(3s));
  const auto idle_ms = ms_since(t0);
  CHECK(idle_ms >= 1400);
  CHECK(idle_ms < 4000);
}

TEST_CASE(
    "listener: TLS connections are served by the same session, and closed with "
    "close_notify") {
  EchoServer server(tls_options());
  REQUIRE(server.start_status());
  TlsClient client(server.port(), kTlsDir + "/receiver.crt");
  REQUIRE(client.handshake().empty());
  CHECK(client.request("over tls") == "echo: over tls");
  CHECK(client.request("slow 10") == "echo: slow 10");
  server.listener().stop();
  CHECK(client.clean_close());
}

TEST_CASE(
    "listener: on a TLS port a plain HTTP request gets the protocol's reply, a silent "
    "client is dropped after the handshake timeout") {
  net::ListenerOptions options = tls_options();
  options.handshake_timeout = 300;
  options.plain_http_reply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
  EchoServer server(options);
  REQUIRE(server.start_status());

  RawClient plain(server.port());
  plain.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(plain.closed_within(2s));
  CHECK(plain.received() == options.plain_http_reply);

  const auto t0 = SteadyClock::now();
  RawClient silent(server.port());
  CHECK(silent.closed_within(3s));
  CHECK(ms_since(t0) >= 250);

  // Meanwhile, and after, TLS clients are served.
  TlsClient client(server.port(), kTlsDir + "/receiver.crt");
  REQUIRE(client.handshake().empty());
  CHECK(client.request("still here") == "echo: still here");
}

TEST_CASE("listener: reload_tls serves the new pair to new connections, open ones keep theirs") {
  EchoServer server(tls_options("receiver"));
  REQUIRE(server.start_status());
  TlsClient before(server.port(), kTlsDir + "/receiver.crt");
  REQUIRE(before.handshake().empty());

  REQUIRE(server.listener().reload_tls(kTlsDir + "/other_host.crt", kTlsDir + "/other_host.key"));
  TlsClient trusting_old(server.port(), kTlsDir + "/receiver.crt");
  CHECK_FALSE(trusting_old.handshake().empty());
  TlsClient trusting_new(server.port(), kTlsDir + "/other_host.crt");
  REQUIRE(trusting_new.handshake().empty());
  CHECK(trusting_new.request("new pair") == "echo: new pair");
  CHECK(before.request("old pair") == "echo: old pair");

  // A pair that does not load leaves the running one, and says which listener and file.
  auto failed = server.listener().reload_tls(kTlsDir + "/missing.crt", kTlsDir + "/other_host.key");
  REQUIRE_FALSE(failed);
  CHECK_THAT(failed.message(), Contains("echo TLS: cannot read certificate file"));
  TlsClient after(server.port(), kTlsDir + "/other_host.crt");
  CHECK(after.handshake().empty());
}

TEST_CASE("listener: stop() closes idle connections at once and lets requests in flight finish") {
  EchoServer server({});
  REQUIRE(server.start_status());
  RawClient idle(server.port());
  idle.send("first\n");
  CHECK_THAT(idle.read_until("\n", 2s), Contains("echo: first"));
  RawClient never_sent(server.port());
  RawClient busy(server.port());
  const auto busy_sent = SteadyClock::now();
  busy.send("slow 700\n");
  RawClient paused(server.port());
  paused.send("pause 60000\n");
  REQUIRE(server.wait_started(3));
  RawClient half_sent(server.port());
  half_sent.send("half ");  // a request in flight from its first byte
  std::this_thread::sleep_for(100ms);

  const auto t0 = SteadyClock::now();
  server.listener().stop();
  CHECK(idle.closed_within(1s));
  CHECK(never_sent.closed_within(1s));
  CHECK(ms_since(t0) < 400);
  // A pause is no request in flight: it ends at once.
  CHECK_THAT(paused.read_until("\n", 1s), Contains("echo: pause ended by a stop"));
  CHECK_FALSE(busy.closed());
  CHECK_FALSE(half_sent.closed());
  half_sent.send("sent\n");
  CHECK_THAT(half_sent.read_until("\n", 2s), Contains("echo: half sent"));
  CHECK(half_sent.closed_within(1s));
  CHECK_THAT(busy.read_until("\n", 3s), Contains("echo: slow 700"));
  CHECK(busy.closed_within(1s));
  CHECK(ms_since(busy_sent) >= 690);  // it took its time: a stop did not cut it short
  CHECK(server.listener().drain(SteadyClock::now() + 2s));
  CHECK(server.listener().connections() == 0);
  // Nothing new is accepted.
  CHECK_THROWS(RawClient(server.port()));
}

TEST_CASE(
    "listener: drain() gives up at its deadline and abort() closes a request whose work "
    "never finishes, unanswered") {
  EchoServer server({});
  REQUIRE(server.start_status());
  RawClient on_strand(server.port());
  on_strand.send("slow 3600000\n");  // a timer on the connection's strand that never fires
  RawClient offloaded(server.port());
  offloaded.send("wait\n");  // work on the pool, blocked until the gate opens
  REQUIRE(server.wait_started(2));

  server.listener().stop();
  auto t0 = SteadyClock::now();
  CHECK_FALSE(server.listener().drain(SteadyClock::now() + 300ms));
  const auto waited = ms_since(t0);
  CHECK(waited >= 250);
  CHECK(waited < 1000);
  CHECK(server.listener().connections() == 2);

  t0 = SteadyClock::now();
  CHECK(server.listener().abort(SteadyClock::now() + 1s));
  CHECK(on_strand.closed_within(1s));
  CHECK(offloaded.closed_within(1s));
  CHECK(ms_since(t0) < 500);
  CHECK(on_strand.received().empty());
  CHECK(offloaded.received().empty());

  // The offloaded work still refers to its coroutine's frame: the frame outlived the abort,
  // and the connection ends once the work returns. (ASan would see a use after free.)
  server.gate().open();
  for (int i = 0; i < 400 && server.listener().connections() > 1; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  CHECK(server.listener().connections() == 1);  // the one waiting on its timer
  CHECK(offloaded.received().empty());
}
