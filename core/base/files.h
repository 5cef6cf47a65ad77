// Writing a small file completely or not at all.
#pragma once

#include <filesystem>
#include <string_view>

namespace dsk {

// Writes `text` to `path` through a temporary beside it (PATH.tmp): every write, the fsync and the
// close are checked, and only then is the temporary renamed over `path`. On any failure (a full
// disk, a file size limit, a folder not writable) the temporary is removed, `path` keeps what it
// had, and a dsk::Error names the file and the reason.
void write_file(const std::filesystem::path& path, std::string_view text);

}  // namespace dsk
