#pragma once
// A loopback HTTP/1.1 (or HTTPS) server for tests and benches that records every request it
// receives and answers with a configurable response. Runs its own thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kpid::testing {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names; repeated ones joined by ", "
  std::string body;
  std::chrono::steady_clock::time_point at;  // when the whole request had arrived
  uint64_t connection = 0;  // 1, 2, ... per accepted connection: equal ids mean keep-alive reuse
};

struct ReceiverOptions {
  uint16_t port = 0;  // 0: an ephemeral port, see port()
  bool tls = false;   // serve HTTPS with cert_file/key_file (PEM)
  std::string cert_file;
  std::string key_file;
};

// Thread-safe: every method may be called from any thread except the request callback, which
// must not call stop(), start() or the destructor.
class RecordingReceiver {
 public:
  // Binds 127.0.0.1 and starts serving. Throws std::runtime_error if it cannot listen or the
  // TLS files cannot be loaded: a test cannot go on without its receiver.
  explicit RecordingReceiver(ReceiverOptions options = {});
  ~RecordingReceiver();
  RecordingReceiver(const RecordingReceiver&) = delete;
  RecordingReceiver& operator=(const RecordingReceiver&) = delete;

  uint16_t port() const;
  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
  std::string url() const;

  // The response to requests that arrive from now on; by default 200 with "{}".
  void respond_with(int status, std::string body = "",
                    std::string content_type = "application/json");
  // An extra header on responses from now on (e.g. Retry-After); an empty value removes it.
  void response_header(std::string name, std::string value);
  // Called on the server thread for each request once recorded, before the response is written
  // (e.g. for benches that measure arrival times). Empty to remove.
  void on_request(std::function<void(const ReceivedRequest&)> callback);

  // Closes the listener and every connection; clients then get "connection refused". Returns
  // once the listener is closed. Idempotent.
  void stop();
  // Listens again on the same port (SO_REUSEADDR). No-op while listening. Throws like the
  // constructor if the port cannot be bound again.
  void start();

  std::vector<ReceivedRequest> requests() const;
  void clear();
  // Waits until at least `count` requests are recorded; false if `timeout` passed first.
  bool wait_for(size_t count, std::chrono::milliseconds timeout) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpid::testing
