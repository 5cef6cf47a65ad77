// Finding and talking to the DiffSketch engine (see engine_client.h).
#include "plugin/engine_client.h"

#include "core/base/env.h"
#include "core/base/version.h"

#include <fcntl.h>
#include <gio/gio.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

namespace dsk::gimp {

namespace {

namespace proto = dsk::proto;

std::string env(const char* name) {
  const char* v = g_getenv(name);
  return v ? v : "";
}

bool is_executable(const std::string& path) {
  return !path.empty() && g_file_test(path.c_str(), G_FILE_TEST_IS_EXECUTABLE) && !g_file_test(path.c_str(), G_FILE_TEST_IS_DIR);
}

std::string self_path() {
  gchar* p = g_file_read_link("/proc/self/exe", nullptr);
  std::string s = p ? p : "";
  g_free(p);
  return s;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

std::string signal_name(int sig) {
  const char* d = strsignal(sig);
  return "signal " + std::to_string(sig) + (d ? std::string(", ") + d : "");
}

std::string socket_path() {
  const std::string runtime = env("XDG_RUNTIME_DIR");
  if (!runtime.empty()) return runtime + "/diffsketch.sock";
  return "/tmp/diffsketch-" + std::to_string(getuid()) + "/diffsketch.sock";
}

// Waits up to `ms` for the process to end; false on timeout.
bool wait_for(GSubprocess* proc, int ms) {
  GCancellable* cancellable = g_cancellable_new();
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread timer([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return done; })) g_cancellable_cancel(cancellable);
  });
  const gboolean ok = g_subprocess_wait(proc, cancellable, nullptr);
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  timer.join();
  g_object_unref(cancellable);
  return ok;
}

// `diffsketch serve --stdio` as a child process; its stderr goes to an unlinked temp file.
class SubprocessConnection : public EngineConnection {
 public:
  explicit SubprocessConnection(std::string engine) : engine_(std::move(engine)) {
    gchar* log_path = nullptr;
    GError* err = nullptr;
    const int fd = g_file_open_tmp("diffsketch-engine-XXXXXX.log", &log_path, &err);
    if (fd >= 0) {
      g_unlink(log_path);
      log_fd_ = dup(fd);
    }
    g_free(log_path);
    g_clear_error(&err);
    GSubprocessLauncher* launcher =
        g_subprocess_launcher_new(GSubprocessFlags(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE));
    if (fd >= 0) g_subprocess_launcher_take_stderr_fd(launcher, fd);
    const gchar* argv[] = {engine_.c_str(), "serve", "--stdio", nullptr};
    proc_ = g_subprocess_launcher_spawnv(launcher, argv, &err);
    g_object_unref(launcher);
    if (!proc_) {
      std::string msg = err ? err->message : "unknown error";
      g_clear_error(&err);
      throw PluginError("cannot start the DiffSketch engine " + engine_ + ": " + msg);
    }
    in_fd_ = g_unix_input_stream_get_fd(G_UNIX_INPUT_STREAM(g_subprocess_get_stdout_pipe(proc_)));
    out_fd_ = g_unix_output_stream_get_fd(G_UNIX_OUTPUT_STREAM(g_subprocess_get_stdin_pipe(proc_)));
    src_ = std::make_unique<proto::FdSource>(in_fd_);
    sink_ = std::make_unique<proto::FdSink>(out_fd_);
  }

  ~SubprocessConnection() override {
    // End of input: the engine finishes (or cancels) and exits; one that hangs is killed.
    g_output_stream_close(g_subprocess_get_stdin_pipe(proc_), nullptr, nullptr);
    if (!wait_for(proc_, 10000)) {
      g_subprocess_force_exit(proc_);
      wait_for(proc_, 2000);
    }
    g_object_unref(proc_);
    if (log_fd_ >= 0) close(log_fd_);
  }

  std::string describe() const override { return "the DiffSketch engine " + engine_; }

 protected:
  proto::ByteSource& source() override { return *src_; }
  proto::ByteSink& sink() override { return *sink_; }

