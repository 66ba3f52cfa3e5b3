#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#define CATCH_CONFIG_EXTERNAL_INTERFACES  // for the failure listener
#include <catch2/catch.hpp>

extern char** environ;

namespace kpid_it {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

// ---------------------------------------------------------------------------------------------
// Failure tracking: lets Kpid's destructor print the daemon log only for failing tests.

namespace {
bool g_current_test_failed = false;

struct FailureListener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(Catch::TestCaseInfo const& info) override {
    g_current_test_failed = false;
    TestEventListenerBase::testCaseStarting(info);
  }
  bool assertionEnded(Catch::AssertionStats const& stats) override {
    if (!stats.assertionResult.isOk()) g_current_test_failed = true;
    return true;
  }
};

// Writing to a socket the daemon closed must surface as an error, not kill the test binary.
// (posix_spawn below restores the default disposition for the children.)
[[maybe_unused]] const bool g_sigpipe_ignored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();
}  // namespace

}  // namespace kpid_it

using KpidFailureListener = kpid_it::FailureListener;
CATCH_REGISTER_LISTENER(KpidFailureListener)

namespace kpid_it {

// ---------------------------------------------------------------------------------------------
// Files

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kpid-it-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const std::string& path, std::string_view content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write " + path);
  f.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string tail(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  return "...\n" + std::string(text.substr(text.size() - max_bytes));
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

bool icontains(std::string_view haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
  return it != haystack.end() || needle.empty();
}

// ---------------------------------------------------------------------------------------------
// Time

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string fmt_seconds(int64_t ms) {
  const bool neg = ms < 0;
  const int64_t a = neg ? -ms : ms;
  std::string s = (neg ? "-" : "") + std::to_string(a / 1000);
  if (a % 1000 != 0) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(a % 1000));
    s += frac;
  }
  return s;
}

std::string fmt_rfc3339(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

int64_t base_ms() {
  const int64_t hour = 3600 * 1000;
  return (now_ms() / hour) * hour - hour;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

// ---------------------------------------------------------------------------------------------
// Encodings

std::string gzip(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())) + 64);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate failed");
  out.resize(zs.total_out);
  return out;
}

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string form(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += url_encode(k) + "=" + url_encode(v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// HTTP

std::string HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

json::value HttpResponse::json() const { return json::parse(body); }

struct HttpClient::Impl {
  uint16_t port;
  std::chrono::milliseconds timeout;
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  // Runs the io_context until the pending operation completes; the stream's timer bounds it.
  void run() {
    ioc.restart();
    ioc.run();
  }

  void connect() {
    stream.emplace(ioc);
    buffer.clear();
    beast::error_code ec;
    stream->expires_after(timeout);
    stream->async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                          [&](beast::error_code e) { ec = e; });
    run();
    if (ec) {
      stream.reset();
      throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + ": " +
                               ec.message());
    }
  }

  // Returns false when the connection turned out stale before any response byte arrived.
  bool attempt(const http::request<http::string_body>& req, HttpResponse& out, std::string& error) {
    beast::error_code ec;
    stream->expires_after(timeout);
    http::async_write(*stream, req, [&](beast::error_code e, size_t) { ec = e; });
    run();
    // The server may answer early (413) and close without reading the body: still try to read.
    const beast::error_code write_ec = ec;
    http::response_parser<http::string_body> parser;
    parser.body_limit((std::numeric_limits<std::uint64_t>::max)());
    parser.header_limit(1 << 20);
    // A response to HEAD has the GET's Content-Length but no body.
    parser.skip(req.method() == http::verb::head);
    ec = {};
    stream->expires_after(timeout);
    http::async_read(*stream, buffer, parser, [&](beast::error_code e, size_t) { ec = e; });
    run();
    if (ec) {
      error = (write_ec ? "write: " + write_ec.message() + "; " : std::string()) +
              "read: " + ec.message();
      stream.reset();
      buffer.clear();
      return false;
    }
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    out.headers.clear();
    for (const auto& f : res) {
      std::string name(f.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      out.headers[name] = std::string(f.value());
    }
    out.body = std::move(res.body());
    if (!res.keep_alive() || write_ec) {
      beast::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream.reset();
      buffer.clear();
    }
    return true;
  }
};

HttpClient::HttpClient(uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->timeout = timeout;
}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::request(std::string_view method, std::string_view target,
                                 std::string_view body, const Headers& headers) {
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(impl_->port));
  req.set(http::field::user_agent, "kpid-integration-tests");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = std::string(body);
  req.prepare_payload();

  HttpResponse out;
  std::string error;
  for (int i = 0; i < 2; ++i) {
    const bool reused = impl_->stream.has_value();
    if (!reused) impl_->connect();
    if (impl_->attempt(req, out, error)) return out;
    if (!reused) break;  // a fresh connection failed: real error
  }
  throw std::runtime_error(std::string(method) + " " + std::string(target) + ": " + error);
}

