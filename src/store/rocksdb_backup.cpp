// Online backups (RocksDB's BackupEngine: incremental, table files shared between the backups
// of one directory), restore, and the data dir's format version.
#include <rocksdb/utilities/backup_engine.h>

#include "rocksdb_impl.h"

namespace kpid::store {

namespace {

constexpr const char* kFormatVersionKey = "kpid.format_version";
constexpr const char* kFormatMetadataPrefix = "kpid-format=";

Status from_io(const rocksdb::IOStatus& s, const std::string& what) {
  return from_rocksdb(rocksdb::Status(s), what);
}

BackupInfo info_of(const rocksdb::BackupInfo& b) {
  BackupInfo out;
  out.id = b.backup_id;
  out.timestamp_s = b.timestamp;
  out.size_bytes = b.size;
  out.files = b.number_files;
  if (b.app_metadata.starts_with(kFormatMetadataPrefix)) {
    out.format_version = static_cast<uint32_t>(
        std::strtoul(b.app_metadata.c_str() + std::strlen(kFormatMetadataPrefix), nullptr, 10));
  }
  return out;
}

// The backups in `dir`, oldest first; an empty list when it holds none (or does not exist).
Result<std::vector<BackupInfo>> list_in(const std::string& dir) {
  if (!std::filesystem::exists(dir)) return std::vector<BackupInfo>{};
  rocksdb::BackupEngineOptions options(dir);
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  if (auto s = rocksdb::BackupEngineReadOnly::Open(options, rocksdb::Env::Default(), &raw);
      !s.ok()) {
    return from_io(s, "opening backup directory " + dir);
  }
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  std::vector<BackupInfo> out;
  for (const auto& b : infos) out.push_back(info_of(b));
  return out;
}

}  // namespace

Result<BackupInfo> RocksDbStore::Impl::create_backup(const std::string& dir) {
  std::lock_guard serial(backup_mutex);  // one BackupEngine per directory at a time
  if (!db) return Status::unavailable("store is closed");
  if (dir.empty()) return Status::invalid_argument("no backup directory given");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::io_error("cannot create backup directory " + dir + ": " + ec.message());
  rocksdb::BackupEngineOptions options(dir);
  options.sync = true;
  rocksdb::BackupEngine* raw = nullptr;
  if (auto s = rocksdb::BackupEngine::Open(options, rocksdb::Env::Default(), &raw); !s.ok()) {
    return from_io(s, "opening backup directory " + dir);
  }
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  // Everything acknowledged before now is in the write-ahead log (heads included, as head_log
  // records); the backup copies the table files and that log as of one moment, so it holds
  // all of it, while writes go on.
  rocksdb::CreateBackupOptions create;
  create.flush_before_backup = false;  // the log is copied: no flush needed, none to fail
  rocksdb::BackupID id = 0;
  if (auto s = engine->CreateNewBackupWithMetadata(
          create, db.get(), kFormatMetadataPrefix + std::to_string(kFormatVersion), &id);
      !s.ok()) {
    return from_io(s, "backing up into " + dir);
  }
  rocksdb::BackupInfo info;
  if (auto s = engine->GetBackupInfo(id, &info); !s.ok()) {
    return from_rocksdb(s, "reading backup " + std::to_string(id));
  }
  return info_of(info);
}

Result<BackupInfo> RocksDbStore::backup(const std::string& dir) {
  const auto started = std::chrono::steady_clock::now();
  auto info = impl_->create_backup(dir);
  if (info) {
    spdlog::info("storage: backup {} into {} ({} files, {} bytes) in {:.1f} s", info->id, dir,
                 info->files, info->size_bytes,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  return info;
}

Result<std::vector<BackupInfo>> RocksDbStore::list_backups(const std::string& dir) {
  return list_in(dir);
}

Result<BackupInfo> RocksDbStore::restore(const std::string& backup_dir, const std::string& data_dir,
                                         std::optional<uint32_t> backup_id) {
  std::error_code ec;
  if (std::filesystem::exists(data_dir, ec) && !std::filesystem::is_empty(data_dir, ec)) {
    return Status::invalid_argument("data directory " + data_dir +
                                    " is not empty: restore into a new or empty directory (move "
                                    "the old one away first; kpid must not be running on it)");
  }
  auto backups = list_in(backup_dir);
  if (!backups) return backups.status();
  if (backups->empty()) return Status::not_found("no backups in " + backup_dir);
  const BackupInfo* chosen = &backups->back();
  if (backup_id) {
    chosen = nullptr;
    for (const auto& b : *backups) {
      if (b.id == *backup_id) chosen = &b;
    }
    if (chosen == nullptr) {
      return Status::not_found("no backup " + std::to_string(*backup_id) + " in " + backup_dir);
    }
  }
  if (chosen->format_version > kFormatVersion) {
    return Status::invalid_argument(
        "backup " + std::to_string(chosen->id) + " holds data format version " +
        std::to_string(chosen->format_version) + "; this kpid reads format version " +
        std::to_string(kFormatVersion) + " at most: restore it with a newer kpid");
  }
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status::io_error("cannot create " + data_dir + ": " + ec.message());
  rocksdb::BackupEngineOptions options(backup_dir);
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  if (auto s = rocksdb::BackupEngineReadOnly::Open(options, rocksdb::Env::Default(), &raw);
      !s.ok()) {
    return from_io(s, "opening backup directory " + backup_dir);
  }
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  if (auto s = engine->VerifyBackup(chosen->id, /*verify_with_checksum=*/true); !s.ok()) {
    return from_io(s, "verifying backup " + std::to_string(chosen->id));
  }
  if (auto s =
          engine->RestoreDBFromBackup(rocksdb::RestoreOptions(), chosen->id, data_dir, data_dir);
      !s.ok()) {
    return from_io(s, "restoring backup " + std::to_string(chosen->id) + " into " + data_dir);
  }
  return *chosen;
}

// The data dir's format: recorded in the default column family, so it travels with backups.
// Versions (rocksdb_store.h): 0 and 1, the first layout; 2, rollup blocks that may carry the
// stale-marker flag; 3, 5-minute rollups stored only near raw expiry; 4, today's: rollup_1h one
// value per series and day.
Status RocksDbStore::Impl::check_format(bool existed) {
  std::string value;
  auto s = db->Get(rocksdb::ReadOptions(), default_cf, kFormatVersionKey, &value);
  if (!s.ok() && !s.IsNotFound()) return from_rocksdb(s, "reading the data format version");
  uint32_t version = 0;
  if (s.ok()) version = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
  if (s.ok() && version == kFormatVersion) return Status::ok();
  if (version > kFormatVersion) {
    return Status::invalid_argument(
        "data directory " + options.data_dir + " holds data format version " +
        std::to_string(version) + ", written by a newer kpid; this kpid reads format version " +
        std::to_string(kFormatVersion) +
        " at most: run the newer kpid, or restore a backup taken before the upgrade");
  }
  if (options.read_only) return Status::ok();  // an older format is upgraded by a writer only
  if (existed) {
    // An older format: upgraded in place, after a backup of it as it was.
    const std::string backup_dir = backup_dir_of(options);
    spdlog::warn(
        "storage: data format version {} in {}; backing it up into {} before upgrading it to "
        "version {}",
        version, options.data_dir, backup_dir, kFormatVersion);
    auto backup = create_backup(backup_dir);
    if (!backup) return backup.status();
    spdlog::info("storage: backup {} of the format {} data taken; upgrading", backup->id, version);
  }
  // Up to version 3 rollup_1h held a value per window: rewritten into day values. Nothing else
  // changes (older rollup blocks are still read as they are, stored 5-minute rollups stay
  // valid). A crash part way leaves the version as it was, and the next open carries on: a
  // window already rewritten is a piece of its day's value, which the upgrade skips.
  if (existed) {
    if (auto st = upgrade_rollup_1h_to_days(); !st) return st;
  }
  rocksdb::WriteOptions sync;
  sync.sync = true;
  if (auto w = db->Put(sync, default_cf, kFormatVersionKey, std::to_string(kFormatVersion));
      !w.ok()) {
    return from_rocksdb(w, "recording the data format version");
  }
  if (existed) spdlog::info("storage: data format upgraded to version {}", kFormatVersion);
  return Status::ok();
}

uint32_t RocksDbStore::format_version() { return kFormatVersion; }

}  // namespace kpid::store
