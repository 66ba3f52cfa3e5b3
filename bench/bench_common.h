#pragma once
// What the benchmark programs (kpid_bench, peer_load) share: a synchronous keep-alive
// HTTP/1.1 client on 127.0.0.1 that reconnects if the server closes (header-only Boost.Beast),
// the split of a generated data set into request bodies per connection, and command-line flags.

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kpid_bench {

// A bench program's command line: flags as "--flag value" or "--flag=value". Errors print
// "PROGRAM: message (see PROGRAM --help)" and exit 2.
class Flags {
 public:
  // Reads argv[first...].
  Flags(std::string program, int argc, char** argv, int first)
      : program_(std::move(program)), argc_(argc), argv_(argv), i_(first - 1) {}

  // Moves to the next argument; false after the last.
  bool next() {
    if (++i_ >= argc_) return false;
    arg_ = argv_[i_];
    flag_ = arg_;
    inline_value_.reset();
    if (auto eq = flag_.find('='); flag_.starts_with("--") && eq != std::string::npos) {
      inline_value_ = flag_.substr(eq + 1);
      flag_.resize(eq);
    }
    return true;
  }
  const std::string& flag() const { return flag_; }
  const std::string& arg() const { return arg_; }  // as written, "=value" included

  // The flag's value: after '=', else the next argument.
  std::string value() {
    if (inline_value_) return *inline_value_;
    if (i_ + 1 >= argc_) fail(flag_ + " needs a value");
    return argv_[++i_];
  }

  // The value as an integer in [min, max].
  template <typename Int>
  Int integer(Int min, Int max) {
    const std::string text = value();
    Int v{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v < min || v > max) {
      fail(flag_ + " needs an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
           "], got \"" + text + "\"");
    }
    return v;
  }

  [[noreturn]] void fail(const std::string& message) const {
    std::cerr << program_ << ": " << message << " (see " << program_ << " --help)\n";
    std::exit(2);
  }

 private:
  std::string program_;
  int argc_;
  char** argv_;
  int i_;
  std::string arg_;
  std::string flag_;
  std::optional<std::string> inline_value_;
};

class HttpClient {
 public:
  HttpClient(uint16_t port, std::string user_agent)
      : port_(port), user_agent_(std::move(user_agent)), socket_(ioc_) {}

  struct Reply {
    unsigned status = 0;
    std::string body;
  };

  void connect() {
    if (socket_.is_open()) return;
    socket_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), port_));
    socket_.set_option(boost::asio::ip::tcp::no_delay(true));
    buffer_.clear();
  }

  bool connected() const { return socket_.is_open(); }
  int reconnects() const { return reconnects_; }
  // Headers every POST carries instead of the default text Content-Type (a protobuf wire).
  void set_post_headers(std::vector<std::pair<std::string, std::string>> headers) {
    post_headers_ = std::move(headers);
  }

  // Sends `body` (not copied) and reads the whole reply.
  Reply request(boost::beast::http::verb verb, const std::string& target,
                std::string_view body = {}) {
    namespace http = boost::beast::http;
    if (!socket_.is_open()) {
      ++reconnects_;
      connect();
    }
    http::request<http::span_body<const char>> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::user_agent, user_agent_);
    if (verb == http::verb::post && post_headers_.empty()) {
      req.set(http::field::content_type, "text/plain; charset=utf-8");
    } else if (verb == http::verb::post) {
      for (const auto& [name, value] : post_headers_) req.set(name, value);
    }
    req.body() = {body.data(), body.size()};
    req.keep_alive(true);
    req.prepare_payload();
    http::write(socket_, req);

    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    http::read(socket_, buffer_, parser);
    auto& res = parser.get();
    Reply reply{res.result_int(), std::move(res.body())};
    if (!res.keep_alive()) close();
    return reply;
  }

  void close() {
    boost::system::error_code ignored;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  uint16_t port_;
  std::string user_agent_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
  int reconnects_ = 0;
  std::vector<std::pair<std::string, std::string>> post_headers_;
};

// One request body of line protocol.
struct Body {
  std::string text;
  int64_t lines = 0;
};

// Connection c owns series c, c+C, ... and sends them step by step (all its series at step 0,
// then step 1, ...), so every series' samples arrive in time order; bodies hold `lines_per_body`
// lines. append_line(out, series, step) appends one line.
template <typename AppendLine>
std::vector<std::vector<Body>> split_bodies(int connections, int64_t steps, int series,
                                            int64_t lines_per_body, size_t line_bytes_estimate,
                                            AppendLine&& append_line) {
  std::vector<std::vector<Body>> per_conn(static_cast<size_t>(connections));
  for (int c = 0; c < connections; ++c) {
    auto& bodies = per_conn[static_cast<size_t>(c)];
    Body current;
    for (int64_t k = 0; k < steps; ++k) {
      for (int i = c; i < series; i += connections) {
        if (current.lines == 0) {
          current.text.reserve(static_cast<size_t>(lines_per_body) * line_bytes_estimate);
        }
        append_line(current.text, i, k);
        if (++current.lines == lines_per_body) {
          bodies.push_back(std::move(current));
          current = Body{};
        }
      }
    }
    if (current.lines > 0) bodies.push_back(std::move(current));
  }
  return per_conn;
}

}  // namespace kpid_bench
