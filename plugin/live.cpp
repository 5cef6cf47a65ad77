#include "plugin/live.h"

#include <chrono>

namespace dsk::gimp {

proto::EditRequest live_preview_request(const proto::EditRequest& edit) {
  proto::EditRequest p = edit;
  p.sampling.steps = kLivePreviewSteps;
  p.sampling.respacing.clear();
  p.detail = "none";
  p.sketch_guidance = {};
  p.variants = 1;
  p.preview = false;
  return p;
}

LivePreview::LivePreview(OpenFn open) : open_(std::move(open)), worker_([this] { work(); }) {}

LivePreview::~LivePreview() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    queued_.reset();
    if (running_ && connection_) connection_->cancel();
  }
  wake_.notify_all();
  worker_.join();
}

uint64_t LivePreview::submit(proto::EditRequest request) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t id = ++next_id_;
  queued_.emplace(id, std::move(request));
  if (running_ && connection_) connection_->cancel();
  wake_.notify_all();
  return id;
}

std::optional<LivePreviewDone> LivePreview::take() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::optional<LivePreviewDone> d;
  d.swap(done_);
  return d;
}

bool LivePreview::busy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return running_ || queued_.has_value();
}

int LivePreview::cancelled() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancelled_;
}

void LivePreview::work() {
  std::unique_ptr<EngineConnection> connection;
  for (;;) {
    proto::EditRequest request;
    uint64_t id = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stop_ || queued_.has_value(); });
      if (stop_) return;
      id = queued_->first;
      request = std::move(queued_->second);
      queued_.reset();
      running_ = true;
      running_id_ = id;
    }
    LivePreviewDone done;
    done.id = id;
    const auto start = std::chrono::steady_clock::now();
    bool replaced = false;
    try {
      if (!connection) connection = open_();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        connection_ = connection.get();
        // Replaced while the connection opened: the engine need not start it.
        replaced = queued_.has_value() || stop_;
      }
      if (!replaced) {
        proto::Message reply = connection->request(request);
        if (auto* r = std::get_if<proto::Result>(&reply)) done.result = std::move(*r);
        else done.error = connection->describe() + " answered a " + proto::message_type(reply) + " message to a preview";
      }
    } catch (const PluginError& e) {
      done.error = e.what();
    } catch (const std::exception& e) {
      done.error = std::string("DiffSketch preview: ") + e.what();
    }
    done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::lock_guard<std::mutex> lock(mutex_);
    connection_ = nullptr;
    running_ = false;
    // A newer preview is queued: this one's result (or its "cancelled" error) is of no use.
    if (queued_.has_value() || stop_) {
      if (!replaced && !done.result) ++cancelled_;
      continue;
    }
    if (!done.error.empty() && !done.result) connection.reset();  // a broken engine: a new one next time
    done_ = std::move(done);
  }
}

}  // namespace dsk::gimp
