// The sketch perceptual loss and the identity loss of the paper's fine-tuning (Algorithm 1), also
// used as training-free sketch guidance at sampling time. Definitions and reasons:
// docs/finetune.md.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "models/sketch_features.h"

namespace dsk {

// editing/'s XDoG (synth_sketch.h) in differentiable torch ops: luma of x in [-1,1] -> D = G_s - tau
// G_ks, T = 1 where D >= epsilon else 1 + tanh(phi (D - epsilon)); returns the soft stroke map 1 - T
// in [0,1] (editing/ binarises it at 0.5). phi is lower than editing/'s 200 so that gradients
// reach pixels near, not only on, an edge.
struct SoftXDoG {
  double sigma = 0.8, k = 1.6, tau = 0.98, epsilon = 0.0, phi = 50.0;
};
torch::Tensor soft_xdog(const torch::Tensor& rgb, const SoftXDoG& p = {});

// L_sketch = mean over feature maps f of mean((f(XDoG(x0) * w) - f(sketch * w))^2), normalised by
// the mean energy of the target's features so that scales and feature spaces are comparable;
// w = `where` ([B,1,H,W] in [0,1], where the sketch applies) or 1.
class SketchLoss {
 public:
  explicit SketchLoss(std::shared_ptr<SketchFeatureNet> net) : net_(std::move(net)) {}
  // `energies`: the normalisers to use instead of this batch's (see energies()).
  torch::Tensor operator()(const torch::Tensor& x0, const torch::Tensor& sketch, const torch::Tensor& where = {},
                           const std::vector<double>& energies = {}) const;
  // The target's feature energies (mean square of each feature map over the batch, before the
  // floor), the loss's normalisers. They couple the samples of a batch: a data-parallel rank
  // averages its energies with the others' and passes them, so that its loss is its share of the
  // global batch's.
  std::vector<double> energies(const torch::Tensor& sketch, const torch::Tensor& where = {}) const;
  const SketchFeatureNet& net() const { return *net_; }

 private:
  std::shared_ptr<SketchFeatureNet> net_;
};

// L_identity = mean over l in {2,3,4} of mean((avgpool_{2^l}(x0) - avgpool_{2^l}(ref))^2): colours
// and layout at 1/4, 1/8 and 1/16 scale, so that the sketch loss may move edges but not repaint the
// picture. `ref` is the frozen model's x0 from the same x_T, or a user's reference photo.
torch::Tensor identity_loss(const torch::Tensor& x0, const torch::Tensor& ref);

// "" = the fixed edge pyramid; otherwise a sketch-features model folder.
std::shared_ptr<SketchFeatureNet> open_sketch_features(const std::string& dir, torch::Device device);

}  // namespace dsk
