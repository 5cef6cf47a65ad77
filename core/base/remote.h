// What a remote engine (`diffsketch serve --listen`) and its clients share, torch-free so that the
// GIMP plug-in links it too: the listen / connect address ("HOST:PORT"), the token file, and the
// token's comparison.
//
//   const HostPort at = parse_host_port("gpu-box:7860");      // InputError when malformed
//   const std::string token = read_token_file("~/.config/diffsketch/token");
//   if (!same_token(token, given)) ...                         // time independent of the contents
#pragma once

#include <string>
#include <string_view>

namespace dsk {

struct HostPort {
  std::string host;  // a name, an IPv4 address or an IPv6 address (without its brackets)
  int port = 0;
  std::string text() const;  // "host:port", "[::1]:port"
};

// "HOST:PORT" or "[IPV6]:PORT", PORT in 0..65535 (0: let the system choose; a listener only).
// Throws InputError naming `what` (e.g. "--listen") and the expected form.
HostPort parse_host_port(const std::string& text, const std::string& what);

// The shortest token accepted, in characters.
inline constexpr size_t kMinTokenChars = 16;

// Reads the token: the file's first line without surrounding white space. Refused with an
// InputError that says the fix: a file that is missing, not a regular file, not the user's own,
// readable or writable by others (mode beyond 0600: "chmod 600 FILE"), over 4 KiB, or whose token is
// shorter than kMinTokenChars or holds white space or control characters.
std::string read_token_file(const std::string& path);

// Whether two tokens are equal, in a time that does not depend on where they differ (both are
// hashed, and the digests compared whole).
bool same_token(std::string_view expected, std::string_view given);

// How to make a token file (for messages and docs).
std::string token_howto(const std::string& path);

}  // namespace dsk
