#include "series_index.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>

#include "kpid/core/varint.h"

namespace kpid::store::detail {

PostingList::PostingList(PostingList&& other) noexcept : size_(other.size_), cap_(other.cap_) {
  if (cap_ == 0) {
    inline_[0] = other.inline_[0];
    inline_[1] = other.inline_[1];
  } else {
    heap_ = other.heap_;
  }
  other.size_ = 0;
  other.cap_ = 0;
}

PostingList& PostingList::operator=(PostingList&& other) noexcept {
  if (this != &other) {
    this->~PostingList();
    new (this) PostingList(std::move(other));
  }
  return *this;
}

PostingList::~PostingList() {
  if (cap_ != 0) delete[] heap_;
}

void PostingList::push_back(uint32_t id) {
  if (cap_ == 0 && size_ < 2) {
    inline_[size_++] = id;
    return;
  }
  if (size_ == cap_ || cap_ == 0) {
    // Grows by half (at least to 4): lists of many series waste at most a third.
    const uint64_t grown = std::max<uint64_t>(4, uint64_t{size_} + size_ / 2);
    const auto cap = static_cast<uint32_t>(std::min<uint64_t>(grown, UINT32_MAX));
    auto* ids = new uint32_t[cap];
    std::memcpy(ids, begin(), size_t{size_} * sizeof(uint32_t));
    if (cap_ != 0) delete[] heap_;
    heap_ = ids;
    cap_ = cap;
  }
  heap_[size_++] = id;
}

namespace {

// Calls f(name, value) for each label of canonical key `key` (varint length, name, varint
// length, value), in order; stops early when f returns false. Keys in the index are validated.
template <typename F>
void for_each_label(std::string_view key, F&& f) {
  size_t pos = 0;
  while (pos < key.size()) {
    uint64_t n = 0;
    if (!read_varint(key, pos, n) || n > key.size() - pos) return;
    const std::string_view name = key.substr(pos, n);
    pos += n;
    if (!read_varint(key, pos, n) || n > key.size() - pos) return;
    const std::string_view value = key.substr(pos, n);
    pos += n;
    if (!f(name, value)) return;
  }
}

bool is_regex_meta(char c) {
  return std::string_view(".[]{}()\\*+?^$|").find(c) != std::string_view::npos;
}

// The values a regex matches when it is literals joined by '|' ("GET|POST"), else nothing.
std::optional<std::vector<std::string_view>> literal_alternatives(std::string_view re) {
  std::vector<std::string_view> out;
  for (size_t begin = 0;;) {
    const size_t bar = re.find('|', begin);
    const std::string_view alt =
        re.substr(begin, bar == std::string_view::npos ? bar : bar - begin);
    if (std::any_of(alt.begin(), alt.end(), is_regex_meta)) return std::nullopt;
    out.push_back(alt);
    if (bar == std::string_view::npos) return out;
    begin = bar + 1;
  }
}

// A literal prefix that every value the (fully anchored) regex matches starts with: its leading
// characters up to the first metacharacter, less the last one if a quantifier follows it.
// Empty when the regex has an alternation anywhere.
std::string_view literal_prefix(std::string_view re) {
  if (re.find('|') != std::string_view::npos) return {};
  size_t n = 0;
  while (n < re.size() && !is_regex_meta(re[n])) ++n;
  if (n < re.size() && n > 0 && std::string_view("*?{").find(re[n]) != std::string_view::npos) --n;
  return re.substr(0, n);
}

constexpr uint64_t kIdMask = 0xffff'ffff;

}  // namespace

std::string_view SeriesIndex::value_in(std::string_view key, std::string_view name) {
  std::string_view out;
  for_each_label(key, [&](std::string_view n, std::string_view v) {
    if (n != name) return true;
    out = v;
    return false;
  });
  return out;
}

bool SeriesIndex::is_canonical(std::string_view key) {
  std::string_view previous;
  bool ok = true;
  size_t consumed = 0;
  for_each_label(key, [&](std::string_view name, std::string_view value) {
    ok = !name.empty() && (consumed == 0 || previous < name);
    previous = name;
    consumed = static_cast<size_t>(value.data() + value.size() - key.data());
    return ok;
  });
  return ok && consumed == key.size();
}

const SeriesIndex::ValueEntry* SeriesIndex::LabelIndex::find(std::string_view value) const {
  const auto less = [&](uint32_t e, std::string_view v) { return entries[e].value < v; };
  for (const auto* run : {&sorted, &recent}) {
    auto it = std::lower_bound(run->begin(), run->end(), value, less);
    if (it != run->end() && entries[*it].value == value) return &entries[*it];
  }
  return nullptr;
}

SeriesIndex::ValueEntry& SeriesIndex::LabelIndex::find_or_add(std::string_view value) {
  if (const ValueEntry* e = find(value)) return const_cast<ValueEntry&>(*e);
  const auto less = [&](uint32_t e, std::string_view v) { return entries[e].value < v; };
  const auto at = static_cast<uint32_t>(entries.size());
  entries.push_back({value, {}});
  recent.insert(std::lower_bound(recent.begin(), recent.end(), value, less), at);
  if (recent.size() >= kRecentMax) {
    // Fold the recent run in: one binary search per recent value, one pass of moves.
    std::vector<uint32_t> merged;
    merged.reserve(sorted.size() + recent.size());
    auto from = sorted.begin();
    for (uint32_t r : recent) {
      auto to = std::lower_bound(from, sorted.end(), entries[r].value, less);
      merged.insert(merged.end(), from, to);
      merged.push_back(r);
      from = to;
    }
    merged.insert(merged.end(), from, sorted.end());
    sorted.swap(merged);
    recent.clear();
  }
  return entries[at];
}

template <typename F>
void SeriesIndex::LabelIndex::for_prefix(std::string_view prefix, F&& f) const {
  const auto less = [&](uint32_t e, std::string_view v) { return entries[e].value < v; };
  auto a = std::lower_bound(sorted.begin(), sorted.end(), prefix, less);
  auto b = std::lower_bound(recent.begin(), recent.end(), prefix, less);
  auto in = [&](auto it, const std::vector<uint32_t>& run) {
    return it != run.end() && entries[*it].value.starts_with(prefix);
  };
  bool more_a = in(a, sorted);
  bool more_b = in(b, recent);
  while (more_a || more_b) {
    if (more_a && (!more_b || entries[*a].value < entries[*b].value)) {
      f(entries[*a]);
      more_a = in(++a, sorted);
    } else {
      f(entries[*b]);
      more_b = in(++b, recent);
    }
  }
}

SeriesIndex::SeriesIndex() : table_(1024, 0) {}

uint64_t SeriesIndex::store_key(std::string_view key) {
  const size_t need = varint_size(key.size()) + key.size();
  if (chunks_.empty() || chunk_used_ + need > chunk_capacity_) {
    chunk_capacity_ = std::max(kChunkBytes, need);
    chunks_.push_back(std::make_unique<char[]>(chunk_capacity_));
    arena_bytes_ += chunk_capacity_;
    chunk_used_ = 0;
  }
  const uint64_t where = (uint64_t{chunks_.size() - 1} << 32) | chunk_used_;
  char* out = chunks_.back().get() + chunk_used_;
  uint64_t n = key.size();
  while (n >= 0x80) {
    *out++ = static_cast<char>((n & 0x7f) | 0x80);
    n >>= 7;
  }
  *out++ = static_cast<char>(n);
  std::memcpy(out, key.data(), key.size());
  chunk_used_ += need;
  return where;
}

std::string_view SeriesIndex::key(uint64_t id) const {
  const uint64_t where = locations_[id - 1];
  const char* p = chunks_[where >> 32].get() + (where & kIdMask);
  uint64_t n = 0;
  for (int shift = 0;; shift += 7) {
    const auto byte = static_cast<uint8_t>(*p++);
    n |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) break;
  }
  return {p, n};
}

