#include "kpid/store/rocksdb_store.h"
#include "kpid/store/rollup.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>

#include <prometheus/gauge.h>

namespace kpid::store {

namespace {

constexpr const char* kSeriesCf = "series";
constexpr const char* kSeriesKeyCf = "series_key";
constexpr const char* kSamplesCf = "samples";

void put_be64(char* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

uint64_t get_be64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

// Flipping the sign bit makes negative timestamps sort before positive ones as unsigned bytes.
uint64_t order_timestamp(TimestampMs ts) { return static_cast<uint64_t>(ts) ^ (1ull << 63); }
TimestampMs unorder_timestamp(uint64_t v) { return static_cast<TimestampMs>(v ^ (1ull << 63)); }

struct SampleKey {
  char bytes[16];
  SampleKey(SeriesId id, TimestampMs ts) {
    put_be64(bytes, id);
    put_be64(bytes + 8, order_timestamp(ts));
  }
  rocksdb::Slice slice() const { return {bytes, sizeof bytes}; }
};

Status from_rocksdb(const rocksdb::Status& s, const char* what) {
  if (s.ok()) return Status::ok();
  if (s.IsNoSpace()) return Status::resource_exhausted(std::string(what) + ": " + s.ToString());
  return Status::io_error(std::string(what) + ": " + s.ToString());
}

// Heterogeneous lookup so a string_view key needs no std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct RocksDbStore::Impl {
  StoreOptions options;
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::ColumnFamilyHandle* series_cf = nullptr;
  rocksdb::ColumnFamilyHandle* series_key_cf = nullptr;
  rocksdb::ColumnFamilyHandle* samples_cf = nullptr;
  rocksdb::ColumnFamilyHandle* default_cf = nullptr;
  rocksdb::WriteOptions write_options;

  // In-memory series index, guarded by index_mutex. Labels live in a deque so pointers handed
  // out as SeriesRef stay valid as series are added.
  mutable std::shared_mutex index_mutex;
  std::deque<Labels> labels_by_index;  // position = id - 1
  std::unordered_map<std::string, SeriesId, StringHash, std::equal_to<>> id_by_key;
  // label name -> value -> series ids (sorted, as ids only grow)
  std::map<std::string, std::map<std::string, std::vector<SeriesId>, std::less<>>, std::less<>>
      postings;
  std::mutex create_mutex;  // serialises series creation

  prometheus::Gauge* series_gauge = nullptr;
  prometheus::Gauge* size_gauge = nullptr;

  void index_series(SeriesId id, Labels labels, std::string key) {
    for (const auto& l : labels.items()) postings[l.name][l.value].push_back(id);
    labels_by_index.push_back(std::move(labels));
    id_by_key.emplace(std::move(key), id);
  }

  const Labels& labels_of(SeriesId id) const { return labels_by_index[id - 1]; }

  Status load_index() {
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
};

Result<std::unique_ptr<RocksDbStore>> RocksDbStore::open(const StoreOptions& options,
                                                         metrics::Metrics* metrics) {
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return Status::io_error("cannot create data directory " + options.data_dir + ": " +
                            ec.message());
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->write_options.sync = options.sync;

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_open_files = 512;

  rocksdb::ColumnFamilyOptions samples_options;
  samples_options.compression = rocksdb::kLZ4Compression;
  samples_options.bottommost_compression = rocksdb::kZSTD;
  rocksdb::ColumnFamilyOptions index_options;
  index_options.compression = rocksdb::kLZ4Compression;

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kSeriesCf, index_options},
      {kSeriesKeyCf, index_options},
      {kSamplesCf, samples_options},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(db_options, options.data_dir, families, &handles, &raw);
  if (!s.ok()) return from_rocksdb(s, ("opening RocksDB in " + options.data_dir).c_str());
  impl->db.reset(raw);
  impl->default_cf = handles[0];
  impl->series_cf = handles[1];
  impl->series_key_cf = handles[2];
  impl->samples_cf = handles[3];

  if (auto st = impl->load_index(); !st) {
    for (auto* h : handles) impl->db->DestroyColumnFamilyHandle(h);
    impl->db.reset();
    return st;
  }

  std::unique_ptr<RocksDbStore> store(new RocksDbStore(std::move(impl)));
  if (metrics != nullptr) {
    auto& reg = metrics->registry();
    store->impl_->series_gauge = &prometheus::BuildGauge()
                                      .Name("kpid_store_series")
                                      .Help("Number of series in the store.")
                                      .Register(reg)
                                      .Add({});
    store->impl_->size_gauge = &prometheus::BuildGauge()
                                    .Name("kpid_store_size_bytes")
                                    .Help("Bytes the store uses on disk (tables and WAL).")
                                    .Register(reg)
                                    .Add({});
    Impl* impl_ptr = store->impl_.get();
    RocksDbStore* self = store.get();
    metrics->on_scrape([impl_ptr, self] {
      if (!impl_ptr->db) return;
      impl_ptr->series_gauge->Set(static_cast<double>(self->series_count()));
      impl_ptr->size_gauge->Set(static_cast<double>(self->disk_usage_bytes()));
    });
  }
  return store;
}

RocksDbStore::RocksDbStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RocksDbStore::~RocksDbStore() {
  if (auto s = close(); !s) spdlog::error("closing store: {}", s.to_string());
}

Status RocksDbStore::close() {
  if (!impl_->db) return Status::ok();
  Status result = Status::ok();
  rocksdb::FlushOptions flush;
  flush.wait = true;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs = {impl_->series_cf, impl_->series_key_cf,
                                                   impl_->samples_cf};
  if (auto s = impl_->db->Flush(flush, cfs); !s.ok()) result = from_rocksdb(s, "flushing");
  if (auto s = impl_->db->SyncWAL(); !s.ok() && result) result = from_rocksdb(s, "syncing WAL");
  for (auto* h : {impl_->default_cf, impl_->series_cf, impl_->series_key_cf, impl_->samples_cf}) {
    impl_->db->DestroyColumnFamilyHandle(h);
  }
  if (auto s = impl_->db->Close(); !s.ok() && result) result = from_rocksdb(s, "closing");
  impl_->db.reset();
  return result;
}

Result<SeriesId> RocksDbStore::resolve(std::string_view key) {
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
  // Decoding validates the label set (no empty or repeated names) before it is made durable,
  // since a bad one would fail every later open.
  auto decoded = Labels::decode(key);
  if (!decoded) return Status::invalid_argument("invalid series: " + decoded.status().message());
  char id_bytes[8];
  put_be64(id_bytes, id);
  rocksdb::WriteBatch batch;
  batch.Put(impl_->series_cf, rocksdb::Slice(id_bytes, 8), rocksdb::Slice(key.data(), key.size()));
  batch.Put(impl_->series_key_cf, rocksdb::Slice(key.data(), key.size()),
            rocksdb::Slice(id_bytes, 8));
  if (auto s = impl_->db->Write(impl_->write_options, &batch); !s.ok()) {
    return from_rocksdb(s, "creating series");
  }
  std::unique_lock lock(impl_->index_mutex);
  impl_->index_series(id, std::move(decoded).value(), std::string(key));
  return id;
}

Status RocksDbStore::append(std::span<const Sample> samples) {
  if (samples.empty()) return Status::ok();
  if (!impl_->db) return Status::unavailable("store is closed");
  rocksdb::WriteBatch batch(samples.size() * 40);
  for (const auto& s : samples) {
    SampleKey key(s.series, s.timestamp);
    char value[8];
    std::memcpy(value, &s.value, 8);
    batch.Put(impl_->samples_cf, key.slice(), rocksdb::Slice(value, 8));
  }
  return from_rocksdb(impl_->db->Write(impl_->write_options, &batch), "writing samples");
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

Status RocksDbStore::read(SeriesId series, TimestampMs start, TimestampMs end,
                          std::vector<Point>& out) const {
  if (!impl_->db) return Status::unavailable("store is closed");
  if (end < start) return Status::ok();
  SampleKey begin(series, start);
  // Upper bound is exclusive: the key just past `end` (or the next series).
  char upper_bytes[16];
  if (end == INT64_MAX) {
    put_be64(upper_bytes, series + 1);
    put_be64(upper_bytes + 8, 0);
  } else {
    SampleKey upper(series, end + 1);
    std::memcpy(upper_bytes, upper.bytes, 16);
  }
  rocksdb::Slice upper_slice(upper_bytes, 16);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->samples_cf));
  for (it->Seek(begin.slice()); it->Valid(); it->Next()) {
    auto k = it->key();
    auto v = it->value();
    if (k.size() != 16 || v.size() != 8) return Status::internal("corrupt sample record");
    Point p;
    p.timestamp = unorder_timestamp(get_be64(k.data() + 8));
    std::memcpy(&p.value, v.data(), 8);
    out.push_back(p);
  }
  return from_rocksdb(it->status(), "reading samples");
}

Result<bool> RocksDbStore::has_samples(SeriesId series, TimestampMs start, TimestampMs end) const {
  if (!impl_->db) return Status::unavailable("store is closed");
  if (end < start) return false;
  SampleKey begin(series, start);
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->samples_cf));
  it->Seek(begin.slice());
  if (!it->status().ok()) return from_rocksdb(it->status(), "reading samples");
  if (!it->Valid() || it->key().size() != 16) return false;
  return get_be64(it->key().data()) == series &&
         unorder_timestamp(get_be64(it->key().data() + 8)) <= end;
}

