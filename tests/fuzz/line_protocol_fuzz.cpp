// Fuzzes the line-protocol parser, series naming and the write pipeline over whole bodies.
// Input: one byte choosing the precision (its value mod 6; as digits: '0' ns, '1' us, '2' ms,
// '3' s, '4' m, '5' h), then the body, split into lines on '\n' as the pipeline splits it.
// Checked, besides "no crash, no leak, no undefined behaviour":
// - every line: a point has a non-empty measurement, UTF-8 names and values, unique tag keys and
//   finite field values; an error has a code, a printable UTF-8 message and a column within the
//   line; a fresh parser gives the same answer as the reused one; the parse that skips the
//   series text (series_checked, the series cache's fast path) gives the same fields and
//   timestamp;
// - naming: a label set of valid Prometheus names with every tag's value, or an error message;
// - timestamps: the conversion of every precision is exact (or refused on overflow);
// - the pipeline: the body written twice (the second time through a warm series cache) stores
//   exactly the samples, and rejects exactly the lines, that the parser and namer say it should.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/registry.h>

#include "fuzz_check.h"
#include "kpid/core/labels.h"
#include "kpid/core/utf8.h"
#include "kpid/ingest/line_protocol.h"
#include "kpid/ingest/series_naming.h"
#include "kpid/ingest/write_pipeline.h"
#include "kpid/store/rollup.h"

namespace kpid::fuzz {
namespace {

using ingest::LineKind;
using ingest::LineParser;
using ingest::ParsedLine;
using ingest::Precision;

constexpr Precision kPrecisions[] = {Precision::kNanoseconds,  Precision::kMicroseconds,
                                     Precision::kMilliseconds, Precision::kSeconds,
                                     Precision::kMinutes,      Precision::kHours};
// The time given to lines without a timestamp.
constexpr TimestampMs kNowMs = 1'700'000'000'000;

class FixedClock final : public Clock {
 public:
  int64_t now_ns() const override { return kNowMs * 1'000'000; }
};

// Series ids by canonical key, and every batch appended; resolves like the real store (a key
// that does not decode to a valid label set is invalid_argument).
class MemoryStore final : public store::SampleStore {
 public:
  Result<store::SeriesId> resolve(std::string_view key) override {
    auto it = ids_.find(std::string(key));
    if (it != ids_.end()) return it->second;
    auto labels = Labels::decode(key);
    if (!labels) return labels.status();
    keys_.emplace_back(key);
    return ids_.emplace(std::string(key), keys_.size() - 1).first->second;
  }
  Status append(std::span<const store::Sample> samples) override {
    appended_.assign(samples.begin(), samples.end());
    return Status::ok();
  }
  std::vector<store::SeriesRef> select(std::span<const LabelMatcher>) const override { return {}; }
  Status read(store::SeriesId, TimestampMs, TimestampMs,
              std::vector<store::Point>&) const override {
    return Status::ok();
  }
  Result<bool> has_samples(store::SeriesId, TimestampMs, TimestampMs) const override {
    return false;
  }
  Status read_rollups(store::SeriesId, DurationMs, TimestampMs, TimestampMs,
                      std::vector<store::Rollup>&, bool) const override {
    return Status::ok();
  }
  TimestampMs raw_horizon() const override { return 0; }
  store::RetentionPolicy retention() const override { return {}; }
  std::vector<std::string> label_names() const override { return {}; }
  std::vector<std::string> label_values(std::string_view) const override { return {}; }
  std::shared_ptr<const Labels> labels(store::SeriesId) const override { return nullptr; }
  size_t series_count() const override { return keys_.size(); }
  uint64_t disk_usage_bytes() const override { return 0; }

  const std::string& key(store::SeriesId id) const { return keys_.at(id); }
  const std::vector<store::Sample>& appended() const { return appended_; }

