#pragma once
// The byte stream of one accepted connection: plain TCP or TLS over it, behind one type, so a
// protocol's session is written once (not templated on the stream) and serves both. It meets
// Asio's AsyncReadStream and AsyncWriteStream requirements, so Beast's http::async_read and
// async_write and Asio's async_read/async_write take it as they take a socket.

#include <cstddef>
#include <memory>
#include <optional>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace kpid::net {

class Stream {
 public:
  using executor_type = boost::asio::any_io_executor;
  using TlsStream = boost::asio::ssl::stream<boost::beast::tcp_stream>;

  // TLS over `socket` with `context`, which the stream keeps for its lifetime (a reload that
  // swaps the listener's context leaves this connection's alone); plain TCP when `context` is
  // null. The handshake is the caller's (net::Listener does it before the session starts).
  explicit Stream(boost::asio::ip::tcp::socket socket,
                  std::shared_ptr<boost::asio::ssl::context> context = nullptr);

  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // The executor of the socket: the connection's strand.
  executor_type get_executor() noexcept { return tcp().get_executor(); }

  bool is_tls() const { return secure_.has_value(); }
  // The TCP layer under either kind: what carries timeouts (expires_after), and what cancel and
  // close act on.
  boost::beast::tcp_stream& tcp() { return secure_ ? secure_->next_layer() : *plain_; }
  // The TLS layer, or null for a plain connection.
  TlsStream* tls() { return secure_ ? &*secure_ : nullptr; }

  // Reads some bytes (decrypted when TLS). Completion: void(error_code, size_t).
  template <typename MutableBufferSequence, typename Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBufferSequence& b) {
          if (secure_) {
            secure_->async_read_some(b, std::move(handler));
          } else {
            plain_->async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  // Writes some bytes (encrypted when TLS). Completion: void(error_code, size_t).
  template <typename ConstBufferSequence, typename Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBufferSequence& b) {
          if (secure_) {
            secure_->async_write_some(b, std::move(handler));
          } else {
            plain_->async_write_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

 private:
  std::shared_ptr<boost::asio::ssl::context> context_;  // null: plain
  std::optional<boost::beast::tcp_stream> plain_;
  std::optional<TlsStream> secure_;
};

}  // namespace kpid::net
