#pragma once
// kpid --pid-file: the process id in a file, for people and scripts that signal a kpid running in
// the foreground or background (kill -HUP "$(cat data/kpid.pid)"). systemd needs none: it knows
// the main PID ($MAINPID).

#include <string>

#include "kpid/core/status.h"

namespace kpid::app {

class PidFile {
 public:
  // Writes this process's id and a newline to `path`, through a temporary file renamed over
  // it, so a reader never sees half a file. A file left by a process that is gone is replaced.
  static Result<PidFile> write(const std::string& path);

  // Removes the file, unless it no longer holds this process's id (another kpid took it over).
  ~PidFile();
  PidFile(PidFile&& other) noexcept;
  PidFile& operator=(PidFile&&) = delete;
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

 private:
  explicit PidFile(std::string path) : path_(std::move(path)) {}
  std::string path_;  // "" once moved from
};

}  // namespace kpid::app
