#include "models/sketch_features.h"

#include <cmath>

#include "core/base/limits.h"

namespace dsk {

namespace {

using torch::Tensor;
namespace F = torch::nn::functional;

class EdgePyramid : public SketchFeatureNet {
 public:
  explicit EdgePyramid(int levels) : levels_(levels) {
    sobel_ = torch::tensor({-1.0f, 0.0f, 1.0f, -2.0f, 0.0f, 2.0f, -1.0f, 0.0f, 1.0f}).view({1, 1, 3, 3}) / 4;
  }

  // Per level l: the stroke density (average over 2^l x 2^l cells) blurred with sigma 1 cell, and
  // its horizontal and vertical Sobel derivatives (where strokes run, and which way).
  std::vector<Tensor> features(const Tensor& strokes) override {
    TORCH_CHECK(strokes.dim() == 4 && strokes.size(1) == 1, "edge pyramid: strokes must be [B,1,H,W]");
    std::vector<Tensor> out;
    // fp32 at least (fp64 stays fp64: gradient checks).
    Tensor s = strokes.to(at::promote_types(strokes.scalar_type(), torch::kFloat32));
    const auto o = s.options();
    const auto sx = sobel_.to(o), sy = sobel_.transpose(2, 3).contiguous().to(o);
    for (int l = 0; l < levels_; ++l) {
      if (l > 0) {
        if (s.size(2) < 4 || s.size(3) < 4) break;
        s = F::avg_pool2d(s, F::AvgPool2dFuncOptions(2).ceil_mode(true));
      }
      auto b = gaussian_blur(s, 1.0);
      auto p = F::pad(b, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));
      out.push_back(torch::cat({b, F::conv2d(p, sx), F::conv2d(p, sy)}, 1));
    }
    return out;
  }

  std::string describe() const override { return "edge pyramid (" + std::to_string(levels_) + " scales, no weights)"; }
  void to(torch::Device) override {}  // kernels follow the input's device

 private:
  int levels_;
  Tensor sobel_;
};

}  // namespace

torch::Tensor gaussian_blur(const torch::Tensor& x, double sigma) {
  const int64_t r = std::max(1, static_cast<int>(std::ceil(3 * sigma)));
  auto t = torch::arange(-r, r + 1, x.options());
  auto g = torch::exp(-(t * t) / (2 * sigma * sigma));
  const auto k = (g / g.sum()).view({1, 1, 1, -1});
  auto h = F::conv2d(F::pad(x, F::PadFuncOptions({r, r, 0, 0}).mode(torch::kReplicate)), k);
  return F::conv2d(F::pad(h, F::PadFuncOptions({0, 0, r, r}).mode(torch::kReplicate)), k.transpose(2, 3));
}

std::shared_ptr<SketchFeatureNet> make_edge_pyramid(int levels) {
  TORCH_CHECK(kEdgePyramidLevelsRange.contains(levels),
              "edge pyramid: levels must be in " + range_text(kEdgePyramidLevelsRange));
  return std::make_shared<EdgePyramid>(levels);
}

}  // namespace dsk
