#include "core/device/precision.h"

#include <cstdlib>
#include <fstream>

#include "core/base/error.h"

namespace dsk {

bool cpu_has_native_bf16() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0) return line.find("avx512_bf16") != std::string::npos || line.find("amx_bf16") != std::string::npos;
  return false;
}

bool kernels_compute_bf16(const CpuKernels& k) {
  if (!k.onednn_enabled) return false;
  for (const char* isa : {"avx512_core_bf16", "avx512_core_fp16", "avx512_core_amx", "avx512_core_amx_fp16"})
    if (k.onednn_isa == isa) return true;
  return false;
}

namespace {

// Why bf16 would not be native here ("" when it would be).
std::string why_not_bf16(torch::Device device, const CpuKernels& k) {
  if (!device.is_cpu()) return "the model runs on " + device.str() + " (bf16 inference is for CPUs)";
  if (!k.onednn_enabled) return "oneDNN is off (DSK_ONEDNN=0), and LibTorch's own bf16 convolutions are slow";
  if (!kernels_compute_bf16(k))
    return "oneDNN's instruction set here is " + k.onednn_isa + ", which has no bf16 arithmetic (" +
           (cpu_has_native_bf16() ? "the CPU has it, but ONEDNN_MAX_CPU_ISA caps it" : "this CPU has no AVX512_BF16 or AMX") + ")";
  return "";
}

}  // namespace

InferencePrecision inference_precision(torch::Device device, const char* setting, const CpuKernels& k) {
  const std::string s = setting ? setting : "";
  if (s != "" && s != "auto" && s != "fp32" && s != "bf16")
    throw InputError("DSK_PRECISION must be auto, fp32 or bf16; got '" + s + "'. Fix: unset it (auto) or set it to fp32 or bf16");
  if (s == "fp32") return {torch::kFloat32, "fp32 (DSK_PRECISION=fp32)"};
  const std::string why_not = why_not_bf16(device, k);
  if (s == "bf16" && !why_not.empty())
    throw InputError("DSK_PRECISION=bf16, but " + why_not + ". Fix: unset DSK_PRECISION (auto) or set it to fp32");
  if (!why_not.empty()) return {torch::kFloat32, "fp32: " + why_not};
  return {torch::kBFloat16, "bf16 (oneDNN " + k.onednn_isa + " computes it natively; DSK_PRECISION=fp32 turns it off)"};
}

InferencePrecision inference_precision(torch::Device device) {
  return inference_precision(device, std::getenv("DSK_PRECISION"), cpu_kernels());
}

}  // namespace dsk
