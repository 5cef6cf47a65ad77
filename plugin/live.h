// The Sketch Inpaint dialog's live preview, without GIMP: the preview request made from the edit's
// own request, and a worker that runs the newest preview on its own engine connection while the
// dialog stays responsive. A newer preview cancels the running one (the protocol's cancel), so a
// user who keeps drawing waits only for the preview of the latest stroke.
//
//   LivePreview live([] { return EngineConnection::open(); });
//   live.submit(live_preview_request(full_edit_request));   // on every change (sketch, selection, setting)
//   if (auto done = live.take()) show(done->result);         // polled from the dialog's timer
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/protocol/protocol.h"
#include "plugin/engine_client.h"

namespace dsk::gimp {

// The fast pass of `edit`: the same picture, selection, sketch, model, sampler, sketch strength and
// seed (so OK's full edit starts from the same noise), at kLivePreviewSteps steps, without the
// detail pass, sketch guidance or variants, and without per-step previews.
proto::EditRequest live_preview_request(const proto::EditRequest& edit);

struct LivePreviewDone {
  uint64_t id = 0;                     // submit()'s number for it
  std::optional<proto::Result> result;  // or
  std::string error;                   // why it failed (not set for a preview a newer one replaced)
  double seconds = 0;                  // request sent to result read
};

class LivePreview {
 public:
  using OpenFn = std::function<std::unique_ptr<EngineConnection>()>;
  // `open` makes the worker's engine connection (once, on the first preview; again after an error).
  explicit LivePreview(OpenFn open);
  // Cancels a running preview and waits for the worker.
  ~LivePreview();
  LivePreview(const LivePreview&) = delete;
  LivePreview& operator=(const LivePreview&) = delete;

  // Queues `request` as the newest preview and cancels the one running, if any; a preview queued
  // but not started is dropped. Returns its id (increasing).
  uint64_t submit(proto::EditRequest request);
  // The newest finished preview not taken yet; results of replaced previews are never returned.
  std::optional<LivePreviewDone> take();
  // A preview is queued or running.
  bool busy() const;
  // Previews the engine stopped because a newer one came (for tests and the status line).
  int cancelled() const;

 private:
  void work();

  OpenFn open_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::optional<std::pair<uint64_t, proto::EditRequest>> queued_;
  uint64_t next_id_ = 0, running_id_ = 0;
  bool running_ = false, stop_ = false;
  int cancelled_ = 0;
  std::optional<LivePreviewDone> done_;
  EngineConnection* connection_ = nullptr;  // the worker's, while a preview runs (for cancel)
  std::thread worker_;
};

}  // namespace dsk::gimp
