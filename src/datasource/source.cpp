#include "kpid/datasource/source.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <thread>

#include "kpid/query/promql.h"

namespace kpid::datasource {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Answers larger than this are cut and count as bad_response: a KPI batch's answer is a few
// series per query; a year of history in 5m steps is ~105,000 points (~4 MiB of JSON).
constexpr size_t kMaxResponseBytes = 64u << 20;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Seconds with milliseconds, as the API takes times and steps.
std::string seconds_text(int64_t ms) {
  char buf[48];
  const int64_t whole = ms / 1000;
  int64_t frac = ms % 1000;
  if (frac < 0) frac = -frac;
  std::snprintf(buf, sizeof buf, "%s%lld.%03lld", ms < 0 && whole == 0 ? "-" : "",
                static_cast<long long>(whole), static_cast<long long>(frac));
  return buf;
}

void append_form(std::string& out, std::string_view name, std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  if (!out.empty()) out.push_back('&');
  out.append(name);
  out.push_back('=');
  for (unsigned char c : value) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
}

// A [time, "value"] pair of the API.
bool parse_point(const boost::json::value& v, store::Point& out) {
  const auto* pair = v.if_array();
  if (pair == nullptr || pair->size() != 2) return false;
  const auto& t = (*pair)[0];
  double seconds = 0;
  if (t.is_double()) {
    seconds = t.get_double();
  } else if (t.is_int64()) {
    seconds = static_cast<double>(t.get_int64());
  } else if (t.is_uint64()) {
    seconds = static_cast<double>(t.get_uint64());
  } else {
    return false;
  }
  const auto* text = (*pair)[1].if_string();
  if (text == nullptr) return false;
  const std::string value(text->data(), text->size());
  double number = 0;
  if (value == "NaN") {
    number = kNaN;
  } else if (value == "+Inf" || value == "Inf") {
    number = std::numeric_limits<double>::infinity();
  } else if (value == "-Inf") {
    number = -std::numeric_limits<double>::infinity();
  } else {
    char* end = nullptr;
    number = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || *end != '\0') return false;
  }
  out.timestamp = static_cast<TimestampMs>(std::llround(seconds * 1000));
  out.value = number;
  return true;
}

bool parse_labels(const boost::json::value& v, query::LabelsPtr& out) {
  const auto* metric = v.if_object();
  if (metric == nullptr) return false;
  std::vector<Label> labels;
  for (const auto& [name, value] : *metric) {
    const auto* text = value.if_string();
    if (text == nullptr) return false;
    labels.push_back({std::string(name), std::string(*text)});
  }
  auto parsed = Labels::from(std::move(labels));
  if (!parsed) return false;
  out = std::make_shared<const Labels>(std::move(parsed).value());
  return true;
}

RequestError bad(std::string message) { return {Failure::kBadResponse, std::move(message)}; }

}  // namespace

std::string_view failure_name(Failure f) {
  switch (f) {
    case Failure::kConnect: return "connect";
    case Failure::kTimeout: return "timeout";
    case Failure::kHttp5xx: return "http_5xx";
    case Failure::kHttp4xx: return "http_4xx";
    case Failure::kBadResponse: return "bad_response";
    case Failure::kPartial: return "partial";
  }
  return "connect";
}

