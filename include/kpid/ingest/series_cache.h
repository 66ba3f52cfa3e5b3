#pragma once
// Remembers which series id a line's raw series text (measurement and tags, as written) and
// field key resolved to, so a repeated series skips naming, label sorting and the store's
// shared index. Clients send the same series in the same order request after request (a
// scrape), so the entry after the last hit is tried first: a hit is then one short compare of
// memory that was just read. Misses fall back to a hash lookup. Not thread-safe (one per
// WritePipeline). Valid because series ids never change for a given label set.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kpid/store/sample_store.h"

namespace kpid::ingest {

// The series part of a line: after leading blanks, everything before the first unescaped
// space.
std::string_view raw_series_part(std::string_view line);

class SeriesCache {
 public:
  // Past max_entries the cache takes no more entries (those it holds stay), so memory stays
  // bounded and a working set larger than the cache does not thrash it.
  explicit SeriesCache(size_t max_entries = 1 << 17) : max_entries_(max_entries) {}

  std::optional<store::SeriesId> find(std::string_view series, std::string_view field);
  // Whether the entry after the last hit is for this series text (any field): the caller's
  // cue that the text was seen, and checked, before.
  bool expects(std::string_view series) const;
  void remember(std::string_view series, std::string_view field, store::SeriesId id);
  size_t size() const { return entries_.size(); }
  // Forgets every entry (the text -> series mapping changed, e.g. another database label).
  void clear();

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Keys live back to back in one arena, in first-seen order, so the next expected key is
  // usually next to the last one read (no pointer chase per entry).
  struct Entry {
    uint32_t offset;  // of the key in arena_: series + '\n' + field ('\n' cannot occur in a line)
    uint32_t length;
    store::SeriesId id;
  };
  std::string_view key(const Entry& e) const { return {arena_.data() + e.offset, e.length}; }
  bool same(const Entry& e, std::string_view series, std::string_view field) const;
  const std::string& key_of(std::string_view series, std::string_view field);

  size_t max_entries_;
  std::string arena_;
  std::vector<Entry> entries_;  // in first-seen order
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> index_;
  size_t next_ = 0;  // the entry after the last hit
  std::string scratch_;
};

}  // namespace kpid::ingest