uint64_t SeriesIndex::find(std::string_view key) const {
  const uint64_t tag = std::hash<std::string_view>{}(key) >> 32;
  const uint64_t mask = table_.size() - 1;
  for (uint64_t pos = tag & mask;; pos = (pos + 1) & mask) {
    const uint64_t e = table_[pos];
    if (e == 0) return 0;
    if ((e >> 32) == tag && this->key(e & kIdMask) == key) return e & kIdMask;
  }
}

void SeriesIndex::grow_table() {
  std::vector<uint64_t> grown(table_.size() * 2, 0);
  const uint64_t mask = grown.size() - 1;
  for (uint64_t e : table_) {
    if (e == 0) continue;
    uint64_t pos = (e >> 32) & mask;
    while (grown[pos] != 0) pos = (pos + 1) & mask;
    grown[pos] = e;
  }
  table_.swap(grown);
}

uint64_t SeriesIndex::add(std::string_view key) {
  const auto id = static_cast<uint32_t>(locations_.size() + 1);
  locations_.push_back(store_key(key));
  // At most three quarters full: linear probing stays short.
  if ((locations_.size() + 1) * 4 > table_.size() * 3) grow_table();
  const uint64_t tag = std::hash<std::string_view>{}(key) >> 32;
  const uint64_t mask = table_.size() - 1;
  uint64_t pos = tag & mask;
  while (table_[pos] != 0) pos = (pos + 1) & mask;
  table_[pos] = (tag << 32) | id;
  index_labels(this->key(id), id);
  return id;
}

