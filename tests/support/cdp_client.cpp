#include "support/cdp_client.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

namespace kpid::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;

// Every socket operation runs on the io thread (a Beast stream allows one read and one write in
// flight, from one thread); callers only post to it and wait on the condition variable.
struct CdpClient::Impl {
  asio::io_context io;
  websocket::stream<beast::tcp_stream> ws{io};
  beast::flat_buffer buffer;
  std::deque<std::string> writes;  // io thread only
  std::thread thread;
  std::atomic<int64_t> next_id{1};

  mutable std::mutex mutex;
  std::condition_variable changed;
  std::map<int64_t, json::object> replies;
  std::vector<CdpEvent> events;
  bool closed = false;
  std::string error;

  void fail(const std::string& why) {
    std::lock_guard lock(mutex);
    if (!closed) error = why;
    closed = true;
    changed.notify_all();
  }

  void read_next() {
    ws.async_read(buffer, [this](beast::error_code ec, size_t) {
      if (ec) {
        fail("read: " + ec.message());
        return;
      }
      const std::string text = beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      handle(text);
      read_next();
    });
  }

  void handle(const std::string& text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) return;  // not CDP; nothing waits for it
    json::object& o = v.as_object();
    std::lock_guard lock(mutex);
    if (const json::value* id = o.if_contains("id"); id && id->is_int64()) {
      replies[id->as_int64()] = std::move(o);
    } else if (const json::value* method = o.if_contains("method"); method && method->is_string()) {
      CdpEvent e;
      e.method = std::string(method->as_string());
      if (const json::value* p = o.if_contains("params"); p && p->is_object()) {
        e.params = p->as_object();
      }
      if (const json::value* s = o.if_contains("sessionId"); s && s->is_string()) {
        e.session_id = std::string(s->as_string());
      }
      events.push_back(std::move(e));
    }
    changed.notify_all();
  }

  void write_next() {
    ws.text(true);
    ws.async_write(asio::buffer(writes.front()), [this](beast::error_code ec, size_t) {
      if (ec) {
        fail("write: " + ec.message());
        return;
      }
      writes.pop_front();
      if (!writes.empty()) write_next();
    });
  }

  void send(std::string text) {
    asio::post(io, [this, text = std::move(text)]() mutable {
      writes.push_back(std::move(text));
      if (writes.size() == 1) write_next();
    });
  }
};

CdpClient::CdpClient(uint16_t port, const std::string& path, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  try {
    auto& stream = beast::get_lowest_layer(m.ws);
    stream.expires_after(timeout);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    m.ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
      req.set(beast::http::field::user_agent, "kpid-test-cdp");
    }));
    m.ws.read_message_max(64u << 20);  // full-page screenshots arrive as one base64 message
    m.ws.handshake("127.0.0.1:" + std::to_string(port), path);
    // The WebSocket's own timeouts from now on (the test bounds each call itself).
    stream.expires_never();
    m.ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
  } catch (const std::exception& e) {
    throw std::runtime_error("CDP connect to 127.0.0.1:" + std::to_string(port) + path + ": " +
                             e.what());
  }
  m.read_next();
  m.thread = std::thread([&m] { m.io.run(); });
}

CdpClient::~CdpClient() {
  Impl& m = *impl_;
  asio::post(m.io, [&m] {
    beast::error_code ignored;
    beast::get_lowest_layer(m.ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(m.ws).close();
  });
  if (m.thread.joinable()) m.thread.join();
}

json::object CdpClient::call(std::string_view method, json::object params,
                             std::string_view session_id, std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  const int64_t id = m.next_id++;
  json::object message{{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (!session_id.empty()) message["sessionId"] = session_id;
  m.send(json::serialize(message));

  std::unique_lock lock(m.mutex);
  const bool answered =
      m.changed.wait_for(lock, timeout, [&] { return m.replies.contains(id) || m.closed; });
  auto it = m.replies.find(id);
  if (it == m.replies.end()) {
    throw std::runtime_error("CDP " + std::string(method) + ": " +
                             (answered
                                  ? "connection closed (" + m.error + ")"
                                  : "no reply within " + std::to_string(timeout.count()) + " ms"));
  }
  json::object reply = std::move(it->second);
  m.replies.erase(it);
  if (const json::value* error = reply.if_contains("error")) {
    throw std::runtime_error("CDP " + std::string(method) + " failed: " + json::serialize(*error));
  }
  if (json::value* result = reply.if_contains("result"); result && result->is_object()) {
    return std::move(result->as_object());
  }
  return {};
}

std::vector<CdpEvent> CdpClient::events() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->events;
}

size_t CdpClient::event_count() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->events.size();
}

std::optional<CdpEvent> CdpClient::wait_for_event(const std::function<bool(const CdpEvent&)>& pred,
                                                  std::chrono::milliseconds timeout, size_t from) {
  Impl& m = *impl_;
  std::unique_lock lock(m.mutex);
  std::optional<CdpEvent> found;
  size_t next = from;
  m.changed.wait_for(lock, timeout, [&] {
    for (; next < m.events.size(); ++next) {
      if (pred(m.events[next])) {
        found = m.events[next];
        return true;
      }
    }
    return m.closed;
  });
  return found;
}

bool CdpClient::connected() const {
  std::lock_guard lock(impl_->mutex);
  return !impl_->closed;
}

}  // namespace kpid::testing
