// `diffsketch serve`: the engine behind the GIMP plug-in, speaking the framed protocol
// (core/protocol/protocol.h) over stdin/stdout (--stdio, one client, the plug-in's subprocess), a
// UNIX socket (the process stays up between edits), or TCP (--listen: a remote engine, with a
// token and, off this machine, TLS).
//
// The server (core/server/server.h) reads each client on its own thread and runs the jobs in
// arrival order on one worker; this file gives it the engine (serve_requests.cpp: protocol messages
// -> engine requests -> replies) and the transport. A cancel request, or the client closing its
// end (GIMP kills a cancelled plug-in outright), cancels its job through the job's CancelToken;
// the engine checks it every step. Then --stdio exits; the socket and TCP servers go on serving.
//
// The GIMP plug-in starts a socket server itself when none runs (`serve --background
// --exit-when-idle SECS`): the process detaches (its own session, output to a log file), the
// command returns once the socket listens, and the server exits after SECS without a client. A
// hello request tells the plug-in which release and executable a running server is
// (proto::EngineHello), so that one of another release, or whose executable was replaced since it
// started, is replaced.
//
// A remote engine: `serve --listen HOST:PORT --token-file FILE [--tls-cert C --tls-key K]`.
// Every TCP client must send the token first (it is compared in constant time and never logged;
// the file must be mode 0600). A non-loopback address needs TLS as well (GnuTLS,
// core/server/tls.h); the server prints its certificate's SHA-256 fingerprint for the clients to
// pin. The Engine keeps its models loaded between requests and clients
// (core/engine/model_cache.h).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "core/base/error.h"
#include "core/base/limits.h"
#include "core/base/remote.h"
#include "core/base/version.h"
#include "core/cli/commands.h"
#include "core/cli/serve_requests.h"
#include "core/engine/engine.h"
#include "core/protocol/protocol.h"
#include "core/server/listen.h"
#include "core/server/server.h"
#include "core/server/tls.h"

