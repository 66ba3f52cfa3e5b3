#include "kpid/net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <system_error>

namespace kpid::net {

namespace asio = boost::asio;
namespace ssl = asio::ssl;

namespace {

// OpenSSL's reason alone ("key values mismatch"), without the library name asio adds.
std::string tls_reason(const boost::system::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    if (const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()))) {
      return reason;
    }
  }
  return ec.message();
}

// A missing or unreadable file says so plainly, instead of OpenSSL's "system lib" errors.
Status check_readable(const std::string& path, const std::string& what) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return Status::invalid_argument("cannot read " + what + " " + path + ": " +
                                    std::error_code(errno, std::generic_category()).message());
  }
  std::fclose(f);
  return Status::ok();
}

// Both PEM forms of an encrypted key say so: "BEGIN ENCRYPTED PRIVATE KEY" (PKCS#8) and
// "Proc-Type: 4,ENCRYPTED" (traditional).
bool is_encrypted(const std::string& key_file) {
  std::ifstream in(key_file);
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  return head.find("ENCRYPTED") != std::string::npos;
}

// Without a callback OpenSSL would prompt for the passphrase of an encrypted key on the
// terminal; a daemon has nobody there, so the key simply fails to load.
int no_passphrase(char*, int, int, void*) { return 0; }

}  // namespace

Result<std::shared_ptr<ssl::context>> load_server_context(const TlsOptions& options,
                                                          TlsFile* failed) {
  auto fail = [&](TlsFile file, Status status) -> Result<std::shared_ptr<ssl::context>> {
    if (failed != nullptr) *failed = file;
    return status;
  };
  if (failed != nullptr) *failed = TlsFile::kNone;
  if (auto s = check_readable(options.cert_file, "certificate file"); !s) {
    return fail(TlsFile::kCert, s);
  }
  if (auto s = check_readable(options.key_file, "key file"); !s) return fail(TlsFile::kKey, s);

  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(
      native, options.min_version == TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  // Client-initiated renegotiation costs the server a handshake per request: refused.
  context->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                       ssl::context::single_dh_use | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_default_passwd_cb(native, no_passphrase);

  boost::system::error_code ec;
  context->use_certificate_chain_file(options.cert_file, ec);
  if (ec) {
    return fail(TlsFile::kCert,
                Status::invalid_argument("cannot load certificate chain " + options.cert_file +
                                         ": " + tls_reason(ec)));
  }
  const auto mismatch = [&] {
    return fail(TlsFile::kKey, Status::invalid_argument("private key " + options.key_file +
                                                        " does not match the certificate in " +
                                                        options.cert_file));
  };
  context->use_private_key_file(options.key_file, ssl::context::pem, ec);
  if (ec) {
    if (ec.category() == asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
      return mismatch();
    }
    return fail(TlsFile::kKey,
                Status::invalid_argument("cannot load private key " + options.key_file + ": " +
                                         (is_encrypted(options.key_file)
                                              ? "it is encrypted; kpid needs it unencrypted"
                                              : tls_reason(ec))));
  }
  // A key of another type than the certificate's loads into its own slot without complaint;
  // only this check sees that it does not belong to the certificate.
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return mismatch();
  }
  return context;
}

Status ServerTls::load(const std::string& cert_file, const std::string& key_file) {
  TlsOptions options;
  options.cert_file = cert_file;
  options.key_file = key_file;
  options.min_version = min_version_;
  auto context = load_server_context(options);
  if (!context) return context.status();
  std::lock_guard lock(mutex_);
  context_ = std::move(*context);
  return Status::ok();
}

std::shared_ptr<ssl::context> ServerTls::context() const {
  std::lock_guard lock(mutex_);
  return context_;
}

}  // namespace kpid::net
