#include "kpid/forward/encode.h"

#include <snappy.h>

#include <cstring>

namespace kpid::forward {
namespace {

// Protobuf wire types.
constexpr uint8_t kVarint = 0;
constexpr uint8_t kFixed64 = 1;
constexpr uint8_t kLength = 2;

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_tag(std::string& out, uint32_t field, uint8_t wire) {
  put_varint(out, (field << 3) | wire);
}

void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_tag(out, field, kLength);
  put_varint(out, bytes.size());
  out.append(bytes);
}

// Sample{value = 1 (double), timestamp = 2 (int64)} as field `field` of its parent.
void put_sample(std::string& out, uint32_t field, const store::Sample& s) {
  char value[8];
  std::memcpy(value, &s.value, 8);  // little-endian on every platform kpid builds for
  std::string_view v(value, 8);
  const auto ts = static_cast<uint64_t>(s.timestamp);
  size_t ts_len = 1;
  for (uint64_t t = ts; t >= 0x80; t >>= 7) ++ts_len;
  put_tag(out, field, kLength);
  put_varint(out, 1 + 8 + 1 + ts_len);
  put_tag(out, 1, kFixed64);
  out.append(v);
  put_tag(out, 2, kVarint);
  put_varint(out, ts);
}

// Calls `fn(labels, run)` (labels: a shared pointer) for each run of consecutive samples of one
// series (the queue keeps a series' samples together); samples whose series has no labels any more
// are counted in `skipped`.
template <typename Fn>
void for_each_series(std::span<const store::Sample> samples, const LabelsOf& labels,
                     size_t& skipped, Fn&& fn) {
  for (size_t i = 0; i < samples.size();) {
    size_t end = i + 1;
    while (end < samples.size() && samples[end].series == samples[i].series) ++end;
    if (auto ls = labels(samples[i].series)) {
      fn(std::move(ls), samples.subspan(i, end - i));
    } else {
      skipped += end - i;
    }
    i = end;
  }
}

}  // namespace

std::string_view content_type(WireVersion version) {
  return version == WireVersion::k2 ? "application/x-protobuf;proto=io.prometheus.write.v2.Request"
                                    : "application/x-protobuf";
}

std::string_view version_header(WireVersion version) {
  return version == WireVersion::k2 ? "2.0.0" : "0.1.0";
}

const std::string& Encoder::encode(std::span<const store::Sample> samples, const LabelsOf& labels,
                                   WireVersion version, size_t& skipped) {
  raw_.clear();
  if (version == WireVersion::k2) {
    encode_v2(samples, labels, skipped);
  } else {
    encode_v1(samples, labels, skipped);
  }
  compressed_.clear();
  snappy::Compress(raw_.data(), raw_.size(), &compressed_);
  return compressed_;
}

void Encoder::encode_v1(std::span<const store::Sample> samples, const LabelsOf& labels,
                        size_t& skipped) {
  std::string label;
  for_each_series(samples, labels, skipped, [&](std::shared_ptr<const Labels> ls, auto run) {
    series_.clear();
    for (const Label& l : ls->items()) {
      label.clear();
      put_bytes(label, 1, l.name);
      put_bytes(label, 2, l.value);
      put_bytes(series_, 1, label);
    }
    for (const store::Sample& sample : run) put_sample(series_, 2, sample);
    put_bytes(raw_, 1, series_);  // WriteRequest.timeseries
  });
}

uint32_t Encoder::symbol(std::string_view s) {
  auto [it, inserted] = symbol_index_.try_emplace(s, static_cast<uint32_t>(symbol_index_.size()));
  if (inserted) put_bytes(symbols_, 4, s);  // Request.symbols
  return it->second;
}

void Encoder::encode_v2(std::span<const store::Sample> samples, const LabelsOf& labels,
                        size_t& skipped) {
  symbols_.clear();
  symbol_index_.clear();
  held_.clear();
  (void)symbol("");  // the spec's first symbol is the empty string
  std::string timeseries;
  for_each_series(samples, labels, skipped, [&](std::shared_ptr<const Labels> ls, auto run) {
    refs_.clear();
    for (const Label& l : ls->items()) {
      put_varint(refs_, symbol(l.name));
      put_varint(refs_, symbol(l.value));
    }
    series_.clear();
    put_bytes(series_, 1, refs_);  // TimeSeries.labels_refs, packed
    for (const store::Sample& sample : run) put_sample(series_, 2, sample);
    put_bytes(timeseries, 5, series_);  // Request.timeseries
    // The symbol table's views point into these labels: they must outlive this encode.
    held_.push_back(std::move(ls));
  });
  raw_.append(symbols_);
  raw_.append(timeseries);
  symbol_index_.clear();
  held_.clear();
}

}  // namespace kpid::forward
