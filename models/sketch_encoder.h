// The editing network's sketch encoder: a stroke map -> one feature map per U-Net level, used two
// ways (docs/editing-model.md): added to the input blocks' outputs through zero-initialised 1x1
// convolutions (spatial alignment), and as key/value tokens, with 2-D sinusoidal positions, for the
// multi-head cross-attention of the attention blocks (the paper's Fig. 1b fusion).
#pragma once

#include <torch/torch.h>

#include <vector>

namespace dsk {

class SketchEncoderImpl : public torch::nn::Module {
 public:
  SketchEncoderImpl(int levels, int64_t channels);
  // sketch [B,1,S,S] in [0,1] (1 = stroke) -> levels maps [B,C,S/2^l,S/2^l].
  std::vector<torch::Tensor> forward(const torch::Tensor& sketch);

 private:
  torch::nn::ModuleList levels_{nullptr};
  std::vector<std::pair<torch::nn::Conv2d, torch::nn::Conv2d>> convs_;
};
TORCH_MODULE(SketchEncoder);

// Fixed 2-D sinusoidal position embedding [C,H,W] (half the channels for y, half for x).
torch::Tensor position_embedding_2d(int64_t channels, int64_t h, int64_t w, torch::TensorOptions options);

}  // namespace dsk
