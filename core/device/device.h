// Where the engine computes: the device, and on the CPU the threads and whether convolutions go
// through oneDNN (core/device/cpu_kernels.h says which kernels that gives).
#pragma once

#include <torch/torch.h>

#include <string>

namespace dsk {

// "auto" = CUDA when this LibTorch has it and a GPU is present; "cpu"; "cuda".
torch::Device resolve_device(const std::string& name);
// Intra-op threads = cores (once per process); OpenBLAS's own pool held to one thread.
void configure_threads();
// For as long as it lives, OpenBLAS runs on `threads` threads (the intra-op count when 0), then on
// one again: for measuring what a GEMM reaches with the threads the forward uses (`bench`).
class ScopedBlasThreads {
 public:
  explicit ScopedBlasThreads(int threads = 0);
  ~ScopedBlasThreads();
  ScopedBlasThreads(const ScopedBlasThreads&) = delete;
  ScopedBlasThreads& operator=(const ScopedBlasThreads&) = delete;
  // Whether this LibTorch's BLAS is OpenBLAS (otherwise the count was not changed).
  static bool available();
};
// Bytes of memory the system can hand out now without swapping: /proc/meminfo's MemAvailable (free
// pages plus the page cache and slabs the kernel would reclaim), not the free pages alone, which a
// busy page cache (after a build, say) keeps near 0. 0 when unknown.
double available_memory();

}  // namespace dsk
