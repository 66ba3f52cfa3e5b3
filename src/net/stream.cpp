#include "kpid/net/stream.h"

namespace kpid::net {

Stream::Stream(boost::asio::ip::tcp::socket socket,
               std::shared_ptr<boost::asio::ssl::context> context)
    : context_(std::move(context)) {
  if (context_) {
    secure_.emplace(std::move(socket), *context_);
  } else {
    plain_.emplace(std::move(socket));
  }
}

}  // namespace kpid::net
