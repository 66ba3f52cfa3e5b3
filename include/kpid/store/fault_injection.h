#pragma once
// A test-only seam: a RocksDB FileSystem that fails writes on demand, so the tests can show what
// kpid answers on a full disk or a failing one, and that it recovers by itself, on the real
// binary and without mocking kpid's own code. kpid installs it only when the environment
// variable KPID_FAULT_INJECTION names a control file (read when the store opens); nothing in a
// configuration file turns it on.
//
// The control file holds one word, read at every write: "nospace" (writes fail as on ENOSPC:
// IOError NoSpace), "ioerror" (writes fail with a plain IOError), anything else or no file:
// writes go through.

#include <memory>
#include <string>

#include <rocksdb/file_system.h>

namespace kpid::store {

enum class InjectedFault { kNone, kNoSpace, kIoError };

// Reads the control file: the fault it asks for now.
InjectedFault read_injected_fault(const std::string& control_file);

class FaultInjectionFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FaultInjectionFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base,
                           std::string control_file);

  static const char* kClassName() { return "KpidFaultInjectionFileSystem"; }
  const char* Name() const override { return kClassName(); }

  // The error a write gets now, ok when the control file asks for none.
  rocksdb::IOStatus injected(const char* what) const;

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;

 private:
  std::string control_file_;
};

}  // namespace kpid::store
