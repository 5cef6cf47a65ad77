// The plug-in's side of the engine: finding the `diffsketch` binary, talking to it (a running
// `diffsketch serve` socket, else a `diffsketch serve --stdio` subprocess), and turning every way
// it can fail into one clear message.
//
// Engine search order: $DSK_ENGINE; the path in the file "engine-path" beside the plug-in binary
// (written at install); $XDG_DATA_HOME/diffsketch/bin/diffsketch and each
// $XDG_DATA_DIRS/diffsketch/bin/diffsketch; the engine this plug-in was built with
// (DSK_BUILD_ENGINE_PATH); diffsketch on $PATH.
// Socket: $XDG_RUNTIME_DIR/diffsketch.sock, or /tmp/diffsketch-$UID/diffsketch.sock; set
// DSK_NO_SERVER=1 to always start a private engine.
//
// The warm engine: when no server listens on the socket, the plug-in starts one (`diffsketch serve
// --background --exit-when-idle SECS`, detached, so it outlives the plug-in; one per user, as the
// socket is), which keeps its models loaded and exits after the idle time. A server that answers
// hello with another release, or whose executable was replaced on disk since it started (an
// upgrade, a rebuild), is stopped (SIGTERM, the same user's process only) and a new one started.
// When a server cannot be started, the edit runs on a private engine as before.
//
// A remote engine (`diffsketch serve --listen` on another machine): the "Engine" setting, or
// DSK_ENGINE_URL=HOST:PORT with DSK_ENGINE_TOKEN_FILE and DSK_ENGINE_CERT for batch use (the
// variables win over the settings). The plug-in connects over TCP, through TLS (GIO's, with
// glib-networking) when a certificate is given: the server's PEM file or its SHA-256 fingerprint,
// which is pinned (any other certificate is refused, whoever signed it). Without one it connects
// only to a loopback address (an SSH tunnel's end): a token must not cross a network in the clear.
// The first message is hello with the token. A connection that drops ends the job with a message.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "core/engine/defaults.h"
#include "core/protocol/protocol.h"

namespace dsk::gimp {

// A failure to report to the user as it is (the message is complete).
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The engine binary, or PluginError "engine not found" listing where it looked.
std::string find_engine();

// Where a remote engine is; an empty address means the local engine.
struct RemoteEngine {
  std::string address;     // HOST:PORT ("local" or "": the engine on this computer)
  std::string token_file;  // the file holding the server's token (mode 0600)
  std::string certificate; // TLS: the server's certificate (a PEM file) or its SHA-256 fingerprint; "": no TLS
  std::string origin = "the Engine setting";  // where it was set, for messages
};

// `settings` unless DSK_ENGINE_URL is set (then DSK_ENGINE_URL, DSK_ENGINE_TOKEN_FILE,
// DSK_ENGINE_CERT).
RemoteEngine effective_remote(const RemoteEngine& settings);

// What the dialog says about the engine in use: "this computer" or "gpu-box:7860 (TLS, pinned)".
std::string describe_remote(const RemoteEngine& remote);

// A certificate setting as a fingerprint: "sha256:" and 32 colon-separated upper-case hex pairs.
// Reads a PEM file, or normalises a fingerprint (with or without "sha256:" and colons, any case).
// Throws PluginError naming the setting's origin and the two accepted forms.
std::string pinned_fingerprint(const std::string& certificate, const std::string& origin);

struct EngineOptions {
  RemoteEngine remote;  // empty address: the local engine (below)
  // A server the plug-in starts exits after this many minutes without a client; 0: the plug-in
  // starts none (a private engine per edit; a server the user runs is still used).
  // DSK_ENGINE_IDLE_MINUTES overrides it.
  int idle_minutes = kDefaultEngineIdleMinutes;
  std::function<void(const std::string&)> status;  // what the plug-in is doing, for the progress bar
};

class EngineConnection {
 public:
  // A remote engine when one is set (effective_remote), else: connects to a running server of this
  // release, else starts one, else starts a private engine. Throws PluginError.
  static std::unique_ptr<EngineConnection> open(const EngineOptions& options = {});
  virtual ~EngineConnection() = default;

  // Sends a request and reads the replies up to the final one (model-list or result). An error
  // reply or a dead engine becomes a PluginError that says which (input, out of memory, crash).
  proto::Message request(const proto::Message& req, const std::function<void(const proto::ProgressUpdate&)>& on_progress = {});

  // Asks the engine to stop the running job (its request() then throws "cancelled"); from any
  // thread. Nothing happens when no job runs or the engine is gone.
  void cancel();

  virtual std::string describe() const = 0;  // "the engine /usr/bin/diffsketch" or "the server at ..."

 protected:
  virtual proto::ByteSource& source() = 0;
  virtual proto::ByteSink& sink() = 0;
  // Why the stream ended early: crash, signal, exit status, the engine's last log lines.
  virtual std::string why_gone() = 0;

 private:
  std::mutex write_mutex_;  // request() and cancel() may write from two threads
};

// Connects to a remote engine, sends the token and reads the engine's hello. Throws PluginError.
std::unique_ptr<EngineConnection> open_remote(const RemoteEngine& remote);

}  // namespace dsk::gimp
