// Autocast for a scope: the networks' mixed precision (bf16 inference on CPUs with native bf16,
// the trainers' bf16/fp16 autocast).
#pragma once

#include <ATen/autocast_mode.h>

namespace dsk {

// Autocast to `dtype` on `device` for a scope (nothing when `on` is false); switched off again,
// and its cache of cast weights cleared, when the scope ends, an exception included.
class AutocastScope {
 public:
  AutocastScope(bool on, at::DeviceType device, at::ScalarType dtype) : on_(on), device_(device) {
    if (!on_) return;
    at::autocast::set_autocast_enabled(device_, true);
    at::autocast::set_autocast_dtype(device_, dtype);
  }
  ~AutocastScope() {
    if (!on_) return;
    at::autocast::set_autocast_enabled(device_, false);
    at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool on_;
  at::DeviceType device_;
};

}  // namespace dsk
