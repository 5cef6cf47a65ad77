// The plug-in's side of a remote engine (`diffsketch serve --listen`): TCP through GIO, TLS through
// GIO's TLS (glib-networking) with the server's certificate pinned by its SHA-256 fingerprint, and
// the token sent first. See engine_client.h.
#include <gio/gio.h>

#include <cctype>
#include <string>

#include "core/base/error.h"
#include "core/base/remote.h"
#include "core/base/sha256.h"
#include "plugin/engine_client.h"

namespace dsk::gimp {

namespace {

constexpr guint kConnectTimeoutSeconds = 20;  // connecting, the TLS handshake and the hello

std::string env(const char* name) {
  const char* v = g_getenv(name);
  return v ? v : "";
}

// The error's message; the error is freed.
std::string error_text(GError*& err) {
  std::string text = err ? err->message : "unknown error";
  g_clear_error(&err);
  return text;
}

std::string fingerprint_of(const guint8* der, size_t size) {
  Sha256 h;
  h.update(der, size);
  const std::string hex = h.hex_digest();
  std::string out = "sha256:";
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (i) out += ':';
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i])));
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i + 1])));
  }
  return out;
}

std::string fingerprint_of(GTlsCertificate* cert) {
  GByteArray* der = nullptr;
  g_object_get(cert, "certificate", &der, nullptr);
  if (!der) return "";
  const std::string fp = fingerprint_of(der->data, der->len);
  g_byte_array_unref(der);
  return fp;
}

// Reads and writes a GIOStream (a TCP connection, or TLS over one). One thread reads while another
// may write (a cancel): GIO's socket and TLS connections allow that.
class RemoteConnection : public EngineConnection, proto::ByteSource, proto::ByteSink {
 public:
  RemoteConnection(GSocketConnection* tcp, GIOStream* stream, std::string address, bool tls)
      : tcp_(tcp), stream_(stream), address_(std::move(address)), tls_(tls) {}
  ~RemoteConnection() override {
    g_io_stream_close(stream_, nullptr, nullptr);
    if (stream_ != G_IO_STREAM(tcp_)) g_object_unref(stream_);
    g_object_unref(tcp_);
  }

  std::string describe() const override {
    return "the remote DiffSketch engine at " + address_ + (tls_ ? " (TLS)" : "");
  }

  void no_more_timeout() { g_socket_set_timeout(g_socket_connection_get_socket(tcp_), 0); }

  size_t read_some(uint8_t* buf, size_t n) override {
    GError* err = nullptr;
    const gssize r = g_input_stream_read(g_io_stream_get_input_stream(stream_), buf, n, nullptr, &err);
    if (r >= 0) return static_cast<size_t>(r);
    lost_ = error_text(err);  // a reset, a timeout, a TLS error: the stream ends here
    return 0;
  }

  void write_all(const uint8_t* buf, size_t n) override {
    GError* err = nullptr;
    if (!g_output_stream_write_all(g_io_stream_get_output_stream(stream_), buf, n, nullptr, nullptr, &err)) {
      lost_ = error_text(err);
      throw proto::ProtocolError("write failed: " + lost_);
    }
  }

 protected:
  proto::ByteSource& source() override { return *this; }
  proto::ByteSink& sink() override { return *this; }
  std::string why_gone() override {
    return "the connection to " + describe() + " was lost" + (lost_.empty() ? "" : " (" + lost_ + ")") +
           "; the engine was stopped or the network dropped. Nothing was changed in the image.";
  }

 private:
  GSocketConnection* tcp_;
  GIOStream* stream_;
  std::string address_;
  bool tls_;
  std::string lost_;
};

struct Pin {
  std::string expected;  // the pinned fingerprint
  std::string seen;      // the certificate the server presented
};

// GIO asks when the certificate does not validate against the system's authorities (a
// self-signed one): accepted only when it is the pinned one.
gboolean on_accept_certificate(GTlsConnection*, GTlsCertificate* cert, GTlsCertificateFlags, gpointer data) {
  auto* pin = static_cast<Pin*>(data);
  pin->seen = fingerprint_of(cert);
  return pin->seen == pin->expected;
}

}  // namespace

RemoteEngine effective_remote(const RemoteEngine& settings) {
  const std::string url = env("DSK_ENGINE_URL");
  if (url.empty()) {
    RemoteEngine r = settings;
    if (r.address == "local") r.address.clear();
    return r;
  }
  RemoteEngine r;
  r.address = url == "local" ? "" : url;
  r.token_file = env("DSK_ENGINE_TOKEN_FILE");
  r.certificate = env("DSK_ENGINE_CERT");
  r.origin = "DSK_ENGINE_URL";
  return r;
}

std::string describe_remote(const RemoteEngine& remote) {
  if (remote.address.empty()) return "this computer";
  return remote.address + (remote.certificate.empty() ? " (no TLS: a loopback address only)" : " (TLS, pinned)") +
         (remote.origin == "DSK_ENGINE_URL" ? ", from DSK_ENGINE_URL" : "");
}

