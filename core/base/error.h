// Errors that carry their context. Thrown inside the engine; caught only at the process edge
// (CLI main, server loop, plug-in run function), where they become a message and an exit status.
#pragma once

#include <stdexcept>
#include <string>

namespace dsk {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad user input (file, flag, image): the message names what was wrong and what was expected.
class InputError : public Error {
 public:
  using Error::Error;
};

// The job was cancelled through its cancel token or its client went away.
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};

}  // namespace dsk
