// Where a server listens: a UNIX socket (private to its user) or a TCP address, and accepting
// clients with the socket options every connection gets.
#pragma once

#include <string>

#include "core/base/remote.h"

namespace dsk::server {

// Listens on a UNIX socket created with mode 0600. A stale socket file (of a server that was
// killed) is replaced; a live one is refused ("a diffsketch server already listens at ...").
// Throws InputError.
int listen_unix(const std::string& path);

struct TcpListener {
  int fd = -1;
  HostPort bound;         // the address listened on, with the port the system chose for port 0
  bool loopback = false;  // every address the host names is a loopback address
};
// Listens on HOST:PORT (a name is resolved; every address it names must be loopback for `loopback`).
// Throws InputError naming the address and the reason (in use, not an address of this machine).
TcpListener listen_tcp(const HostPort& at);

// Whether every address `host` resolves to is a loopback address (127.0.0.0/8, ::1); throws
// InputError when it resolves to none.
bool is_loopback_host(const std::string& host);

// Waits up to `ms` for a client; returns its socket (close-on-exec, with a send timeout so that a
// client that stops reading is dropped, and for TCP no Nagle delay) and its address in `peer`, or
// -1 when none came.
int accept_client(int listener, int ms, std::string* peer);

}  // namespace dsk::server
