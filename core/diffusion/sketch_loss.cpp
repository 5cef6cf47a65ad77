#include "core/diffusion/sketch_loss.h"

#include <cmath>

#include "core/base/error.h"
#include "core/formats/model_registry.h"
#include "core/formats/sketch_features_model.h"

namespace dsk {

using torch::Tensor;
namespace F = torch::nn::functional;

namespace {

// fp32 at least; fp64 stays fp64 (gradient checks).
torch::ScalarType work_type(const Tensor& x) { return at::promote_types(x.scalar_type(), torch::kFloat32); }

}  // namespace

Tensor soft_xdog(const Tensor& rgb, const SoftXDoG& p) {
  TORCH_CHECK(rgb.dim() == 4 && rgb.size(1) == 3, "soft_xdog: expected [B,3,H,W]");
  auto x = (rgb.to(work_type(rgb)).clamp(-1, 1) + 1) / 2;
  // ITU-R BT.601 luma, as cv::cvtColor(BGR2GRAY) in editing/.
  auto luma = 0.299 * x.narrow(1, 0, 1) + 0.587 * x.narrow(1, 1, 1) + 0.114 * x.narrow(1, 2, 1);
  auto d = gaussian_blur(luma, p.sigma) - p.tau * gaussian_blur(luma, p.sigma * p.k);
  auto t = torch::where(d >= p.epsilon, torch::ones_like(d), 1 + torch::tanh(p.phi * (d - p.epsilon)));
  return 1 - t;
}

Tensor SketchLoss::operator()(const Tensor& x0, const Tensor& sketch, const Tensor& where,
                              const std::vector<double>& energies) const {
  TORCH_CHECK(sketch.dim() == 4 && sketch.size(1) == 1, "sketch loss: the sketch must be [B,1,H,W]");
  Tensor generated = soft_xdog(x0);
  Tensor target = sketch.to(generated.device(), generated.scalar_type());
  if (where.defined()) {
    generated = generated * where;
    target = target * where;
  }
  const auto fg = net_->features(generated);
  const auto ft = net_->features(target);
  TORCH_CHECK(energies.empty() || energies.size() == fg.size(), "sketch loss: one energy a feature map is needed");
  Tensor total = torch::zeros({}, generated.options());
  for (size_t i = 0; i < fg.size(); ++i) {
    const auto energy = energies.empty() ? ft[i].detach().pow(2).mean().clamp_min(1e-4)
                                         : torch::tensor(std::max(energies[i], 1e-4), generated.options());
    total = total + (fg[i] - ft[i].detach()).pow(2).mean() / energy;
  }
  return total / static_cast<double>(fg.size());
}

std::vector<double> SketchLoss::energies(const Tensor& sketch, const Tensor& where) const {
  torch::NoGradGuard no_grad;
  Tensor target = sketch.to(work_type(sketch));
  if (where.defined()) target = target * where;
  std::vector<double> out;
  for (const auto& f : net_->features(target)) out.push_back(f.pow(2).mean().item<double>());
  return out;
}

Tensor identity_loss(const Tensor& x0, const Tensor& ref) {
  TORCH_CHECK(x0.sizes() == ref.sizes(), "identity loss: x0 and the reference differ in shape");
  const auto type = work_type(x0);
  Tensor total = torch::zeros({}, x0.options().dtype(type));
  int n = 0;
  for (int l = 2; l <= 4; ++l) {
    const int64_t f = int64_t{1} << l;
    if (x0.size(2) < f || x0.size(3) < f) break;
    total = total + (F::avg_pool2d(x0.to(type), F::AvgPool2dFuncOptions(f)) -
                     F::avg_pool2d(ref.to(type).detach(), F::AvgPool2dFuncOptions(f)))
                        .pow(2)
                        .mean();
    ++n;
  }
  if (n == 0) return (x0.to(type) - ref.to(type).detach()).pow(2).mean();
  return total / n;
}

std::shared_ptr<SketchFeatureNet> open_sketch_features(const std::string& dir, torch::Device device) {
  return load_sketch_features(dir.empty() ? dir : resolve_model(dir), device);
}

}  // namespace dsk
