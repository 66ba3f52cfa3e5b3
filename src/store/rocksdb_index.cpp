#include "rocksdb_impl.h"

#include <memory>

namespace kpid::store {

Status RocksDbStore::Impl::load_index() {
  if (options.limits.max_series > detail::SeriesIndex::kMaxSeries) {
    return Status::invalid_argument("storage.max_series " +
                                    std::to_string(options.limits.max_series) +
                                    " is above what the series index holds (" +
                                    std::to_string(detail::SeriesIndex::kMaxSeries) + ")");
  }
  rocksdb::ReadOptions ro;
  ro.readahead_size = 4 << 20;  // one sequential pass over the whole column family
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, series_cf));
  SeriesId expected = 1;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 8) return Status::internal("corrupt series index key");
    SeriesId id = get_be64(it->key().data());
    if (id != expected) {
      return Status::internal("series index has a gap at id " + std::to_string(expected));
    }
    if (id > detail::SeriesIndex::kMaxSeries) {
      return Status::internal("series index holds more series than it can load");
    }
    const std::string_view key = it->value().ToStringView();
    // Validated when the series was created; checked again (without decoding, for a fast
    // start), as a bad key would be misread.
    if (!detail::SeriesIndex::is_canonical(key)) {
      if (auto labels = Labels::decode(key); !labels) return labels.status();
    }
    index.add(key);
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
    if (SeriesId id = impl_->index.find(key); id != 0) return id;
  }
  std::lock_guard create(impl_->create_mutex);
  SeriesId id = 0;
  {
    std::shared_lock lock(impl_->index_mutex);
    if (SeriesId found = impl_->index.find(key); found != 0) return found;
    id = impl_->index.size() + 1;
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
    const uint64_t limit = impl_->options.limits.max_series_per_metric;
    if (impl_->index.count(kMetricNameLabel, name) >= limit) {
      return impl_->refuse("max_series_per_metric",
                           "metric \"" + std::string(name.substr(0, 200)) + "\" has " +
                               std::to_string(limit) +
                               " series, the limit of storage.max_series_per_metric; new "
                               "series refused",
                           name.substr(0, 200));
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
  impl_->index.add(key);
  return id;
}

namespace {

// The labels of a key the index holds (validated when the series was created).
std::shared_ptr<const Labels> decode_labels(std::string_view key) {
  auto labels = Labels::decode(key);
  if (!labels) return std::make_shared<const Labels>();
  return std::make_shared<const Labels>(std::move(labels).value());
}

}  // namespace

std::vector<SeriesRef> RocksDbStore::select(std::span<const LabelMatcher> matchers) const {
  std::vector<SeriesRef> out;
  std::vector<std::string_view> keys;
  {
    std::shared_lock lock(impl_->index_mutex);
    const std::vector<uint64_t> ids = impl_->index.select(matchers);
    out.reserve(ids.size());
    keys.reserve(ids.size());
    for (uint64_t id : ids) {
      out.push_back({id, nullptr});
      keys.push_back(impl_->index.key(id));
    }
  }
  // Keys stay where they are (the arena only grows), so they are decoded outside the lock.
  for (size_t i = 0; i < out.size(); ++i) out[i].labels = decode_labels(keys[i]);
  return out;
}

std::vector<std::string> RocksDbStore::label_names() const {
  std::shared_lock lock(impl_->index_mutex);
  return impl_->index.label_names();
}

std::vector<std::string> RocksDbStore::label_values(std::string_view name) const {
  std::shared_lock lock(impl_->index_mutex);
  return impl_->index.label_values(name);
}

size_t RocksDbStore::series_count() const {
  std::shared_lock lock(impl_->index_mutex);
  return impl_->index.size();
}

std::shared_ptr<const Labels> RocksDbStore::labels(SeriesId series) const {
  std::string_view key;
  {
    std::shared_lock lock(impl_->index_mutex);
    if (series == 0 || series > impl_->index.size()) return nullptr;
    key = impl_->index.key(series);
  }
  return decode_labels(key);
}

}  // namespace kpid::store
