#pragma once
// What the in-process benchmark programs (kpi_bench, slo_bench) share: a stop flag set by
// SIGINT/SIGTERM, a temporary data dir that is removed however the program ends, and die().

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include <stdlib.h>

namespace kpid_bench {

inline std::atomic<bool> g_stop{false};
inline char g_tmp[4096];                 // the temporary dir, removed at exit ("" when none)
inline const char* g_program = "bench";  // for messages, "PROGRAM: ...": set by main()

inline void on_signal(int) { g_stop.store(true); }

// Prints "PROGRAM: message", removes the temporary dir and exits with `code` at once.
[[noreturn]] inline void die(const std::string& message, int code = 1) {
  std::cerr << g_program << ": " << message << "\n";
  if (g_tmp[0] != '\0') {
    std::error_code ec;
    std::filesystem::remove_all(g_tmp, ec);
  }
  std::_Exit(code);
}

// $TMPDIR/NAME.XXXXXX (default /tmp), removed by the destructor or by die().
struct TempDir {
  explicit TempDir(const char* name) {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/" + name + ".XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) die("mkdtemp failed");
    path = pattern;
    std::snprintf(g_tmp, sizeof g_tmp, "%s", path.c_str());
  }
  ~TempDir() {
    std::error_code ec;
    g_tmp[0] = '\0';
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

}  // namespace kpid_bench
