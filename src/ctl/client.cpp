#include "kpid/ctl/client.h"

#include <cctype>

#include "kpid/core/json.h"
#include "kpid/version.h"

namespace kpid::ctl {

namespace json = boost::json;

int exit_code_of(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kAlreadyExists:
    case StatusCode::kResourceExhausted: return kExitRefused;
    default: return kExitUnavailable;
  }
}

Result<ApiClient> ApiClient::open(std::string_view base_url, ClientOptions options) {
  auto url = net::parse_url(base_url);
  if (!url) return Status::invalid_argument("--url: " + url.status().message());
  std::string prefix = url->target;
  if (auto q = prefix.find('?'); q != std::string::npos) prefix.resize(q);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  net::HttpClientOptions http_options;
  http_options.timeout = options.timeout;
  http_options.ca_file = options.ca_file;
  // Whole series and KPI lists come back in one answer.
  http_options.max_response_bytes = 256u << 20;
  net::HttpClient http(*url, http_options);
  if (auto s = http.ready(); !s) return s;
  return ApiClient(std::move(http), std::string(base_url), std::move(prefix),
                   std::move(options.token));
}

Status status_of_answer(int http_status, std::string_view body) {
  std::string message;
  boost::system::error_code ec;
  json::value parsed = json::parse(body, ec);
  if (!ec && parsed.is_object()) {
    if (const auto* e = parsed.get_object().if_contains("error"); e && e->is_string()) {
      message = std::string(e->get_string());
    }
  }
  if (message.empty()) {
    message = std::string(body.substr(0, 500));
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
  }
  if (message.empty()) message = "no details";
  const std::string text = "HTTP " + std::to_string(http_status) + ": " + message;
  if (http_status == 404) return Status::not_found(text);
  if (http_status == 401) {
    return Status::invalid_argument(text + " (give a token in $KPID_TOKEN or --token-file)");
  }
  if (http_status >= 400 && http_status < 500) return Status::invalid_argument(text);
  return Status::unavailable(text);
}

Result<net::OutboundResponse> ApiClient::raw(
    std::string_view method, std::string_view path, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  auto answer = send(method, path, body, headers);
  if (!answer) {
    std::string text = "cannot reach kpid at " + url_of(path) + " (" + std::string(method) +
                       "): " + answer.status().message();
    if (text.find("connect to ") != std::string::npos) {
      text += " (is kpid running there? 'kpictl wait' waits until it is ready)";
    }
    return Status(answer.status().code(), text);
  }
  return answer;
}

Result<net::OutboundResponse> ApiClient::send(
    std::string_view method, std::string_view path, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  auto all = headers;
  all.emplace_back("User-Agent", std::string("kpictl/") + kVersion);
  if (!token_.empty()) all.emplace_back("Authorization", "Bearer " + token_);
  auto answer = http_.send(method, prefix_ + std::string(path), body, all);
  if (answer) return answer;
  // The HTTP client's errors start with the method and the origin only (webhook paths may hold
  // secrets); callers here name the whole URL themselves.
  std::string detail = answer.status().message();
  const std::string said = std::string(method) + " " + net::origin_of(http_.origin()) + ": ";
  if (detail.starts_with(said)) detail.erase(0, said.size());
  return Status(answer.status().code(), detail);
}

std::string ApiClient::url_of(std::string_view path) const {
  return net::origin_of(http_.origin()) + prefix_ + std::string(path);
}

Result<json::value> ApiClient::get(std::string_view path) { return call("GET", path, nullptr); }

Result<json::value> ApiClient::call(std::string_view method, std::string_view path,
                                    const json::value* body) {
  std::vector<std::pair<std::string, std::string>> headers = {{"Accept", "application/json"}};
  std::string text;
  if (body != nullptr) {
    text = to_json_text(*body);
    headers.emplace_back("Content-Type", "application/json");
  }
  auto answer = raw(method, path, text, headers);
  if (!answer) return answer.status();
  if (answer->status < 200 || answer->status > 299) {
    return status_of_answer(answer->status, answer->body);
  }
  if (answer->status == 204 || answer->body.empty()) return json::value(nullptr);
  boost::system::error_code ec;
  json::value parsed = json::parse(answer->body, ec);
  if (ec || !parsed.is_object() || !parsed.get_object().contains("data")) {
    return Status::io_error("kpid at " + base_url_ + " answered " + std::string(method) + " " +
                            std::string(path) + " with something other than its JSON API " +
                            "envelope (is --url pointing at kpid?)");
  }
  return parsed.get_object()["data"];
}

std::string url_escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string query_string(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [key, value] : params) {
    if (value.empty()) continue;
    if (!out.empty()) out += '&';
    out += key + "=" + url_escape(value);
  }
  return out;
}

}  // namespace kpid::ctl
