// The dashboard: GET / (index.html) and GET /ui/FILE (its CSS and JavaScript), served from the
// files compiled into kpid (src/server/dashboard/, embedded by cmake/embed_assets.cmake). The
// page reads everything else from the JSON API of the same origin.
#include <algorithm>

#include "dashboard_assets.h"
#include "handlers.h"

namespace kpid::server::detail {

namespace http = boost::beast::http;

namespace {

// Only this origin, no inline script or style, no framing: the page cannot load anything from
// elsewhere, and an API string that slipped into markup could not run. `data:` images are for
// the empty favicon, which keeps the browser from asking for /favicon.ico.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

std::string_view content_type_of(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

const EmbeddedAsset* find_asset(std::string_view name) {
  const auto assets = embedded_assets();
  auto it = std::find_if(assets.begin(), assets.end(),
                         [&](const EmbeddedAsset& a) { return a.name == name; });
  return it == assets.end() ? nullptr : &*it;
}

// If-None-Match holds `etag` (a list of entity tags, or "*"); weak tags compare equal too.
bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    const size_t comma = if_none_match.find(',');
    std::string_view tag = if_none_match.substr(0, comma);
    if_none_match.remove_prefix(comma == std::string_view::npos ? if_none_match.size() : comma + 1);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
  }
  return false;
}

Response not_found(const Request& request) {
  return make_response(request, http::status::not_found,
                       "404 page not found: " + std::string(request_path(request)) + "\n",
                       "text/plain; charset=utf-8");
}

}  // namespace

Response handle_dashboard(const Request& request, std::string_view path) {
  std::string_view name;
  if (path == "/") {
    name = "index.html";
  } else if (path.starts_with("/ui/")) {
    name = path.substr(4);
  }
  const EmbeddedAsset* asset = name.empty() ? nullptr : find_asset(name);
  if (asset == nullptr) return not_found(request);
  const bool head = request.method() == http::verb::head;
  if (request.method() != http::verb::get && !head) {
    auto r = make_response(request, http::status::method_not_allowed,
                           "use GET or HEAD for " + std::string(path) + "\n",
                           "text/plain; charset=utf-8");
    r.set(http::field::allow, "GET, HEAD");
    return r;
  }
  const bool fresh = etag_matches(request[http::field::if_none_match], asset->etag);
  // For HEAD the server drops the body after setting Content-Length from it.
  Response r =
      make_response(request, fresh ? http::status::not_modified : http::status::ok,
                    fresh ? std::string() : std::string(asset->data), content_type_of(asset->name));
  r.set(http::field::etag, asset->etag);
  // Revalidate every time: a 304 costs one round trip on loopback, and a kpid upgrade shows
  // its new page at once instead of mixing cached files of two versions.
  r.set(http::field::cache_control, "no-cache");
  // Beast has no field constants for these three.
  r.set("Content-Security-Policy", kContentSecurityPolicy);
  r.set("X-Content-Type-Options", "nosniff");
  r.set("Referrer-Policy", "no-referrer");
  return r;
}

}  // namespace kpid::server::detail