void SeriesIndex::index_labels(std::string_view key, uint32_t id) {
  for_each_label(key, [&](std::string_view name, std::string_view value) {
    auto it = postings_.find(name);
    if (it == postings_.end()) it = postings_.emplace(std::string(name), LabelIndex{}).first;
    it->second.find_or_add(value).ids.push_back(id);
    return true;
  });
}

bool SeriesIndex::matches_all(std::string_view key, std::span<const LabelMatcher> matchers) const {
  return std::all_of(matchers.begin(), matchers.end(),
                     [&](const LabelMatcher& m) { return m.matches(value_in(key, m.name())); });
}

std::vector<uint64_t> SeriesIndex::select(std::span<const LabelMatcher> matchers) const {
  // The postings lists a matcher selects, by the label's values.
  auto lists_of = [&](const LabelMatcher& m, std::vector<const PostingList*>& lists) {
    lists.clear();
    auto n = postings_.find(m.name());
    if (n == postings_.end()) return;
    const LabelIndex& values = n->second;
    auto add = [&](const ValueEntry* e) {
      if (e != nullptr && m.matches(e->value)) lists.push_back(&e->ids);
    };
    if (m.type() == MatchType::kEqual) {
      add(values.find(m.value()));
      return;
    }
    if (auto literals = literal_alternatives(m.value())) {
      for (auto v : *literals) add(values.find(v));
      std::sort(lists.begin(), lists.end());
      lists.erase(std::unique(lists.begin(), lists.end()), lists.end());
      return;
    }
    values.for_prefix(literal_prefix(m.value()), [&](const ValueEntry& e) { add(&e); });
  };
  std::vector<const PostingList*> best;
  size_t best_size = SIZE_MAX;
  std::vector<const PostingList*> lists;
  for (const auto& m : matchers) {
    if (m.matches_empty() ||
        (m.type() != MatchType::kEqual && m.type() != MatchType::kRegexMatch)) {
      continue;
    }
    lists_of(m, lists);
    size_t size = 0;
    for (const auto* l : lists) size += l->size();
    if (size < best_size) {
      best_size = size;
      best.swap(lists);
    }
  }
  std::vector<uint64_t> out;
  auto consider = [&](uint64_t id) {
    if (matches_all(key(id), matchers)) out.push_back(id);
  };
  if (best_size == SIZE_MAX) {
    for (uint64_t id = 1; id <= size(); ++id) consider(id);
    return out;
  }
  if (best.size() == 1) {
    for (uint32_t id : *best[0]) consider(id);
    return out;
  }
  // Several values' lists, each sorted and no series in two (a label has one value): their
  // union in id order, as readers expect.
  std::vector<uint32_t> ids;
  ids.reserve(best_size);
  for (const auto* l : best) ids.insert(ids.end(), l->begin(), l->end());
  std::sort(ids.begin(), ids.end());
  for (uint32_t id : ids) consider(id);
  return out;
}

std::vector<std::string> SeriesIndex::label_names() const {
  std::vector<std::string> out;
  out.reserve(postings_.size());
  for (const auto& [name, values] : postings_) out.push_back(name);
  return out;
}

std::vector<std::string> SeriesIndex::label_values(std::string_view name) const {
  std::vector<std::string> out;
  if (auto it = postings_.find(name); it != postings_.end()) {
    out.reserve(it->second.entries.size());
    it->second.for_prefix({}, [&](const ValueEntry& e) { out.emplace_back(e.value); });
  }
  return out;
}

size_t SeriesIndex::count(std::string_view name, std::string_view value) const {
  auto it = postings_.find(name);
  if (it == postings_.end()) return 0;
  const ValueEntry* e = it->second.find(value);
  return e == nullptr ? 0 : e->ids.size();
}

size_t SeriesIndex::memory_bytes() const {
  size_t bytes = arena_bytes_ + chunks_.capacity() * sizeof(chunks_[0]) +
                 locations_.capacity() * sizeof(uint64_t) + table_.capacity() * sizeof(uint64_t);
  for (const auto& [name, values] : postings_) {
    bytes += name.capacity() + sizeof(LabelIndex) + values.entries.capacity() * sizeof(ValueEntry) +
             (values.sorted.capacity() + values.recent.capacity()) * sizeof(uint32_t);
    for (const auto& e : values.entries) bytes += e.ids.heap_bytes();
  }
  return bytes;
}

}  // namespace kpid::store::detail
