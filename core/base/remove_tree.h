#pragma once
// Removing and replacing folder trees without libstdc++'s directory iterators.
#include <filesystem>

namespace dsk {

// Removes `path` and everything below it, without following symbolic links (a link is removed,
// not what it points to); a path that does not exist is not an error. What
// std::filesystem::remove_all does, but through POSIX nftw(): PyTorch's pip LibTorch (2.5 and
// later) exports its own statically linked copies of libstdc++'s directory iterators
// (pytorch/pytorch#133437), and an engine linked against it crashed in remove_all each time a
// checkpoint replaced an earlier one. Throws dsk::Error naming the file that could not be removed.
void remove_tree(const std::filesystem::path& path);

// Moves the finished folder `staged` to `target`, replacing what was there: the previous `target`
// waits at `target` + ".old" until the new one is in place, then goes (an interrupted swap leaves
// one of the two whole; Checkpointer::recover picks it up).
void replace_tree(const std::filesystem::path& staged, const std::filesystem::path& target);

}  // namespace dsk
