#pragma once
// Server-side TLS for the HTTP and TCP listeners: a context loaded from a PEM certificate chain
// and private key, and a holder that swaps in a re-read pair (SIGHUP) while connections already
// open keep the context they were accepted with.

#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "kpid/core/status.h"
#include "kpid/net/tls_options.h"

namespace kpid::net {

// Which file a failed load was about, so a config error can point at the right key.
enum class TlsFile { kNone, kCert, kKey };

// Loads a server context: the chain, then the key, checked to match the certificate. On failure
// the message names the file and what is wrong with it ("cannot read key file /k.pem: No such
// file or directory", "private key /k.pem does not match the certificate in /c.pem", OpenSSL's
// reason for a bad PEM), and `*failed`, when given, says which of the two files it was.
Result<std::shared_ptr<boost::asio::ssl::context>> load_server_context(const TlsOptions& options,
                                                                       TlsFile* failed = nullptr);

// The context a listener hands to each new connection. Thread-safe.
class ServerTls {
 public:
  // The minimum version is fixed for the listener's lifetime; load() sets the pair.
  explicit ServerTls(TlsVersion min_version) : min_version_(min_version) {}

  // Reads the certificate chain and key. On success new connections get the new pair; on
  // failure the running pair stays and the error is returned.
  Status load(const std::string& cert_file, const std::string& key_file);

  // The current context (null before the first successful load). A connection keeps the
  // pointer for its lifetime, so a reload never changes an open connection's certificate.
  std::shared_ptr<boost::asio::ssl::context> context() const;

 private:
  const TlsVersion min_version_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;
};

}  // namespace kpid::net
