// CPU inference precision (core/device/precision.h): bf16 where the CPU and oneDNN compute it
// natively, fp32 elsewhere; DSK_PRECISION chooses. The choice is checked on made-up kernels (so it
// is tested on every CPU); the bf16 forward and edit only where this CPU computes bf16 natively.
#include <gtest/gtest.h>

#include <cstdlib>
#include <opencv2/imgproc.hpp>

#include "core/base/error.h"
#include "core/device/precision.h"
#include "core/engine/engine.h"
#include "core/engine/model_cache.h"
#include "core/formats/model_folder.h"
#include "expect_error.h"
#include "numerics.h"

using dsk::test::expect_input_error;

namespace {

const std::string kDefaultModel = DSK_SOURCE_DIR "/models/default";

dsk::CpuKernels kernels(const std::string& isa, bool onednn = true) {
  dsk::CpuKernels k;
  k.onednn_isa = isa;
  k.onednn_enabled = onednn;
  return k;
}

// Sets DSK_PRECISION for a scope (nullptr: unset), and puts the caller's value back.
class PrecisionSetting {
 public:
  explicit PrecisionSetting(const char* value) {
    if (const char* old = std::getenv("DSK_PRECISION")) old_ = old, had_ = true;
    if (value) setenv("DSK_PRECISION", value, 1);
    else unsetenv("DSK_PRECISION");
  }
  ~PrecisionSetting() {
    if (had_) setenv("DSK_PRECISION", old_.c_str(), 1);
    else unsetenv("DSK_PRECISION");
  }

 private:
  std::string old_;
  bool had_ = false;
};

bool native_bf16_here() { return dsk::kernels_compute_bf16(dsk::cpu_kernels()); }

}  // namespace

TEST(Precision, AutoIsBf16OnlyWhereOneDnnComputesItNatively) {
  for (const char* isa : {"avx512_core_bf16", "avx512_core_amx", "avx512_core_amx_fp16"}) {
    const auto p = dsk::inference_precision(torch::kCPU, nullptr, kernels(isa));
    EXPECT_EQ(p.dtype, torch::kBFloat16) << isa;
    EXPECT_NE(p.why.find("DSK_PRECISION=fp32"), std::string::npos) << "says how to turn it off: " << p.why;
    EXPECT_EQ(dsk::inference_precision(torch::kCPU, "auto", kernels(isa)).dtype, torch::kBFloat16);
    EXPECT_EQ(dsk::inference_precision(torch::kCPU, "", kernels(isa)).dtype, torch::kBFloat16);
  }
  for (const char* isa : {"avx2", "avx2_vnni", "avx512_core", "avx512_core_vnni", "unknown"})
    EXPECT_EQ(dsk::inference_precision(torch::kCPU, nullptr, kernels(isa)).dtype, torch::kFloat32) << isa;
  // oneDNN off (DSK_ONEDNN=0): LibTorch's own bf16 convolutions are the slow fallback.
  EXPECT_EQ(dsk::inference_precision(torch::kCPU, nullptr, kernels("avx512_core_amx", false)).dtype, torch::kFloat32);
  // CUDA models keep their own precision (use_fp16).
  EXPECT_EQ(dsk::inference_precision(torch::Device(torch::kCUDA), nullptr, kernels("avx512_core_amx")).dtype,
            torch::kFloat32);
}

TEST(Precision, TheSettingTurnsItOffOrAsksForItWithAClearErrorWhereItIsNotNative) {
  EXPECT_EQ(dsk::inference_precision(torch::kCPU, "fp32", kernels("avx512_core_amx")).dtype, torch::kFloat32);
  EXPECT_EQ(dsk::inference_precision(torch::kCPU, "bf16", kernels("avx512_core_bf16")).dtype, torch::kBFloat16);
  expect_input_error(
      [] { dsk::inference_precision(torch::kCPU, "bf16", kernels("avx2")); },
      {"DSK_PRECISION=bf16", "avx2", "no bf16 arithmetic", "set it to fp32"});
  expect_input_error(
      [] { dsk::inference_precision(torch::kCPU, "bf16", kernels("avx512_core_amx", false)); },
      {"DSK_PRECISION=bf16", "DSK_ONEDNN=0"});
  expect_input_error(
      [] { dsk::inference_precision(torch::Device(torch::kCUDA), "bf16", kernels("avx512_core_amx")); },
      {"DSK_PRECISION=bf16", "cuda", "for CPUs"});
  for (const char* bad : {"fp16", "BF16", "bfloat16", "1", "fast"})
    expect_input_error(
        [bad] { dsk::inference_precision(torch::kCPU, bad, kernels("avx512_core_amx")); },
        {"DSK_PRECISION must be auto, fp32 or bf16", std::string("'") + bad + "'"});
}