HttpResponse http_request(uint16_t port, std::string_view method, std::string_view target,
                          std::string_view body, const Headers& headers,
                          std::chrono::milliseconds timeout) {
  HttpClient c(port, timeout);
  return c.request(method, target, body, headers);
}

std::string raw_http(uint16_t port, std::string_view request, std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("connect: " + std::string(std::strerror(errno)));
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer early and close; read what it said
    sent += static_cast<size_t>(n);
  }
  std::string out;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[8192];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

int raw_status(std::string_view response) {
  static const std::regex re(R"(^HTTP/1\.[01] (\d{3}) )");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_search(response.begin(), response.end(), m, re)) return 0;
  return std::stoi(m[1].str());
}

// ---------------------------------------------------------------------------------------------
// TCP

struct TcpClient::Impl {
  asio::io_context ioc;
  tcp::socket sock{ioc};
};

TcpClient::TcpClient(uint16_t port) : impl_(std::make_unique<Impl>()) {
  impl_->sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
}

TcpClient::~TcpClient() { close(); }

void TcpClient::send(std::string_view data) {
  asio::write(impl_->sock, asio::buffer(data.data(), data.size()));
}

bool TcpClient::peer_open() {
  if (!impl_->sock.is_open()) return false;
  char c;
  const ssize_t n = ::recv(impl_->sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return false;  // orderly shutdown by the peer
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
  return true;  // unexpected data, but open
}

void TcpClient::close() {
  if (!impl_ || !impl_->sock.is_open()) return;
  boost::system::error_code ec;
  impl_->sock.shutdown(tcp::socket::shutdown_both, ec);
  impl_->sock.close(ec);
}

// ---------------------------------------------------------------------------------------------
// Processes

namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// posix_spawn with stdin/stdout/stderr from/to files; default signal dispositions and an empty
// signal mask in the child, which leads a session of its own, as a daemon does: the scheduler
// then weighs it against the other tests' processes as its own group (as systemd's cgroup per
// service does), so kpid's SCHED_IDLE query workers yield to kpid's threads, not to theirs.
pid_t spawn(const std::vector<std::string>& argv, const std::string& in_path,
            const std::string& out_path, const std::string& err_path,
            const std::vector<std::string>& extra_env = {}) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (err_path == out_path)
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  else
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  for (const auto& e : extra_env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const int rc = posix_spawn(&pid, args[0], &fa, &attr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

// waitpid with a timeout; returns the decoded status or nullopt when still running.
std::optional<int> wait_for(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode_status(status);
    if (r < 0 && errno != EINTR) return -1;  // not our child any more
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv, std::string_view stdin_data,
                          std::chrono::milliseconds timeout) {
  TempDir tmp;
  const std::string in = tmp.file("stdin"), out = tmp.file("stdout"), err = tmp.file("stderr");
  write_file(in, stdin_data);
  const pid_t pid = spawn(argv, in, out, err);
  CommandResult r;
  auto st = wait_for(pid, timeout);
  if (!st) {
    ::kill(pid, SIGKILL);
    wait_for(pid, 5s);
    r.exit_code = -1;
  } else {
    r.exit_code = *st;
  }
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Ports and background processes

uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("bind 127.0.0.1:0: " + std::string(std::strerror(errno)));
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("getsockname: " + std::string(std::strerror(errno)));
  return ntohs(addr.sin_port);
}

BackgroundProcess::BackgroundProcess(std::string name, const std::vector<std::string>& argv,
                                     std::string log_path)
    : name_(std::move(name)), log_path_(std::move(log_path)) {
  pid_ = spawn(argv, "/dev/null", log_path_, log_path_);
}

BackgroundProcess::~BackgroundProcess() {
  if (pid_ > 0 && !exit_status_) {
    ::kill(pid_, SIGTERM);
    exit_status_ = wait_for(pid_, 5s);
    if (!exit_status_) {
      ::kill(pid_, SIGKILL);
      exit_status_ = wait_for(pid_, 10s).value_or(-1);
    }
  }
  if (g_current_test_failed) {
    std::cerr << "---- " << name_ << " log (" << log_path_ << ", tail) ----\n"
              << tail(read_file(log_path_), 6000) << "\n---- end of " << name_ << " log ----\n";
  }
}

bool BackgroundProcess::running() {
  if (pid_ <= 0 || exit_status_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) exit_status_ = decode_status(status);
  return !exit_status_;
}

int BackgroundProcess::stop(std::chrono::milliseconds timeout) {
  if (!running()) return exit_status_.value_or(-1);
  ::kill(pid_, SIGTERM);
  exit_status_ = wait_for(pid_, timeout);
  if (!exit_status_) {
    ::kill(pid_, SIGKILL);
    exit_status_ = wait_for(pid_, 10s).value_or(-1);
  }
  return *exit_status_;
}

// ---------------------------------------------------------------------------------------------
// Prometheus text format

namespace {
std::string parse_label_value(std::string_view s, size_t& i) {
  std::string v;
  // s[i] == '"'
  ++i;
  while (i < s.size() && s[i] != '"') {
    if (s[i] == '\\' && i + 1 < s.size()) {
      ++i;
      v += s[i] == 'n' ? '\n' : s[i];
    } else {
      v += s[i];
    }
    ++i;
  }
  ++i;  // closing quote
  return v;
}
}  // namespace

std::vector<MetricSample> parse_metrics(std::string_view text) {
  std::vector<MetricSample> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty() || line[0] == '#') continue;
    MetricSample m;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    m.name = std::string(line.substr(0, i));
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string_view::npos) break;
        std::string name(line.substr(i, eq - i));
        i = eq + 1;
        if (i >= line.size() || line[i] != '"') break;
        m.labels[name] = parse_label_value(line, i);
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    while (i < line.size() && line[i] == ' ') ++i;
    size_t end = line.find(' ', i);
    std::string val(
        line.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i));
    try {
      if (val == "+Inf")
        m.value = INFINITY;
      else if (val == "-Inf")
        m.value = -INFINITY;
      else
        m.value = std::stod(val);
    } catch (...) {
      continue;
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::optional<double> metric_value(std::string_view text, std::string_view name,
                                   const std::map<std::string, std::string>& labels) {
  std::optional<double> sum;
  for (const auto& m : parse_metrics(text)) {
    if (m.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = m.labels.find(k);
      if (it == m.labels.end() || it->second != v) {
        match = false;
        break;
      }
    }
    if (match) sum = sum.value_or(0) + m.value;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Kpid

Kpid::Kpid(KpidOptions options) : options_(std::move(options)) {
  if (options_.config_toml) write_config(*options_.config_toml);
}

Kpid::~Kpid() {
  if (pid_ > 0 && !exit_status_) {
    ::kill(pid_, SIGKILL);
    wait_for(pid_, 10s);
  }
  if (g_current_test_failed && run_ > 0) {
    std::cerr << "---- kpid log (" << log_path() << ", run " << run_ << ", tail) ----\n"
              << log_tail(6000) << "\n---- end of kpid log ----\n";
  }
}

void Kpid::write_config(std::string_view toml) const { write_file(config_path(), toml); }

std::string Kpid::log_path() const { return dir_.file("kpid-" + std::to_string(run_) + ".log"); }

std::string Kpid::log() const { return read_file(log_path()); }

void Kpid::reap_if_exited() {
  if (pid_ <= 0 || exit_status_) return;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) exit_status_ = decode_status(status);
}

bool Kpid::running() {
  reap_if_exited();
  return pid_ > 0 && !exit_status_;
}

void Kpid::start() {
  REQUIRE_FALSE(running());
  ++run_;
  exit_status_.reset();
  http_port_ = line_port_ = 0;
  std::vector<std::string> argv{kKpidBinary};
  if (options_.config_toml) argv.insert(argv.end(), {"--config", config_path()});
  if (options_.pass_data_dir) argv.insert(argv.end(), {"--data-dir", data_dir()});
  if (options_.pass_http_listen) argv.insert(argv.end(), {"--http-listen", "127.0.0.1:0"});
  if (options_.pass_line_listen) argv.insert(argv.end(), {"--line-listen", "127.0.0.1:0"});
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  pid_ = spawn(argv, "/dev/null", log_path(), log_path(), options_.env);

  static const std::regex http_re(R"(HTTP listening on 127\.0\.0\.1:(\d+))");
  static const std::regex line_re(R"(line protocol listening on 127\.0\.0\.1:(\d+))");
  std::string why = "timed out";
  const bool ready = eventually(
      [&] {
        if (!running()) {
          why = "kpid exited with status " + std::to_string(*exit_status_);
          return true;
        }
        const std::string text = log();
        std::smatch m;
        if (http_port_ == 0 && std::regex_search(text, m, http_re))
          http_port_ = static_cast<uint16_t>(std::stoi(m[1]));
        if (line_port_ == 0 && std::regex_search(text, m, line_re))
          line_port_ = static_cast<uint16_t>(std::stoi(m[1]));
        if (http_port_ == 0 || (options_.expect_line_listener && line_port_ == 0)) {
          why = "listening lines not found in the log";
          return false;
        }
        try {
          const int st = http_request(http_port_, "GET", "/readyz", {}, {}, 2s).status;
          why = "GET /readyz returned " + std::to_string(st);
          return st == 200;
        } catch (const std::exception& e) {
          why = std::string("GET /readyz: ") + e.what();
          return false;
        }
      },
      15s, 20ms);
  INFO("kpid start (run " << run_ << "): " << why << "\nargv: " << [&] {
    std::string s;
    for (const auto& a : argv) s += a + " ";
    return s;
  }() << "\nlog:\n" << log_tail(6000));
  REQUIRE(ready);
  REQUIRE(running());
}

int Kpid::signal_and_wait(int sig, std::chrono::milliseconds timeout) {
  REQUIRE(pid_ > 0);
  if (exit_status_) return *exit_status_;
  ::kill(pid_, sig);
  auto st = wait_for(pid_, timeout);
  if (!st) {
    ::kill(pid_, SIGKILL);
    exit_status_ = wait_for(pid_, 10s).value_or(-1);
    FAIL("kpid did not exit within " << timeout.count() << " ms of signal " << sig
                                     << "; killed. Log:\n"
                                     << log_tail(6000));
  }
  exit_status_ = *st;
  return *st;
}

int Kpid::stop(std::chrono::milliseconds timeout) { return signal_and_wait(SIGTERM, timeout); }

void Kpid::kill9() {
  REQUIRE(pid_ > 0);
  if (exit_status_) return;
  ::kill(pid_, SIGKILL);
  exit_status_ = wait_for(pid_, 10s).value_or(-1);
}

void Kpid::send_signal(int sig) {
  REQUIRE(running());
  ::kill(pid_, sig);
}

HttpResponse Kpid::get(std::string_view target, const Headers& headers) const {
  return http_request(http_port_, "GET", target, {}, headers);
}

HttpResponse Kpid::post(std::string_view target, std::string_view body,
                        const Headers& headers) const {
  return http_request(http_port_, "POST", target, body, headers);
}

HttpResponse Kpid::write(std::string_view body, std::string_view precision, bool v2,
                         bool gzipped) const {
  std::string target = v2 ? "/api/v2/write?org=o&bucket=b" : "/write?db=kpid";
  if (!precision.empty()) target += "&precision=" + std::string(precision);
  Headers h{{"Content-Type", "text/plain; charset=utf-8"}};
  if (gzipped) {
    h.emplace_back("Content-Encoding", "gzip");
    return post(target, gzip(body), h);
  }
  return post(target, body, h);
}

void Kpid::write_ok(std::string_view body, std::string_view precision, bool v2) const {
  const HttpResponse r = write(body, precision, v2);
  INFO("write (" << (v2 ? "v2" : "v1") << ", precision=" << precision << "):\n"
                 << body << "\n-> " << r.status << " " << r.body);
  REQUIRE(r.status == 204);
}

namespace {
LabelMap to_labels(const json::value& v) {
  LabelMap m;
  for (const auto& [k, val] : v.as_object()) m[std::string(k)] = std::string(val.as_string());
  return m;
}

double to_double(const json::value& v) {
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  throw std::runtime_error("not a number: " + json::serialize(v));
}

json::object api_success(const HttpResponse& r, std::string_view result_type) {
  INFO("response " << r.status << ": " << tail(r.body, 2000));
  REQUIRE(r.status == 200);
  json::value v;
  REQUIRE_NOTHROW(v = r.json());
  REQUIRE(v.is_object());
  REQUIRE(v.as_object().contains("status"));
  REQUIRE(v.at("status") == "success");
  if (!result_type.empty()) REQUIRE(v.at("data").at("resultType") == json::string(result_type));
  return v.as_object();
}
}  // namespace

std::vector<InstantSample> Kpid::query(std::string_view selector, std::string_view time) const {
  const std::string target =
      "/api/v1/query?" + form({{"query", std::string(selector)}, {"time", std::string(time)}});
  const HttpResponse r = get(target);
  INFO("GET " << target);
  const json::object v = api_success(r, "vector");
  std::vector<InstantSample> out;
  try {
    for (const auto& e : v.at("data").at("result").as_array()) {
      InstantSample s;
      s.metric = to_labels(e.at("metric"));
      const auto& pair = e.at("value").as_array();
      REQUIRE(pair.size() == 2);
      s.t = to_double(pair[0]);
      s.value = std::string(pair[1].as_string());
      out.push_back(std::move(s));
    }
  } catch (const std::exception& ex) {
    FAIL("bad vector result shape (" << ex.what() << "): " << tail(r.body, 2000));
  }
  return out;
}

std::vector<RangeSeries> Kpid::query_range(std::string_view selector, std::string_view start,
                                           std::string_view end, std::string_view step) const {
  const std::string target = "/api/v1/query_range?" + form({{"query", std::string(selector)},
                                                            {"start", std::string(start)},
                                                            {"end", std::string(end)},
                                                            {"step", std::string(step)}});
  const HttpResponse r = get(target);
  INFO("GET " << target);
  const json::object v = api_success(r, "matrix");
  std::vector<RangeSeries> out;
  try {
    for (const auto& e : v.at("data").at("result").as_array()) {
      RangeSeries s;
      s.metric = to_labels(e.at("metric"));
      for (const auto& p : e.at("values").as_array()) {
        const auto& pair = p.as_array();
        REQUIRE(pair.size() == 2);
        s.values.emplace_back(std::llround(to_double(pair[0]) * 1000.0),
                              std::string(pair[1].as_string()));
      }
      out.push_back(std::move(s));
    }
  } catch (const std::exception& ex) {
    FAIL("bad matrix result shape (" << ex.what() << "): " << tail(r.body, 2000));
  }
  std::sort(out.begin(), out.end(),
            [](const RangeSeries& a, const RangeSeries& b) { return a.metric < b.metric; });
  return out;
}

std::string Kpid::metrics() const {
  const HttpResponse r = get("/metrics");
  INFO("GET /metrics -> " << r.status << " " << tail(r.body, 1000));
  REQUIRE(r.status == 200);
  return r.body;
}

void require_bad_data(const HttpResponse& r) {
  INFO("response " << r.status << ": " << tail(r.body, 2000));
  CHECK(r.status == 400);
  json::value v;
  REQUIRE_NOTHROW(v = r.json());
  REQUIRE(v.is_object());
  CHECK(v.as_object().contains("status"));
  CHECK(v.as_object().contains("errorType"));
  CHECK(v.as_object().contains("error"));
  if (v.as_object().contains("status")) CHECK(v.at("status") == "error");
  if (v.as_object().contains("errorType")) CHECK(v.at("errorType") == "bad_data");
  if (v.as_object().contains("error")) {
    CHECK(v.at("error").is_string());
    if (v.at("error").is_string()) CHECK_FALSE(v.at("error").as_string().empty());
  }
}

const InstantSample* find_sample(const std::vector<InstantSample>& v, const LabelMap& metric) {
  for (const auto& s : v)
    if (s.metric == metric) return &s;
  return nullptr;
}

double num(const std::string& value) {
  INFO("sample value string: \"" << value << "\"");
  size_t used = 0;
  double d = 0;
  REQUIRE_NOTHROW(d = std::stod(value, &used));
  REQUIRE(used == value.size());
  return d;
}

LabelMap require_value_at(const Kpid& k, std::string_view selector, int64_t ms, double expected) {
  const auto v = k.query_at_ms(selector, ms);
  INFO("instant query " << selector << " at " << fmt_seconds(ms) << " (expected value " << expected
                        << ")");
  REQUIRE(v.size() == 1);
  CHECK(num(v[0].value) == expected);
  CHECK(std::llround(v[0].t * 1000.0) == ms);  // the evaluation time, as in Prometheus
  return v[0].metric;
}

void require_empty_at(const Kpid& k, std::string_view selector, int64_t ms) {
  const auto v = k.query_at_ms(selector, ms);
  INFO("instant query " << selector << " at " << fmt_seconds(ms) << " (expected no result)");
  INFO("first result value: " << (v.empty() ? std::string("-") : v[0].value));
  REQUIRE(v.empty());
}

// ---------------------------------------------------------------------------------------------
// Alerting helpers

int64_t unique_now_ms() {
  static std::mutex mutex;
  static int64_t last = 0;
  std::lock_guard lock(mutex);
  int64_t t = now_ms();
  while (t <= last) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    t = now_ms();
  }
  last = t;
  return t;
}

void write_value_now(const Kpid& k, std::string_view metric, double value) {
  std::ostringstream line;
  line.precision(17);
  line << metric << " value=" << value << " " << unique_now_ms();
  k.write_ok(line.str(), "ms");
}

json::value require_api_data(const HttpResponse& r) {
  const json::object o = api_success(r, "");
  REQUIRE(o.contains("data"));
  return o.at("data");
}

json::array get_alerts(const Kpid& k, std::string_view query) {
  const std::string target =
      "/api/v1/alerts" + (query.empty() ? std::string() : "?" + std::string(query));
  INFO("GET " << target);
  const json::value data = require_api_data(k.get(target));
  REQUIRE(data.is_array());
  return data.as_array();
}

json::array wait_for_items(const Kpid& k, std::string_view target, size_t count,
                           std::chrono::milliseconds timeout) {
  json::array items;
  eventually(
      [&] {
        const HttpResponse r = k.get(target);
        if (r.status != 200) return false;
        const json::value body = r.json();
        items = body.at("data").as_array();
        return items.size() == count;
      },
      timeout, 100ms);
  return items;
}

json::object get_alert_detail(const Kpid& k, std::string_view id) {
  const std::string target = "/api/v1/alerts/" + std::string(id);
  INFO("GET " << target);
  const json::value data = require_api_data(k.get(target));
  REQUIRE(data.is_object());
  return data.as_object();
}

std::string json_str(const json::value& v, std::string_view key) {
  if (!v.is_object()) return {};
  const json::value* f = v.as_object().if_contains(key);
  return f != nullptr && f->is_string() ? std::string(f->as_string()) : std::string();
}

RealVictoriaMetrics::RealVictoriaMetrics(const std::vector<std::string>& extra_args)
    : port(free_port()), args(extra_args) {
  start();
}

void RealVictoriaMetrics::start() {
  std::vector<std::string> argv = {VICTORIA_METRICS_BINARY, "-storageDataPath=" + dir.file("data"),
                                   "-httpListenAddr=127.0.0.1:" + std::to_string(port),
                                   "-retentionPeriod=100y", "-loggerLevel=WARN"};
  argv.insert(argv.end(), args.begin(), args.end());
  process = std::make_unique<BackgroundProcess>("victoria-metrics", argv, dir.file("victoria.log"));
  REQUIRE(eventually(
      [&] {
        try {
          return http_request(port, "GET", "/health", {}, {}, 2s).status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      30s, 50ms));
}

void RealVictoriaMetrics::stop() {
  if (process) process->stop();
  process.reset();
}

void RealVictoriaMetrics::flush() const {
  REQUIRE(http_request(port, "GET", "/internal/force_flush", {}, {}, 10s).status == 200);
}

}  // namespace kpid_it

namespace kpid_it {

void require_error(const HttpResponse& r, int status, std::string_view type) {
  INFO("response " << r.status << ": " << r.body);
  REQUIRE(r.status == status);
  boost::json::value v;
  REQUIRE_NOTHROW(v = r.json());
  CHECK(json_str(v, "status") == "error");
  CHECK(json_str(v, "errorType") == type);
  CHECK_FALSE(json_str(v, "error").empty());
}

RealPrometheus::RealPrometheus(const std::string& config_yaml,
                               const std::vector<std::string>& extra_args)
    : port(free_port()) {
  write_file(dir.file("prometheus.yml"), config_yaml);
  std::filesystem::create_directories(dir.file("data"));
  std::vector<std::string> argv = {PROMETHEUS_BINARY, "--config.file=" + dir.file("prometheus.yml"),
                                   "--storage.tsdb.path=" + dir.file("data"),
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port),
                                   "--log.level=warn"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process = std::make_unique<BackgroundProcess>("prometheus", argv, dir.file("prometheus.log"));
  REQUIRE(eventually(
      [&] {
        try {
          return http_request(port, "GET", "/-/ready", {}, {}, 2s).status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      30s, 100ms));
}

}  // namespace kpid_it