  std::string why_gone() override {
    std::string what;
    if (!wait_for(proc_, 5000)) {
      what = "the DiffSketch engine " + engine_ + " stopped answering (its output closed but it is still running)";
    } else if (g_subprocess_get_if_signaled(proc_)) {
      const int sig = g_subprocess_get_term_sig(proc_);
      what = sig == SIGKILL ? "the DiffSketch engine " + engine_ + " was killed (" + signal_name(sig) +
                                  "): most likely it ran out of memory and the system's out-of-memory killer stopped it; "
                                  "try a smaller selection, fewer variants or fewer steps"
                            : "the DiffSketch engine " + engine_ + " crashed (" + signal_name(sig) + ")";
    } else {
      what = "the DiffSketch engine " + engine_ + " exited unexpectedly with status " +
             std::to_string(g_subprocess_get_exit_status(proc_));
    }
    const std::string tail = log_tail();
    return tail.empty() ? what : what + "; its last output: " + tail;
  }

 private:
  // The last lines the engine wrote to stderr.
  std::string log_tail() const {
    if (log_fd_ < 0) return "";
    const off_t size = lseek(log_fd_, 0, SEEK_END);
    if (size <= 0) return "";
    const off_t from = size > 2000 ? size - 2000 : 0;
    std::string text(static_cast<size_t>(size - from), '\0');
    const ssize_t n = pread(log_fd_, text.data(), text.size(), from);
    if (n <= 0) return "";
    text.resize(static_cast<size_t>(n));
    std::vector<std::string> lines;
    std::istringstream ss(text);
    for (std::string line; std::getline(ss, line);)
      if (!line.empty()) lines.push_back(line);
    if (lines.size() > 4) lines.erase(lines.begin(), lines.end() - 4);
    return join(lines, " | ");
  }

  std::string engine_;
  GSubprocess* proc_ = nullptr;
  int in_fd_ = -1, out_fd_ = -1, log_fd_ = -1;
  std::unique_ptr<proto::FdSource> src_;
  std::unique_ptr<proto::FdSink> sink_;
};

// A running `diffsketch serve` on its UNIX socket.
class SocketConnection : public EngineConnection {
 public:
  SocketConnection(int fd, std::string path) : fd_(fd), path_(std::move(path)), src_(fd), sink_(fd) {}
  ~SocketConnection() override { close(fd_); }

  // The server's connection, or nullptr when none is listening.
  static std::unique_ptr<SocketConnection> try_connect(const std::string& path) {
    if (!g_file_test(path.c_str(), G_FILE_TEST_EXISTS)) return nullptr;
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) return nullptr;
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return nullptr;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return nullptr;  // stale socket of a stopped server: start a private engine instead
    }
    return std::make_unique<SocketConnection>(fd, path);
  }

  std::string describe() const override { return "the DiffSketch server at " + path_; }

  // Asks the server who it is; std::nullopt when it speaks another protocol version or answers
  // nothing sensible (an older release).
  std::optional<proto::EngineHello> hello() {
    try {
      proto::write_message(sink_, proto::HelloRequest{});
      std::optional<proto::Message> reply = proto::read_message(src_);
      if (reply)
        if (const auto* h = std::get_if<proto::EngineHello>(&*reply)) return *h;
    } catch (const std::exception&) {  // another protocol version, a malformed or missing answer
    }
    return std::nullopt;
  }

  // The process at the other end, if it is this user's (SO_PEERCRED); 0 otherwise.
  pid_t peer_pid() const {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != getuid()) return 0;
    return cred.pid;
  }

 protected:
  proto::ByteSource& source() override { return src_; }
  proto::ByteSink& sink() override { return sink_; }
  std::string why_gone() override {
    return "the DiffSketch server at " + path_ +
           " closed the connection during the job (it was stopped or crashed; its terminal says why)";
  }

 private:
  int fd_;
  std::string path_;
  proto::FdSource src_;
  proto::FdSink sink_;
};

}  // namespace

