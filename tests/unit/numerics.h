// Comparisons of computed numbers under a bound that is derived, not tuned (docs/testing.md).
//
// Each comparison has a name, an error measure and a bound. The bound's comment in the test says
// what error is expected and why (fp32 rounding over K-term sums, another kernel, another batch
// size); the bound itself is the worst error measured over the portability matrix (every CPU
// kernel level, 1 and 2 threads, oneDNN on and off) times at least 10, rounded up to a power of
// ten (the margin covers CPUs whose caches make oneDNN block its sums differently), and still far
// below what the bug the test guards against would give. When DSK_NUMERICS_LOG names a file, every
// comparison appends "name<TAB>error<TAB>bound" to it, so tests/portability/report.py can list the
// worst error of each comparison over the whole matrix.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace dsk::test {

// ||got - want|| / ||want|| (Frobenius norms, in double): the conformance cases' measure.
inline double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  const auto a = got.detach().to(torch::kCPU, torch::kFloat64), b = want.detach().to(torch::kCPU, torch::kFloat64);
  const double ref = b.norm().item<double>(), diff = (a - b).norm().item<double>();
  return ref == 0 ? diff : diff / ref;
}

// max |got - want| / max |want|: the worst single entry, on the scale of the tensor.
inline double max_relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  const auto a = got.detach().to(torch::kCPU, torch::kFloat64), b = want.detach().to(torch::kCPU, torch::kFloat64);
  const double ref = b.abs().max().item<double>(), diff = (a - b).abs().max().item<double>();
  return ref == 0 ? diff : diff / ref;
}

inline void record(const std::string& name, double error, double bound) {
  const char* path = std::getenv("DSK_NUMERICS_LOG");
  if (!path || !*path) return;
  if (FILE* f = std::fopen(path, "a")) {
    std::fprintf(f, "%s\t%.6e\t%.6e\n", name.c_str(), error, bound);
    std::fclose(f);
  }
}

// EXPECT_TRUE(within("resnet/batch-independence", err, bound)): records the error, then checks it.
inline ::testing::AssertionResult within(const std::string& name, double error, double bound) {
  record(name, error, bound);
  if (std::isfinite(error) && error <= bound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << name << ": error " << error << " exceeds its bound " << bound
                                       << " (docs/testing.md lists the worst error measured per comparison)";
}

}  // namespace dsk::test