namespace dsk::cli {

namespace {

namespace fs = std::filesystem;
namespace proto = dsk::proto;
namespace srv = dsk::server;

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

// The server's jobs run on `engine`, which keeps its models loaded from one job to the next.
srv::Handlers engine_handlers(Engine& engine, int exit_when_idle) {
  srv::Handlers h;
  h.run = [&engine](const proto::Message& request, const srv::ProgressSink& sink, const CancelToken* cancel) {
    return answer_request(engine, request, [&sink](const Progress& p) { sink(progress_update(p)); }, cancel);
  };
  h.models = [] { return model_list(); };
  h.hello = make_hello(exit_when_idle);
  return h;
}

// ---- the socket and TCP servers

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

char g_socket_path[108] = {};

void remove_socket_and_exit(int) {
  if (g_socket_path[0]) ::unlink(g_socket_path);
  _exit(0);
}

struct ListenOptions {
  std::string socket_path;           // a UNIX socket, or
  std::optional<HostPort> tcp;       // a TCP address
  std::string token_file;            // TCP: the clients' token
  std::string tls_cert, tls_key;     // TCP: TLS
  int idle_seconds = 60;             // a client silent this long while no job of its waits or runs is dropped (0: never)
  int exit_when_idle = 0;            // the server exits after this long without a client (0: never)
  int max_queue = kDefaultMaxQueue;  // jobs waiting behind the running one
  int ready_fd = -1;                 // --background: written "ok" and the address (or the error) once listening
};

// What is listened on, checked and opened before the engine starts.
struct Listening {
  int fd = -1;
  std::string where;  // "/run/user/1000/diffsketch.sock", "127.0.0.1:7860"
  std::string token;
  std::unique_ptr<srv::TlsCredentials> tls;
};

Listening open_listener(const ListenOptions& o) {
  Listening l;
  if (!o.tcp) {
    l.fd = srv::listen_unix(o.socket_path);
    l.where = o.socket_path;
    std::strncpy(g_socket_path, o.socket_path.c_str(), sizeof g_socket_path - 1);
    return l;
  }
  // Checked before anything listens, so a refused setup never opens a port.
  if (o.token_file.empty())
    throw InputError("--listen needs --token-file FILE: every user of this machine (and, off loopback, of the network) "
                     "can reach a TCP port; " + token_howto("FILE"));
  l.token = read_token_file(o.token_file);
  if (o.tls_cert.empty() != o.tls_key.empty())
    throw InputError("--tls-cert and --tls-key go together: the certificate and its private key");
  if (!o.tls_cert.empty()) l.tls = std::make_unique<srv::TlsCredentials>(o.tls_cert, o.tls_key);
  if (!l.tls && !srv::is_loopback_host(o.tcp->host))
    throw InputError("--listen " + o.tcp->text() + " is reachable from other machines: it needs TLS (--tls-cert and "
                     "--tls-key), or listen on 127.0.0.1 and reach it through an SSH tunnel");
  const srv::TcpListener t = srv::listen_tcp(*o.tcp);
  l.fd = t.fd;
  l.where = t.bound.text();
  return l;
}

int serve_listening(const ListenOptions& o) {
  Listening l;
  try {
    l = open_listener(o);
  } catch (const std::exception& e) {
    if (o.ready_fd >= 0) {
      const std::string msg = e.what();
      (void)!::write(o.ready_fd, msg.data(), msg.size());
      ::close(o.ready_fd);
    }
    throw;
  }
  ::signal(SIGINT, remove_socket_and_exit);
  ::signal(SIGTERM, remove_socket_and_exit);
  Engine engine;
  srv::ServerOptions so;
  so.token = l.token;
  so.idle_seconds = o.idle_seconds;
  so.max_queue = o.max_queue;
  srv::Server server(engine_handlers(engine, o.exit_when_idle), so);
  std::cerr << "diffsketch serve " << kVersion << " (pid " << ::getpid() << "): listening on " << l.where;
  if (o.tcp) std::cerr << (l.tls ? " (TLS, token)" : " (token, no TLS: loopback only)");
  if (o.exit_when_idle > 0) std::cerr << ", exits after " << o.exit_when_idle << " s without a client";
  std::cerr << (o.ready_fd >= 0 ? "\n" : " (Ctrl+C to stop)\n");
  if (l.tls) std::cerr << "diffsketch serve: TLS certificate fingerprint " << l.tls->fingerprint() << "\n";
  std::cerr << std::flush;
  if (o.ready_fd >= 0) {
    const std::string ok = "ok\n" + l.where + (l.tls ? "\n" + l.tls->fingerprint() : "");
    (void)!::write(o.ready_fd, ok.data(), ok.size());
    ::close(o.ready_fd);
  }
  for (;;) {
    if (o.exit_when_idle > 0 && server.idle_seconds() >= o.exit_when_idle) {
      srv::log_line("no client for " + std::to_string(o.exit_when_idle) + " s; exiting");
      if (!o.tcp) ::unlink(o.socket_path.c_str());
      return 0;
    }
    std::string peer;
    const int fd = srv::accept_client(l.fd, 1000, &peer);
    if (fd < 0) continue;
    if (!o.tcp) peer = "the UNIX socket";
    std::unique_ptr<srv::Transport> t =
        l.tls ? srv::tls_transport(fd, *l.tls, peer) : srv::fd_transport(fd, fd, peer, /*owns_fds=*/true);
    server.add(std::move(t));
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
// server listens, or 1 with the server's error (e.g. another server already listens there).
int serve_in_background(ListenOptions o) {
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
      _exit(serve_listening(o));
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
  if (answer.starts_with("ok\n")) {
    std::string where = answer.substr(3), fingerprint;
    if (const auto nl = where.find('\n'); nl != std::string::npos) {
      fingerprint = where.substr(nl + 1);
      where.resize(nl);
    }
    std::cout << "diffsketch serve: listening on " << where << " (pid " << pid << ", log "
              << (log.empty() ? "discarded" : log) << ")" << std::endl;
    if (!fingerprint.empty()) std::cout << "diffsketch serve: TLS certificate fingerprint " << fingerprint << std::endl;
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
  Engine engine;
  srv::ServerOptions so;
  so.idle_seconds = 0;  // the plug-in's own engine: it waits as long as the plug-in does
  {
    srv::Server server(engine_handlers(engine, 0), so);
    server.add(srv::fd_transport(STDIN_FILENO, out_fd, "stdin/stdout", /*owns_fds=*/false));
    server.wait_until_no_clients();
  }
  ::close(out_fd);
  return 0;
}

}  // namespace

void register_serve(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand(
      "serve", "serve the GIMP plug-in: framed protocol over stdin/stdout, a UNIX socket or TCP (a remote engine)");
  static bool stdio = false;
  static std::string socket_path, listen, token_file, tls_cert, tls_key;
  static int idle_seconds = 60;
  static int exit_when_idle = 0;
  static int max_queue = kDefaultMaxQueue;
  static bool background = false;
  auto* stdio_flag = cmd->add_flag("--stdio", stdio, "one client on stdin/stdout (how the plug-in starts the engine)");
  auto* socket_opt =
      cmd->add_option("--socket", socket_path,
                      "UNIX socket path (default $XDG_RUNTIME_DIR/diffsketch.sock, or /tmp/diffsketch-$UID/diffsketch.sock)")
          ->excludes(stdio_flag);
  auto* listen_opt =
      cmd->add_option("--listen", listen,
                      "TCP: HOST:PORT, or PORT for 127.0.0.1:PORT (a remote engine; needs --token-file, and TLS off "
                      "loopback)")
          ->excludes(stdio_flag)
          ->excludes(socket_opt);
  auto* token_opt = cmd->add_option("--token-file", token_file,
                                    "TCP: the file (mode 0600) holding the token every client must send first");
  auto* cert_opt = cmd->add_option("--tls-cert", tls_cert, "TCP: TLS certificate (PEM); with --tls-key");
  auto* key_opt = cmd->add_option("--tls-key", tls_key, "TCP: the certificate's private key (PEM, not readable by others)");
  for (auto* o : {token_opt, cert_opt, key_opt}) o->needs(listen_opt);
  cmd->add_option("--idle-timeout", idle_seconds,
                  "socket, TCP: drop a client that sends nothing for this many seconds while no job of its waits or runs "
                  "(0: never)")
      ->capture_default_str()
      ->excludes(stdio_flag);
  cmd->add_option("--exit-when-idle", exit_when_idle,
                  "socket, TCP: exit after this many seconds without a client (0: never; the plug-in's server: 600)")
      ->capture_default_str()
      ->excludes(stdio_flag);
  cmd->add_option("--max-queue", max_queue,
                  "socket, TCP: jobs that may wait behind the running one (clients' jobs run one at a time, in "
                  "arrival order); more are refused")
      ->capture_default_str()
      ->excludes(stdio_flag);
  cmd->add_flag("--background", background,
                "socket, TCP: detach (own session, output to $XDG_CACHE_HOME/diffsketch/serve.log) and return once listening")
      ->excludes(stdio_flag);
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    ::signal(SIGPIPE, SIG_IGN);  // a vanished client is a write error, not a dead engine
    if (idle_seconds < 0) throw InputError("--idle-timeout must be 0 (never) or a number of seconds");
    if (!kExitWhenIdleRange.contains(exit_when_idle))
      throw InputError("--exit-when-idle must be in " + range_text(kExitWhenIdleRange) + " seconds (0: never); got " +
                       std::to_string(exit_when_idle));
    if (!kMaxQueueRange.contains(max_queue))
      throw InputError("--max-queue must be in " + range_text(kMaxQueueRange) + "; got " + std::to_string(max_queue));
    if (stdio) return serve_stdio();
    ListenOptions o;
    if (!listen.empty()) {
      const bool port_only = listen.find_first_not_of("0123456789") == std::string::npos;
      o.tcp = parse_host_port(port_only ? "127.0.0.1:" + listen : listen, "--listen");
      o.token_file = token_file;
      o.tls_cert = tls_cert;
      o.tls_key = tls_key;
    } else {
      o.socket_path = socket_path;
      if (o.socket_path.empty()) {
        o.socket_path = default_socket_path();
        if (!std::getenv("XDG_RUNTIME_DIR") || !*std::getenv("XDG_RUNTIME_DIR"))
          make_private_dir(fs::path(o.socket_path).parent_path());
      }
    }
    o.idle_seconds = idle_seconds;
    o.exit_when_idle = exit_when_idle;
    o.max_queue = max_queue;
    return background ? serve_in_background(o) : serve_listening(o);
  });
}

}  // namespace dsk::cli
