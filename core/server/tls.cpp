#include "core/server/tls.h"

#include <gnutls/gnutls.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/base/error.h"

namespace dsk::server {

namespace {

std::string hex_fingerprint(const unsigned char* digest, size_t n) {
  std::string out = "sha256:";
  char pair[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(pair, sizeof pair, i + 1 < n ? "%02X:" : "%02X", digest[i]);
    out += pair;
  }
  return out;
}

// Reading and writing may run on two threads at once (GnuTLS allows one sender and one receiver per
// session); the handshake runs before either starts.
class TlsTransport : public Transport, proto::ByteSource, proto::ByteSink {
 public:
  TlsTransport(int fd, const TlsCredentials& creds, std::string peer, int handshake_ms)
      : fd_(fd), peer_(std::move(peer)), handshake_ms_(handshake_ms) {
    gnutls_init(&session_, GNUTLS_SERVER | GNUTLS_NO_SIGNAL);
    gnutls_set_default_priority(session_);
    gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, static_cast<gnutls_certificate_credentials_t>(creds.native()));
    gnutls_certificate_server_set_request(session_, GNUTLS_CERT_IGNORE);
    gnutls_transport_set_int(session_, fd_);
  }
  ~TlsTransport() override {
    gnutls_deinit(session_);
    ::close(fd_);
  }

  void open() override {
    gnutls_handshake_set_timeout(session_, static_cast<unsigned>(handshake_ms_));
    int rc;
    do rc = gnutls_handshake(session_);
    while (rc < 0 && gnutls_error_is_fatal(rc) == 0 && !done_);
    if (rc < 0)
      throw proto::ProtocolError(std::string("TLS handshake failed: ") + gnutls_strerror(rc) +
                                 (rc == GNUTLS_E_UNEXPECTED_PACKET_LENGTH || rc == GNUTLS_E_UNSUPPORTED_VERSION_PACKET
                                      ? " (did the client connect without TLS?)"
                                      : ""));
  }
  proto::ByteSource& source() override { return *this; }
  proto::ByteSink& sink() override { return *this; }
  void set_read_timeout(std::function<int()> timeout_ms) override { timeout_ms_ = std::move(timeout_ms); }
  void shutdown() override {
    if (done_.exchange(true)) return;
    ::shutdown(fd_, SHUT_RDWR);
  }
  std::string peer() const override { return peer_; }

  size_t read_some(uint8_t* buf, size_t n) override {
    // A whole record may already be decrypted and waiting; else wait for bytes on the socket.
    if (timeout_ms_ && gnutls_record_check_pending(session_) == 0) proto::wait_readable(fd_, timeout_ms_);
    for (;;) {
      const ssize_t r = gnutls_record_recv(session_, buf, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (r == GNUTLS_E_INTERRUPTED) continue;
      if (r == GNUTLS_E_PREMATURE_TERMINATION || done_) return 0;  // the client closed without a TLS goodbye
      if (r == GNUTLS_E_AGAIN)  // the socket's receive timeout: the client stopped inside a record
        throw proto::ProtocolError("the client stopped sending in the middle of a TLS record; it is dropped");
      throw proto::ProtocolError(std::string("TLS read failed: ") + gnutls_strerror(static_cast<int>(r)));
    }
  }

  void write_all(const uint8_t* buf, size_t n) override {
    while (n > 0) {
      const ssize_t w = gnutls_record_send(session_, buf, n);
      if (w == GNUTLS_E_INTERRUPTED) continue;
      if (w == GNUTLS_E_AGAIN) throw proto::ProtocolError("the client stopped reading (send timeout); it is dropped");
      if (w < 0) throw proto::ProtocolError(std::string("TLS write failed (the client is gone?): ") + gnutls_strerror(static_cast<int>(w)));
      buf += w;
      n -= static_cast<size_t>(w);
    }
  }

 private:
  int fd_;
  gnutls_session_t session_ = nullptr;
  std::string peer_;
  int handshake_ms_;
  std::function<int()> timeout_ms_;
  std::atomic<bool> done_{false};
};

}  // namespace

TlsCredentials::TlsCredentials(const std::string& cert_file, const std::string& key_file) {
  struct stat st {};
  for (const auto* f : {&cert_file, &key_file})
    if (::stat(f->c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      throw InputError((f == &cert_file ? "--tls-cert " : "--tls-key ") + *f + ": no such file");
  ::stat(key_file.c_str(), &st);
  if ((st.st_mode & 007) != 0)
    throw InputError("--tls-key " + key_file + " can be read by every user of this machine; make it private with: chmod 600 " + key_file);
  gnutls_certificate_credentials_t cred = nullptr;
  if (gnutls_certificate_allocate_credentials(&cred) < 0) throw Error("GnuTLS: cannot allocate credentials");
  cred_ = cred;
  const int rc = gnutls_certificate_set_x509_key_file(cred, cert_file.c_str(), key_file.c_str(), GNUTLS_X509_FMT_PEM);
  if (rc < 0) {
    gnutls_certificate_free_credentials(cred);
    cred_ = nullptr;
    throw InputError("--tls-cert " + cert_file + " / --tls-key " + key_file + ": " + gnutls_strerror(rc) +
                     " (both must be PEM files, the key the certificate's own; a self-signed pair: openssl req -x509 "
                     "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -subj /CN=HOST -keyout KEY -out CERT)");
  }
  gnutls_datum_t der{};
  if (gnutls_certificate_get_crt_raw(cred, 0, 0, &der) < 0) throw Error("GnuTLS: cannot read back the certificate");
  unsigned char digest[32];
  size_t size = sizeof digest;
  if (gnutls_fingerprint(GNUTLS_DIG_SHA256, &der, digest, &size) < 0 || size != sizeof digest)
    throw Error("GnuTLS: cannot compute the certificate's fingerprint");
  fingerprint_ = hex_fingerprint(digest, size);
}

TlsCredentials::~TlsCredentials() {
  if (cred_) gnutls_certificate_free_credentials(static_cast<gnutls_certificate_credentials_t>(cred_));
}

std::unique_ptr<Transport> tls_transport(int fd, const TlsCredentials& creds, std::string peer, int handshake_ms) {
  return std::make_unique<TlsTransport>(fd, creds, std::move(peer), handshake_ms);
}

}  // namespace dsk::server
