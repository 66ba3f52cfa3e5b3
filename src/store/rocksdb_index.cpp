#include "rocksdb_impl.h"

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

Status RocksDbStore::Impl::refuse(const char* reason, std::string message) {
  if (refused != nullptr) refused->Add({{"reason", reason}}).Increment();
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
                                 "series refused");
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

std::vector<SeriesRef> RocksDbStore::select(std::span<const LabelMatcher> matchers) const {
  std::shared_lock lock(impl_->index_mutex);
  std::vector<SeriesRef> out;
  // Narrow the candidates with the most selective equality matcher's postings, if any.
  const std::vector<SeriesId>* candidates = nullptr;
  static const std::vector<SeriesId> kNone;
  for (const auto& m : matchers) {
    if (m.type() != MatchType::kEqual || m.value().empty()) continue;
    const std::vector<SeriesId>* list = &kNone;
    if (auto n = impl_->postings.find(m.name()); n != impl_->postings.end()) {
      if (auto v = n->second.find(m.value()); v != n->second.end()) list = &v->second;
    }
    if (candidates == nullptr || list->size() < candidates->size()) candidates = list;
  }
  auto consider = [&](SeriesId id) {
    const Labels& labels = impl_->labels_of(id);
    if (matches_all(labels, matchers)) out.push_back({id, &labels});
  };
  if (candidates != nullptr) {
    for (SeriesId id : *candidates) consider(id);
  } else {
    for (SeriesId id = 1; id <= impl_->labels_by_index.size(); ++id) consider(id);
  }
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
