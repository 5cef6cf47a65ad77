#include "core/server/server.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "core/base/remote.h"

namespace dsk::server {

namespace {

using Clock = std::chrono::steady_clock;

// A client: its transport, and the replies waiting for its writer thread.
class Connection {
 public:
  Connection(std::unique_ptr<Transport> t, int id) : transport_(std::move(t)), name_("client " + std::to_string(id) + " (" + transport_->peer() + ")") {}

  Transport& transport() { return *transport_; }
  const std::string& name() const { return name_; }

  // Queues a reply; never blocks. A progress message replaces one that is still waiting.
  void send(proto::Message m) {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (std::holds_alternative<proto::ProgressUpdate>(m) && !outbox_.empty() &&
        std::holds_alternative<proto::ProgressUpdate>(outbox_.back()))
      outbox_.back() = std::move(m);
    else
      outbox_.push_back(std::move(m));
    cv_.notify_all();
  }

  // The writer thread: sends the queue until finish() (then what is queued) or close().
  void write_loop() {
    for (;;) {
      proto::Message m;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return closed_ || finishing_ || !outbox_.empty(); });
        if (closed_ || outbox_.empty()) return;
        m = std::move(outbox_.front());
        outbox_.pop_front();
      }
      try {
        proto::write_message(transport_->sink(), m);
      } catch (const std::exception& e) {
        log_line(name_ + ": " + e.what());
        close();
        return;
      }
    }
  }

  void finish() {
    std::lock_guard lock(mu_);
    finishing_ = true;
    cv_.notify_all();
  }

  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      outbox_.clear();
      cv_.notify_all();
    }
    transport_->shutdown();
  }

 private:
  std::unique_ptr<Transport> transport_;
  const std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<proto::Message> outbox_;
  bool finishing_ = false, closed_ = false;
};

struct Job {
  std::shared_ptr<Connection> client;
  proto::Message request;
  CancelToken cancel;
};

// Jobs in arrival order, run one at a time by one worker thread.
class JobQueue {
 public:
  explicit JobQueue(decltype(Handlers::run) run) : run_(std::move(run)), worker_([this] { loop(); }) {}
  ~JobQueue() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      if (running_) running_->cancel.cancel();
    }
    cv_.notify_all();
    worker_.join();
  }

  // false when max_waiting jobs wait already.
  bool submit(std::shared_ptr<Job> job, int max_waiting) {
    std::lock_guard lock(mu_);
    if (running_ && static_cast<int>(waiting_.size()) >= max_waiting) return false;
    waiting_.push_back(std::move(job));
    tell_places();
    cv_.notify_all();
    return true;
  }

  bool has_job(const Connection* c) {
    std::lock_guard lock(mu_);
    if (running_ && running_->client.get() == c) return true;
    for (const auto& j : waiting_)
      if (j->client.get() == c) return true;
    return false;
  }

  // The client's cancel request: a waiting job leaves the queue (answered "cancelled"), the running
  // one is cancelled (the worker answers).
  void cancel(const Connection* c) {
    std::lock_guard lock(mu_);
    if (running_ && running_->client.get() == c) running_->cancel.cancel();
    remove_waiting(c, true);
  }

  // The client is gone: its waiting jobs leave, its running job is cancelled.
  void drop(const Connection* c) {
    std::lock_guard lock(mu_);
    if (running_ && running_->client.get() == c) {
      running_->cancel.cancel();
      log_line(c->name() + " went away; cancelling its job");
    }
    remove_waiting(c, false);
  }

 private:
  void remove_waiting(const Connection* c, bool answer) {
    const auto before = waiting_.size();
    std::erase_if(waiting_, [&](const std::shared_ptr<Job>& j) {
      if (j->client.get() != c) return false;
      if (answer) j->client->send(proto::ErrorReply{proto::ErrorKind::Cancelled, "cancelled"});
      return true;
    });
    if (waiting_.size() != before) tell_places();
  }

  // Each waiting client's place: the jobs ahead of it, the running one included.
  void tell_places() {
    int ahead = running_ ? 1 : 0;
    for (const auto& j : waiting_) {
      if (ahead > 0) j->client->send(proto::ProgressUpdate{0, 0, ahead, std::nullopt});
      ++ahead;
    }
  }

  void loop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !waiting_.empty(); });
        if (stop_) return;
        job = std::move(waiting_.front());
        waiting_.pop_front();
        running_ = job;
        tell_places();
      }
      const ProgressSink progress = [&job](const proto::ProgressUpdate& p) { job->client->send(p); };
      proto::Message answer = run_(job->request, progress, &job->cancel);
      if (const auto* err = std::get_if<proto::ErrorReply>(&answer))
        log_line(job->client->name() + ": " + proto::error_kind_name(err->kind) + ": " + err->message);
      {
        std::lock_guard lock(mu_);
        running_.reset();  // before the reply: the client's next request may follow it at once
      }
      job->client->send(std::move(answer));
    }
  }

  decltype(Handlers::run) run_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> waiting_;
  std::shared_ptr<Job> running_;
  bool stop_ = false;
  std::thread worker_;  // last: it starts once the members above exist
};

