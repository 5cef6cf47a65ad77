#include "core/device/device.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "core/base/error.h"

namespace dsk {

torch::Device resolve_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    if (!torch::cuda::is_available())
      throw InputError("--device cuda: no CUDA device is available to this LibTorch build (use --device cpu or auto)");
    return torch::kCUDA;
  }
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  throw InputError("--device '" + name + "' is not one of auto, cpu, cuda");
}

// OpenBLAS's own thread pool would run beside LibTorch's OpenMP threads and both spin while they
// wait: on a 2-core machine that made small models 10x slower (docs/benchmarks.md).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

void configure_threads() {
  static bool done = false;
  if (done) return;
  done = true;
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  // Every core, unless DSK_THREADS (or OMP_NUM_THREADS) says otherwise: two processes that each
  // spread over all cores of a small machine run 10x slower than one thread each.
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (const char* name : {"DSK_THREADS", "OMP_NUM_THREADS"}) {
    const char* v = std::getenv(name);
    if (v && std::atoi(v) > 0) {
      threads = std::atoi(v);
      break;
    }
  }
  torch::set_num_threads(threads);
  // DSK_ONEDNN=0 runs LibTorch's own CPU kernels instead of oneDNN's (see docs/finetune.md).
  if (const char* v = std::getenv("DSK_ONEDNN"); v && std::string(v) == "0") at::globalContext().setUserEnabledMkldnn(false);
}

ScopedBlasThreads::ScopedBlasThreads(int threads) {
  if (available()) openblas_set_num_threads(threads > 0 ? threads : torch::get_num_threads());
}

ScopedBlasThreads::~ScopedBlasThreads() {
  if (available()) openblas_set_num_threads(1);
}

bool ScopedBlasThreads::available() { return openblas_set_num_threads != nullptr; }

double available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  double kb = 0;
  while (meminfo >> key >> kb) {
    std::getline(meminfo, unit);
    if (key == "MemAvailable:") return kb * 1024;
  }
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);  // kernels before 3.14
  return pages > 0 && page > 0 ? static_cast<double>(pages) * page : 0;
}

}  // namespace dsk
