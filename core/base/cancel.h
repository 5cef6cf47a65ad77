// A cancel token shared between a job and whoever may stop it; the engine checks it every step.
#pragma once

#include <atomic>

namespace dsk {

class CancelToken {
 public:
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  std::atomic<bool> cancelled_{false};
};

}  // namespace dsk
