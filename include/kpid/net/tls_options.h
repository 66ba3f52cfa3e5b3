#pragma once
// A listener's TLS settings, apart from OpenSSL (tls.h loads them), so options headers and the
// config can hold them without pulling in Asio's SSL.

#include <string>

#include "kpid/core/source_pos.h"

namespace kpid::net {

enum class TlsVersion { kTls12, kTls13 };

// A listener's TLS ([http.tls], [line.tls]): on when cert_file and key_file are set.
struct TlsOptions {
  std::string cert_file;  // PEM: the server certificate first, then any intermediates
  std::string key_file;   // PEM private key matching it, unencrypted
  TlsVersion min_version = TlsVersion::kTls12;
  // Where the files were configured, for errors found when they are loaded.
  SourcePos cert_file_pos;
  SourcePos key_file_pos;
  bool enabled() const { return !cert_file.empty(); }
};

}  // namespace kpid::net
