// Building blocks of guided_diffusion/unet.py. Each module registers its children under the
// reference attribute names, so named_parameters() equals the reference state_dict.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

namespace dsk {

// Per-call inputs every block may use besides x: the timestep embedding and, for editing
// models, sketch feature maps keyed by downsample rate (cross-attention key/values).
struct BlockContext {
  torch::Tensor emb;
  const std::vector<torch::Tensor>* sketch_feats = nullptr;  // [level] -> [B, C_s, H, W]
  int rate = 1;                                             // current downsample rate
};

// Counts the FLOPs (2 per multiply-add) of the convolutions and attention products that run on
// this thread while it lives (`diffsketch bench`'s GFLOP/s); a count inside another adds to both.
// Linear layers (under 0.1% of an ADM forward) are not counted. Nothing is counted without one.
class FlopCount {
 public:
  FlopCount() : outer_(innermost()) { innermost() = this; }
  ~FlopCount() { innermost() = outer_; }
  FlopCount(const FlopCount&) = delete;
  FlopCount& operator=(const FlopCount&) = delete;
  int64_t flops() const { return flops_; }
  // Called by the layers.
  static void add(int64_t flops) {
    for (FlopCount* c = innermost(); c; c = c->outer_) c->flops_ += flops;
  }

 private:
  static FlopCount*& innermost() {
    thread_local FlopCount* c = nullptr;
    return c;
  }
  FlopCount* outer_;
  int64_t flops_ = 0;
};

// timestep_embedding: cos half first, then sin; max_period 10000.
torch::Tensor timestep_embedding(const torch::Tensor& timesteps, int64_t dim, double max_period = 10000.0);

// A module whose children are numbered like an nn.Sequential's: parameter-free layers keep their
// index (in_layers.{0 norm, 1 SiLU, 2 conv}) so only the numbered slots that hold weights exist.
class SlotsImpl : public torch::nn::Module {
 public:
  template <class M>
  M put(int index, M module) {
    return register_module(std::to_string(index), module);
  }
};
TORCH_MODULE(Slots);

// GroupNorm32: normalisation in float32 whatever the input dtype (fp16 on CUDA).
class GroupNorm32Impl : public torch::nn::GroupNormImpl {
 public:
  explicit GroupNorm32Impl(int64_t channels) : torch::nn::GroupNormImpl(torch::nn::GroupNormOptions(32, channels)) {}
  torch::Tensor forward(const torch::Tensor& x);
};
TORCH_MODULE(GroupNorm32);

// Upsample (nearest x2, optional 3x3 conv "conv") and Downsample (strided conv "op" or avg-pool).
class UpsampleImpl : public torch::nn::Module {
 public:
  UpsampleImpl(int64_t channels, bool use_conv, int64_t out_channels = -1);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv_{nullptr};
};
TORCH_MODULE(Upsample);

class DownsampleImpl : public torch::nn::Module {
 public:
  DownsampleImpl(int64_t channels, bool use_conv, int64_t out_channels = -1);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d op_{nullptr};
};
TORCH_MODULE(Downsample);

struct ResBlockOptions {
  int64_t channels;
  int64_t emb_channels;
  double dropout = 0.0;
  int64_t out_channels = -1;
  bool use_conv = false;
  bool use_scale_shift_norm = false;
  bool up = false;
  bool down = false;
};

// ResBlock: in_layers, emb_layers, out_layers, skip_connection (reference names and indices).
class ResBlockImpl : public torch::nn::Module {
 public:
  explicit ResBlockImpl(const ResBlockOptions& o);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);

 private:
  ResBlockOptions o_;
  GroupNorm32 in_norm_{nullptr}, out_norm_{nullptr};
  torch::nn::Conv2d in_conv_{nullptr}, out_conv_{nullptr}, skip_{nullptr};
  torch::nn::Linear emb_linear_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  Upsample h_up_{nullptr}, x_up_{nullptr};
  Downsample h_down_{nullptr}, x_down_{nullptr};
};
TORCH_MODULE(ResBlock);

// QKVAttentionLegacy (split heads, then q,k,v) and QKVAttention (split q,k,v, then heads).
// q and k are each scaled by ch^-1/4; softmax in float32. Optional extra key/values
// (GLIDE-style encoder_kv) are concatenated in front of the image's own.
torch::Tensor qkv_attention(const torch::Tensor& qkv, int64_t heads, bool new_order,
                            const torch::Tensor& encoder_kv = {});

struct AttentionOptions {
  int64_t channels;
  int64_t num_heads = 1;
  int64_t num_head_channels = -1;
  bool use_new_attention_order = false;
  int64_t encoder_channels = 0;  // > 0: image tokens also attend to sketch tokens (encoder_kv)
};

// AttentionBlock: norm, qkv (Conv1d C->3C), proj_out; [encoder_kv (Conv1d Cs->2C)].
class AttentionBlockImpl : public torch::nn::Module {
 public:
  explicit AttentionBlockImpl(const AttentionOptions& o);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& sketch = {});
  int64_t heads() const { return heads_; }

 private:
  AttentionOptions o_;
  int64_t heads_;
  GroupNorm32 norm_{nullptr};
  torch::nn::Conv1d qkv_{nullptr}, proj_out_{nullptr}, encoder_kv_{nullptr};
};
TORCH_MODULE(AttentionBlock);

// TimestepEmbedSequential: numbered children, each run with the context it needs.
class TimestepSequentialImpl : public torch::nn::Module {
 public:
  void add(torch::nn::Conv2d conv);
  void add(ResBlock block);
  void add(AttentionBlock block);
  void add(Upsample up);
  void add(Downsample down);
  torch::Tensor forward(torch::Tensor x, const BlockContext& ctx);

 private:
  std::vector<std::function<torch::Tensor(const torch::Tensor&, const BlockContext&)>> steps_;
};
TORCH_MODULE(TimestepSequential);

// AttentionPool2d of the classifier: positional_embedding, qkv_proj, c_proj (QKVAttention order).
class AttentionPool2dImpl : public torch::nn::Module {
 public:
  AttentionPool2dImpl(int64_t spatial_dim, int64_t embed_dim, int64_t head_channels, int64_t output_dim);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t heads_;
  torch::Tensor positional_embedding_;
  torch::nn::Conv1d qkv_proj_{nullptr}, c_proj_{nullptr};
};
TORCH_MODULE(AttentionPool2d);

// Reference convert_module_to_f16: convolutions of the blocks to half, everything else float32.
void convert_convs_to_half(torch::nn::Module& module);

}  // namespace dsk