std::string find_engine() {
  std::vector<std::string> looked;
  if (const std::string e = env("DSK_ENGINE"); !e.empty()) {
    if (!is_executable(e))
      throw PluginError("DSK_ENGINE=" + e + " is not an executable file; point it at the diffsketch engine, or unset it");
    return e;
  }
  const std::string self = self_path();
  gchar* dir = self.empty() ? nullptr : g_path_get_dirname(self.c_str());
  const std::string here = dir ? dir : "";
  g_free(dir);
  for (const auto& c : engine_candidates(here)) {  // core/base/env.h: the doctor looks in the same places
    if (is_executable(c.path) && c.path != self) return c.path;
    looked.push_back(c.path);
  }
  std::vector<std::string> candidates;
#ifdef DSK_INSTALL_ENGINE_PATH
  candidates.push_back(DSK_INSTALL_ENGINE_PATH);
#endif
#ifdef DSK_BUILD_ENGINE_PATH
  candidates.push_back(DSK_BUILD_ENGINE_PATH);
#endif
  for (const auto& c : candidates) {
    if (is_executable(c) && c != self) return c;
    looked.push_back(c);
  }
  if (gchar* p = g_find_program_in_path("diffsketch")) {
    std::string path = p;
    g_free(p);
    if (path != self) return path;
  }
  looked.push_back("diffsketch on PATH");
  throw PluginError("the DiffSketch engine (the diffsketch program) was not found. Install it (./dsk install) or set "
                    "DSK_ENGINE to its path. Looked for: " + join(looked, ", "));
}

namespace {

int64_t mtime_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_mtime) : 0;
}

// Why a running server should be replaced by the engine this plug-in would start ("" when it is
// the right one): another release, or the same executable replaced on disk since it started.
std::string why_replace(const std::optional<proto::EngineHello>& hello, const std::string& engine) {
  if (!hello) return "it is an older release (it does not answer hello)";
  if (hello->version != kVersion)
    return "it is release " + hello->version + " and this plug-in is release " + kVersion;
  if (!engine.empty() && hello->executable == engine && hello->executable_mtime != 0 &&
      mtime_of(engine) != hello->executable_mtime)
    return "its executable " + engine + " was replaced since it started";
  return "";
}

// Stops this user's server at the other end of `conn` and waits (5 s at most) for its socket to go.
bool stop_server(std::unique_ptr<SocketConnection> conn, const std::string& path) {
  const pid_t pid = conn->peer_pid();
  conn.reset();
  if (pid <= 0 || kill(pid, SIGTERM) != 0) return false;
  for (int i = 0; i < 50; ++i) {
    if (!SocketConnection::try_connect(path)) return true;
    g_usleep(100000);
  }
  return false;
}

// `engine serve --background --exit-when-idle SECS`: returns once the server listens. "" on
// success, else why not (the engine's own words).
std::string start_server(const std::string& engine, int idle_minutes) {
  const std::string secs = std::to_string(idle_minutes * 60);
  const gchar* argv[] = {engine.c_str(), "serve", "--background", "--exit-when-idle", secs.c_str(), nullptr};
  GError* err = nullptr;
  GSubprocess* proc = g_subprocess_newv(argv, GSubprocessFlags(G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                                  G_SUBPROCESS_FLAGS_STDERR_PIPE), &err);
  if (!proc) {
    std::string msg = err ? err->message : "unknown error";
    g_clear_error(&err);
    return msg;
  }
  if (!wait_for(proc, 30000)) {
    g_subprocess_force_exit(proc);
    wait_for(proc, 2000);
    g_object_unref(proc);
    return "it did not start listening within 30 s";
  }
  std::string why;
  if (!g_subprocess_get_successful(proc)) {
    gchar buf[1024];
    gsize n = 0;
    g_input_stream_read_all(g_subprocess_get_stderr_pipe(proc), buf, sizeof buf - 1, &n, nullptr, nullptr);
    why = std::string(buf, n);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    if (why.empty()) why = "exit status " + std::to_string(g_subprocess_get_exit_status(proc));
  }
  g_object_unref(proc);
  return why;
}

}  // namespace

