#include "kpid/ingest/metric_metadata.h"

#include <boost/json.hpp>

namespace kpid::ingest {

namespace {

constexpr std::string_view kPrefix = "metadata/";

std::string encode(const MetricMetadata& m) {
  return boost::json::serialize(
      boost::json::object{{"type", m.type}, {"help", m.help}, {"unit", m.unit}});
}

}  // namespace

Status MetricMetadataStore::load() {
  std::map<std::string, MetricMetadata, std::less<>> loaded;
  std::string corrupt;
  auto s = state_.scan_state(kPrefix, [&](std::string_view key, std::string_view value) {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(value, ec);
    if (ec || !v.is_object()) {
      corrupt = std::string(key);
      return false;
    }
    const auto& o = v.get_object();
    auto text = [&](const char* name) {
      const auto* f = o.if_contains(name);
      return f != nullptr && f->is_string() ? std::string(f->get_string()) : std::string();
    };
    loaded[std::string(key.substr(kPrefix.size()))] = {text("type"), text("help"), text("unit")};
    return true;
  });
  if (!s) return s;
  if (!corrupt.empty()) return Status::internal("corrupt metric metadata record " + corrupt);
  std::lock_guard lock(mutex_);
  families_ = std::move(loaded);
  return Status::ok();
}

Status MetricMetadataStore::record(std::span<const RemoteMetadata> entries) {
  std::vector<std::pair<std::string, std::string>> puts;
  std::vector<std::pair<std::string, MetricMetadata>> changed;
  {
    std::lock_guard lock(mutex_);
    for (const auto& e : entries) {
      if (e.family.empty()) continue;
      MetricMetadata m{std::string(e.type), std::string(e.help), std::string(e.unit)};
      auto it = families_.find(e.family);
      if (it != families_.end() && it->second == m) continue;
      puts.emplace_back(std::string(kPrefix) + std::string(e.family), encode(m));
      changed.emplace_back(std::string(e.family), std::move(m));
    }
  }
  if (puts.empty()) return Status::ok();
  if (auto s = state_.write_state(puts); !s) return s;
  std::lock_guard lock(mutex_);
  for (auto& [family, m] : changed) families_[family] = std::move(m);
  return Status::ok();
}

std::vector<std::pair<std::string, MetricMetadata>> MetricMetadataStore::list(
    std::string_view metric, size_t limit) const {
  std::vector<std::pair<std::string, MetricMetadata>> out;
  std::lock_guard lock(mutex_);
  if (!metric.empty()) {
    if (auto it = families_.find(metric); it != families_.end()) out.emplace_back(*it);
    return out;
  }
  for (const auto& f : families_) {
    if (limit > 0 && out.size() >= limit) break;
    out.emplace_back(f);
  }
  return out;
}

}  // namespace kpid::ingest
