#include "kpid/store/sample_store.h"

namespace kpid::store {

std::string_view pushback_name(Pushback::Reason reason) {
  switch (reason) {
    case Pushback::Reason::kNone: return "";
    case Pushback::Reason::kWriteStall: return "write_stall";
    case Pushback::Reason::kHeadBacklog: return "head_backlog";
    case Pushback::Reason::kDiskFull: return "disk_full";
    case Pushback::Reason::kWriteError: return "write_error";
    case Pushback::Reason::kMemoryLimit: return "memory_limit";
  }
  return "";
}

}  // namespace kpid::store
