#pragma once
// A Chrome DevTools Protocol client over one WebSocket (Boost.Beast), for tests that drive a
// real headless Chromium: send a command and wait for its reply, and read the events the browser
// sends meanwhile (console messages, exceptions, network requests, page loads).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

namespace kpid::testing {

struct CdpEvent {
  std::string method;  // e.g. "Runtime.consoleAPICalled"
  boost::json::object params;
  std::string session_id;  // the target session it came from; empty for the browser's own
};

// Thread-safe: every method may be called from any thread. A reader thread receives every
// message: a reply wakes the call() waiting for it, an event is appended to events().
class CdpClient {
 public:
  // Connects to ws://127.0.0.1:`port``path` (the browser endpoint Chromium writes to
  // DevToolsActivePort in its user data dir). Throws std::runtime_error when it cannot.
  CdpClient(uint16_t port, const std::string& path,
            std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Closes the connection and joins the reader thread.
  ~CdpClient();
  CdpClient(const CdpClient&) = delete;
  CdpClient& operator=(const CdpClient&) = delete;

  // Sends `method` with `params` (to the target attached as `session_id`, or to the browser
  // when empty) and returns the reply's "result". Throws std::runtime_error with the protocol
  // error, on timeout, or when the connection is closed.
  boost::json::object call(std::string_view method, boost::json::object params = {},
                           std::string_view session_id = {},
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Every event received so far, oldest first.
  std::vector<CdpEvent> events() const;
  // How many events have been received so far (a mark for wait_for_event's `from`).
  size_t event_count() const;
  // The first event, among those after the first `from`, for which `pred` holds; waits up to
  // `timeout` for it to arrive. nullopt on timeout or when the connection closed.
  std::optional<CdpEvent> wait_for_event(const std::function<bool(const CdpEvent&)>& pred,
                                         std::chrono::milliseconds timeout, size_t from = 0);
  // False once the browser closed the connection or a network error ended it.
  bool connected() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpid::testing