Status RocksDbStore::read_rollups(SeriesId series, DurationMs width, TimestampMs start,
                                  TimestampMs end, std::vector<Rollup>& out) const {
  if (width != kRollup5m && width != kRollup1h) {
    return Status::invalid_argument("rollup width must be 5m or 1h");
  }
  std::vector<Point> points;
  if (auto s = read(series, start + 1 - width, end, points); !s) return s;
  build_rollups(points, width, start, end, out);
  return Status::ok();
}

TimestampMs RocksDbStore::raw_horizon() const { return INT64_MIN; }
RetentionPolicy RocksDbStore::retention() const { return {}; }

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

uint64_t RocksDbStore::disk_usage_bytes() const {
  if (!impl_->db) return 0;
  uint64_t total = 0;
  for (auto* cf : {impl_->default_cf, impl_->series_cf, impl_->series_key_cf, impl_->samples_cf}) {
    uint64_t v = 0;
    if (impl_->db->GetIntProperty(cf, "rocksdb.total-sst-files-size", &v)) total += v;
  }
  rocksdb::VectorLogPtr wal_files;
  if (impl_->db->GetSortedWalFiles(wal_files).ok()) {
    for (const auto& f : wal_files) total += f->SizeFileBytes();
  }
  return total;
}

}  // namespace kpid::store
