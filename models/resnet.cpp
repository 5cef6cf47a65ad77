#include "models/resnet.h"

namespace dsk {

namespace {

using torch::Tensor;
namespace nn = torch::nn;

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

}  // namespace

// torchvision.models.resnet.Bottleneck
BottleneckImpl::BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride) {
  const int64_t out = planes * kExpansion;
  conv1_ = register_module("conv1", conv(inplanes, planes, 1, 1));
  bn1_ = register_module("bn1", nn::BatchNorm2d(planes));
  conv2_ = register_module("conv2", conv(planes, planes, 3, stride));
  bn2_ = register_module("bn2", nn::BatchNorm2d(planes));
  conv3_ = register_module("conv3", conv(planes, out, 1, 1));
  bn3_ = register_module("bn3", nn::BatchNorm2d(out));
  // downsample.0 is torchvision's strided 1x1 convolution, computed as subsampling then a 1x1
  // convolution (forward()): the same numbers, and it avoids a crash (integer division by zero) of
  // oneDNN 3.6, Debian's LibTorch 2.6 backend, in the backward of strided 1x1 convolutions with
  // 512 or more input channels.
  if (stride != 1 || inplanes != out)
    downsample_ = register_module("downsample", nn::Sequential(conv(inplanes, out, 1, 1), nn::BatchNorm2d(out)));
  stride_ = stride;
}

void BottleneckImpl::zero_init_residual() { bn3_->weight.zero_(); }

Tensor BottleneckImpl::forward(const Tensor& x) {
  auto h = torch::relu(bn1_(conv1_(x)));
  h = torch::relu(bn2_(conv2_(h)));
  h = bn3_(conv3_(h));
  if (!downsample_) return torch::relu(h + x);
  using torch::indexing::Slice;
  const auto sub = stride_ == 1 ? x : x.index({Slice(), Slice(), Slice(0, torch::indexing::None, stride_),
                                               Slice(0, torch::indexing::None, stride_)});
  return torch::relu(h + downsample_->forward(sub));
}

// torchvision.models.resnet.ResNet
ResNetImpl::ResNetImpl(const ResNetConfig& config) : config_(config) {
  TORCH_CHECK(config.layers.size() == 4, "ResNet: 4 stages expected");
  TORCH_CHECK(config.num_classes >= 1, "ResNet: num_classes must be >= 1");
  conv1_ = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
  bn1_ = register_module("bn1", nn::BatchNorm2d(64));
  int64_t inplanes = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = 64 << stage;
    nn::Sequential layer;
    for (int b = 0; b < config.layers[stage]; ++b) {
      layer->push_back(Bottleneck(inplanes, planes, b == 0 && stage > 0 ? 2 : 1));
      inplanes = planes * BottleneckImpl::kExpansion;
    }
    layers_.push_back(register_module("layer" + std::to_string(stage + 1), layer));
  }
  fc_ = register_module("fc", nn::Linear(inplanes, config.num_classes));
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false))
    if (auto* c = m->as<nn::Conv2d>()) nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
  if (config.zero_init_residual)
    for (auto& m : modules(/*include_self=*/false))
      if (auto* b = m->as<BottleneckImpl>()) b->zero_init_residual();
}

std::vector<Tensor> ResNetImpl::stages(const Tensor& x, int count) {
  TORCH_CHECK(count >= 1 && count <= 4, "ResNet: stages count must be 1..4");
  auto h = torch::max_pool2d(torch::relu(bn1_(conv1_(x))), 3, 2, 1);
  std::vector<Tensor> out;
  for (int i = 0; i < count; ++i) out.push_back(h = layers_[i]->forward(h));
  return out;
}

Tensor ResNetImpl::forward(const Tensor& x) {
  auto h = stages(x, 4).back();
  return fc_(torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1));
}

ResNet resnet50(int64_t num_classes) {
  ResNetConfig config;
  config.num_classes = num_classes;
  return ResNet(config);
}

Tensor sketch_to_resnet_input(const Tensor& strokes) {
  TORCH_CHECK(strokes.dim() == 4 && strokes.size(1) == 1, "ResNet sketch input: strokes must be [B,1,H,W], got ",
              strokes.sizes());
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(strokes.device());
  const auto mean = torch::tensor({0.485f, 0.456f, 0.406f}, opts).view({1, 3, 1, 1});  // torchvision's ImageNet
  const auto std = torch::tensor({0.229f, 0.224f, 0.225f}, opts).view({1, 3, 1, 1});   // normalisation
  return ((1 - strokes.to(torch::kFloat32)).expand({-1, 3, -1, -1}) - mean) / std;
}

ResNetSketchFeatures::ResNetSketchFeatures(ResNet net, std::string description)
    : net_(std::move(net)), description_(std::move(description)) {
  net_->eval();
  for (auto& p : net_->parameters()) p.requires_grad_(false);
}

std::vector<Tensor> ResNetSketchFeatures::features(const Tensor& strokes) {
  TORCH_CHECK(strokes.size(-1) >= 16 && strokes.size(-2) >= 16, "ResNet sketch features: strokes must be at least 16x16");
  return net_->stages(sketch_to_resnet_input(strokes), 3);
}

}  // namespace dsk
