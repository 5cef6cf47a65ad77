#include "core/base/remote.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/base/error.h"
#include "core/base/sha256.h"

namespace dsk {

std::string HostPort::text() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

HostPort parse_host_port(const std::string& text, const std::string& what) {
  const std::string form = what + " takes HOST:PORT (e.g. 127.0.0.1:7860, gpu-box:7860 or [::1]:7860); got '" + text + "'";
  HostPort hp;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') throw InputError(form);
    hp.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) throw InputError(form);
    hp.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (hp.host.empty()) throw InputError(form + ": the host is missing");
  for (const char c : hp.host)
    if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '@') throw InputError(form + ": the host is not a name or an address");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    throw InputError(form + ": the port is not a number");
  hp.port = std::stoi(port);
  if (hp.port > 65535) throw InputError(form + ": the port must be in 0..65535");
  return hp;
}

std::string token_howto(const std::string& path) {
  return "make one with: (umask 077; head -c 32 /dev/urandom | base64 > " + path + ")";
}

std::string read_token_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) throw InputError("token file " + path + " does not exist; " + token_howto(path));
    if (err == ELOOP) throw InputError("token file " + path + " is a symbolic link; name the file itself");
    throw InputError("token file " + path + ": cannot open it: " + std::strerror(err));
  }
  struct stat st {};
  std::string text;
  const bool stat_ok = ::fstat(fd, &st) == 0;
  if (stat_ok && S_ISREG(st.st_mode) && st.st_size <= 4096) {
    text.resize(static_cast<size_t>(st.st_size));
    const ssize_t n = ::read(fd, text.data(), text.size());
    text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  ::close(fd);
  if (!stat_ok || !S_ISREG(st.st_mode)) throw InputError("token file " + path + " is not a regular file");
  if (st.st_uid != ::getuid()) throw InputError("token file " + path + " belongs to another user; use a file of your own");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw InputError("token file " + path + " has mode " + mode +
                     ": others may read or change it; make it private with: chmod 600 " + path);
  }
  if (st.st_size > 4096) throw InputError("token file " + path + " is larger than 4 KiB; it should hold one token");
  const auto end_of_line = text.find('\n');
  if (end_of_line != std::string::npos) text.resize(end_of_line);
  const auto first = text.find_first_not_of(" \t\r");
  const auto last = text.find_last_not_of(" \t\r");
  text = first == std::string::npos ? "" : text.substr(first, last - first + 1);
  if (text.size() < kMinTokenChars)
    throw InputError("token file " + path + " holds a token of " + std::to_string(text.size()) + " characters; at least " +
                     std::to_string(kMinTokenChars) + " are needed: " + token_howto(path));
  for (const char c : text)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      throw InputError("token file " + path + ": the token holds white space or a control character; " + token_howto(path));
  return text;
}

bool same_token(std::string_view expected, std::string_view given) {
  Sha256 a, b;
  a.update(expected);
  b.update(given);
  const std::string da = a.hex_digest(), db = b.hex_digest();
  unsigned diff = 0;
  for (size_t i = 0; i < da.size(); ++i) diff |= static_cast<unsigned char>(da[i] ^ db[i]);
  return diff == 0;
}

}  // namespace dsk
