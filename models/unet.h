// ADM networks: UNetModel (the diffusion kernel) and EncoderUNetModel (the noisy classifier),
// mirroring guided_diffusion/unet.py; parameter names and shapes equal the reference state_dict.
#pragma once

#include <torch/torch.h>

#include "models/adm_config.h"
#include "models/autocast.h"
#include "models/blocks.h"
#include "models/sketch_encoder.h"

namespace dsk {

// UNetModel
class UNetModelImpl : public torch::nn::Module {
 public:
  explicit UNetModelImpl(const UNetConfig& config);
  // x [B,in_channels,S,S], timesteps [B] on the original 0..T-1 scale, y [B] class labels (class_cond
  // models only), sketch [B,1,S,S] stroke map in [0,1] (editing models, sketch_channels > 0; an
  // undefined tensor means no sketch: a map of config.sketch_null).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& timesteps, const torch::Tensor& y = {},
                        const torch::Tensor& sketch = {});
  const UNetConfig& config() const { return config_; }
  // The reference's use_fp16: convolutions of the blocks in half precision (CUDA only).
  void convert_to_fp16();
  // Inference on the CPU under bf16 autocast (kBFloat16) or in fp32 (kFloat, the default). Applies
  // only to CPU inputs with gradients off: a forward that is differentiated (sketch guidance's exact
  // gradient, training) stays fp32. The output is fp32 either way; the weights stay fp32.
  void set_cpu_inference_dtype(torch::Dtype dtype);
  torch::Dtype cpu_inference_dtype() const { return cpu_inference_dtype_; }

 private:
  // Everything before the output layers.
  torch::Tensor blocks(const torch::Tensor& x, const torch::Tensor& timesteps, const torch::Tensor& y,
                       const torch::Tensor& sketch);

  UNetConfig config_;
  torch::nn::Sequential time_embed_{nullptr};
  torch::nn::Embedding label_emb_{nullptr};
  torch::nn::ModuleList input_blocks_{nullptr}, output_blocks_{nullptr};
  TimestepSequential middle_block_{nullptr};
  GroupNorm32 out_norm_{nullptr};
  torch::nn::Conv2d out_conv_{nullptr};
  std::vector<int> input_rates_, output_rates_;  // downsample rate each block runs at
  std::vector<int> input_out_levels_;            // level of each input block's output
  SketchEncoder sketch_encoder_{nullptr};
  torch::nn::ModuleList sketch_inject_{nullptr};
  std::vector<torch::nn::Conv2d> inject_convs_;
  int middle_rate_ = 1;
  torch::Dtype dtype_ = torch::kFloat32;
  torch::Dtype cpu_inference_dtype_ = torch::kFloat32;
};
TORCH_MODULE(UNetModel);

// EncoderUNetModel
class EncoderUNetModelImpl : public torch::nn::Module {
 public:
  explicit EncoderUNetModelImpl(const ClassifierConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& timesteps);
  const ClassifierConfig& config() const { return config_; }
  void convert_to_fp16();

 private:
  ClassifierConfig config_;
  torch::nn::Sequential time_embed_{nullptr};
  torch::nn::ModuleList input_blocks_{nullptr};
  TimestepSequential middle_block_{nullptr};
  std::function<torch::Tensor(const torch::Tensor&)> head_;
  torch::Dtype dtype_ = torch::kFloat32;
};
TORCH_MODULE(EncoderUNetModel);

// Parameter count and named shapes, for `diffsketch info` and the key-list tests.
int64_t parameter_count(const torch::nn::Module& module);

}  // namespace dsk
