// torchvision's ResNet (torchvision/models/resnet.py, "v1.5": the stride of a stage's first block
// sits on its 3x3 convolution) under torchvision's module names, so named_parameters() and
// named_buffers() equal a torchvision state_dict key for key (tests/data/reference/resnet50_keys.txt)
// and its checkpoints load unchanged. On it, the sketch feature network of models/sketch_features.h.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/sketch_features.h"

namespace dsk {

struct ResNetConfig {
  std::vector<int> layers = {3, 4, 6, 3};  // Bottleneck blocks per stage: resnet50
  int64_t num_classes = 1000;
  bool zero_init_residual = false;  // torchvision's option: bn3.weight = 0, each block starts as identity
};

// torchvision.models.resnet.Bottleneck: conv1 1x1, conv2 3x3 (stride), conv3 1x1 to planes x 4,
// each followed by bn1..bn3; downsample = Sequential(conv 1x1 stride, BatchNorm2d) on a stage's first block.
class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  void zero_init_residual();

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
  int64_t stride_ = 1;
};
TORCH_MODULE(Bottleneck);

// torchvision.models.resnet.ResNet with Bottleneck blocks: conv1, bn1, (relu, maxpool),
// layer1..layer4, (avgpool), fc. Initialised as torchvision does (Kaiming normal, fan_out).
class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(const ResNetConfig& config);
  // x: [B,3,H,W], ImageNet-normalised RGB -> logits [B,num_classes].
  torch::Tensor forward(const torch::Tensor& x);
  // The outputs of layer1..layer`count` (strides 4, 8, 16, 32), finest first; later stages are not run.
  std::vector<torch::Tensor> stages(const torch::Tensor& x, int count = 4);
  const ResNetConfig& config() const { return config_; }

 private:
  ResNetConfig config_;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  std::vector<torch::nn::Sequential> layers_;
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(ResNet);

// torchvision.models.resnet50(num_classes=...).
ResNet resnet50(int64_t num_classes = 1000);

// Strokes [B,1,H,W] (1 = stroke) -> the image a ResNet sees: the paper picture 1 - strokes (dark
// strokes on white, as sketch datasets draw them), replicated to RGB and normalised with
// ImageNet's mean and std, as torchvision's weights expect. Differentiable.
torch::Tensor sketch_to_resnet_input(const torch::Tensor& strokes);

// A ResNet as a sketch feature space: the outputs of layer1, layer2 and layer3 (strides 4, 8, 16;
// 256, 512 and 1024 channels). Eval mode (BatchNorm uses its running statistics), parameters frozen;
// features() stays differentiable in the strokes.
class ResNetSketchFeatures : public SketchFeatureNet {
 public:
  ResNetSketchFeatures(ResNet net, std::string description);
  std::vector<torch::Tensor> features(const torch::Tensor& strokes) override;
  std::string describe() const override { return description_; }
  void to(torch::Device device) override { net_->to(device); }
  ResNet& network() { return net_; }

 private:
  ResNet net_;
  std::string description_;
};

}  // namespace dsk
