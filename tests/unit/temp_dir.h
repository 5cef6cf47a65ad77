// Temporary folders of a test binary, removed when it exits (after a failed ASSERT too).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace dsk::test {

// TMPDIR/dsk-test-PREFIX-NAME-PID, empty; removed with everything in it at exit.
inline std::filesystem::path temp_dir(const std::string& prefix, const std::string& name) {
  struct Cleanup {
    std::vector<std::filesystem::path> dirs;
    ~Cleanup() {
      std::error_code ec;
      for (const auto& d : dirs) std::filesystem::remove_all(d, ec);
    }
  };
  static Cleanup cleanup;
  auto dir = std::filesystem::temp_directory_path() / ("dsk-test-" + prefix + "-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  cleanup.dirs.push_back(dir);
  return dir;
}

}  // namespace dsk::test
