// The engine's server: clients on their own threads, jobs in one queue in arrival order, run one at
// a time by one worker (the engine's one device). Transport-free (transport.h carries the bytes)
// and engine-free (the job runs through Handlers), so the CLI's `serve` puts it together
// (core/cli/serve_cmd.cpp) and tests can drive it with a stand-in job.
//
// Per client: requests are read on its thread, replies written by another from a queue of its own,
// so that no client (one that stops reading, one on a slow link) ever holds up the worker or
// another client; a progress message not yet sent is replaced by a newer one. A client may have
// one job queued or running; while it waits, it gets a progress message with its place in the
// queue (`queue`: jobs ahead, the running one included) whenever that changes. A cancel request
// removes a waiting job or cancels the running one; a client that goes away (or is dropped) takes
// its jobs with it. With a token (a TCP server), a client's first message must be hello with that
// token, read under tight limits (no payload, 64 KiB of JSON, 10 s); a wrong or missing one ends the
// connection with one error message, and the token never reaches the log.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/base/cancel.h"
#include "core/protocol/protocol.h"
#include "core/server/transport.h"

namespace dsk::server {

using ProgressSink = std::function<void(const proto::ProgressUpdate&)>;

struct Handlers {
  // Runs an edit, generate or interpolate request on the worker thread; every failure comes back
  // as an ErrorReply.
  std::function<proto::Message(const proto::Message& request, const ProgressSink& progress, const CancelToken* cancel)> run;
  std::function<proto::ModelList()> models;  // answered on the client's thread, between jobs or not
  proto::EngineHello hello;
};

struct ServerOptions {
  std::string token;        // "": clients need none (stdio, the UNIX socket)
  int idle_seconds = 60;    // a client silent this long while no job of its waits or runs is dropped (0: never)
  int max_queue = 16;       // jobs that may wait behind the running one; more are refused
  int max_clients = 64;     // connections at once; more are closed at once
};

class Server {
 public:
  Server(Handlers handlers, ServerOptions options);
  ~Server();  // drops every client, cancels the running job and waits for the threads
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves a client on threads of its own; returns at once. false (the transport closed) when
  // max_clients are connected.
  bool add(std::unique_ptr<Transport> client);
  int clients() const;
  // Seconds since the last client left; 0 while one is connected.
  double idle_seconds() const;
  // Returns when no client is connected (the stdio server: its one client has gone).
  void wait_until_no_clients();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The server's log lines ("diffsketch serve: ..."), whole lines from any thread.
void log_line(const std::string& text);

}  // namespace dsk::server
