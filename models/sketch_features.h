// Sketch feature networks: stroke maps -> multi-scale feature maps, the space in which the sketch
// perceptual loss (core/diffusion/sketch_loss.h) compares a user's sketch with the sketch of a generated image.
//
// Two kinds:
//  - the fixed edge pyramid (no weights, the default): at each of L scales, the blurred stroke map
//    and its oriented (Sobel x / y) responses;
//  - a ResNet-50 with torchvision's parameter names (models/resnet.h), trained on sketches with
//    `diffsketch train-sketch-features` or converted from a torchvision checkpoint: the outputs of
//    layer1..layer3.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace dsk {

class SketchFeatureNet {
 public:
  virtual ~SketchFeatureNet() = default;
  // strokes: [B,1,H,W] in [0,1], 1 = stroke, H and W >= 16. Differentiable in `strokes`.
  // Returns feature maps, finest first; each is compared with a mean squared distance.
  virtual std::vector<torch::Tensor> features(const torch::Tensor& strokes) = 0;
  virtual std::string describe() const = 0;
  virtual void to(torch::Device device) = 0;
};

// Separable Gaussian blur of [B,1,H,W] with replicated borders (kernel radius ceil(3 sigma)), in
// the input's dtype; differentiable. Shared by the edge pyramid and the differentiable XDoG.
torch::Tensor gaussian_blur(const torch::Tensor& x, double sigma);

// The default feature space: `levels` scales (each half the previous), 3 maps per scale.
std::shared_ptr<SketchFeatureNet> make_edge_pyramid(int levels = 4);

}  // namespace dsk
