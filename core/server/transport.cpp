#include "core/server/transport.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

namespace dsk::server {

namespace {

class FdTransport : public Transport {
 public:
  FdTransport(int in_fd, int out_fd, std::string peer, bool owns)
      : in_fd_(in_fd), out_fd_(out_fd), in_(in_fd), out_(out_fd), peer_(std::move(peer)), owns_(owns) {}
  ~FdTransport() override {
    if (!owns_) return;
    ::close(in_fd_);
    if (out_fd_ != in_fd_) ::close(out_fd_);
  }
  proto::ByteSource& source() override { return in_; }
  proto::ByteSink& sink() override { return out_; }
  void set_read_timeout(std::function<int()> timeout_ms) override { in_.set_timeout(std::move(timeout_ms)); }
  void shutdown() override {
    if (done_.exchange(true)) return;
    if (in_fd_ == out_fd_) ::shutdown(in_fd_, SHUT_RDWR);  // a socket; a pipe ends when its peer closes it
  }
  std::string peer() const override { return peer_; }

 private:
  int in_fd_, out_fd_;
  proto::FdSource in_;
  proto::FdSink out_;
  std::string peer_;
  bool owns_;
  std::atomic<bool> done_{false};
};

}  // namespace

std::unique_ptr<Transport> fd_transport(int in_fd, int out_fd, std::string peer, bool owns_fds) {
  return std::make_unique<FdTransport>(in_fd, out_fd, std::move(peer), owns_fds);
}

}  // namespace dsk::server
