#include "models/blocks.h"

#include <cmath>

namespace dsk {

namespace F = torch::nn::functional;
using torch::Tensor;

Tensor timestep_embedding(const Tensor& timesteps, int64_t dim, double max_period) {
  const int64_t half = dim / 2;
  auto freqs = torch::exp(-std::log(max_period) *
                          torch::arange(0, half, torch::TensorOptions().dtype(torch::kFloat32)) / half)
                   .to(timesteps.device());
  auto args = timesteps.unsqueeze(1).to(torch::kFloat32) * freqs.unsqueeze(0);
  auto embedding = torch::cat({torch::cos(args), torch::sin(args)}, -1);
  if (dim % 2) embedding = torch::cat({embedding, torch::zeros_like(embedding.narrow(1, 0, 1))}, -1);
  return embedding;
}

Tensor GroupNorm32Impl::forward(const Tensor& x) {
  // In fp32 at least, as guided-diffusion's GroupNorm32 (fp64 stays fp64: gradient checks).
  return torch::nn::GroupNormImpl::forward(x.to(at::promote_types(x.scalar_type(), torch::kFloat32))).to(x.scalar_type());
}

static torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

static void count_conv(const Tensor& weight, const Tensor& out) {
  FlopCount::add(2 * out.numel() * (weight.numel() / weight.size(0)));
}

// Runs a conv (possibly fp16 weights) on an input of any float dtype.
static Tensor run_conv(torch::nn::Conv2d& conv, const Tensor& x) {
  auto out = conv->forward(x.to(conv->weight.scalar_type()));
  count_conv(conv->weight, out);
  return out;
}
static Tensor run_conv1d(torch::nn::Conv1d& conv, const Tensor& x) {
  auto out = conv->forward(x.to(conv->weight.scalar_type()));
  count_conv(conv->weight, out);
  return out;
}

UpsampleImpl::UpsampleImpl(int64_t channels, bool use_conv, int64_t out_channels) {
  if (out_channels < 0) out_channels = channels;
  if (use_conv) conv_ = register_module("conv", conv3x3(channels, out_channels));
}

Tensor UpsampleImpl::forward(const Tensor& x) {
  auto h = F::interpolate(x, F::InterpolateFuncOptions()
                                 .scale_factor(std::vector<double>{2.0, 2.0})
                                 .mode(torch::kNearest));
  return conv_ ? run_conv(conv_, h) : h;
}

DownsampleImpl::DownsampleImpl(int64_t channels, bool use_conv, int64_t out_channels) {
  if (out_channels < 0) out_channels = channels;
  if (use_conv) {
    op_ = register_module("op", conv3x3(channels, out_channels, 2));
  } else {
    TORCH_CHECK(channels == out_channels, "Downsample without conv keeps the channel count");
  }
}

Tensor DownsampleImpl::forward(const Tensor& x) {
  return op_ ? run_conv(op_, x) : F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).stride(2));
}

ResBlockImpl::ResBlockImpl(const ResBlockOptions& opts) : o_(opts) {
  if (o_.out_channels < 0) o_.out_channels = o_.channels;
  auto in_layers = register_module("in_layers", Slots());
  in_norm_ = in_layers->put(0, GroupNorm32(o_.channels));
  in_conv_ = in_layers->put(2, conv3x3(o_.channels, o_.out_channels));
  if (o_.up) {
    h_up_ = register_module("h_upd", Upsample(o_.channels, false));
    x_up_ = register_module("x_upd", Upsample(o_.channels, false));
  } else if (o_.down) {
    h_down_ = register_module("h_upd", Downsample(o_.channels, false));
    x_down_ = register_module("x_upd", Downsample(o_.channels, false));
  }
  auto emb_layers = register_module("emb_layers", Slots());
  emb_linear_ = emb_layers->put(
      1, torch::nn::Linear(o_.emb_channels, o_.use_scale_shift_norm ? 2 * o_.out_channels : o_.out_channels));
  auto out_layers = register_module("out_layers", Slots());
  out_norm_ = out_layers->put(0, GroupNorm32(o_.out_channels));
  dropout_ = out_layers->put(2, torch::nn::Dropout(o_.dropout));
  out_conv_ = out_layers->put(3, conv3x3(o_.out_channels, o_.out_channels));
  if (o_.out_channels != o_.channels) {
    skip_ = register_module("skip_connection",
                            o_.use_conv ? conv3x3(o_.channels, o_.out_channels)
                                        : torch::nn::Conv2d(torch::nn::Conv2dOptions(o_.channels, o_.out_channels, 1)));
  }
}

