// Which CPU kernels this process computes with: LibTorch picks its own by the CPU (or
// ATEN_CPU_CAPABILITY), oneDNN by the CPU (or ONEDNN_MAX_CPU_ISA), OpenBLAS by the CPU (or
// OPENBLAS_CORETYPE). Results differ in the last bits between them, so benchmarks and the
// portability tests (docs/testing.md) say which were in force.
#pragma once

#include <string>

namespace dsk {

struct CpuKernels {
  std::string aten;        // LibTorch's vectorised kernels: DEFAULT, AVX2, AVX512
  std::string onednn_isa;  // the highest instruction set oneDNN may use, e.g. avx2, avx512_core_bf16
  bool onednn_enabled = false;  // whether LibTorch routes convolutions to oneDNN (DSK_ONEDNN)
  std::string openblas;    // OpenBLAS's kernel family, e.g. Haswell, SkylakeX
  int threads = 0;
};

CpuKernels cpu_kernels();

// "ATen AVX2, oneDNN avx2 (on), OpenBLAS Haswell, 2 threads"
std::string describe(const CpuKernels& k);

}  // namespace dsk
