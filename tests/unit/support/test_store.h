#pragma once
// The RocksDB store unit tests run modules on: in `data_dir`, on the test's clock, with no
// background thread (tests drive checkpoints and rollups themselves).

#include <memory>
#include <string>

#include "kpid/core/time.h"
#include "kpid/store/rocksdb_store.h"

namespace kpid::testing {

inline std::unique_ptr<store::RocksDbStore> open_test_store(const std::string& data_dir,
                                                            const Clock& clock) {
  store::StoreOptions o;
  o.data_dir = data_dir;
  o.clock = &clock;
  o.background = false;
  return std::move(store::RocksDbStore::open(o, nullptr)).value();
}

}  // namespace kpid::testing