std::optional<RequestError> parse_answer(int http_status, std::string_view body,
                                         query::QueryResult& out) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(body, ec);
  const boost::json::object* root = ec ? nullptr : doc.if_object();
  // The API's error text, when the body has one.
  std::string error_text;
  if (root != nullptr) {
    if (const auto* e = root->if_contains("error"); e && e->is_string()) {
      error_text = std::string(e->get_string());
    }
  }
  if (http_status < 200 || http_status > 299) {
    std::string message = "HTTP " + std::to_string(http_status);
    if (!error_text.empty()) {
      message += ": " + error_text;
    } else if (!body.empty()) {
      message += ": " + std::string(body.substr(0, 200));
    }
    return RequestError{http_status >= 500 ? Failure::kHttp5xx : Failure::kHttp4xx, message};
  }
  if (root == nullptr) return bad("the answer is not a JSON object");
  const auto* status = root->if_contains("status");
  if (status == nullptr || !status->is_string()) return bad("the answer has no status");
  if (status->get_string() != "success") {
    return bad("status \"" + std::string(status->get_string()) +
               "\": " + (error_text.empty() ? "no error text" : error_text));
  }
  if (const auto* partial = root->if_contains("isPartial");
      partial && partial->is_bool() && partial->get_bool()) {
    return RequestError{Failure::kPartial, "partial answer (isPartial: true)"};
  }
  if (const auto* warnings = root->if_contains("warnings"); warnings && warnings->is_array()) {
    for (const auto& w : warnings->get_array()) {
      if (w.is_string() && lower(w.get_string()).find("partial") != std::string::npos) {
        return RequestError{Failure::kPartial,
                            "partial answer (warning: " + std::string(w.get_string()) + ")"};
      }
    }
  }
  const auto* data = root->if_contains("data");
  const auto* data_object = data ? data->if_object() : nullptr;
  if (data_object == nullptr) return bad("the answer has no data object");
  const auto* type = data_object->if_contains("resultType");
  const auto* result = data_object->if_contains("result");
  if (type == nullptr || !type->is_string() || result == nullptr) {
    return bad("the answer's data has no resultType or result");
  }
  const std::string_view type_name = type->get_string();
  out = query::QueryResult();
  if (type_name == "scalar" || type_name == "string") {
    const auto* pair = result->if_array();
    if (pair == nullptr || pair->size() != 2) return bad("a malformed " + std::string(type_name));
    if (type_name == "string") {
      out.type = query::ValueType::kString;
      const auto* text = (*pair)[1].if_string();
      if (text == nullptr) return bad("a malformed string");
      out.string = std::string(*text);
      store::Point p;
      boost::json::array stamp{(*pair)[0], boost::json::string("0")};
      if (!parse_point(stamp, p)) return bad("a malformed string");
      out.time = p.timestamp;
      return std::nullopt;
    }
    store::Point p;
    if (!parse_point(*result, p)) return bad("a malformed scalar");
    out.type = query::ValueType::kScalar;
    out.time = p.timestamp;
    out.scalar = p.value;
    return std::nullopt;
  }
  const bool vector = type_name == "vector";
  if (!vector && type_name != "matrix") {
    return bad("unknown resultType \"" + std::string(type_name) + "\"");
  }
  out.type = vector ? query::ValueType::kVector : query::ValueType::kMatrix;
  const auto* list = result->if_array();
  if (list == nullptr) return bad("the result is not a list");
  for (const auto& item : *list) {
    const auto* series = item.if_object();
    if (series == nullptr) return bad("a result item is not an object");
    query::Series s;
    const auto* metric = series->if_contains("metric");
    if (metric == nullptr || !parse_labels(*metric, s.labels)) return bad("malformed labels");
    if (vector) {
      const auto* value = series->if_contains("value");
      store::Point p;
      if (value == nullptr || !parse_point(*value, p)) return bad("a malformed sample");
      out.time = p.timestamp;
      s.points.push_back(p);
    } else {
      const auto* values = series->if_contains("values");
      // Histogram-only series (native histograms) carry no float values: nothing to keep.
      if (values == nullptr) continue;
      const auto* points = values->if_array();
      if (points == nullptr) return bad("malformed values");
      s.points.reserve(points->size());
      for (const auto& v : *points) {
        store::Point p;
        if (!parse_point(v, p)) return bad("a malformed sample");
        s.points.push_back(p);
      }
    }
    out.series.push_back(std::move(s));
  }
  std::sort(out.series.begin(), out.series.end(),
            [](const query::Series& a, const query::Series& b) {
              return a.labels->items() < b.labels->items();
            });
  return std::nullopt;
}

