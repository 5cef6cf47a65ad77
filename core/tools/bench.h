// `diffsketch bench`: U-Net forward speed against the machine's GEMM speed.
#pragma once

#include <ostream>
#include <string>

#include "core/engine/engine.h"

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

// `diffsketch bench-edit`: wall time of one edit of a size x size selection (the selection and a
// sketch in a synthetic 2*size picture), as a user runs it: model loading excluded, everything
// else (context crop, coarse pass, refinement, compositing) included.
struct EditBenchOptions {
  std::string model = "default";
  int size = 256;
  int steps = 20;
  int iters = 3;
  int warmup = 1;
  std::string device = "auto";
  DetailMode detail = EditRequest{}.detail;  // the model methods: detail at native resolution
  double init_strength = -1, refine_strength = -1, harmonize = -1;  // < 0: edit's defaults
  double sketch_scale = -1;                                           // < 0: edit's default
  int refine_steps = -1;                                              // < 0: edit's default
};

struct EditBenchResult {
  double seconds_median = 0, seconds_min = 0;
  int unet_evaluations = 0;  // per edit: steps of the coarse pass and of every refinement tile
};

EditBenchResult run_edit_bench(const EditBenchOptions& options, std::ostream& out);

}  // namespace dsk
