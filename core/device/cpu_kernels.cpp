#include "core/device/cpu_kernels.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <dlfcn.h>

namespace dsk {

namespace {

// oneDNN's dnnl_cpu_isa_t (dnnl_types.h, oneDNN 3.x); Debian's LibTorch links libdnnl without
// shipping its headers, so the symbols are looked up in the running process.
std::string onednn_isa_name(int isa) {
  switch (isa) {
    case 0x0: return "default";
    case 0x1: return "sse41";
    case 0x3: return "avx";
    case 0x7: return "avx2";
    case 0xf: return "avx2_vnni";
    case 0x1f: return "avx2_vnni_2";
    case 0x27: return "avx512_core";
    case 0x67: return "avx512_core_vnni";
    case 0xe7: return "avx512_core_bf16";
    case 0x1ef: return "avx512_core_fp16";
    case 0xfef: return "avx512_core_amx";
    case 0x1fef: return "avx512_core_amx_fp16";
    default: return "isa 0x" + [isa] { char b[16]; std::snprintf(b, sizeof b, "%x", isa); return std::string(b); }();
  }
}

template <class Fn>
Fn* find_symbol(const char* name) {
  return reinterpret_cast<Fn*>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

CpuKernels cpu_kernels() {
  CpuKernels k;
  k.aten = at::get_cpu_capability();
  k.onednn_enabled = at::hasMKLDNN() && at::globalContext().userEnabledMkldnn();
  if (auto* isa = find_symbol<int()>("dnnl_get_effective_cpu_isa")) k.onednn_isa = onednn_isa_name(isa());
  else k.onednn_isa = "unknown";
  if (auto* core = find_symbol<char*()>("openblas_get_corename")) k.openblas = core();
  else k.openblas = "none";
  k.threads = at::get_num_threads();
  return k;
}

std::string describe(const CpuKernels& k) {
  return "ATen " + k.aten + ", oneDNN " + k.onednn_isa + (k.onednn_enabled ? " (on)" : " (off)") + ", OpenBLAS " +
         k.openblas + ", " + std::to_string(k.threads) + (k.threads == 1 ? " thread" : " threads");
}

}  // namespace dsk