bool is_job(const proto::Message& m) {
  return std::holds_alternative<proto::EditRequest>(m) || std::holds_alternative<proto::GenerateRequest>(m) ||
         std::holds_alternative<proto::InterpolateRequest>(m);
}

}  // namespace

void log_line(const std::string& text) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::cerr << "diffsketch serve: " << text << std::endl;
}

struct Server::Impl {
  Handlers handlers;
  ServerOptions options;
  JobQueue queue;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<std::weak_ptr<Connection>> connections;
  int live = 0, next_id = 1;
  Clock::time_point last_left = Clock::now();

  Impl(Handlers h, ServerOptions o) : handlers(std::move(h)), options(std::move(o)), queue(handlers.run) {}

  // Reads one message; on a bad frame answers it (the connection then ends) and returns nullopt.
  std::optional<proto::Message> read(Connection& c, const proto::Limits& limits, bool* ended) {
    *ended = true;
    try {
      auto m = proto::read_message(c.transport().source(), limits);
      *ended = !m;
      return m;
    } catch (const proto::VersionMismatch& e) {
      c.send(proto::ErrorReply{proto::ErrorKind::Protocol,
                               "the plug-in speaks DiffSketch protocol version " + std::to_string(e.peer_version()) +
                                   ", this engine speaks version " + std::to_string(proto::kProtocolVersion) +
                                   "; install the GIMP plug-in and the diffsketch engine from the same release"});
      log_line(c.name() + ": " + e.what());
    } catch (const proto::ProtocolError& e) {
      c.send(proto::ErrorReply{proto::ErrorKind::Protocol, e.what()});
      log_line(c.name() + ": " + e.what());
    } catch (const std::exception& e) {  // no frame makes the server exit: this client is dropped
      c.send(proto::ErrorReply{proto::ErrorKind::Protocol, std::string("unreadable frame: ") + e.what()});
      log_line(c.name() + ": unreadable frame: " + e.what());
    }
    return std::nullopt;
  }

  // A token server's first message: hello with the token, under tight limits.
  bool authenticate(Connection& c) {
    c.transport().set_read_timeout([] { return 10000; });
    proto::Limits limits;
    limits.max_json_bytes = 64 * 1024;
    limits.max_payloads = 0;
    bool ended = false;
    const auto m = read(c, limits, &ended);
    if (!m) return false;
    const auto* hello = std::get_if<proto::HelloRequest>(&*m);
    std::string why;
    if (!hello)
      why = "this engine needs a token: the first message must be hello with the token (the plug-in's \"Engine token "
            "file\", or DSK_ENGINE_TOKEN_FILE)";
    else if (hello->token.empty())
      why = "this engine needs a token and none was sent: set the plug-in's \"Engine token file\" (or "
            "DSK_ENGINE_TOKEN_FILE) to a file holding the server's token";
    else if (!same_token(options.token, hello->token)) {
      std::this_thread::sleep_for(std::chrono::seconds(1));  // a guesser gets one try a second per connection
      why = "the engine refused the token: the token file must hold the same token as the server's --token-file";
    }
    if (!why.empty()) {
      c.send(proto::ErrorReply{proto::ErrorKind::Input, why});
      log_line(c.name() + ": refused: " + (!hello ? "no hello first" : hello->token.empty() ? "no token" : "wrong token"));
      return false;
    }
    c.send(handlers.hello);
    log_line(c.name() + ": connected, token accepted");
    return true;
  }

