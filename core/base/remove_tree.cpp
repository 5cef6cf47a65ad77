#include "core/base/remove_tree.h"

#include <ftw.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/base/error.h"

namespace dsk {

namespace {

// nftw's callback gets no user data: the first failure is kept here (one walk at a time per thread).
thread_local std::string failed_path;
thread_local int failed_errno = 0;

int remove_entry(const char* file, const struct stat*, int, struct FTW*) {
  if (::remove(file) == 0 || errno == ENOENT) return 0;
  failed_path = file;
  failed_errno = errno;
  return 1;  // stops the walk
}

}  // namespace

void remove_tree(const std::filesystem::path& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw Error(path.string() + ": cannot remove: " + std::strerror(errno));
  }
  failed_path.clear();
  failed_errno = 0;
  // Depth first (a folder after its contents), on the links themselves, within one file system.
  if (::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0) {
    const int err = failed_errno ? failed_errno : errno;
    throw Error((failed_path.empty() ? path.string() : failed_path) + ": cannot remove: " + std::strerror(err));
  }
}

void replace_tree(const std::filesystem::path& staged, const std::filesystem::path& target) {
  const std::filesystem::path old = target.string() + ".old";
  remove_tree(old);
  if (std::filesystem::exists(target)) std::filesystem::rename(target, old);
  std::filesystem::rename(staged, target);
  remove_tree(old);
}

}  // namespace dsk
