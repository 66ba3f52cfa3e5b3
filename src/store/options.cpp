#include "kpid/store/options.h"

#include <filesystem>

namespace kpid::store {

std::vector<std::string> keys_needing_restart(const StoreOptions& running,
                                              const StoreOptions& next) {
  std::vector<std::string> keys;
  auto check = [&](const char* key, bool changed) {
    if (changed) keys.emplace_back(key);
  };
  check("storage.data_dir", running.data_dir != next.data_dir);
  check("storage.sync", running.sync != next.sync);
  const auto& a = running.limits;
  const auto& b = next.limits;
  check("storage.max_series", a.max_series != b.max_series);
  check("storage.max_series_per_metric", a.max_series_per_metric != b.max_series_per_metric);
  check("storage.max_labels_per_series", a.max_labels_per_series != b.max_labels_per_series);
  check("storage.max_label_name_bytes", a.max_label_name_bytes != b.max_label_name_bytes);
  check("storage.max_label_value_bytes", a.max_label_value_bytes != b.max_label_value_bytes);
  check("storage.checkpoint_interval", running.checkpoint_interval != next.checkpoint_interval);
  check("storage.head_max_samples", running.head_max_samples != next.head_max_samples);
  check("storage.min_free_bytes", running.min_free_bytes != next.min_free_bytes);
  check("storage.block_cache", running.block_cache_bytes != next.block_cache_bytes);
  check("storage.backup_dir", running.backup_dir != next.backup_dir);
  check("storage.memory_limit", running.memory_limit_bytes != next.memory_limit_bytes);
  check("retention.raw", running.retention.raw != next.retention.raw);
  check("retention.rollup_5m", running.retention.rollup_5m != next.retention.rollup_5m);
  check("retention.rollup_1h", running.retention.rollup_1h != next.retention.rollup_1h);
  return keys;
}

std::string backup_dir_of(const StoreOptions& options) {
  if (!options.backup_dir.empty()) return options.backup_dir;
  std::filesystem::path data = std::filesystem::absolute(options.data_dir).lexically_normal();
  if (data.filename().empty()) data = data.parent_path();  // a trailing '/'
  return (data.parent_path() / "kpid-backups").string();
}

}  // namespace kpid::store
