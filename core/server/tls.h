// TLS for a remote engine, through GnuTLS (Debian's libgnutls30): the server's certificate and key,
// and a TLS transport over an accepted TCP socket. The client side (the GIMP plug-in) uses GIO's
// TLS and pins the certificate by its SHA-256 fingerprint, which the server prints at start.
//
//   const TlsCredentials creds("server.crt", "server.key");   // InputError: unreadable, no match
//   std::cerr << creds.fingerprint();                           // "sha256:3F:A0:..."
//   auto t = tls_transport(fd, creds, peer);                    // t->open() runs the handshake
#pragma once

#include <memory>
#include <string>

#include "core/server/transport.h"

namespace dsk::server {

class TlsCredentials {
 public:
  // A PEM certificate (chain) and its PEM private key. The key must not be readable by others
  // (mode o-r); both must load and belong together. Throws InputError saying which and why.
  TlsCredentials(const std::string& cert_file, const std::string& key_file);
  ~TlsCredentials();
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;

  // The SHA-256 of the (first) certificate's DER bytes: "sha256:" and 32 colon-separated hex pairs.
  const std::string& fingerprint() const { return fingerprint_; }
  void* native() const { return cred_; }  // gnutls_certificate_credentials_t

 private:
  void* cred_ = nullptr;
  std::string fingerprint_;
};

// A server-side TLS session over `fd` (owned). open() runs the handshake, which must finish within
// `handshake_ms`.
std::unique_ptr<Transport> tls_transport(int fd, const TlsCredentials& creds, std::string peer, int handshake_ms = 10000);

}  // namespace dsk::server
