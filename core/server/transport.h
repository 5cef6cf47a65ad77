// A client's byte stream, whatever carries it: stdin/stdout, a UNIX socket, TCP, or TLS over TCP
// (tls.h). The server reads on one thread and writes on another; shutdown() wakes both.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/protocol/protocol.h"

namespace dsk::server {

class Transport {
 public:
  virtual ~Transport() = default;
  // Called once on the connection's own thread before anything is read: TLS's handshake (so a
  // client that stalls in it holds up nobody else). Throws proto::ProtocolError.
  virtual void open() {}
  virtual proto::ByteSource& source() = 0;
  virtual proto::ByteSink& sink() = 0;
  // A read waits at most timeout_ms() (asked again every second; negative: no limit) for data.
  virtual void set_read_timeout(std::function<int()> timeout_ms) = 0;
  // Ends both directions: a blocked read returns the end of the stream, a blocked write fails.
  virtual void shutdown() = 0;
  // Who is at the other end, for the log: "127.0.0.1:50012", "the UNIX socket", "stdin/stdout".
  virtual std::string peer() const = 0;
};

// A socket (in_fd == out_fd; owned, closed with the transport) or a pipe pair (not owned).
std::unique_ptr<Transport> fd_transport(int in_fd, int out_fd, std::string peer, bool owns_fds);

}  // namespace dsk::server