 private:
  std::map<std::string, store::SeriesId> ids_;
  std::vector<std::string> keys_;
  std::vector<store::Sample> appended_;
};

bool is_utf8(std::string_view s) { return find_invalid_utf8(s) == std::string_view::npos; }

bool is_name(std::string_view s, bool metric) {
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  auto allowed = [&](char c) { return alpha(c) || (c >= '0' && c <= '9') || (metric && c == ':'); };
  if (s.empty() || !(alpha(s[0]) || (metric && s[0] == ':'))) return false;
  for (char c : s) {
    if (!allowed(c)) return false;
  }
  return true;
}

// A parse result copied out of the parser, to compare two parses.
struct Snapshot {
  LineKind kind = LineKind::kEmpty;
  std::string measurement;
  std::vector<std::pair<std::string, std::string>> tags;
  std::vector<std::tuple<std::string, uint64_t, ingest::FieldType>> fields;
  uint32_t string_fields = 0;
  std::optional<int64_t> timestamp;
  ingest::ParseErrorCode code = ingest::ParseErrorCode::kNone;
  std::string message;
  size_t column = 0;
  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

Snapshot snapshot(const LineParser& parser, LineKind kind) {
  Snapshot s;
  s.kind = kind;
  if (kind == LineKind::kError) {
    s.code = parser.error().code;
    s.message = parser.error().message;
    s.column = parser.error().column;
  } else if (kind == LineKind::kPoint) {
    const ParsedLine& l = parser.line();
    s.measurement = l.measurement;
    for (const auto& t : l.tags) s.tags.emplace_back(t.key, t.value);
    for (const auto& f : l.fields) s.fields.emplace_back(f.key, bits(f.value), f.type);
    s.string_fields = l.string_fields;
    s.timestamp = l.timestamp;
  }
  return s;
}

void check_point(const ParsedLine& l) {
  check(!l.measurement.empty(), "point without measurement");
  check(is_utf8(l.measurement), "measurement is not UTF-8");
  for (size_t i = 0; i < l.tags.size(); ++i) {
    check(!l.tags[i].key.empty() && !l.tags[i].value.empty(), "empty tag key or value");
    check(is_utf8(l.tags[i].key) && is_utf8(l.tags[i].value), "tag is not UTF-8");
    for (size_t j = 0; j < i; ++j) check(l.tags[j].key != l.tags[i].key, "duplicate tag key");
  }
  for (const auto& f : l.fields) {
    check(!f.key.empty() && is_utf8(f.key), "empty or non-UTF-8 field key");
    check(f.value - f.value == 0, "field value is not finite");  // NaN and infinities refused
  }
  check(!l.fields.empty() || l.string_fields > 0, "point without any field");
}

void check_error(const ingest::ParseError& e, std::string_view line) {
  check(e.code != ingest::ParseErrorCode::kNone, "error without code");
  check(std::string_view(ingest::parse_error_reason(e.code)) != "unknown", "unnamed error code");
  check(!e.message.empty() && is_utf8(e.message), "error message empty or not UTF-8");
  for (char c : e.message) {
    check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, "control character in message");
  }
  check(e.column >= 1 && e.column <= line.size() + 1, "error column outside the line");
}

// Each precision's conversion against its definition: sub-millisecond units floor (the
// remainder's sign says when truncation went up), larger ones multiply or are refused.
void check_timestamp(int64_t raw) {
  static constexpr int64_t kUnitsPerMs[] = {1'000'000, 1'000, 1, 1, 1, 1};
  static constexpr int64_t kMsPerUnit[] = {1, 1, 1, 1'000, 60'000, 3'600'000};
  for (size_t i = 0; i < std::size(kPrecisions); ++i) {
    auto ms = ingest::to_milliseconds(raw, kPrecisions[i]);
    const int64_t d = kUnitsPerMs[i];
    int64_t want = raw / d - (raw % d < 0 ? 1 : 0);
    const bool overflow = __builtin_mul_overflow(want, kMsPerUnit[i], &want);
    check(ms.is_ok() == !overflow,
          "timestamp conversion refused a value that fits, or the reverse");
    if (!overflow) check(*ms == want, "timestamp conversion is not exact");
  }
}

void check_naming(const ParsedLine& l, ingest::SeriesNamer& namer, LabelsBuilder& builder) {
  for (const auto& f : l.fields) {
    const std::string_view error = namer.name(l, f.key, builder);
    if (!error.empty()) continue;
    auto labels = Labels::decode(builder.key());
    check(labels.is_ok(), "named series does not decode");
    check(labels->size() == l.tags.size() + 1, "named series lost or gained a label");
    for (const auto& label : labels->items()) {
      check(label.name == kMetricNameLabel || is_name(label.name, false), "invalid label name",
            label.name);
    }
    check(is_name(labels->metric_name(), true), "invalid metric name", labels->metric_name());
    for (const auto& t : l.tags) {
      bool found = false;
      for (const auto& label : labels->items()) found = found || label.value == t.value;
      check(found, "a tag value is missing from the series");
    }
  }
}

// What the pipeline must do with a body: the samples (series key, time, value bits) in order,
// and the rejected lines.
struct Expected {
  std::vector<std::tuple<std::string, TimestampMs, uint64_t>> samples;
  std::vector<std::pair<size_t, std::string>> rejected;  // line, message (parse errors only)
  size_t accepted = 0;
  size_t string_fields = 0;
};

// The pipeline's contract restated with the parser and namer alone (full parses only).
Expected expected_write(std::string_view body, Precision precision, MemoryStore& store) {
  Expected out;
  LineParser parser;
  ingest::SeriesNamer namer;
  LabelsBuilder builder;
  size_t number = 1;
  for (; !body.empty(); ++number) {
    const size_t nl = body.find('\n');
    const std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    const LineKind kind = parser.parse(line);
    if (kind == LineKind::kEmpty) continue;
    if (kind == LineKind::kError) {
      out.rejected.emplace_back(number, parser.error().message);
      continue;
    }
    const ParsedLine& l = parser.line();
    TimestampMs ts = kNowMs;
    if (l.timestamp) {
      auto ms = ingest::to_milliseconds(*l.timestamp, precision);
      if (!ms || *ms > store::kMaxTimestamp || *ms < store::kMinTimestamp) {
        out.rejected.emplace_back(number, "");
        continue;
      }
      ts = *ms;
    }
    std::vector<std::tuple<std::string, TimestampMs, uint64_t>> samples;
    bool ok = true;
    for (const auto& f : l.fields) {
      if (!namer.name(l, f.key, builder).empty() || !store.resolve(builder.key())) {
        ok = false;
        break;
      }
      samples.emplace_back(std::string(builder.key()), ts, bits(f.value));
    }
    if (!ok) {
      out.rejected.emplace_back(number, "");
      continue;
    }
    out.samples.insert(out.samples.end(), samples.begin(), samples.end());
    out.string_fields += l.string_fields;
    ++out.accepted;
  }
  return out;
}

void check_write(const ingest::WriteResult& r, const MemoryStore& store, const Expected& e) {
  check(r.storage.is_ok(), "the memory store cannot fail");
  check(r.lines_accepted == e.accepted, "pipeline accepted other lines than the parser");
  check(r.lines_rejected == e.rejected.size(), "pipeline rejected other lines than the parser");
  check(r.string_fields == e.string_fields, "pipeline counted other string fields");
  check(r.samples_written == e.samples.size(), "pipeline wrote another number of samples");
  check(store.appended().size() == e.samples.size(), "pipeline appended other samples");
  for (size_t i = 0; i < e.samples.size(); ++i) {
    const auto& s = store.appended()[i];
    const auto& [key, ts, value] = e.samples[i];
    check(store.key(s.series) == key, "pipeline stored a sample under another series",
          Labels::decode(store.key(s.series))->to_string() + " instead of " +
              Labels::decode(key)->to_string());
    check(s.timestamp == ts && bits(s.value) == value, "pipeline changed a sample");
  }
  check(r.errors.size() == std::min<size_t>(e.rejected.size(), 100), "errors listed");
  for (size_t i = 0; i < r.errors.size(); ++i) {
    check(r.errors[i].line == e.rejected[i].first, "pipeline rejected another line");
    if (!e.rejected[i].second.empty()) {
      check(r.errors[i].message == e.rejected[i].second, "pipeline error is not the parser's",
            r.errors[i].message);
    }
  }
}

}  // namespace
}  // namespace kpid::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kpid;
  using namespace kpid::fuzz;
  ByteReader in(data, size);
  const ingest::Precision precision = kPrecisions[in.byte() % std::size(kPrecisions)];
  const std::string_view body = in.rest();