  void serve(const std::shared_ptr<Connection>& c) {
    std::thread writer;
    try {
      c->transport().open();
      writer = std::thread([c] { c->write_loop(); });
      if (options.token.empty() || authenticate(*c)) {
        c->transport().set_read_timeout([this, c] {
          return options.idle_seconds <= 0 || queue.has_job(c.get()) ? -1 : options.idle_seconds * 1000;
        });
        bool ended = false;
        while (!ended) {
          auto m = read(*c, proto::Limits{}, &ended);
          if (m) dispatch(c, std::move(*m));
        }
      }
    } catch (const std::exception& e) {  // the TLS handshake
      log_line(c->name() + ": " + e.what());
    }
    queue.drop(c.get());
    c->finish();  // the last reply (an error that ends the connection) still goes out
    if (writer.joinable()) writer.join();
    c->close();
    if (!options.token.empty()) log_line(c->name() + ": disconnected");
    std::lock_guard lock(mu);
    --live;
    last_left = Clock::now();
    cv.notify_all();
  }

  void dispatch(const std::shared_ptr<Connection>& c, proto::Message m) {
    if (std::holds_alternative<proto::CancelRequest>(m)) return queue.cancel(c.get());
    if (std::holds_alternative<proto::HelloRequest>(m)) return c->send(handlers.hello);
    if (std::holds_alternative<proto::ModelsRequest>(m)) return c->send(handlers.models());
    if (!is_job(m))
      return c->send(proto::ErrorReply{proto::ErrorKind::Input,
                                       std::string("'") + proto::message_type(m) + "' is not a request the engine answers"});
    if (queue.has_job(c.get()))
      return c->send(proto::ErrorReply{proto::ErrorKind::Input,
                                       "a job is already running; wait for its result or send cancel"});
    auto job = std::make_shared<Job>();
    job->client = c;
    job->request = std::move(m);
    if (!queue.submit(job, options.max_queue)) {
      c->send(proto::ErrorReply{proto::ErrorKind::Input,
                                "the engine is busy: " + std::to_string(options.max_queue) +
                                    " jobs wait already (its --max-queue); try again later"});
      log_line(c->name() + ": refused a job: the queue is full");
    }
  }
};

Server::Server(Handlers handlers, ServerOptions options) : impl_(std::make_unique<Impl>(std::move(handlers), std::move(options))) {}

Server::~Server() {
  std::unique_lock lock(impl_->mu);
  for (const auto& w : impl_->connections)
    if (auto c = w.lock()) c->close();
  impl_->cv.wait(lock, [&] { return impl_->live == 0; });
}

bool Server::add(std::unique_ptr<Transport> client) {
  std::lock_guard lock(impl_->mu);
  if (impl_->live >= impl_->options.max_clients) {
    log_line("refused " + client->peer() + ": " + std::to_string(impl_->live) + " clients are connected already");
    return false;
  }
  auto c = std::make_shared<Connection>(std::move(client), impl_->next_id++);
  std::erase_if(impl_->connections, [](const std::weak_ptr<Connection>& w) { return w.expired(); });
  impl_->connections.push_back(c);
  ++impl_->live;
  std::thread([impl = impl_.get(), c] { impl->serve(c); }).detach();
  return true;
}

int Server::clients() const {
  std::lock_guard lock(impl_->mu);
  return impl_->live;
}

double Server::idle_seconds() const {
  std::lock_guard lock(impl_->mu);
  if (impl_->live > 0) return 0;
  return std::chrono::duration<double>(Clock::now() - impl_->last_left).count();
}

void Server::wait_until_no_clients() {
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return impl_->live == 0; });
}

}  // namespace dsk::server