bool is_scalar_expr(std::string_view expr) {
  auto parsed = query::parse_promql(expr);
  return parsed && (*parsed)->type == query::ValueType::kScalar;
}

std::string combine_queries(std::span<const std::string> exprs, const std::vector<bool>& scalar) {
  std::string out;
  for (size_t i = 0; i < exprs.size(); ++i) {
    if (i > 0) out += " or ";
    out += "label_replace(";
    if (i < scalar.size() && scalar[i]) {
      out += "vector(" + exprs[i] + ")";
    } else {
      out += exprs[i];
    }
    out += ", \"";
    out += kQueryLabel;
    out += "\", \"" + std::to_string(i) + "\", \"\", \"\")";
  }
  return out;
}

Result<std::vector<query::QueryResult>> split_answer(query::QueryResult combined,
                                                     const std::vector<bool>& scalar,
                                                     TimestampMs time) {
  std::vector<query::QueryResult> out(scalar.size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].time = time;
    if (scalar[i]) {
      out[i].type = query::ValueType::kScalar;
      out[i].scalar = kNaN;
    }
  }
  if (combined.type != query::ValueType::kVector) {
    return Status::io_error("a combined query answered with a " +
                            std::string(query::result_type_name(combined.type)) + ", not a vector");
  }
  for (auto& s : combined.series) {
    const std::string_view tag = s.labels->get(kQueryLabel);
    size_t index = 0;
    auto [end, ec] = std::from_chars(tag.data(), tag.data() + tag.size(), index);
    if (tag.empty() || ec != std::errc() || end != tag.data() + tag.size() || index >= out.size()) {
      return Status::io_error("a combined query's series has no valid " + std::string(kQueryLabel) +
                              " label: " + s.labels->to_string());
    }
    if (scalar[index]) {
      if (!s.points.empty()) out[index].scalar = s.points.front().value;
      continue;
    }
    std::vector<Label> kept;
    for (const auto& l : s.labels->items()) {
      if (l.name != kQueryLabel) kept.push_back(l);
    }
    s.labels = std::make_shared<const Labels>(std::move(Labels::from(std::move(kept))).value());
    out[index].series.push_back(std::move(s));
  }
  for (auto& r : out) {
    std::sort(r.series.begin(), r.series.end(), [](const query::Series& a, const query::Series& b) {
      return a.labels->items() < b.labels->items();
    });
  }
  return out;
}

// --- Source ------------------------------------------------------------------------------------

