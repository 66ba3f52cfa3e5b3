#include "kpid/ingest/series_cache.h"

#include <cstring>

namespace kpid::ingest {

std::string_view raw_series_part(std::string_view line) {
  // Leading blanks are trimmed by the parser too.
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  // A space right after a backslash is escaped, also after another backslash, as the parser
  // reads it (a backslash never escapes a backslash).
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == ' ' && line[i - 1] != '\\') return line.substr(0, i);
  }
  return line;
}

bool SeriesCache::same(const Entry& e, std::string_view series, std::string_view field) const {
  const std::string_view k = key(e);
  return k.size() == series.size() + 1 + field.size() &&
         std::memcmp(k.data(), series.data(), series.size()) == 0 && k[series.size()] == '\n' &&
         (field.empty() ||  // memcmp's pointers must not be null, even for no bytes
          std::memcmp(k.data() + series.size() + 1, field.data(), field.size()) == 0);
}

const std::string& SeriesCache::key_of(std::string_view series, std::string_view field) {
  scratch_.assign(series);
  scratch_.push_back('\n');
  scratch_.append(field);
  return scratch_;
}

bool SeriesCache::expects(std::string_view series) const {
  if (next_ >= entries_.size()) return false;
  const std::string_view k = key(entries_[next_]);
  return k.size() > series.size() && k[series.size()] == '\n' &&
         std::memcmp(k.data(), series.data(), series.size()) == 0;
}

std::optional<store::SeriesId> SeriesCache::find(std::string_view series, std::string_view field) {
  if (next_ < entries_.size() && same(entries_[next_], series, field)) {
    return entries_[next_++].id;
  }
  auto it = index_.find(std::string_view(key_of(series, field)));
  if (it == index_.end()) return std::nullopt;
  next_ = it->second + 1;
  return entries_[it->second].id;
}

void SeriesCache::clear() {
  entries_.clear();
  index_.clear();
  arena_.clear();
  next_ = 0;
}

void SeriesCache::remember(std::string_view series, std::string_view field, store::SeriesId id) {
  // Full: what it holds stays. Starting over would thrash when more series than it holds come
  // round in turn (a million series scraped): each would be dropped before it came back, every
  // sample paying a miss, an insert and the clearing. A miss costs the store's index lookup,
  // which is cheap. Offsets are 32-bit: the arena stops well before it could outgrow them.
  if (entries_.size() >= max_entries_ || arena_.size() > (uint32_t{1} << 31)) return;
  const auto position = static_cast<uint32_t>(entries_.size());
  if (!index_.emplace(key_of(series, field), position).second) return;
  entries_.push_back(
      {static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(scratch_.size()), id});
  arena_ += scratch_;
  next_ = entries_.size();
}

}  // namespace kpid::ingest
