#pragma once
// The dashboard's files (src/server/dashboard/), compiled into kpid by cmake/embed_assets.cmake;
// private to the server module.

#include <span>
#include <string_view>

namespace kpid::server::detail {

struct EmbeddedAsset {
  std::string_view name;  // file name, e.g. "dashboard.js"
  std::string_view data;  // the file's bytes; static storage
  std::string_view etag;  // quoted, e.g. "\"3f2a...\"": changes whenever the content does
};

// Every embedded file; static storage, never changes at run time.
std::span<const EmbeddedAsset> embedded_assets();

}  // namespace kpid::server::detail
