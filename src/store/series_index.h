#pragma once
// Private to the RocksDB store: the in-memory series index in compact form. Each series' canonical
// key (Labels::encode()) is kept once, in an append-only arena of chunks that never move; the
// rest refers to it: a 32-bit id per series, an open-addressing hash table of ids for key -> id,
// and postings (label name -> value -> ids) whose values are views into the arena and whose ids
// are sorted uint32 arrays (one or two held inline, without a heap array).
//
// Not thread-safe: the store guards it with its index_mutex (reads shared, add() exclusive).

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/labels.h"

namespace kpid::store::detail {

// Sorted series ids (ascending, as ids are handed out in order); up to two without a heap array.
class PostingList {
 public:
  PostingList() = default;
  PostingList(const PostingList&) = delete;
  PostingList& operator=(const PostingList&) = delete;
  PostingList(PostingList&& other) noexcept;
  PostingList& operator=(PostingList&& other) noexcept;
  ~PostingList();

  // Appends `id`, which must be above every id held.
  void push_back(uint32_t id);
  size_t size() const { return size_; }
  const uint32_t* begin() const { return cap_ == 0 ? inline_ : heap_; }
  const uint32_t* end() const { return begin() + size_; }
  // Bytes held on the heap (0 while inline).
  size_t heap_bytes() const { return size_t{cap_} * sizeof(uint32_t); }

 private:
  union {
    uint32_t inline_[2];
    uint32_t* heap_;
  };
  uint32_t size_ = 0;
  uint32_t cap_ = 0;  // 0: the ids are in inline_
};

class SeriesIndex {
 public:
  // Ids are 32-bit inside the index and its hash table addresses at most 2^32 slots.
  static constexpr uint64_t kMaxSeries = 3'000'000'000;

  SeriesIndex();
  SeriesIndex(const SeriesIndex&) = delete;
  SeriesIndex& operator=(const SeriesIndex&) = delete;

  // Series held; their ids are 1..size().
  size_t size() const { return locations_.size(); }
  // The id of the series whose canonical key is `key`, or 0.
  uint64_t find(std::string_view key) const;
  // Adds `key` as series size() + 1 and returns that id. `key` must be a valid canonical
  // encoding (Labels::decode() accepts it), not held yet, and size() below kMaxSeries.
  uint64_t add(std::string_view key);
  // The canonical key of series `id` (1..size()), a view into the arena valid for the index's
  // lifetime.
  std::string_view key(uint64_t id) const;

  // Series whose labels satisfy every matcher, in id order. Candidates come from the postings of
  // the matcher that selects the fewest series (an equality, or a regex matched against the
  // label's distinct values: literal alternatives looked up, a literal prefix as a range), then
  // each candidate's key is checked against every matcher. Without a matcher that needs its
  // label set, every series is checked.
  std::vector<uint64_t> select(std::span<const LabelMatcher> matchers) const;
  // Every label name in use, sorted.
  std::vector<std::string> label_names() const;
  // Every value of label `name` in use, sorted.
  std::vector<std::string> label_values(std::string_view name) const;
  // How many series have label `name` = `value`.
  size_t count(std::string_view name, std::string_view value) const;
  // Bytes the index holds on the heap (arena, arrays, postings), for tests and diagnostics.
  size_t memory_bytes() const;

  // The value of label `name` in canonical key `key` ("" when absent).
  static std::string_view value_in(std::string_view key, std::string_view name);
  // Whether `key` is a well-formed encoding of labels with non-empty names in strictly
  // increasing order, as Labels::encode() writes them (checked without decoding).
  static bool is_canonical(std::string_view key);

 private:
  // One distinct value of a label and its series.
  struct ValueEntry {
    std::string_view value;  // into the arena
    PostingList ids;
  };
  // One label name's values. `sorted` and `recent` are positions in `entries` ordered by value;
  // a new value goes into the small `recent` run, which is folded into `sorted` once it holds
  // kRecentMax, so adding a value costs a short move rather than one of the whole array.
  struct LabelIndex {
    std::vector<ValueEntry> entries;
    std::vector<uint32_t> sorted;
    std::vector<uint32_t> recent;
    // The entry of `value`, or null.
    const ValueEntry* find(std::string_view value) const;
    ValueEntry& find_or_add(std::string_view value);
    // Calls f(const ValueEntry&) for every entry whose value starts with `prefix`, in value
    // order.
    template <typename F>
    void for_prefix(std::string_view prefix, F&& f) const;
  };
  static constexpr size_t kRecentMax = 2048;
  static constexpr size_t kChunkBytes = size_t{1} << 20;

  // Copies `key` (varint length first) into the arena; returns where.
  uint64_t store_key(std::string_view key);
  void grow_table();
  void index_labels(std::string_view key, uint32_t id);
  bool matches_all(std::string_view key, std::span<const LabelMatcher> matchers) const;

  std::vector<std::unique_ptr<char[]>> chunks_;
  size_t chunk_used_ = 0;      // bytes used of chunks_.back()
  size_t chunk_capacity_ = 0;  // its size
  size_t arena_bytes_ = 0;
  std::vector<uint64_t> locations_;  // by id - 1: chunk << 32 | offset of the length-prefixed key
  // Open addressing, linear probing: (hash >> 32) << 32 | id, 0 for an empty slot. The slot of
  // an entry follows from its stored hash bits alone, so growing needs no key.
  std::vector<uint64_t> table_;
  std::map<std::string, LabelIndex, std::less<>> postings_;
};

}  // namespace kpid::store::detail
