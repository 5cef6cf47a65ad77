// `diffsketch serve`: the engine behind the GIMP plug-in, speaking the framed protocol
// (core/protocol/protocol.h) over stdin/stdout (--stdio, one client, the plug-in's subprocess) or a UNIX
// socket (one client at a time, the process stays up between edits).
//
// A job runs on a worker thread while the connection's reader keeps watching the input: a cancel
// request, or the input closing (GIMP kills a cancelled plug-in outright), cancels the job through
// its CancelToken; the engine checks it every step. Then --stdio exits and the socket server goes
// back to accepting.
//
// The GIMP plug-in starts a socket server itself when none runs (`serve --background
// --exit-when-idle SECS`): the process detaches (its own session, output to a log file), the
// command returns once the socket listens, and the server exits after SECS without a client. A
// hello request tells the plug-in which release and executable a running server is
// (proto::EngineHello), so that one of another release, or whose executable was replaced since it
// started, is replaced.
//
// What a request means is serve_requests.cpp's (protocol messages -> engine requests -> replies);
// this file is the transport. The server's Engine keeps its models loaded between requests and
// clients (core/engine/model_cache.h).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <sstream>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "core/base/error.h"
#include "core/base/version.h"
#include "core/cli/commands.h"
#include "core/cli/serve_requests.h"
#include "core/engine/engine.h"
#include "core/formats/model_registry.h"
#include "core/protocol/protocol.h"

namespace dsk::cli {

namespace {

namespace fs = std::filesystem;
namespace proto = dsk::proto;

// One client: reads requests, runs one job at a time on a worker thread, writes the replies.
class Session {
 public:
  Session(Engine& engine, proto::ByteSource& in, proto::ByteSink& out, proto::EngineHello hello)
      : engine_(engine), in_(in), out_(out), hello_(std::move(hello)) {}

  bool busy() const { return busy_; }

  void run() {
    for (;;) {
      std::optional<proto::Message> msg;
      try {
        msg = proto::read_message(in_);
      } catch (const proto::VersionMismatch& e) {
        reply(proto::ErrorReply{proto::ErrorKind::Protocol,
                                "the plug-in speaks DiffSketch protocol version " + std::to_string(e.peer_version()) +
                                    ", this engine speaks version " + std::to_string(proto::kProtocolVersion) +
                                    "; install the GIMP plug-in and the diffsketch engine from the same release"});
        std::cerr << "diffsketch serve: " << e.what() << "\n";
        break;
      } catch (const proto::ProtocolError& e) {
        reply(proto::ErrorReply{proto::ErrorKind::Protocol, e.what()});
        std::cerr << "diffsketch serve: " << e.what() << "\n";
        break;
      } catch (const std::exception& e) {  // no frame makes the server exit: this client is dropped
        reply(proto::ErrorReply{proto::ErrorKind::Protocol, std::string("unreadable frame: ") + e.what()});
        std::cerr << "diffsketch serve: unreadable frame: " << e.what() << "\n";
        break;
      }
      if (!msg) break;  // the client closed its end
      if (std::holds_alternative<proto::CancelRequest>(*msg)) {
        cancel_.cancel();
        continue;
      }
      if (busy_) {
        reply(proto::ErrorReply{proto::ErrorKind::Input, "a job is already running; wait for its result or send cancel"});
        continue;
      }
      if (worker_.joinable()) worker_.join();
      if (std::holds_alternative<proto::ModelsRequest>(*msg)) {
        reply(model_list());
        continue;
      }
      if (std::holds_alternative<proto::HelloRequest>(*msg)) {
        reply(hello_);
        continue;
      }
      cancel_.reset();
      busy_ = true;
      worker_ = std::thread([this, m = std::move(*msg)] { job(m); });
    }
    if (busy_) std::cerr << "diffsketch serve: the client went away; cancelling its job\n";
    cancel_.cancel();
    if (worker_.joinable()) worker_.join();
  }

 private:
  // A CancelToken that can be re-armed between jobs.
  struct Cancel {
    std::unique_ptr<CancelToken> token = std::make_unique<CancelToken>();
    std::mutex mu;
    void cancel() {
      std::lock_guard lock(mu);
      token->cancel();
    }
    void reset() {
      std::lock_guard lock(mu);
      token = std::make_unique<CancelToken>();
    }
    const CancelToken* get() {
      std::lock_guard lock(mu);
      return token.get();
    }
  };

  // false when the client is gone; the running job is then cancelled.
  bool reply(const proto::Message& m) {
    std::lock_guard lock(write_mu_);
    if (peer_gone_) return false;
    try {
      proto::write_message(out_, m);
      return true;
    } catch (const proto::ProtocolError&) {
      peer_gone_ = true;
      cancel_.cancel();
      return false;
    }
  }

