#include "kpid/ingest/series_cache.h"

#include <cstring>

namespace kpid::ingest {

std::string_view raw_series_part(std::string_view line) {
  // Leading blanks are trimmed by the parser too.
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\') {
      ++i;  // the escaped character is part of the name
    } else if (line[i] == ' ') {
      return line.substr(0, i);
    }
  }
  return line;
}

bool SeriesCache::same(const Entry& e, std::string_view series, std::string_view field) {
  return e.key.size() == series.size() + 1 + field.size() &&
         std::memcmp(e.key.data(), series.data(), series.size()) == 0 &&
         e.key[series.size()] == '\n' &&
         std::memcmp(e.key.data() + series.size() + 1, field.data(), field.size()) == 0;
}

const std::string& SeriesCache::key_of(std::string_view series, std::string_view field) {
  scratch_.assign(series);
  scratch_.push_back('\n');
  scratch_.append(field);
  return scratch_;
}

bool SeriesCache::expects(std::string_view series) const {
  if (next_ >= entries_.size()) return false;
  const std::string& key = entries_[next_].key;
  return key.size() > series.size() && key[series.size()] == '\n' &&
         std::memcmp(key.data(), series.data(), series.size()) == 0;
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

void SeriesCache::remember(std::string_view series, std::string_view field, store::SeriesId id) {
  if (entries_.size() >= max_entries_) {
    entries_.clear();
    index_.clear();
  }
  const auto position = static_cast<uint32_t>(entries_.size());
  if (!index_.emplace(key_of(series, field), position).second) return;
  entries_.push_back({scratch_, id});
  next_ = entries_.size();
}

}  // namespace kpid::ingest
