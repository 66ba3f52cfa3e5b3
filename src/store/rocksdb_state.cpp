#include "rocksdb_impl.h"

namespace kpid::store {

Status RocksDbStore::write_state(std::span<const std::pair<std::string, std::string>> puts,
                                 std::span<const std::string> erase) {
  if (impl_->options.read_only) return Status::unavailable("the store is open read-only");
  rocksdb::WriteBatch batch;
  for (const auto& key : erase) batch.Delete(impl_->state_cf, key);
  for (const auto& [key, value] : puts) batch.Put(impl_->state_cf, key, value);
  if (auto st = impl_->writable(); !st) return st;
  if (auto s = impl_->db->Write(impl_->write_options, &batch); !s.ok()) {
    return impl_->failed_write(s, "writing state");
  }
  return Status::ok();
}

Result<std::optional<std::string>> RocksDbStore::get_state(std::string_view key) const {
  std::string value;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->state_cf, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return from_rocksdb(s, "reading state");
  return std::optional<std::string>(std::move(value));
}

Status RocksDbStore::scan_state(
    std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->state_cf));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size()));
       it->Valid() && it->key().starts_with(rocksdb::Slice(prefix.data(), prefix.size()));
       it->Next()) {
    if (!visit(it->key().ToStringView(), it->value().ToStringView())) break;
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "reading state");
  return Status::ok();
}

Status RocksDbStore::scan_state_reverse(
    std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->state_cf));
  // The first key after every key with this prefix: the prefix with its last byte below 0xff
  // incremented (and the 0xff bytes after it dropped).
  std::string upper(prefix);
  while (!upper.empty() && static_cast<unsigned char>(upper.back()) == 0xff) upper.pop_back();
  if (upper.empty()) {
    it->SeekToLast();
  } else {
    upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);
    it->SeekForPrev(upper);
    if (it->Valid() && it->key() == rocksdb::Slice(upper)) it->Prev();
  }
  const rocksdb::Slice p(prefix.data(), prefix.size());
  for (; it->Valid() && it->key().starts_with(p); it->Prev()) {
    if (!visit(it->key().ToStringView(), it->value().ToStringView())) break;
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "reading state");
  return Status::ok();
}

}  // namespace kpid::store