  void job(const proto::Message& msg) {
    const ProgressFn progress = [this](const Progress& p) { reply(progress_update(p)); };
    const proto::Message answer = answer_request(engine_, msg, progress, cancel_.get());
    if (const auto* err = std::get_if<proto::ErrorReply>(&answer))
      std::cerr << "diffsketch serve: " << proto::error_kind_name(err->kind) << ": " << err->message << "\n";
    busy_ = false;  // before the reply: the client's next request may follow it at once
    reply(answer);
  }

  Engine& engine_;
  proto::ByteSource& in_;
  proto::ByteSink& out_;
  const proto::EngineHello hello_;
  std::mutex write_mu_;
  bool peer_gone_ = false;
  Cancel cancel_;
  std::atomic<bool> busy_{false};
  std::thread worker_;
};

// Who this process is (answered to a hello): read once at start, so that a later replacement of
// the executable on disk shows as a newer modification time than the one reported.
proto::EngineHello make_hello(int exit_when_idle) {
  proto::EngineHello h;
  h.version = kVersion;
  std::error_code ec;
  h.executable = fs::read_symlink("/proc/self/exe", ec).string();
  struct stat st {};
  if (!h.executable.empty() && ::stat(h.executable.c_str(), &st) == 0) h.executable_mtime = st.st_mtime;
  h.pid = ::getpid();
  h.exit_when_idle = exit_when_idle;
  return h;
}

// ---- the socket server

std::string default_socket_path() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime && *runtime) return std::string(runtime) + "/diffsketch.sock";
  return "/tmp/diffsketch-" + std::to_string(getuid()) + "/diffsketch.sock";
}

// The /tmp fallback folder: ours and private, or refused (another user could otherwise plant it).
void make_private_dir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw InputError(dir.string() + ": cannot create the socket folder: " + std::strerror(errno));
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw InputError(dir.string() + " is not a folder; remove it or pass --socket PATH");
  if (st.st_uid != getuid())
    throw InputError(dir.string() + " belongs to another user; remove it or pass --socket PATH");
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0)
    throw InputError(dir.string() + ": cannot make it private (mode 0700): " + std::strerror(errno));
}

sockaddr_un socket_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    throw InputError("socket path " + path + " is longer than " + std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

char g_socket_path[sizeof(sockaddr_un::sun_path)] = {};

void remove_socket_and_exit(int) {
  if (g_socket_path[0]) ::unlink(g_socket_path);
  _exit(0);
}

int listen_on(const std::string& path) {
  const sockaddr_un addr = socket_address(path);
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
  if (rc != 0) throw InputError(path + ": cannot listen there: " + std::strerror(errno));
  ::chmod(path.c_str(), 0600);
  if (::listen(fd, 4) != 0) throw Error(std::string("listen: ") + std::strerror(errno));
  std::strncpy(g_socket_path, path.c_str(), sizeof g_socket_path - 1);
  ::signal(SIGINT, remove_socket_and_exit);
  ::signal(SIGTERM, remove_socket_and_exit);
  return fd;
}

// Waits up to `seconds` (0: no limit) for a client to connect; false when none did.
bool wait_for_client(int listener, int seconds) {
  if (seconds <= 0) return true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{listener, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 60000)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) throw Error(std::string("poll: ") + std::strerror(errno));
  }
}

struct SocketOptions {
  std::string path;
  int idle_seconds = 60;    // a client silent this long while no job of its runs is dropped (0: never)
  int exit_when_idle = 0;   // the server exits after this long without a client (0: never)
  int ready_fd = -1;        // --background: written "ok" (or the error) once listening, then closed
};

std::string resolve_socket_path(std::string path) {
  if (path.empty()) {
    path = default_socket_path();
    if (!std::getenv("XDG_RUNTIME_DIR") || !*std::getenv("XDG_RUNTIME_DIR")) make_private_dir(fs::path(path).parent_path());
  }
  return path;
}

int serve_socket(const SocketOptions& o) {
  int listener = -1;
  try {
    listener = listen_on(o.path);
  } catch (const std::exception& e) {
    if (o.ready_fd >= 0) {
      const std::string msg = e.what();
      (void)!::write(o.ready_fd, msg.data(), msg.size());
      ::close(o.ready_fd);
    }
    throw;
  }
  Engine engine;  // models stay loaded from one client to the next
  const proto::EngineHello hello = make_hello(o.exit_when_idle);
  std::cerr << "diffsketch serve " << kVersion << " (pid " << hello.pid << "): listening on " << o.path;
  if (o.exit_when_idle > 0) std::cerr << ", exits after " << o.exit_when_idle << " s without a client";
  std::cerr << (o.ready_fd >= 0 ? "\n" : " (Ctrl+C to stop)\n") << std::flush;
  if (o.ready_fd >= 0) {
    (void)!::write(o.ready_fd, "ok", 2);
    ::close(o.ready_fd);
  }
  for (;;) {
    if (!wait_for_client(listener, o.exit_when_idle)) {
      std::cerr << "diffsketch serve: no client for " << o.exit_when_idle << " s; exiting\n";
      ::unlink(o.path.c_str());
      return 0;
    }
    const int client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
      throw Error(std::string("accept: ") + std::strerror(errno));
    }
    proto::FdSource in(client);
    proto::FdSink out(client);
    Session session(engine, in, out, hello);
    if (o.idle_seconds > 0)
      in.set_timeout([&session, ms = o.idle_seconds * 1000] { return session.busy() ? -1 : ms; });
    session.run();
    ::close(client);
  }
}