Tensor ResBlockImpl::forward(const Tensor& x_in, const Tensor& emb) {
  Tensor x = x_in;
  Tensor h = torch::silu(in_norm_(x));
  if (h_up_) {
    h = h_up_(h);
    x = x_up_(x);
  } else if (h_down_) {
    h = h_down_(h);
    x = x_down_(x);
  }
  h = run_conv(in_conv_, h);
  auto emb_out = emb_linear_(torch::silu(emb)).to(h.scalar_type()).unsqueeze(-1).unsqueeze(-1);
  if (o_.use_scale_shift_norm) {
    auto chunks = emb_out.chunk(2, 1);
    h = out_norm_(h) * (1 + chunks[0]) + chunks[1];
  } else {
    h = out_norm_(h + emb_out);
  }
  h = run_conv(out_conv_, dropout_(torch::silu(h)));
  return (skip_ ? run_conv(skip_, x) : x) + h;
}

Tensor qkv_attention(const Tensor& qkv, int64_t heads, bool new_order, const Tensor& encoder_kv) {
  const auto bs = qkv.size(0), width = qkv.size(1), length = qkv.size(2);
  const int64_t ch = width / (3 * heads);
  Tensor q, k, v;
  if (new_order) {  // QKVAttention
    auto parts = qkv.chunk(3, 1);
    q = parts[0].reshape({bs * heads, ch, length});
    k = parts[1].reshape({bs * heads, ch, length});
    v = parts[2].reshape({bs * heads, ch, length});
  } else {  // QKVAttentionLegacy
    auto parts = qkv.reshape({bs * heads, ch * 3, length}).split(ch, 1);
    q = parts[0], k = parts[1], v = parts[2];
  }
  if (encoder_kv.defined()) {
    Tensor ek, ev;
    if (new_order) {
      auto parts = encoder_kv.chunk(2, 1);
      ek = parts[0].reshape({bs * heads, ch, -1});
      ev = parts[1].reshape({bs * heads, ch, -1});
    } else {
      auto parts = encoder_kv.reshape({bs * heads, ch * 2, -1}).split(ch, 1);
      ek = parts[0], ev = parts[1];
    }
    k = torch::cat({ek.to(k.scalar_type()), k}, -1);
    v = torch::cat({ev.to(v.scalar_type()), v}, -1);
  }
  FlopCount::add(2 * 2 * q.size(0) * ch * length * k.size(2));
  if (q.scalar_type() == torch::kFloat32) {
    // fp32: LibTorch's fused attention, the same softmax(q k^T / sqrt(ch)) v, made the whole
    // adm-64-cond forward 1.06x faster and the shipped network's 1.02x (docs/benchmarks.md). Its
    // bf16 kernel made the shipped network 2x slower, so bf16 keeps the two products below.
    auto tokens = [&](const Tensor& t) { return t.reshape({bs, heads, ch, -1}).transpose(2, 3).contiguous(); };
    auto a = at::scaled_dot_product_attention(tokens(q), tokens(k), tokens(v));  // [bs, heads, length, ch]
    return a.transpose(2, 3).reshape({bs, -1, length});
  }
  const double scale = 1.0 / std::sqrt(std::sqrt(static_cast<double>(ch)));
  auto weight = torch::bmm((q * scale).transpose(1, 2), k * scale);  // "bct,bcs->bts"
  weight = torch::softmax(weight.to(at::promote_types(weight.scalar_type(), torch::kFloat32)), -1).to(weight.scalar_type());
  auto a = torch::bmm(v, weight.transpose(1, 2));  // "bts,bcs->bct"
  return a.reshape({bs, -1, length});
}

AttentionBlockImpl::AttentionBlockImpl(const AttentionOptions& opts) : o_(opts) {
  if (o_.num_head_channels == -1) {
    heads_ = o_.num_heads;
  } else {
    TORCH_CHECK(o_.channels % o_.num_head_channels == 0, "q,k,v channels ", o_.channels,
                " are not divisible by num_head_channels ", o_.num_head_channels);
    heads_ = o_.channels / o_.num_head_channels;
  }
  norm_ = register_module("norm", GroupNorm32(o_.channels));
  qkv_ = register_module("qkv", torch::nn::Conv1d(torch::nn::Conv1dOptions(o_.channels, 3 * o_.channels, 1)));
  if (o_.encoder_channels > 0) {
    encoder_kv_ = register_module(
        "encoder_kv", torch::nn::Conv1d(torch::nn::Conv1dOptions(o_.encoder_channels, 2 * o_.channels, 1)));
  }
  proj_out_ = register_module("proj_out", torch::nn::Conv1d(torch::nn::Conv1dOptions(o_.channels, o_.channels, 1)));
}

