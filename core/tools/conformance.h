// `diffsketch conformance`: recompute a reference case (tests/data/conformance/*) and compare.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace dsk {

struct ConformanceResult {
  int passed = 0, failed = 0;
};

// Builds both networks from DIR/config.json, loads unet.safetensors and classifier.safetensors,
// recomputes every key of config.json's KEYS found in io.safetensors, prints one line per key
// with its relative error ||a-b||/||b||, then "conformance: N passed, M failed".
ConformanceResult run_conformance(const std::string& dir, std::ostream& out);

// `diffsketch bench-solvers`: each sampler's error against the ODE's solution on a case's network.
// From the case's x_T (class y), each sampler at each number of network evaluations (section
// respacing "N", as --steps N) is compared with DDIM over every trained step: relative error
// ||x - x_ref|| / ||x_ref||. x0 clipped as edits sample (or not); optional classifier guidance.
struct SolverBenchOptions {
  std::string case_dir;
  std::vector<int> nfes = {5, 8, 10, 15, 20, 50};
  std::vector<std::string> samplers = {"ddim", "dpm++2m", "unipc"};
  bool guided = false;
  bool clip = true;
};
struct SolverBenchRow {
  std::string sampler;
  int nfe = 0;
  double relative_error = 0;
};
struct SolverBenchResult {
  std::vector<SolverBenchRow> rows;
};
SolverBenchResult run_solver_bench(const SolverBenchOptions& options, std::ostream& out);
// Both forms of bench-solvers: evaluation counts in 3..1000 (dpm++2m's minimum), deterministic
// samplers only. InputError otherwise.
void check_solver_bench_options(const std::vector<int>& nfes, const std::vector<std::string>& samplers);

}  // namespace dsk