std::string pinned_fingerprint(const std::string& certificate, const std::string& origin) {
  const std::string what = origin == "DSK_ENGINE_URL" ? "DSK_ENGINE_CERT" : "the Engine certificate setting";
  if (g_file_test(certificate.c_str(), G_FILE_TEST_IS_REGULAR)) {
    GError* err = nullptr;
    GTlsCertificate* cert = g_tls_certificate_new_from_file(certificate.c_str(), &err);
    if (!cert)
      throw PluginError(what + ": " + certificate + " is not a PEM certificate (" + error_text(err) +
                        "); give the server's certificate file or its fingerprint");
    const std::string fp = fingerprint_of(cert);
    g_object_unref(cert);
    return fp;
  }
  std::string hex;
  std::string rest = certificate;
  if (rest.size() > 7 && g_ascii_strncasecmp(rest.c_str(), "sha256:", 7) == 0) rest = rest.substr(7);
  for (const char c : rest)
    if (c != ':') hex += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const bool ok = hex.size() == 64 && hex.find_first_not_of("0123456789ABCDEF") == std::string::npos;
  if (!ok)
    throw PluginError(what + " must be the server's certificate file (PEM) or its SHA-256 fingerprint, as `diffsketch "
                      "serve` prints it (sha256:3F:A0:...); '" + certificate + "' is neither (no such file, and not 64 hex digits)");
  std::string out = "sha256:";
  for (size_t i = 0; i < hex.size(); i += 2) out += (i ? ":" : "") + hex.substr(i, 2);
  return out;
}

std::unique_ptr<EngineConnection> open_remote(const RemoteEngine& remote) {
  HostPort at;
  std::string token, pin;
  try {
    at = parse_host_port(remote.address, remote.origin == "DSK_ENGINE_URL" ? "DSK_ENGINE_URL" : "the Engine setting");
    if (at.port == 0) throw InputError("the remote engine's port must not be 0");
    if (remote.token_file.empty())
      throw InputError("the remote engine at " + at.text() + " needs its token: set " +
                       (remote.origin == "DSK_ENGINE_URL" ? "DSK_ENGINE_TOKEN_FILE" : "the Engine token file setting") +
                       " to a file (mode 0600) holding the server's token");
    token = read_token_file(remote.token_file);
  } catch (const std::invalid_argument& e) {
    throw PluginError(e.what());
  }
  if (!remote.certificate.empty()) pin = pinned_fingerprint(remote.certificate, remote.origin);

  GSocketClient* client = g_socket_client_new();
  g_socket_client_set_timeout(client, kConnectTimeoutSeconds);
  GError* err = nullptr;
  GSocketConnection* tcp = g_socket_client_connect_to_host(client, at.host.c_str(), static_cast<guint16>(at.port), nullptr, &err);
  g_object_unref(client);
  if (!tcp)
    throw PluginError("cannot reach the remote DiffSketch engine at " + at.text() + ": " + error_text(err) +
                      " (is `diffsketch serve --listen` running there, and the address and port right?)");
  GIOStream* stream = G_IO_STREAM(tcp);
  if (pin.empty()) {
    GSocketAddress* peer = g_socket_connection_get_remote_address(tcp, nullptr);
    const bool loopback = peer && G_IS_INET_SOCKET_ADDRESS(peer) &&
                          g_inet_address_get_is_loopback(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(peer)));
    if (peer) g_object_unref(peer);
    if (!loopback) {
      g_object_unref(tcp);
      throw PluginError("the remote engine at " + at.text() + " is on another machine: set " +
                        (remote.origin == "DSK_ENGINE_URL" ? "DSK_ENGINE_CERT" : "the Engine certificate setting") +
                        " to its certificate or fingerprint, so that the connection is encrypted and the token does "
                        "not cross the network in the clear (or connect through an SSH tunnel to 127.0.0.1)");
    }
  } else {
    GSocketConnectable* identity = g_network_address_new(at.host.c_str(), static_cast<guint16>(at.port));
    GIOStream* tls = g_tls_client_connection_new(G_IO_STREAM(tcp), identity, &err);
    g_object_unref(identity);
    if (!tls) {
      g_object_unref(tcp);
      throw PluginError("TLS is not available to the plug-in (" + error_text(err) +
                        "): install glib-networking, GIO's TLS support");
    }
    Pin check{pin, ""};
    const gulong handler = g_signal_connect(tls, "accept-certificate", G_CALLBACK(on_accept_certificate), &check);
    const gboolean ok = g_tls_connection_handshake(G_TLS_CONNECTION(tls), nullptr, &err);
    g_signal_handler_disconnect(tls, handler);
    // The pin holds even for a certificate the system's authorities vouch for.
    GTlsCertificate* peer = ok ? g_tls_connection_get_peer_certificate(G_TLS_CONNECTION(tls)) : nullptr;
    if (peer) check.seen = fingerprint_of(peer);
    if (!ok || check.seen != pin) {
      const std::string why = ok ? "" : error_text(err);
      g_object_unref(tls);
      g_object_unref(tcp);
      if (!check.seen.empty() && check.seen != pin)
        throw PluginError("the engine at " + at.text() + " presented a certificate with fingerprint " + check.seen +
                          ", not the pinned " + pin + ": refused (another server, or its certificate was replaced; "
                          "if so, pin the new one)");
      throw PluginError("the TLS handshake with the engine at " + at.text() + " failed: " + why +
                        " (is the server started with --tls-cert and --tls-key?)");
    }
    stream = tls;
  }
  auto conn = std::make_unique<RemoteConnection>(tcp, stream, at.text(), !pin.empty());
  proto::Message reply;
  try {
    reply = conn->request(proto::HelloRequest{token});
  } catch (const PluginError& e) {
    throw PluginError(std::string("the remote engine at ") + at.text() + " did not accept the connection: " + e.what());
  }
  if (!std::holds_alternative<proto::EngineHello>(reply))
    throw PluginError(conn->describe() + " answered hello with a " + proto::message_type(reply) + " message");
  conn->no_more_timeout();  // a queued job may wait long without a message
  return conn;
}

}  // namespace dsk::gimp
