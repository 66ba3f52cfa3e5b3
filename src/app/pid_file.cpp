#include "pid_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

namespace kpid::app {

namespace {

std::string own_pid() { return std::to_string(::getpid()); }

}  // namespace

Result<PidFile> PidFile::write(const std::string& path) {
  const std::string temporary = path + ".tmp";
  auto fail = [&](const char* what) {
    const int error = errno;
    std::remove(temporary.c_str());
    return Status::io_error("cannot " + std::string(what) + " the pid file " + path +
                            " (--pid-file): " + std::strerror(error));
  };
  {
    std::ofstream out(temporary, std::ios::trunc);
    if (!out) return fail("create");
    out << own_pid() << "\n";
    out.close();
    if (!out) return fail("write");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) return fail("write");
  return PidFile(path);
}

PidFile::PidFile(PidFile&& other) noexcept : path_(std::exchange(other.path_, {})) {}

PidFile::~PidFile() {
  if (path_.empty()) return;
  std::ifstream in(path_);
  std::string pid;
  if (in >> pid && pid == own_pid()) std::remove(path_.c_str());
}

}  // namespace kpid::app