std::unique_ptr<EngineConnection> EngineConnection::open(const EngineOptions& options) {
  // A failed write to a dead engine must be an error, not a signal that ends the plug-in.
  signal(SIGPIPE, SIG_IGN);
  if (const RemoteEngine remote = effective_remote(options.remote); !remote.address.empty()) return open_remote(remote);
  if (!env("DSK_NO_SERVER").empty()) return std::make_unique<SubprocessConnection>(find_engine());
  auto status = [&](const std::string& text) {
    if (options.status) options.status(text);
  };
  int idle_minutes = options.idle_minutes;
  if (const std::string v = env("DSK_ENGINE_IDLE_MINUTES"); !v.empty()) {
    char* end = nullptr;
    const long m = std::strtol(v.c_str(), &end, 10);
    if (end == v.c_str() || *end || !kEngineIdleMinutesRange.contains(static_cast<int>(m)))
      throw PluginError("DSK_ENGINE_IDLE_MINUTES=" + v + " is not a number of minutes in " +
                        std::to_string(kEngineIdleMinutesRange.min) + ".." + std::to_string(kEngineIdleMinutesRange.max) +
                        "; set it to 0 for no server, or unset it");
    idle_minutes = static_cast<int>(m);
  }
  const std::string path = socket_path();
  std::string engine, not_found;
  try {
    engine = find_engine();
  } catch (const PluginError& e) {
    not_found = e.what();  // no engine to start: a running server may still do
  }
  if (auto server = SocketConnection::try_connect(path)) {
    const std::string why = why_replace(server->hello(), engine);
    if (why.empty()) return server;
    if (engine.empty()) throw PluginError("the DiffSketch server at " + path + " cannot be used (" + why + "), and " + not_found);
    status("DiffSketch: restarting the engine (" + why + ")");
    g_printerr("DiffSketch: replacing the server at %s: %s\n", path.c_str(), why.c_str());
    if (!stop_server(std::move(server), path)) {
      g_printerr("DiffSketch: could not stop it; using a private engine\n");
      return std::make_unique<SubprocessConnection>(engine);
    }
  }
  if (engine.empty()) throw PluginError(not_found);
  if (idle_minutes > 0) {
    status("DiffSketch: starting the engine");
    const std::string why = start_server(engine, idle_minutes);
    // Another plug-in may have started one at the same moment: whoever listens is used.
    if (auto server = SocketConnection::try_connect(path))
      if (why_replace(server->hello(), engine).empty()) return server;
    g_printerr("DiffSketch: could not start a server (%s); using a private engine\n",
               why.empty() ? "it does not answer" : why.c_str());
  }
  return std::make_unique<SubprocessConnection>(engine);
}

proto::Message EngineConnection::request(const proto::Message& req,
                                         const std::function<void(const proto::ProgressUpdate&)>& on_progress) {
  try {
    std::lock_guard<std::mutex> lock(write_mutex_);
    proto::write_message(sink(), req);
  } catch (const proto::ProtocolError&) {
    throw PluginError(why_gone());
  }
  for (;;) {
    std::optional<proto::Message> msg;
    try {
      msg = proto::read_message(source());
    } catch (const proto::VersionMismatch& e) {
      throw PluginError(describe() + " speaks DiffSketch protocol version " + std::to_string(e.peer_version()) +
                        ", this plug-in speaks version " + std::to_string(proto::kProtocolVersion) +
                        ": install the plug-in and the engine from the same release (./dsk install)");
    } catch (const proto::ProtocolError& e) {
      if (std::string(e.what()).rfind("truncated frame", 0) == 0) throw PluginError(why_gone());
      throw PluginError(describe() + " sent a malformed reply (" + e.what() + "); is it a diffsketch engine?");
    }
    if (!msg) throw PluginError(why_gone());
    if (const auto* p = std::get_if<proto::ProgressUpdate>(&*msg)) {
      if (on_progress) on_progress(*p);
      continue;
    }
    if (const auto* e = std::get_if<proto::ErrorReply>(&*msg)) {
      switch (e->kind) {
        case proto::ErrorKind::Input: throw PluginError(e->message);
        case proto::ErrorKind::OutOfMemory: throw PluginError("DiffSketch: out of memory: " + e->message);
        case proto::ErrorKind::Cancelled: throw PluginError("DiffSketch: cancelled");
        case proto::ErrorKind::Protocol: throw PluginError(describe() + ": " + e->message);
        case proto::ErrorKind::Internal: break;
      }
      throw PluginError("DiffSketch: internal error in the engine: " + e->message);
    }
    return std::move(*msg);
  }
}

void EngineConnection::cancel() {
  std::lock_guard<std::mutex> lock(write_mutex_);
  try {
    proto::write_message(sink(), proto::CancelRequest{});
  } catch (const std::exception&) {
    // The engine is gone: the running request() reports why.
  }
}

}  // namespace dsk::gimp