  // Line by line, with one reused parser as the pipeline has.
  ingest::LineParser parser;
  ingest::SeriesNamer namer;
  LabelsBuilder builder;
  std::string_view rest = body;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);

    const ingest::LineKind kind = parser.parse(line);
    const Snapshot full = snapshot(parser, kind);
    ingest::LineParser fresh;
    check(snapshot(fresh, fresh.parse(line)) == full, "a reused parser answers differently");
    if (kind == ingest::LineKind::kError) {
      check_error(parser.error(), line);
      continue;
    }
    if (kind == ingest::LineKind::kEmpty) continue;
    check_point(parser.line());
    check_naming(parser.line(), namer, builder);
    if (parser.line().timestamp) check_timestamp(*parser.line().timestamp);

    // The fast path skips the series text it was told is valid: the rest must read the same.
    const ingest::LineKind fast_kind = fresh.parse(line, true);
    check(fast_kind == ingest::LineKind::kPoint, "series_checked parse fails a valid line",
          fresh.error().message);
    Snapshot fast = snapshot(fresh, fast_kind);
    check(fast.measurement.empty() && fast.tags.empty(), "series_checked parse read the series");
    fast.measurement = full.measurement;
    fast.tags = full.tags;
    check(fast == full, "series_checked parse reads other fields or timestamp");
  }

  // The whole body through the pipeline, twice: the second time the series cache is warm.
  MemoryStore store;
  const Expected expected = expected_write(body, precision, store);
  prometheus::Registry registry;
  ingest::IngestMetrics metrics(registry);
  FixedClock clock;
  ingest::WritePipeline pipeline(store, metrics, clock);
  for (int round = 0; round < 2; ++round) {
    const ingest::WriteResult r = pipeline.write(body, precision, ingest::Protocol::kHttp);
    check_write(r, store, expected);
  }
  return 0;
}
