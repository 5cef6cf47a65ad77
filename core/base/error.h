// Errors that carry their context. Thrown inside the engine; caught only at the process edge
// (CLI main, server loop, plug-in run function), where they become a message and an exit status.
//
// Every part throws one of two standard kinds, so that the edges need not know the parts:
//   std::invalid_argument: bad user input (a file, a flag, an image, a request): exit 2, an
//     "input" error reply. core/'s is InputError below; editing/ and models/ sit below core/ and
//     cannot include this header, so they have their own (edit::InputError in editing/error.h,
//     ConfigError in models/adm_config.h).
//   std::runtime_error: the environment refused (disk, socket, file system): exit 1. core/'s is
//     Error below, editing/'s edit::Error.
// A part that catches bad input to go on (a skipped picture, a model folder that does not load)
// catches std::invalid_argument.
#pragma once

#include <stdexcept>
#include <string>

namespace dsk {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad user input (file, flag, image): the message names what was wrong and what was expected.
class InputError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The job was cancelled through its cancel token or its client went away.
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};

}  // namespace dsk
