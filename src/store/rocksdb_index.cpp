#include "rocksdb_impl.h"

#include <optional>

namespace kpid::store {

Status RocksDbStore::Impl::load_index() {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), series_cf));
  SeriesId expected = 1;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 8) return Status::internal("corrupt series index key");
    SeriesId id = get_be64(it->key().data());
    if (id != expected) {
      return Status::internal("series index has a gap at id " + std::to_string(expected));
    }
    auto labels = Labels::decode(it->value().ToStringView());
    if (!labels) return labels.status();
    index_series(id, std::move(labels).value(), it->value().ToString());
    ++expected;
  }
  return from_rocksdb(it->status(), "loading series index");
}

Status RocksDbStore::Impl::refuse(const char* reason, std::string message,
                                  std::string_view metric) {
  if (refused != nullptr) refused->Add({{"reason", reason}}).Increment();
  // The operator's view of a cardinality problem is the log: the first refusal of each kind
  // (and of each metric, for the per-metric limit) is logged, then at most once a minute.
  {
    std::lock_guard lock(refusal_log_mutex);
    const auto now = std::chrono::steady_clock::now();
    const std::string key = std::string(reason) + '\n' + std::string(metric);
    if (refusal_logged.size() > 1000) refusal_logged.clear();
    auto [it, fresh] = refusal_logged.try_emplace(key, now);
    if (fresh || now - it->second >= std::chrono::minutes(1)) {
      it->second = now;
      spdlog::warn("storage: {} (kpid_store_series_refused_total{{reason=\"{}\"}})", message,
                   reason);
    }
  }
  return Status::resource_exhausted(std::move(message));
}

// Cardinality guard for a new series.
Status RocksDbStore::Impl::check_limits(const Labels& labels) {
  const auto& l = options.limits;
  if (labels.items().size() > l.max_labels_per_series) {
    return refuse("max_labels_per_series",
                  "series has " + std::to_string(labels.items().size()) +
                      " labels, more than storage.max_labels_per_series (" +
                      std::to_string(l.max_labels_per_series) + "); new series refused");
  }
  for (const auto& label : labels.items()) {
    if (label.name.size() > l.max_label_name_bytes) {
      return refuse("max_label_name_bytes", "label name \"" + label.name.substr(0, 64) +
                                                "...\" is " + std::to_string(label.name.size()) +
                                                " bytes, more than storage.max_label_name_bytes (" +
                                                std::to_string(l.max_label_name_bytes) +
                                                "); new series refused");
    }
    if (label.value.size() > l.max_label_value_bytes) {
      return refuse("max_label_value_bytes",
                    "value of label \"" + label.name + "\" is " +
                        std::to_string(label.value.size()) +
                        " bytes, more than storage.max_label_value_bytes (" +
                        std::to_string(l.max_label_value_bytes) + "); new series refused");
    }
  }
  return Status::ok();
}

Result<SeriesId> RocksDbStore::resolve(std::string_view key) {
  if (impl_->options.read_only) return Status::unavailable("the store is open read-only");
  {
    std::shared_lock lock(impl_->index_mutex);
    if (auto it = impl_->id_by_key.find(key); it != impl_->id_by_key.end()) return it->second;
  }
  std::lock_guard create(impl_->create_mutex);
  SeriesId id = 0;
  {
    std::shared_lock lock(impl_->index_mutex);
    if (auto it = impl_->id_by_key.find(key); it != impl_->id_by_key.end()) return it->second;
    id = impl_->labels_by_index.size() + 1;
  }
  if (!impl_->db) return Status::unavailable("store is closed");
  if (auto st = impl_->memory_allows_new_series(); !st) return st;
  // Decoding validates the label set (no empty or repeated names) before it is made durable,
  // since a bad one would fail every later open.
  auto decoded = Labels::decode(key);
  if (!decoded) return Status::invalid_argument("invalid series: " + decoded.status().message());
  if (id > impl_->options.limits.max_series) {
    return impl_->refuse("max_series", "series limit of " +
                                           std::to_string(impl_->options.limits.max_series) +
                                           " (storage.max_series) reached; new series refused");
  }
  if (auto st = impl_->check_limits(*decoded); !st) return st;
  {
    std::shared_lock lock(impl_->index_mutex);
    const std::string_view name = decoded->metric_name();
    auto by_name = impl_->postings.find(kMetricNameLabel);
    if (by_name != impl_->postings.end()) {
      auto it = by_name->second.find(name);
      const uint64_t limit = impl_->options.limits.max_series_per_metric;
      if (it != by_name->second.end() && it->second.size() >= limit) {
        return impl_->refuse("max_series_per_metric",
                             "metric \"" + std::string(name.substr(0, 200)) + "\" has " +
                                 std::to_string(limit) +
                                 " series, the limit of storage.max_series_per_metric; new "
                                 "series refused",
                             name.substr(0, 200));
      }
    }
  }
  char id_bytes[8];
  put_be64(id_bytes, id);
  rocksdb::WriteBatch batch;
  batch.Put(impl_->series_cf, rocksdb::Slice(id_bytes, 8), rocksdb::Slice(key.data(), key.size()));
  batch.Put(impl_->series_key_cf, rocksdb::Slice(key.data(), key.size()),
            rocksdb::Slice(id_bytes, 8));
  if (auto st = impl_->writable(); !st) return st;
  if (auto s = impl_->db->Write(impl_->write_options, &batch); !s.ok()) {
    return impl_->failed_write(s, "creating series");
  }
  std::unique_lock lock(impl_->index_mutex);
  impl_->index_series(id, std::move(decoded).value(), std::string(key));
  return id;
}

