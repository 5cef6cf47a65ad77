// `diffsketch bench`: U-Net forward speed against the machine's GEMM speed.
#pragma once

#include <ostream>
#include <string>
#include <vector>

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
  // CPU inference precisions to time, interleaved: "auto" (DSK_PRECISION, else what the CPU
  // computes natively), "fp32", "bf16" (core/device/precision.h).
  std::vector<std::string> precisions = {"auto"};
  // Layouts of the convolutions' weights and input to time, interleaved (each precision in each):
  // "contiguous" (NCHW, the engine's), "channels-last" (NHWC).
  std::vector<std::string> memory_formats = {"contiguous"};
  // Also write the results, the network's resolved flags (guided-diffusion's names) and the
  // threads to this JSON file (tests/tools/bench_reference_forward.py reads it).
  std::string json_path;
};

struct BenchResult {
  // Per entry of BenchOptions::precisions.
  std::vector<std::string> precisions;  // what each ran in: "fp32" / "bf16" (+ " channels-last"...)
  std::vector<double> forward_ms_median, forward_gflops;
  std::vector<std::vector<double>> forward_ms;  // every timed forward, per precision
  double gflop_per_forward = 0, gemm_gflops = 0;
};

BenchResult run_bench(const BenchOptions& options, std::ostream& out);

// `diffsketch bench-edit`: wall time of one edit of a size x size selection (the selection and a
// sketch in a synthetic 2*size picture), as a user runs it: model loading excluded, everything
// else (context crop, coarse pass, refinement, compositing) included.
struct EditBenchOptions {
  std::string model = "default";
  int size = 256;
  // One configuration per entry (a single value applies to all): each is timed, the runs
  // interleaved so that a machine's drift hits all alike, and compared with the first.
  std::vector<int> steps = {kDefaultEditSteps};
  std::vector<std::string> samplers = {std::string(kDefaultEditSampler)};
  int iters = 3;
  int warmup = 1;
  std::string device = "auto";
  // Detail at native resolution; a list times one configuration per entry.
  std::vector<DetailMode> details = {EditRequest{}.detail};
  double init_strength = -1, refine_strength = -1, harmonize = -1;  // < 0: edit's defaults
  double sketch_scale = -1;                                           // < 0: edit's default
  // The tiles' sketch strength (EditRequest::refine_sketch_scale); a list times one configuration
  // per entry. Empty: edit's default.
  std::vector<double> refine_sketch_scales;
  int refine_steps = -1;                                              // < 0: edit's default
  // CPU inference precisions ("auto", "fp32", "bf16"), each applied as DSK_PRECISION would be.
  std::vector<std::string> precisions = {"auto"};
};

struct EditBenchConfigResult {
  int steps = 0;
  std::string sampler;
  std::string precision;  // "fp32" / "bf16"
  DetailMode detail = DetailMode::Patch;
  double refine_sketch_scale = 0;  // the tiles' sketch strength (detail tiles)
  double seconds_median = 0, seconds_min = 0;
  int unet_evaluations = 0;  // per edit: steps of the coarse pass and of every refinement tile
};
struct EditBenchResult {
  std::vector<EditBenchConfigResult> configs;
};

EditBenchResult run_edit_bench(const EditBenchOptions& options, std::ostream& out);

// `diffsketch bench-solvers --model`: the same error table as run_solver_bench (conformance.h),
// on a trained editing model: whole images generated from a sketch at the model's working
// resolution (sketch strength 1, seeds 0..variants-1), each sampler at each number of network
// evaluations against DDIM over every trained step. The images are 8-bit (relative error floor
// about 3e-3).
struct ModelSolverBenchOptions {
  std::string model = "default";
  std::string sketch;  // a sketch PNG (resized to the working resolution)
  int variants = 4;
  std::vector<int> nfes = {5, 8, 10, 15, 20, 50};
  std::vector<std::string> samplers = {"ddim", "dpm++2m", "unipc"};
  std::string device = "auto";
};
void run_model_solver_bench(const ModelSolverBenchOptions& options, std::ostream& out);

}  // namespace dsk
