// The precision the engine's networks compute in on the CPU: bf16 where the CPU and the kernels in
// force compute it natively (AVX512_BF16 or AMX through oneDNN), fp32 elsewhere. DSK_PRECISION
// chooses: "auto" (or unset), "fp32", or "bf16" (refused where it would run in LibTorch's slow
// fallback kernels, ~100x slower than fp32).
#pragma once

#include <torch/torch.h>

#include <string>

#include "core/device/cpu_kernels.h"

namespace dsk {

// True on CPUs with native bf16 arithmetic (the avx512_bf16 or amx_bf16 flag).
bool cpu_has_native_bf16();

// True when convolutions go through oneDNN and oneDNN may use an instruction set with bf16
// arithmetic (avx512_core_bf16 or above): not with DSK_ONEDNN=0, nor under ONEDNN_MAX_CPU_ISA=AVX2.
bool kernels_compute_bf16(const CpuKernels& kernels);

struct InferencePrecision {
  torch::Dtype dtype = torch::kFloat32;  // kFloat32 or kBFloat16
  std::string why;                       // "bf16 (oneDNN avx512_core_amx; DSK_PRECISION=fp32 turns it off)"
};

// `setting`: DSK_PRECISION's value (nullptr when unset). Throws InputError for an unknown value and
// for "bf16" where it would not be native (or on CUDA, where models use their own use_fp16).
InferencePrecision inference_precision(torch::Device device, const char* setting, const CpuKernels& kernels);
// The same with this process's DSK_PRECISION and kernels.
InferencePrecision inference_precision(torch::Device device);

}  // namespace dsk