namespace {

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

}  // namespace

// Candidates from the postings of the matcher that selects the fewest series (equality, or a
// regex matched against the label's distinct values rather than every series'), then every
// matcher checked on each candidate. Without a matcher that needs its label to be set
// (a matcher that matches "" also selects series without the label), every series is checked.
std::vector<SeriesRef> RocksDbStore::select(std::span<const LabelMatcher> matchers) const {
  std::shared_lock lock(impl_->index_mutex);
  using Values = std::map<std::string, std::vector<SeriesId>, std::less<>>;
  // The postings lists a matcher selects, by the label's values.
  auto lists_of = [&](const LabelMatcher& m, std::vector<const std::vector<SeriesId>*>& lists) {
    lists.clear();
    auto n = impl_->postings.find(m.name());
    if (n == impl_->postings.end()) return;
    const Values& values = n->second;
    auto add = [&](Values::const_iterator it) {
      if (it != values.end() && m.matches(it->first)) lists.push_back(&it->second);
    };
    if (m.type() == MatchType::kEqual) {
      add(values.find(m.value()));
      return;
    }
    if (auto literals = literal_alternatives(m.value())) {
      for (auto v : *literals) add(values.find(v));
      return;
    }
    const std::string_view prefix = literal_prefix(m.value());
    for (auto it = values.lower_bound(prefix); it != values.end() && it->first.starts_with(prefix);
         ++it) {
      add(it);
    }
  };
  std::vector<const std::vector<SeriesId>*> best;
  size_t best_size = SIZE_MAX;
  std::vector<const std::vector<SeriesId>*> lists;
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
  std::vector<SeriesRef> out;
  auto consider = [&](SeriesId id) {
    const Labels& labels = impl_->labels_of(id);
    if (matches_all(labels, matchers)) out.push_back({id, &labels});
  };
  if (best_size == SIZE_MAX) {
    for (SeriesId id = 1; id <= impl_->labels_by_index.size(); ++id) consider(id);
    return out;
  }
  if (best.size() == 1) {
    for (SeriesId id : *best[0]) consider(id);
    return out;
  }
  // Several values' lists: each is sorted, their union in id order as readers expect.
  std::vector<SeriesId> ids;
  ids.reserve(best_size);
  for (const auto* l : best) ids.insert(ids.end(), l->begin(), l->end());
  std::sort(ids.begin(), ids.end());
  for (SeriesId id : ids) consider(id);
  return out;
}

std::vector<std::string> RocksDbStore::label_names() const {
  std::shared_lock lock(impl_->index_mutex);
  std::vector<std::string> out;
  for (const auto& [name, values] : impl_->postings) out.push_back(name);
  return out;
}

std::vector<std::string> RocksDbStore::label_values(std::string_view name) const {
  std::shared_lock lock(impl_->index_mutex);
  std::vector<std::string> out;
  if (auto it = impl_->postings.find(name); it != impl_->postings.end()) {
    for (const auto& [value, ids] : it->second) out.push_back(value);
  }
  return out;
}

size_t RocksDbStore::series_count() const {
  std::shared_lock lock(impl_->index_mutex);
  return impl_->labels_by_index.size();
}

const Labels* RocksDbStore::labels(SeriesId series) const {
  std::shared_lock lock(impl_->index_mutex);
  if (series == 0 || series > impl_->labels_by_index.size()) return nullptr;
  return &impl_->labels_of(series);
}

}  // namespace kpid::store