struct Source::Metrics {
  Metrics(prometheus::Registry& r, const std::string& name)
      : requests(prometheus::BuildCounter()
                     .Name("kpid_datasource_requests_total")
                     .Help("Requests kpid sent to a data source, by kind (instant or range)")
                     .Register(r)),
        failures(prometheus::BuildCounter()
                     .Name("kpid_datasource_request_failures_total")
                     .Help("Requests to a data source that failed, by reason")
                     .Register(r)),
        duration(prometheus::BuildHistogram()
                     .Name("kpid_datasource_request_duration_seconds")
                     .Help("Time from sending a request to a data source to its whole answer")
                     .Register(r)),
        up(prometheus::BuildGauge()
               .Name("kpid_datasource_up")
               .Help("1 while the data source's last request succeeded, else 0")
               .Register(r)),
        instant(&requests.Add({{"datasource", name}, {"kind", "instant"}})),
        range(&requests.Add({{"datasource", name}, {"kind", "range"}})),
        seconds(&duration.Add({{"datasource", name}},
                              prometheus::Histogram::BucketBoundaries{
                                  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
        up_gauge(&up.Add({{"datasource", name}})) {
    for (Failure f : {Failure::kConnect, Failure::kTimeout, Failure::kHttp5xx, Failure::kHttp4xx,
                      Failure::kBadResponse, Failure::kPartial}) {
      by_reason[static_cast<int>(f)] =
          &failures.Add({{"datasource", name}, {"reason", std::string(failure_name(f))}});
    }
    up_gauge->Set(1);
  }
  ~Metrics() {
    requests.Remove(instant);
    requests.Remove(range);
    for (auto* c : by_reason) failures.Remove(c);
    duration.Remove(seconds);
    up.Remove(up_gauge);
  }
  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Counter>& failures;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Gauge>& up;
  prometheus::Counter* instant;
  prometheus::Counter* range;
  prometheus::Histogram* seconds;
  prometheus::Gauge* up_gauge;
  prometheus::Counter* by_reason[6] = {};
};

Result<std::unique_ptr<Source>> Source::create(DatasourceOptions options,
                                               metrics::Metrics* metrics) {
  auto url = net::parse_url(options.url);
  if (!url) {
    return Status::invalid_argument("datasource " + options.name + ": " + url.status().message());
  }
  return std::unique_ptr<Source>(new Source(std::move(options), std::move(url).value(), metrics));
}

Source::Source(DatasourceOptions options, net::Url url, metrics::Metrics* metrics)
    : options_(std::move(options)), url_(std::move(url)) {
  base_path_ = url_.target;
  if (auto q = base_path_.find('?'); q != std::string::npos) base_path_.resize(q);
  while (!base_path_.empty() && base_path_.back() == '/') base_path_.pop_back();
  if (options_.max_concurrency == 0) options_.max_concurrency = 1;
  if (options_.batch_size == 0) options_.batch_size = 1;
  if (metrics != nullptr) metrics_ = std::make_unique<Metrics>(metrics->registry(), options_.name);
}

Source::~Source() = default;

void Source::cancel() {
  std::lock_guard lock(pool_mutex_);
  cancelled_ = true;
  for (auto* c : busy_) c->cancel();
  for (auto& c : idle_) c->cancel();
  pool_wake_.notify_all();
}

std::unique_ptr<net::HttpClient> Source::acquire() {
  std::unique_lock lock(pool_mutex_);
  pool_wake_.wait(
      lock, [&] { return cancelled_ || !idle_.empty() || created_ < options_.max_concurrency; });
  std::unique_ptr<net::HttpClient> client;
  if (!idle_.empty()) {
    client = std::move(idle_.back());
    idle_.pop_back();
  } else {
    ++created_;
    client = std::make_unique<net::HttpClient>(
        url_, net::client_options(options_.auth, options_.timeout, kMaxResponseBytes));
  }
  if (cancelled_) client->cancel();
  busy_.push_back(client.get());
  return client;
}

void Source::release(std::unique_ptr<net::HttpClient> client) {
  {
    std::lock_guard lock(pool_mutex_);
    std::erase(busy_, client.get());
    idle_.push_back(std::move(client));
  }
  pool_wake_.notify_one();
}

void Source::note_outcome(bool ok, std::optional<Failure> reason) {
  if (ok) {
    failing_since_.store(0);
  } else {
    TimestampMs expected = 0;
    const TimestampMs now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    failing_since_.compare_exchange_strong(expected, now);
  }
  if (!metrics_) return;
  metrics_->up_gauge->Set(ok ? 1 : 0);
  if (reason) metrics_->by_reason[static_cast<int>(*reason)]->Increment();
}

Result<query::QueryResult> Source::request(std::string_view path, std::string body, bool range) {
  if (metrics_) (range ? metrics_->range : metrics_->instant)->Increment();
  const std::string what = "datasource " + options_.name + " (" + url_.text + "): ";
  auto headers = net::auth_headers(options_.auth);
  if (!headers) {
    note_outcome(false, Failure::kConnect);
    return Status::unavailable(what + headers.status().message());
  }
  headers->emplace_back("Content-Type", "application/x-www-form-urlencoded");
  headers->emplace_back("Accept", "application/json");
  auto client = acquire();
  const auto started = std::chrono::steady_clock::now();
  auto response = client->send("POST", base_path_ + std::string(path), body, *headers);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!response) client->close();
  release(std::move(client));
  if (metrics_) metrics_->seconds->Observe(seconds);
  if (!response) {
    const std::string message = response.status().message();
    const Failure reason =
        message.find("timed out") != std::string::npos ? Failure::kTimeout : Failure::kConnect;
    note_outcome(false, reason);
    return Status::unavailable(what + message);
  }
  if (response->body_truncated) {
    note_outcome(false, Failure::kBadResponse);
    return Status::io_error(what + "the answer is larger than " +
                            std::to_string(kMaxResponseBytes) + " bytes");
  }
  query::QueryResult result;
  if (auto error = parse_answer(response->status, response->body, result)) {
    note_outcome(false, error->reason);
    return Status::unavailable(what + std::string(path) + ": " + error->message);
  }
  note_outcome(true, std::nullopt);
  return result;
}

Result<query::QueryResult> Source::instant(std::string_view expr, TimestampMs time) {
  std::string body;
  append_form(body, "query", expr);
  append_form(body, "time", seconds_text(time));
  return request("/api/v1/query", std::move(body), false);
}

Result<query::QueryResult> Source::range(std::string_view expr, TimestampMs start, TimestampMs end,
                                         DurationMs step) {
  std::string body;
  append_form(body, "query", expr);
  append_form(body, "start", seconds_text(start));
  append_form(body, "end", seconds_text(end));
  append_form(body, "step", seconds_text(step));
  return request("/api/v1/query_range", std::move(body), true);
}

Result<std::vector<query::QueryResult>> Source::instant_many(std::span<const std::string> exprs,
                                                             TimestampMs time) {
  // Distinct queries, in first-seen order.
  std::vector<std::string> distinct;
  std::vector<size_t> slot_of(exprs.size());
  {
    std::map<std::string_view, size_t> seen;
    for (size_t i = 0; i < exprs.size(); ++i) {
      auto [it, fresh] = seen.emplace(exprs[i], distinct.size());
      if (fresh) distinct.push_back(exprs[i]);
      slot_of[i] = it->second;
    }
  }
  std::vector<bool> scalar(distinct.size());
  for (size_t i = 0; i < distinct.size(); ++i) scalar[i] = is_scalar_expr(distinct[i]);
  const size_t batch = options_.batch_size;
  const size_t batches = (distinct.size() + batch - 1) / batch;
  std::vector<query::QueryResult> answers(distinct.size());
  std::vector<Status> errors(batches);
  auto run_batch = [&](size_t b) {
    const size_t from = b * batch;
    const size_t to = std::min(distinct.size(), from + batch);
    const std::span<const std::string> queries(distinct.data() + from, to - from);
    const std::vector<bool> flags(scalar.begin() + static_cast<std::ptrdiff_t>(from),
                                  scalar.begin() + static_cast<std::ptrdiff_t>(to));
    auto combined = instant(combine_queries(queries, flags), time);
    if (!combined) {
      errors[b] = combined.status();
      return;
    }
    auto split = split_answer(std::move(combined).value(), flags, time);
    if (!split) {
      note_outcome(false, Failure::kBadResponse);
      errors[b] =
          Status::unavailable("datasource " + options_.name + ": " + split.status().message());
      return;
    }
    for (size_t i = from; i < to; ++i) answers[i] = std::move((*split)[i - from]);
  };
  // At most max_concurrency requests in flight: that many workers take batches in turn (the
  // calling thread is one of them).
  const size_t workers = std::min(batches, options_.max_concurrency);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t b = next.fetch_add(1); b < batches; b = next.fetch_add(1)) run_batch(b);
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < workers; ++w) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  for (const auto& e : errors) {
    if (!e) return e;
  }
  std::vector<query::QueryResult> out;
  out.reserve(exprs.size());
  for (size_t i = 0; i < exprs.size(); ++i) out.push_back(answers[slot_of[i]]);
  return out;
}

}  // namespace kpid::datasource
