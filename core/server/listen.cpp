#include "core/server/listen.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "core/base/error.h"

namespace dsk::server {

namespace {

constexpr int kSendTimeoutSeconds = 60;     // a client that takes nothing for this long is dropped
constexpr int kRecordTimeoutSeconds = 30;   // a read that poll() said would not wait, stalled (a TLS record cut short)

bool loopback(const sockaddr* a) {
  if (a->sa_family == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(a)->sin_addr.s_addr) >> 24) == 127;
  if (a->sa_family == AF_INET6) {
    const in6_addr& v6 = reinterpret_cast<const sockaddr_in6*>(a)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

std::string address_text(const sockaddr* a) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (a->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(a);
    ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
    port = ntohs(v4->sin_port);
  } else if (a->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(a);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
    port = ntohs(v6->sin6_port);
    return HostPort{host, port}.text();
  } else {
    return "a local client";
  }
  return HostPort{host, port}.text();
}

using AddrInfo = std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)>;

AddrInfo resolve(const std::string& host, int port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0 || !res) throw InputError("cannot resolve '" + host + "': " + ::gai_strerror(rc));
  return AddrInfo(res, &::freeaddrinfo);
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    throw InputError("socket path " + path + " is longer than " + std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

int listen_unix(const std::string& path) {
  const sockaddr_un addr = unix_address(path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw InputError(path + " exists and is not a socket; remove it or pass --socket PATH");
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(probe);
    if (live) throw InputError("a diffsketch server already listens at " + path);
    ::unlink(path.c_str());  // stale, from a server that was killed
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(std::string("socket: ") + std::strerror(errno));
  const mode_t old = ::umask(0177);  // the socket is created 0600
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0) {
    const int err = errno;
    ::close(fd);
    throw InputError(path + ": cannot listen there: " + std::strerror(err));
  }
  ::chmod(path.c_str(), 0600);
  if (::listen(fd, 16) != 0) throw Error(std::string("listen: ") + std::strerror(errno));
  return fd;
}

bool is_loopback_host(const std::string& host) {
  const AddrInfo res = resolve(host, 0, false);
  for (const addrinfo* a = res.get(); a; a = a->ai_next)
    if (!loopback(a->ai_addr)) return false;
  return true;
}

TcpListener listen_tcp(const HostPort& at) {
  TcpListener l;
  const AddrInfo res = resolve(at.host, at.port, true);
  l.loopback = true;
  for (const addrinfo* a = res.get(); a; a = a->ai_next) l.loopback = l.loopback && loopback(a->ai_addr);
  std::string why;
  for (const addrinfo* a = res.get(); a && l.fd < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
      why = std::strerror(errno);
      ::close(fd);
      continue;
    }
    l.fd = fd;
  }
  if (l.fd < 0)
    throw InputError("--listen " + at.text() + ": cannot listen there: " + why +
                     (why == std::strerror(EADDRINUSE) ? " (another server uses that port; choose another)" : "") +
                     (why == std::strerror(EADDRNOTAVAIL) ? " (not an address of this machine)" : ""));
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(l.fd, reinterpret_cast<sockaddr*>(&bound), &len);
  l.bound = at;
  l.bound.port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return l;
}

int accept_client(int listener, int ms, std::string* peer) {
  pollfd p{listener, POLLIN, 0};
  const int r = ::poll(&p, 1, ms);
  if (r <= 0) {
    if (r < 0 && errno != EINTR) throw Error(std::string("poll: ") + std::strerror(errno));
    return -1;
  }
  sockaddr_storage from{};
  socklen_t len = sizeof from;
  const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN || errno == EMFILE || errno == ENFILE) return -1;
    throw Error(std::string("accept: ") + std::strerror(errno));
  }
  const timeval send_limit{kSendTimeoutSeconds, 0}, record_limit{kRecordTimeoutSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_limit, sizeof send_limit);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &record_limit, sizeof record_limit);
  if (from.ss_family == AF_INET || from.ss_family == AF_INET6) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  *peer = address_text(reinterpret_cast<const sockaddr*>(&from));
  return fd;
}

}  // namespace dsk::server
