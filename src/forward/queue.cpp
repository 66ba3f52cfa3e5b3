#include "kpid/forward/queue.h"

#include <cstring>

namespace kpid::forward {
namespace {

constexpr size_t kHeader = 12;
constexpr size_t kPerSample = 24;

template <typename T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

template <typename T>
T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

void encode_record(TimestampMs enqueued, std::span<const store::Sample> samples, std::string& out) {
  out.clear();
  out.reserve(kHeader + kPerSample * samples.size());
  put<int64_t>(out, enqueued);
  put<uint32_t>(out, static_cast<uint32_t>(samples.size()));
  for (const store::Sample& s : samples) {
    put<uint64_t>(out, s.series);
    put<int64_t>(out, s.timestamp);
    put<double>(out, s.value);
  }
}

Status decode_record(std::string_view value, TimestampMs& enqueued,
                     std::vector<store::Sample>& out) {
  if (value.size() < kHeader) return Status::internal("remote write queue record too short");
  enqueued = get<int64_t>(value.data());
  const uint32_t count = get<uint32_t>(value.data() + 8);
  if (value.size() != kHeader + kPerSample * static_cast<size_t>(count)) {
    return Status::internal("remote write queue record of " + std::to_string(value.size()) +
                            " bytes does not hold " + std::to_string(count) + " samples");
  }
  const char* p = value.data() + kHeader;
  for (uint32_t i = 0; i < count; ++i, p += kPerSample) {
    out.push_back({get<uint64_t>(p), get<int64_t>(p + 8), get<double>(p + 16)});
  }
  return Status::ok();
}

Queue::Queue(std::string name, QueueOptions options)
    : name_(std::move(name)), prefix_("forward/" + name_ + "/"), options_(options) {}

std::string Queue::key_of(uint64_t seq) const {
  // Big-endian, so the state store's key order is the queue order.
  std::string key = prefix_;
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>(seq >> shift));
  return key;
}

Status Queue::load(const store::StateStore& state) {
  std::lock_guard lock(mutex_);
  entries_.clear();
  samples_ = bytes_ = 0;
  in_flight_ = 0;
  Status bad = Status::ok();
  auto s = state.scan_state(prefix_, [&](std::string_view key, std::string_view value) {
    if (key.size() != prefix_.size() + 8 || value.size() < kHeader) {
      bad = Status::internal("malformed remote write queue record under " + prefix_);
      return false;
    }
    uint64_t seq = 0;
    for (size_t i = prefix_.size(); i < key.size(); ++i) {
      seq = (seq << 8) | static_cast<unsigned char>(key[i]);
    }
    const Entry e{seq, get<int64_t>(value.data()), get<uint32_t>(value.data() + 8),
                  static_cast<uint32_t>(value.size())};
    entries_.push_back(e);
    samples_ += e.samples;
    bytes_ += e.bytes;
    next_seq_ = seq + 1;
    return true;
  });
  if (!s) return s;
  return bad;
}

std::string Queue::reserve_key() {
  std::lock_guard lock(mutex_);
  return key_of(next_seq_);
}

void Queue::committed(TimestampMs enqueued, uint32_t samples, uint32_t bytes) {
  std::lock_guard lock(mutex_);
  entries_.push_back({next_seq_++, enqueued, samples, bytes});
  samples_ += samples;
  bytes_ += bytes;
}

void Queue::pop_front_into(Dropped& out) {
  // The oldest record not being sent.
  const Entry e = entries_[in_flight_];
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(in_flight_));
  samples_ -= e.samples;
  bytes_ -= e.bytes;
  out.samples += e.samples;
  ++out.records;
  out.keys.push_back(key_of(e.seq));
}

Dropped Queue::drop_full() {
  std::lock_guard lock(mutex_);
  Dropped out;
  while (bytes_ > options_.max_bytes && entries_.size() > in_flight_) pop_front_into(out);
  return out;
}

Dropped Queue::drop_old(TimestampMs now) {
  std::lock_guard lock(mutex_);
  Dropped out;
  while (entries_.size() > in_flight_ && now - entries_[in_flight_].enqueued > options_.max_age) {
    pop_front_into(out);
  }
  return out;
}

std::vector<std::string> Queue::take(uint64_t max_samples) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> keys;
  uint64_t taken = 0;
  while (in_flight_ < entries_.size() &&
         (keys.empty() || taken + entries_[in_flight_].samples <= max_samples)) {
    taken += entries_[in_flight_].samples;
    keys.push_back(key_of(entries_[in_flight_].seq));
    ++in_flight_;
  }
  return keys;
}

std::vector<std::string> Queue::finished() {
  std::lock_guard lock(mutex_);
  std::vector<std::string> keys;
  for (size_t i = 0; i < in_flight_; ++i) {
    keys.push_back(key_of(entries_.front().seq));
    samples_ -= entries_.front().samples;
    bytes_ -= entries_.front().bytes;
    entries_.pop_front();
  }
  in_flight_ = 0;
  return keys;
}

void Queue::requeue() {
  std::lock_guard lock(mutex_);
  in_flight_ = 0;
}

uint64_t Queue::pending_samples() const {
  std::lock_guard lock(mutex_);
  return samples_;
}

uint64_t Queue::pending_bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

std::optional<TimestampMs> Queue::oldest() const {
  std::lock_guard lock(mutex_);
  if (entries_.empty()) return std::nullopt;
  return entries_.front().enqueued;
}

size_t Queue::records() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace kpid::forward
