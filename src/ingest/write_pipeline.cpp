#include "kpid/ingest/write_pipeline.h"

#include <algorithm>
#include <iterator>

#include "kpid/ingest/otlp.h"
#include "kpid/ingest/remote_write.h"

#include "kpid/store/rollup.h"

namespace kpid::ingest {

namespace {

constexpr const char* kProtocolNames[] = {"http", "tcp", "remote_write", "otlp"};

// Floor division, so -1 ns is in millisecond -1, not 0.
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

Result<Precision> parse_precision(std::string_view text) {
  if (text.empty() || text == "ns" || text == "n") return Precision::kNanoseconds;
  if (text == "us" || text == "u" || text == "\xc2\xb5") return Precision::kMicroseconds;
  if (text == "ms") return Precision::kMilliseconds;
  if (text == "s") return Precision::kSeconds;
  if (text == "m") return Precision::kMinutes;
  if (text == "h") return Precision::kHours;
  return Status::invalid_argument("invalid precision \"" + std::string(text) +
                                  "\"; expected one of ns, us, ms, s (or n, u, m, h)");
}

Result<TimestampMs> to_milliseconds(int64_t raw, Precision precision) {
  int64_t factor = 1;
  switch (precision) {
    case Precision::kNanoseconds: return floor_div(raw, 1'000'000);
    case Precision::kMicroseconds: return floor_div(raw, 1'000);
    case Precision::kMilliseconds: return raw;
    case Precision::kSeconds: factor = 1'000; break;
    case Precision::kMinutes: factor = 60'000; break;
    case Precision::kHours: factor = 3'600'000; break;
  }
  int64_t out = 0;
  if (__builtin_mul_overflow(raw, factor, &out)) {
    return Status::invalid_argument("timestamp out of range");
  }
  return out;
}

IngestMetrics::IngestMetrics(prometheus::Registry& registry) {
  auto& samples = prometheus::BuildCounter()
                      .Name("kpid_ingest_samples_total")
                      .Help("Samples stored, by protocol.")
                      .Register(registry);
  auto& strings = prometheus::BuildCounter()
                      .Name("kpid_ingest_string_fields_skipped_total")
                      .Help("String fields skipped (kpid stores numbers only), by protocol.")
                      .Register(registry);
  rejected_ = &prometheus::BuildCounter()
                   .Name("kpid_ingest_lines_rejected_total")
                   .Help("Lines not stored, by protocol and reason.")
                   .Register(registry);
  pushback_ = &prometheus::BuildCounter()
                   .Name("kpid_ingest_pushback_total")
                   .Help(
                       "Writes turned away (HTTP 503) or paused (TCP) because storage could "
                       "not take them, by protocol and reason.")
                   .Register(registry);
  for (size_t i = 0; i < std::size(kProtocolNames); ++i) {
    samples_[i] = &samples.Add({{"protocol", kProtocolNames[i]}});
    string_fields_[i] = &strings.Add({{"protocol", kProtocolNames[i]}});
  }
}

void IngestMetrics::rejected(Protocol p, std::string_view reason, double n) {
  rejected_->Add({{"protocol", kProtocolNames[index(p)]}, {"reason", std::string(reason)}})
      .Increment(n);
}

void IngestMetrics::pushback(Protocol p, store::Pushback::Reason reason) {
  pushback_
      ->Add({{"protocol", kProtocolNames[index(p)]},
             {"reason", std::string(store::pushback_name(reason))}})
      .Increment();
}

WritePipeline::WritePipeline(store::SampleStore& store, IngestMetrics& metrics, const Clock& clock,
                             store::SampleObserver* observer)
    : store_(store), metrics_(metrics), clock_(clock), observer_(observer) {}

bool WritePipeline::add_line(std::string_view line, Precision precision, TimestampMs now) {
  const std::string_view series_part = raw_series_part(line);
  // Series text the cache expects was fully checked when it was first seen: parse only the
  // fields and the timestamp. Anything unexpected takes the full parse.
  bool fast = !series_part.empty() && series_cache_.expects(series_part);
  LineKind kind = parser_.parse(line, fast);
  if (fast && kind == LineKind::kError) {
    fast = false;
    kind = parser_.parse(line);  // errors are reported with the whole line's context
  }
  if (kind == LineKind::kEmpty) return true;
  if (kind == LineKind::kError) {
    error_.assign(parser_.error().message);
    error_reason_ = parse_error_reason(parser_.error().code);
    return false;
  }
  const ParsedLine& point = parser_.line();
  TimestampMs ts = now;
  if (point.timestamp) {
    auto ms = to_milliseconds(*point.timestamp, precision);
    if (!ms || *ms > store::kMaxTimestamp || *ms < store::kMinTimestamp) {
      error_ = "invalid timestamp: " + std::to_string(*point.timestamp) +
               " is out of range for the precision";
      error_reason_ = parse_error_reason(ParseErrorCode::kInvalidTimestamp);
      return false;
    }
    ts = *ms;
  }
  const size_t batch_start = batch_.size();
  for (size_t i = 0; i < point.fields.size(); ++i) {
    const Field& field = point.fields[i];
    if (auto cached =
            series_part.empty() ? std::nullopt : series_cache_.find(series_part, field.key)) {
      batch_.push_back({*cached, ts, field.value});
      continue;
    }
    if (fast) {
      // A field not seen with this series before: naming needs the tags, so parse it all and
      // start the line over.
      fast = false;
      if (parser_.parse(line) != LineKind::kPoint) {
        batch_.resize(batch_start);
        error_.assign(parser_.error().message);
        error_reason_ = parse_error_reason(parser_.error().code);
        return false;
      }
      batch_.resize(batch_start);
      i = static_cast<size_t>(-1);
      continue;
    }
    std::string_view naming_error = namer_.name(point, field.key, labels_);
    Result<store::SeriesId> id = Status::invalid_argument("");
    if (naming_error.empty()) {
      id = store_.resolve(labels_.key());
    }
    if (!naming_error.empty() || !id) {
      batch_.resize(batch_start);  // a line is stored whole or not at all
      const bool limit =
          naming_error.empty() && id.status().code() == StatusCode::kResourceExhausted;
      if (naming_error.empty() && !limit && id.status().code() != StatusCode::kInvalidArgument) {
        // The store itself failed: not this line's fault, and no later line would fare better.
        storage_failure_ = id.status();
      }
      error_ = naming_error.empty() ? id.status().message() : std::string(naming_error);
      error_reason_ = limit ? "series_limit" : "invalid_series_name";
      return false;
    }
    if (!series_part.empty()) series_cache_.remember(series_part, field.key, *id);
    batch_.push_back({*id, ts, field.value});
  }
  string_fields_ += point.string_fields;
  ++points_;
  return true;
}

WriteResult WritePipeline::write(std::string_view body, Precision precision, Protocol protocol,
                                 size_t max_errors, size_t first_line) {
  WriteResult result;
  batch_.clear();
  string_fields_ = 0;
  points_ = 0;
  storage_failure_ = Status::ok();
  TimestampMs now = clock_.now_ms();
  size_t line_number = first_line;
  while (!body.empty()) {
    size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    if (!add_line(line, precision, now)) {
      if (!storage_failure_.is_ok()) break;
      ++result.lines_rejected;
      metrics_.rejected(protocol, error_reason_);
      if (result.errors.size() < max_errors) result.errors.push_back({line_number, error_});
    }
    ++line_number;
  }
  result.string_fields = string_fields_;
  if (string_fields_ > 0) metrics_.string_fields(protocol, static_cast<double>(string_fields_));
  result.storage = storage_failure_.is_ok() ? store_.append(batch_) : storage_failure_;
  // A write is acknowledged only once the observers that keep it (remote write) have it.
  if (result.storage && observer_ != nullptr) result.storage = observer_->record(batch_);
  if (result.storage) {
    result.samples_written = batch_.size();
    result.lines_accepted = points_;
    if (!batch_.empty()) metrics_.samples(protocol, static_cast<double>(batch_.size()));
  } else {
    metrics_.rejected(protocol, "storage_error", static_cast<double>(points_));
  }
  return result;
}

WritePipeline::~WritePipeline() = default;

void WritePipeline::set_db_label(std::string_view name, std::string_view value) {
  if (name == db_label_name_ && value == db_label_value_) return;
  db_label_name_.assign(name);
  db_label_value_.assign(value);
  // An empty value is no label, as in Prometheus.
  namer_.set_extra_label(value.empty() ? std::string_view() : name, value);
  series_cache_.clear();  // the same text now names other series
}

void WritePipeline::add_created_zero(store::SeriesId id, const RemoteSeries& series) {
  const int64_t created = series.created_timestamp;
  if (created <= 0 || series.samples.empty() || created >= series.samples.front().timestamp_ms ||
      created < store::kMinTimestamp) {
    return;
  }
  // Prometheus' rule: the 0 goes in only while nothing is stored between the creation and the
  // first sample, so a counter's start is stored once and never over later samples.
  auto [seen, inserted] = created_stored_.try_emplace(id, created);
  if (!inserted && seen->second == created) return;
  seen->second = created;
  if (created_stored_.size() > kCreatedRemembered) created_stored_.clear();
  Result<bool> stored = store_.has_samples(id, created, series.samples.front().timestamp_ms - 1);
  if (stored && !*stored) batch_.push_back({id, created, 0.0});
}

Result<WriteResult> WritePipeline::write_remote_body(std::string_view body,
                                                     RemoteWriteVersion version,
                                                     const RemoteWriteLimits& limits,
                                                     size_t max_errors) {
  if (!remote_decoder_) {
    remote_decoder_ = std::make_unique<RemoteWriteDecoder>();
    remote_request_ = std::make_unique<RemoteWriteRequest>();
  }
  if (auto s = remote_decoder_->decode(body, version, limits, *remote_request_); !s) {
    metrics_.rejected(Protocol::kRemoteWrite, "undecodable_body");
    return s;
  }
  return write_remote(*remote_request_, Protocol::kRemoteWrite, max_errors);
}

WriteResult WritePipeline::write_remote(const RemoteWriteRequest& request, Protocol protocol,
                                        size_t max_errors) {
  WriteResult result;
  batch_.clear();
  storage_failure_ = Status::ok();
  if (request.exemplars > 0) {
    metrics_.rejected(protocol, "exemplar_not_stored", static_cast<double>(request.exemplars));
  }
  auto reject = [&](size_t position, std::string message, std::string_view reason) {
    ++result.lines_rejected;
    metrics_.rejected(protocol, reason);
    if (result.errors.size() < max_errors) result.errors.push_back({position, std::move(message)});
  };
  // Positions among the request's series: the decoder's rejections interleave with the kept.
  for (const auto& r : request.rejected) {
    reject(r.index + 1, r.series + ": " + r.reason, r.metric_reason);
  }
  for (const RemoteSeries& series : request.series) {
    const size_t position = series.index + 1;
    // The series' labels sorted and checked; only for a series not seen before, or to name one.
    auto build_labels = [&] {
      labels_.clear();
      for (const RemoteLabel& l : series.labels) labels_.add(l.name, l.value);
      return labels_.finish();
    };
    const auto out_of_range =
        std::find_if(series.samples.begin(), series.samples.end(), [](const RemoteSample& s) {
          return s.timestamp_ms > store::kMaxTimestamp || s.timestamp_ms < store::kMinTimestamp;
        });
    if (out_of_range != series.samples.end()) {
      (void)build_labels();
      reject(position,
             labels_.to_labels().to_string() + ": timestamp " +
                 std::to_string(out_of_range->timestamp_ms) + " is out of the store's range",
             "invalid_timestamp");
      continue;
    }
    // Senders repeat the same series request after request, mostly in the same order: the
    // labels as sent find the series id without sorting them or the store's shared index.
    // Names are [a-zA-Z_]... and values valid UTF-8 (protobuf checks it), so 0xFF and 0xFE
    // cannot occur in them and the key is unambiguous.
    remote_key_.clear();
    for (const RemoteLabel& l : series.labels) {
      remote_key_.append(l.name).push_back('\xff');
      remote_key_.append(l.value).push_back('\xfe');
    }
    std::optional<store::SeriesId> cached = remote_series_cache_.find(remote_key_, {});
    Result<store::SeriesId> id = cached ? Result<store::SeriesId>(*cached)
                                        : Result<store::SeriesId>(Status::invalid_argument(""));
    if (!cached) {
      if (auto dup = build_labels(); !dup.empty()) {
        reject(position, "label \"" + std::string(dup) + "\" appears twice", "invalid_series_name");
        continue;
      }
      id = store_.resolve(labels_.key());
    }
    if (!id) {
      const StatusCode code = id.status().code();
      if (code != StatusCode::kResourceExhausted && code != StatusCode::kInvalidArgument) {
        storage_failure_ = id.status();  // the store failed: no later series would fare better
        break;
      }
      reject(position, labels_.to_labels().to_string() + ": " + id.status().message(),
             code == StatusCode::kResourceExhausted ? "series_limit" : "invalid_series_name");
      continue;
    }
    if (!cached) remote_series_cache_.remember(remote_key_, {}, *id);
    add_created_zero(*id, series);
    for (const RemoteSample& s : series.samples) batch_.push_back({*id, s.timestamp_ms, s.value});
    ++result.lines_accepted;
    if (series.part == RemoteSeries::Part::kSamples) {
      result.float_samples_written += series.samples.size();
    } else if (series.part == RemoteSeries::Part::kHistogramCount) {
      result.histograms_written += series.samples.size();
    }
  }
  result.storage = storage_failure_.is_ok() ? store_.append(batch_) : storage_failure_;
  // A write is acknowledged only once the observers that keep it (remote write) have it.
  if (result.storage && observer_ != nullptr) result.storage = observer_->record(batch_);
  if (result.storage) {
    result.samples_written = batch_.size();
    if (!batch_.empty()) metrics_.samples(protocol, static_cast<double>(batch_.size()));
  } else {
    result.lines_accepted = result.float_samples_written = result.histograms_written = 0;
    metrics_.rejected(protocol, "storage_error", static_cast<double>(request.series.size()));
  }
  return result;
}

}  // namespace kpid::ingest
