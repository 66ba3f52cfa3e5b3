#include "support/recording_receiver.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>

namespace kpid::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

struct Reply {
  int status = 200;
  std::string body = "{}";
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers;
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

struct RecordingReceiver::Impl {
  explicit Impl(ReceiverOptions opts) : options(std::move(opts)) {
    if (options.tls) {
      tls.emplace(ssl::context::tls_server);
      error_code ec;
      tls->use_certificate_chain_file(options.cert_file, ec);
      if (!ec) tls->use_private_key_file(options.key_file, ssl::context::pem, ec);
      if (ec) {
        throw std::runtime_error("RecordingReceiver: cannot load " + options.cert_file + " / " +
                                 options.key_file + ": " + ec.message());
      }
    }
    // Before the thread exists, so a bind error reaches the constructor's caller.
    listen();
    thread = std::thread([this] { io.run(); });
  }

  ~Impl() {
    close_all_on_server_thread();
    // The sessions end once their sockets are closed; then run() runs out of work.
    work.reset();
    thread.join();
  }

  void listen() {
    tcp::endpoint endpoint(asio::ip::address_v4::loopback(), port.load());
    error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    // Lets start() bind the same port again while old connections linger in TIME_WAIT.
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      error_code ignored;
      acceptor.close(ignored);
      throw std::runtime_error("RecordingReceiver: cannot listen on 127.0.0.1:" +
                               std::to_string(endpoint.port()) + ": " + ec.message());
    }
    port = acceptor.local_endpoint().port();
    asio::co_spawn(io, accept_loop(++generation), asio::detached);
  }

  asio::awaitable<void> accept_loop(uint64_t my_generation) {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kAwait);
      // A stale loop from before a stop() must not serve the new listener's connections.
      if (ec || my_generation != generation) co_return;
      uint64_t id = ++accepted;
      if (tls) {
        spawn(std::make_shared<beast::ssl_stream<beast::tcp_stream>>(std::move(socket), *tls), id);
      } else {
        spawn(std::make_shared<beast::tcp_stream>(std::move(socket)), id);
      }
    }
  }

  template <typename Stream>
  void spawn(std::shared_ptr<Stream> stream, uint64_t id) {
    // An aliasing pointer to the TCP layer, so stop() can close any kind of stream.
    live[id] = std::shared_ptr<beast::tcp_stream>(stream, &beast::get_lowest_layer(*stream));
    asio::co_spawn(io, serve(std::move(stream), id), asio::detached);
  }

  template <typename Stream>
  asio::awaitable<void> serve(std::shared_ptr<Stream> stream, uint64_t id) {
    constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
    bool ok = true;
    if constexpr (kTls) {
      auto [ec] = co_await stream->async_handshake(ssl::stream_base::server, kAwait);
      ok = !ec;
    }
    beast::flat_buffer buffer;
    while (ok) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(64 << 20);
      auto [read_ec, read_n] = co_await http::async_read(*stream, buffer, parser, kAwait);
      (void)read_n;
      if (read_ec) break;
      http::request<http::string_body> request = parser.release();

      ReceivedRequest received;
      received.method = std::string(request.method_string());
      received.target = std::string(request.target());
      for (const auto& field : request) {
        auto [it, inserted] =
            received.headers.emplace(lower(field.name_string()), std::string(field.value()));
        if (!inserted) it->second += ", " + std::string(field.value());
      }
      received.body = std::move(request.body());
      received.at = std::chrono::steady_clock::now();
      received.connection = id;
      auto [reply, callback] = record(received);
      if (callback) callback(received);

      http::response<http::string_body> response;
      response.version(request.version());
      response.result(static_cast<unsigned>(reply.status));
      if (!reply.content_type.empty()) response.set(http::field::content_type, reply.content_type);
      for (const auto& [name, value] : reply.headers) response.set(name, value);
      response.body() = std::move(reply.body);
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      // A HEAD response states the body's length but carries no body.
      if (request.method() == http::verb::head) response.body().clear();
      auto [write_ec, write_n] = co_await http::async_write(*stream, response, kAwait);
      (void)write_n;
      if (write_ec || !response.keep_alive()) break;
    }
    beast::get_lowest_layer(*stream).close();
    live.erase(id);
  }

  std::pair<Reply, std::function<void(const ReceivedRequest&)>> record(
      const ReceivedRequest& received) {
    std::lock_guard lock(mutex);
    requests.push_back(received);
    arrived.notify_all();
    return {reply, callback};
  }

  void close_all() {
    ++generation;
    error_code ignored;
    acceptor.close(ignored);
    for (auto& [id, weak] : live) {
      if (auto stream = weak.lock()) stream->close();
    }
  }

  void close_all_on_server_thread() {
    std::promise<void> done;
    asio::post(io, [&] {
      close_all();
      done.set_value();
    });
    done.get_future().wait();
  }

  void start_on_server_thread() {
    std::promise<void> done;
    asio::post(io, [&] {
      try {
        if (!acceptor.is_open()) listen();
        done.set_value();
      } catch (...) {
        done.set_exception(std::current_exception());
      }
    });
    done.get_future().get();
  }

  ReceiverOptions options;
  std::optional<ssl::context> tls;
  std::atomic<uint16_t> port{options.port};

  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  // Touched only on the server thread (or before it starts): no locking.
  tcp::acceptor acceptor{io};
  uint64_t generation = 0;  // bumped by each listen and stop
  uint64_t accepted = 0;
  std::map<uint64_t, std::weak_ptr<beast::tcp_stream>> live;

  // Shared with the callers' threads.
  mutable std::mutex mutex;
  mutable std::condition_variable arrived;
  std::vector<ReceivedRequest> requests;
  Reply reply;
  std::function<void(const ReceivedRequest&)> callback;

  std::thread thread;
};

RecordingReceiver::RecordingReceiver(ReceiverOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

RecordingReceiver::~RecordingReceiver() = default;

uint16_t RecordingReceiver::port() const { return impl_->port.load(); }

std::string RecordingReceiver::url() const {
  return std::string(impl_->options.tls ? "https" : "http") +
         "://127.0.0.1:" + std::to_string(port());
}

void RecordingReceiver::respond_with(int status, std::string body, std::string content_type) {
  std::lock_guard lock(impl_->mutex);
  impl_->reply =
      Reply{status, std::move(body), std::move(content_type), std::move(impl_->reply.headers)};
}

void RecordingReceiver::response_header(std::string name, std::string value) {
  std::lock_guard lock(impl_->mutex);
  if (value.empty()) {
    impl_->reply.headers.erase(name);
  } else {
    impl_->reply.headers[std::move(name)] = std::move(value);
  }
}

void RecordingReceiver::on_request(std::function<void(const ReceivedRequest&)> callback) {
  std::lock_guard lock(impl_->mutex);
  impl_->callback = std::move(callback);
}

void RecordingReceiver::stop() { impl_->close_all_on_server_thread(); }

void RecordingReceiver::start() { impl_->start_on_server_thread(); }

std::vector<ReceivedRequest> RecordingReceiver::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->requests;
}

void RecordingReceiver::clear() {
  std::lock_guard lock(impl_->mutex);
  impl_->requests.clear();
}

bool RecordingReceiver::wait_for(size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->arrived.wait_for(lock, timeout, [&] { return impl_->requests.size() >= count; });
}

}  // namespace kpid::testing
