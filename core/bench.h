// `diffsketch bench`: U-Net forward speed against the machine's GEMM speed.
#pragma once

#include <ostream>
#include <string>

namespace dsk {

struct BenchOptions {
  std::string preset;  // or
  std::string config;  // a model.json-shaped file or a model folder's model.json
  int batch = 1;
  int iters = 5;
  int warmup = 1;
  std::string device = "auto";
  int gemm_size = 1024;
};

struct BenchResult {
  double forward_ms_median = 0, gflop_per_forward = 0, forward_gflops = 0, gemm_gflops = 0;
};

BenchResult run_bench(const BenchOptions& options, std::ostream& out);

}  // namespace dsk
