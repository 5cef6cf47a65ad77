// The editing library's errors. editing/ sits below core/ and does not include it; its errors are
// of the two standard kinds every part throws (core/base/error.h): bad input is a
// std::invalid_argument, a refusal of the file system a std::runtime_error.
#pragma once

#include <stdexcept>

namespace dsk::edit {

// Bad input: an unreadable image, a mask of another size, a parameter out of range.
class InputError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The file system refused (a folder not writable, a disk full).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace dsk::edit