TEST(Precision, TheEngineHandsOutModelsInTheResolvedPrecision) {
  dsk::ModelCache cache;
  {
    PrecisionSetting fp32("fp32");
    EXPECT_EQ(cache.unet(kDefaultModel, torch::kCPU, "test").model->cpu_inference_dtype(), torch::kFloat32);
  }
  {
    PrecisionSetting automatic(nullptr);
    EXPECT_EQ(cache.unet(kDefaultModel, torch::kCPU, "test").model->cpu_inference_dtype(),
              native_bf16_here() ? torch::kBFloat16 : torch::kFloat32);
  }
  {
    PrecisionSetting bad("half");
    expect_input_error([&] { cache.unet(kDefaultModel, torch::kCPU, "test"); },
                                                        {"DSK_PRECISION must be"});
    dsk::Engine engine;
    dsk::EditRequest req;
    req.model = kDefaultModel;
    req.image = cv::Mat(64, 64, CV_8UC3, cv::Scalar(90, 120, 200));
    req.mask = cv::Mat::zeros(64, 64, CV_8U);
    req.mask(cv::Rect(16, 16, 32, 32)).setTo(255);
    req.sampling.steps = 2;
    req.sampling.sampler = "ddim";  // an edit's default, UniPC, needs 3
    expect_input_error([&] { engine.edit(req); }, {"DSK_PRECISION must be"});
  }
}

// The shipped model's forward in bf16 against fp32, on noisy inputs at several noise levels:
// relative L2 error of the output (bf16 keeps 8 bits of mantissa: ~0.4 % per rounding). Worst
// measured (Xeon with AMX, oneDNN avx512_core_amx and avx512_core_bf16): 1.0e-2 at t = 999; the
// bound is 10x that (docs/testing.md), far below the ~100 % of a forward that went wrong.
TEST(Precision, ABf16ForwardIsNearFp32AndADifferentiatedOneIsFp32) {
  if (!native_bf16_here()) GTEST_SKIP() << "this CPU's kernels (" << dsk::describe(dsk::cpu_kernels()) << ") have no native bf16";
  auto unet = dsk::load_unet(kDefaultModel, torch::kCPU, "test");
  torch::manual_seed(3);
  const auto x = torch::randn({2, unet.net.in_channels, 64, 64});
  const auto sketch = (torch::rand({2, 1, 64, 64}) > 0.9).to(torch::kFloat32);
  for (int t : {999, 500, 100, 10}) {
    const auto ts = torch::full({2}, t, torch::kInt64);
    torch::Tensor fp32, bf16, with_grad;
    {
      torch::NoGradGuard no_grad;
      unet.model->set_cpu_inference_dtype(torch::kFloat32);
      fp32 = unet.model(x, ts, torch::Tensor(), sketch);
      unet.model->set_cpu_inference_dtype(torch::kBFloat16);
      bf16 = unet.model(x, ts, torch::Tensor(), sketch);
    }
    with_grad = unet.model(x, ts, torch::Tensor(), sketch);  // differentiated forwards stay fp32
    EXPECT_EQ(bf16.scalar_type(), torch::kFloat32);
    const double rel = ((bf16 - fp32).norm() / fp32.norm()).item<double>();
    EXPECT_TRUE(dsk::test::within("precision/bf16-forward-t" + std::to_string(t), rel, 0.1));
    EXPECT_GT(rel, 0) << "t = " << t << ": the bf16 forward computed exactly fp32's result (autocast not applied?)";
    EXPECT_TRUE(torch::equal(with_grad.detach(), fp32)) << "t = " << t;
  }
}

// An edit in bf16 keeps every pixel outside the selection and lands near the fp32 edit inside it.
TEST(Precision, ABf16EditKeepsTheOutsideAndStaysNearTheFp32Edit) {
  if (!native_bf16_here()) GTEST_SKIP() << "this CPU's kernels (" << dsk::describe(dsk::cpu_kernels()) << ") have no native bf16";
  dsk::EditRequest req;
  req.model = kDefaultModel;
  cv::Mat image(96, 96, CV_8UC3);
  for (int y = 0; y < 96; ++y)
    for (int x = 0; x < 96; ++x) image.at<cv::Vec3b>(y, x) = cv::Vec3b(40 + y, 80 + x, static_cast<uchar>(200 - x - y / 2));
  req.image = image;
  req.mask = cv::Mat::zeros(96, 96, CV_8U);
  req.mask(cv::Rect(24, 24, 48, 48)).setTo(255);
  req.sketch = cv::Mat(96, 96, CV_8U, cv::Scalar(255));
  cv::line(req.sketch, {28, 66}, {68, 30}, cv::Scalar(0), 2, cv::LINE_AA);
  req.sampling.steps = 10;
  req.sampling.seed = 1;
  dsk::Engine engine;
  cv::Mat fp32, bf16;
  {
    PrecisionSetting s("fp32");
    fp32 = engine.edit(req).images.at(0);
  }
  {
    PrecisionSetting s("bf16");
    bf16 = engine.edit(req).images.at(0);
  }
  cv::Mat outside;
  cv::bitwise_not(req.mask, outside);
  EXPECT_EQ(cv::norm(bf16, image, cv::NORM_INF, outside), 0) << "a pixel outside the selection changed";
  const double mean_abs = cv::norm(bf16, fp32, cv::NORM_L1, req.mask) / (cv::countNonZero(req.mask) * 3.0);
  EXPECT_GT(mean_abs, 0) << "bf16 gave fp32's result exactly (autocast not applied?)";
  // Mean difference in levels of 255 over the selection. Worst measured 0.11; the bound is 18x
  // that rather than the rounded-up 10 levels, which a fill from the wrong inputs could meet.
  EXPECT_TRUE(dsk::test::within("precision/bf16-edit-mean-levels", mean_abs, 2));
}