// The log of a background server: $XDG_CACHE_HOME/diffsketch/serve.log (~/.cache/...), restarted
// when it passes 1 MiB; "" when there is no writable place (then the output is discarded).
std::string background_log_path() {
  const char* cache = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  fs::path dir;
  if (cache && *cache) dir = fs::path(cache) / "diffsketch";
  else if (home && *home) dir = fs::path(home) / ".cache" / "diffsketch";
  else return "";
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path log = dir / "serve.log";
  if (fs::exists(log, ec) && fs::file_size(log, ec) > (1u << 20)) fs::remove(log, ec);
  return ec ? "" : log.string();
}

// --background: the server runs in a child that leaves the caller's session (so that it outlives
// the GIMP plug-in that started it) with its output in the log; this process returns 0 once the
// socket listens, or 1 with the server's error (e.g. another server already listens there).
int serve_in_background(SocketOptions o) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  const std::string log = background_log_path();
  std::cout << std::flush;
  std::cerr << std::flush;
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(ready[0]);
    ::setsid();
    const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    const int log_fd = log.empty() ? -1 : ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd >= 0 ? log_fd : null_fd, STDOUT_FILENO);
    ::dup2(log_fd >= 0 ? log_fd : null_fd, STDERR_FILENO);
    o.ready_fd = ready[1];
    try {
      _exit(serve_socket(o));
    } catch (const std::exception& e) {
      std::cerr << "diffsketch serve: " << e.what() << std::endl;
      _exit(1);
    }
  }
  ::close(ready[1]);
  std::string answer;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(ready[0], buf, sizeof buf);
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(ready[0]);
  if (answer == "ok") {
    std::cout << "diffsketch serve: listening on " << o.path << " (pid " << pid << ", log "
              << (log.empty() ? "discarded" : log) << ")" << std::endl;
    return 0;
  }
  std::cerr << "diffsketch serve: "
            << (answer.empty() ? "the background server ended before it listened (see " + log + ")" : answer) << std::endl;
  return 1;
}

int serve_stdio() {
  // Frames own the real stdout; anything else the process prints goes to stderr.
  const int out_fd = ::dup(STDOUT_FILENO);
  if (out_fd < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) throw Error("serve --stdio: cannot set up stdout");
  proto::FdSource in(STDIN_FILENO);
  proto::FdSink out(out_fd);
  Engine engine;
  Session(engine, in, out, make_hello(0)).run();
  ::close(out_fd);
  return 0;
}

}  // namespace

void register_serve(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("serve", "serve the GIMP plug-in: framed protocol over stdin/stdout or a UNIX socket");
  static bool stdio = false;
  static std::string socket_path;
  static int idle_seconds = 60;
  static int exit_when_idle = 0;
  static bool background = false;
  auto* stdio_flag = cmd->add_flag("--stdio", stdio, "one client on stdin/stdout (how the plug-in starts the engine)");
  cmd->add_option("--socket", socket_path,
                  "UNIX socket path (default $XDG_RUNTIME_DIR/diffsketch.sock, or /tmp/diffsketch-$UID/diffsketch.sock)")
      ->excludes(stdio_flag);
  cmd->add_option("--idle-timeout", idle_seconds,
                  "socket: drop a client that sends nothing for this many seconds while no job of its runs, so "
                  "that the next one is served (0: never)")
      ->capture_default_str()
      ->excludes(stdio_flag);
  cmd->add_option("--exit-when-idle", exit_when_idle,
                  "socket: exit after this many seconds without a client (0: never; the plug-in's server: 600)")
      ->capture_default_str()
      ->excludes(stdio_flag);
  cmd->add_flag("--background", background,
                "socket: detach (own session, output to $XDG_CACHE_HOME/diffsketch/serve.log) and return once listening")
      ->excludes(stdio_flag);
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    ::signal(SIGPIPE, SIG_IGN);  // a vanished client is a write error, not a dead engine
    if (idle_seconds < 0) throw InputError("--idle-timeout must be 0 (never) or a number of seconds");
    if (!kExitWhenIdleRange.contains(exit_when_idle))
      throw InputError("--exit-when-idle must be in " + range_text(kExitWhenIdleRange) + " seconds (0: never); got " +
                       std::to_string(exit_when_idle));
    if (stdio) return serve_stdio();
    SocketOptions o;
    o.path = resolve_socket_path(socket_path);
    o.idle_seconds = idle_seconds;
    o.exit_when_idle = exit_when_idle;
    return background ? serve_in_background(o) : serve_socket(o);
  });
}

}  // namespace dsk::cli