Tensor AttentionBlockImpl::forward(const Tensor& x_in, const Tensor& sketch) {
  const auto sizes = x_in.sizes().vec();
  auto x = x_in.reshape({sizes[0], sizes[1], -1});
  auto qkv = run_conv1d(qkv_, norm_(x));
  Tensor ekv;
  if (encoder_kv_ && sketch.defined()) ekv = run_conv1d(encoder_kv_, sketch.reshape({sketch.size(0), sketch.size(1), -1}));
  auto h = run_conv1d(proj_out_, qkv_attention(qkv, heads_, o_.use_new_attention_order, ekv));
  return (x + h.to(x.scalar_type())).reshape(sizes);
}

void TimestepSequentialImpl::add(torch::nn::Conv2d conv) {
  register_module(std::to_string(steps_.size()), conv);
  steps_.push_back([conv](const Tensor& x, const BlockContext&) mutable { return run_conv(conv, x); });
}

void TimestepSequentialImpl::add(ResBlock block) {
  register_module(std::to_string(steps_.size()), block);
  steps_.push_back([block](const Tensor& x, const BlockContext& ctx) mutable { return block(x, ctx.emb); });
}

void TimestepSequentialImpl::add(AttentionBlock block) {
  register_module(std::to_string(steps_.size()), block);
  steps_.push_back([block](const Tensor& x, const BlockContext& ctx) mutable {
    Tensor sketch;
    if (ctx.sketch_feats) {
      const int level = static_cast<int>(std::log2(ctx.rate) + 0.5);
      if (level < static_cast<int>(ctx.sketch_feats->size())) sketch = (*ctx.sketch_feats)[level];
    }
    return block(x, sketch);
  });
}

void TimestepSequentialImpl::add(Upsample up) {
  register_module(std::to_string(steps_.size()), up);
  steps_.push_back([up](const Tensor& x, const BlockContext&) mutable { return up(x); });
}

void TimestepSequentialImpl::add(Downsample down) {
  register_module(std::to_string(steps_.size()), down);
  steps_.push_back([down](const Tensor& x, const BlockContext&) mutable { return down(x); });
}

Tensor TimestepSequentialImpl::forward(Tensor x, const BlockContext& ctx) {
  for (auto& step : steps_) x = step(x, ctx);
  return x;
}

AttentionPool2dImpl::AttentionPool2dImpl(int64_t spatial_dim, int64_t embed_dim, int64_t head_channels,
                                         int64_t output_dim) {
  heads_ = embed_dim / head_channels;
  positional_embedding_ = register_parameter(
      "positional_embedding", torch::randn({embed_dim, spatial_dim * spatial_dim + 1}) / std::sqrt(embed_dim));
  qkv_proj_ = register_module("qkv_proj", torch::nn::Conv1d(torch::nn::Conv1dOptions(embed_dim, 3 * embed_dim, 1)));
  c_proj_ = register_module("c_proj", torch::nn::Conv1d(torch::nn::Conv1dOptions(embed_dim, output_dim, 1)));
}

Tensor AttentionPool2dImpl::forward(const Tensor& x_in) {
  auto x = x_in.reshape({x_in.size(0), x_in.size(1), -1});
  x = torch::cat({x.mean(-1, true), x}, -1);
  x = x + positional_embedding_.unsqueeze(0).to(x.scalar_type());
  x = run_conv1d(qkv_proj_, x);
  x = qkv_attention(x, heads_, /*new_order=*/true);
  x = run_conv1d(c_proj_, x);
  return x.select(2, 0);
}

void convert_convs_to_half(torch::nn::Module& module) {
  for (auto& child : module.modules(/*include_self=*/true)) {
    if (auto* c = child->as<torch::nn::Conv2d>()) c->to(torch::kHalf);
    if (auto* c = child->as<torch::nn::Conv1d>()) c->to(torch::kHalf);
  }
}

}  // namespace dsk
