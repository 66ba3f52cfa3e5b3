#include "kpid/store/fault_injection.h"

#include <fstream>

namespace kpid::store {

InjectedFault read_injected_fault(const std::string& control_file) {
  std::ifstream in(control_file);
  std::string word;
  if (!(in >> word)) return InjectedFault::kNone;
  if (word == "nospace") return InjectedFault::kNoSpace;
  if (word == "ioerror") return InjectedFault::kIoError;
  return InjectedFault::kNone;
}

namespace {

// A file whose every write first asks the file system whether it must fail.
class FaultyWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file,
                     const FaultInjectionFileSystem& fs)
      : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_.injected("append"); !s.ok()) return s;
    return target()->Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_.injected("append"); !s.ok()) return s;
    return target()->Append(data, options, info, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_.injected("append"); !s.ok()) return s;
    return target()->PositionedAppend(data, offset, options, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_.injected("append"); !s.ok()) return s;
    return target()->PositionedAppend(data, offset, options, info, dbg);
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_.injected("flush"); !s.ok()) return s;
    return target()->Flush(options, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_.injected("sync"); !s.ok()) return s;
    return target()->Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (auto s = fs_.injected("fsync"); !s.ok()) return s;
    return target()->Fsync(options, dbg);
  }

 private:
  const FaultInjectionFileSystem& fs_;
};

}  // namespace

FaultInjectionFileSystem::FaultInjectionFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base,
                                                   std::string control_file)
    : FileSystemWrapper(base), control_file_(std::move(control_file)) {}

rocksdb::IOStatus FaultInjectionFileSystem::injected(const char* what) const {
  switch (read_injected_fault(control_file_)) {
    case InjectedFault::kNone: return rocksdb::IOStatus::OK();
    case InjectedFault::kNoSpace:
      return rocksdb::IOStatus::NoSpace(std::string("injected fault on ") + what,
                                        "No space left on device");
    case InjectedFault::kIoError:
      return rocksdb::IOStatus::IOError(std::string("injected fault on ") + what,
                                        "Input/output error");
  }
  return rocksdb::IOStatus::OK();
}

rocksdb::IOStatus FaultInjectionFileSystem::NewWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (auto s = injected("create"); !s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  if (auto s = target()->NewWritableFile(name, options, &file, dbg); !s.ok()) return s;
  *result = std::make_unique<FaultyWritableFile>(std::move(file), *this);
  return rocksdb::IOStatus::OK();
}

rocksdb::IOStatus FaultInjectionFileSystem::ReopenWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (auto s = injected("reopen"); !s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  if (auto s = target()->ReopenWritableFile(name, options, &file, dbg); !s.ok()) return s;
  *result = std::make_unique<FaultyWritableFile>(std::move(file), *this);
  return rocksdb::IOStatus::OK();
}

rocksdb::IOStatus FaultInjectionFileSystem::ReuseWritableFile(
    const std::string& name, const std::string& old_name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (auto s = injected("reuse"); !s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  if (auto s = target()->ReuseWritableFile(name, old_name, options, &file, dbg); !s.ok()) {
    return s;
  }
  *result = std::make_unique<FaultyWritableFile>(std::move(file), *this);
  return rocksdb::IOStatus::OK();
}

}  // namespace kpid::store
