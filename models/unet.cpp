#include "models/unet.h"

#include <algorithm>

namespace dsk {

using torch::Tensor;

namespace {

torch::nn::Sequential make_time_embed(int64_t channels) {
  const int64_t dim = channels * 4;
  return torch::nn::Sequential(torch::nn::Linear(channels, dim), torch::nn::SiLU(), torch::nn::Linear(dim, dim));
}

bool has(const std::vector<int>& rates, int rate) { return std::find(rates.begin(), rates.end(), rate) != rates.end(); }

// The encoder half shared by UNetModel and EncoderUNetModel: input_blocks and middle_block.
struct EncoderHalf {
  torch::nn::ModuleList input_blocks;
  TimestepSequential middle_block{nullptr};
  std::vector<int64_t> block_channels;  // input_block_chans of the reference
  std::vector<int> rates;               // downsample rate of each input block
  std::vector<int> out_levels;          // level (log2 rate) of each input block's output
  int64_t ch = 0;                       // channels after the middle block
  int rate = 1;                         // rate of the middle block
};

struct EncoderSpec {
  int64_t in_channels, model_channels, emb_dim;
  int num_res_blocks;
  std::vector<double> mults;
  std::vector<int> attention_rates;
  double dropout;
  int64_t num_heads, num_head_channels;
  bool scale_shift, updown, new_order;
  int64_t sketch_channels;
};

EncoderHalf build_encoder(const EncoderSpec& s) {
  EncoderHalf e;
  int64_t ch = static_cast<int64_t>(s.mults[0] * s.model_channels);
  auto first = TimestepSequential();
  first->add(torch::nn::Conv2d(torch::nn::Conv2dOptions(s.in_channels, ch, 3).padding(1)));
  e.input_blocks->push_back(first);
  e.block_channels.push_back(ch);
  e.rates.push_back(1);
  e.out_levels.push_back(0);
  int ds = 1;
  for (size_t level = 0; level < s.mults.size(); ++level) {
    for (int i = 0; i < s.num_res_blocks; ++i) {
      auto block = TimestepSequential();
      const int64_t out = static_cast<int64_t>(s.mults[level] * s.model_channels);
      block->add(ResBlock(ResBlockOptions{ch, s.emb_dim, s.dropout, out, false, s.scale_shift}));
      ch = out;
      if (has(s.attention_rates, ds))
        block->add(AttentionBlock(AttentionOptions{ch, s.num_heads, s.num_head_channels, s.new_order, s.sketch_channels}));
      e.input_blocks->push_back(block);
      e.block_channels.push_back(ch);
      e.rates.push_back(ds);
      e.out_levels.push_back(static_cast<int>(level));
    }
    if (level + 1 != s.mults.size()) {
      auto block = TimestepSequential();
      if (s.updown) {
        ResBlockOptions o{ch, s.emb_dim, s.dropout, ch, false, s.scale_shift};
        o.down = true;
        block->add(ResBlock(o));
      } else {
        block->add(Downsample(ch, true, ch));
      }
      e.input_blocks->push_back(block);
      e.block_channels.push_back(ch);
      e.rates.push_back(ds);  // runs on the input's resolution, produces the next one
      e.out_levels.push_back(static_cast<int>(level) + 1);
      ds *= 2;
    }
  }
  e.middle_block = TimestepSequential();
  e.middle_block->add(ResBlock(ResBlockOptions{ch, s.emb_dim, s.dropout, ch, false, s.scale_shift}));
  e.middle_block->add(AttentionBlock(AttentionOptions{ch, s.num_heads, s.num_head_channels, s.new_order, s.sketch_channels}));
  e.middle_block->add(ResBlock(ResBlockOptions{ch, s.emb_dim, s.dropout, ch, false, s.scale_shift}));
  e.ch = ch;
  e.rate = ds;
  return e;
}

}  // namespace

UNetModelImpl::UNetModelImpl(const UNetConfig& config) : config_(config) {
  config_.validate("unet config");
  const int64_t mc = config_.num_channels;
  const int64_t emb_dim = mc * 4;
  const auto mults = config_.channel_mults();
  const auto attention_rates = config_.attention_rates();
  time_embed_ = register_module("time_embed", make_time_embed(mc));
  if (config_.class_cond) label_emb_ = register_module("label_emb", torch::nn::Embedding(config_.num_classes, emb_dim));

  EncoderSpec spec{config_.in_channels, mc, emb_dim, config_.num_res_blocks, mults, attention_rates,
                   config_.dropout, config_.num_heads, config_.num_head_channels, config_.use_scale_shift_norm,
                   config_.resblock_updown, config_.use_new_attention_order, config_.sketch_channels};
  auto enc = build_encoder(spec);
  input_blocks_ = register_module("input_blocks", enc.input_blocks);
  middle_block_ = register_module("middle_block", enc.middle_block);
  input_rates_ = enc.rates;
  middle_rate_ = enc.rate;
  if (config_.sketch_channels > 0) {
    // Editing network: sketch features added after every input block (zero-initialised 1x1 convs,
    // so an ADM initialisation starts out unchanged) and attended to in every attention block.
    sketch_encoder_ = register_module("sketch_encoder", SketchEncoder(static_cast<int>(mults.size()), config_.sketch_channels));
    sketch_inject_ = register_module("sketch_inject", torch::nn::ModuleList());
    input_out_levels_ = enc.out_levels;
    for (size_t i = 0; i < enc.block_channels.size(); ++i) {
      auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(config_.sketch_channels, enc.block_channels[i], 1));
      torch::NoGradGuard no_grad;
      conv->weight.zero_();
      conv->bias.zero_();
      sketch_inject_->push_back(conv);
      inject_convs_.push_back(conv);
    }
  }

  output_blocks_ = register_module("output_blocks", torch::nn::ModuleList());
  int64_t ch = enc.ch;
  int ds = enc.rate;
  auto chans = enc.block_channels;
  for (int level = static_cast<int>(mults.size()) - 1; level >= 0; --level) {
    for (int i = 0; i <= config_.num_res_blocks; ++i) {
      const int64_t ich = chans.back();
      chans.pop_back();
      auto block = TimestepSequential();
      const int64_t out = static_cast<int64_t>(mc * mults[level]);
      block->add(ResBlock(ResBlockOptions{ch + ich, emb_dim, config_.dropout, out, false, config_.use_scale_shift_norm}));
      ch = out;
      if (has(attention_rates, ds))
        block->add(AttentionBlock(AttentionOptions{ch, config_.heads_upsample(), config_.num_head_channels,
                                                   config_.use_new_attention_order, config_.sketch_channels}));
      output_rates_.push_back(ds);
      if (level && i == config_.num_res_blocks) {
        if (config_.resblock_updown) {
          ResBlockOptions o{ch, emb_dim, config_.dropout, ch, false, config_.use_scale_shift_norm};
          o.up = true;
          block->add(ResBlock(o));
        } else {
          block->add(Upsample(ch, true, ch));
        }
        ds /= 2;
      }
      output_blocks_->push_back(block);
    }
  }
  auto out = register_module("out", Slots());
  out_norm_ = out->put(0, GroupNorm32(ch));
  out_conv_ = out->put(2, torch::nn::Conv2d(
                              torch::nn::Conv2dOptions(static_cast<int64_t>(mults[0] * mc), config_.out_channels(), 3)
                                  .padding(1)));
}

void UNetModelImpl::convert_to_fp16() {
  convert_convs_to_half(*input_blocks_);
  convert_convs_to_half(*middle_block_);
  convert_convs_to_half(*output_blocks_);
  dtype_ = torch::kHalf;
}

void UNetModelImpl::set_cpu_inference_dtype(torch::Dtype dtype) {
  TORCH_CHECK(dtype == torch::kFloat32 || dtype == torch::kBFloat16, "CPU inference runs in fp32 or bf16");
  cpu_inference_dtype_ = dtype;
}

Tensor UNetModelImpl::forward(const Tensor& x, const Tensor& timesteps, const Tensor& y, const Tensor& sketch) {
  TORCH_CHECK(y.defined() == config_.class_cond, config_.class_cond ? "a class-conditional model needs labels y"
                                                                    : "labels y given to an unconditional model");
  Tensor h;
  {
    const bool bf16 = cpu_inference_dtype_ == torch::kBFloat16 && x.is_cpu() && !torch::GradMode::is_enabled();
    const AutocastScope autocast(bf16, at::kCPU, at::kBFloat16);
    h = blocks(x, timesteps, y, sketch);
  }
  // The output layers in the input's precision.
  h = h.to(x.scalar_type());
  return out_conv_(torch::silu(out_norm_(h)));
}

Tensor UNetModelImpl::blocks(const Tensor& x, const Tensor& timesteps, const Tensor& y, const Tensor& sketch) {
  BlockContext ctx;
  // The embedding follows the parameters' precision (fp32; fp64 in gradient checks).
  const auto param_type = time_embed_->parameters().front().scalar_type();
  ctx.emb = time_embed_->forward(timestep_embedding(timesteps, config_.num_channels).to(param_type));
  if (config_.class_cond) ctx.emb = ctx.emb + label_emb_(y);
  std::vector<Tensor> feats, tokens;
  if (sketch_encoder_) {
    auto s = sketch.defined() ? sketch : torch::full({x.size(0), 1, x.size(2), x.size(3)}, config_.sketch_null, x.options());
    feats = sketch_encoder_(s.to(x.scalar_type()));
    for (const auto& f : feats)
      tokens.push_back(f + position_embedding_2d(f.size(1), f.size(2), f.size(3), f.options()).unsqueeze(0));
    ctx.sketch_feats = &tokens;
  }
  std::vector<Tensor> hs;
  Tensor h = x.to(dtype_ == torch::kHalf ? dtype_ : param_type);
  for (size_t i = 0; i < input_blocks_->size(); ++i) {
    ctx.rate = input_rates_[i];
    h = input_blocks_->ptr<TimestepSequentialImpl>(i)->forward(h, ctx);
    if (sketch_encoder_) h = h + inject_convs_[i](feats[input_out_levels_[i]]).to(h.scalar_type());
    hs.push_back(h);
  }
  ctx.rate = middle_rate_;
  h = middle_block_->forward(h, ctx);
  for (size_t i = 0; i < output_blocks_->size(); ++i) {
    ctx.rate = output_rates_[i];
    h = torch::cat({h, hs.back()}, 1);
    hs.pop_back();
    h = output_blocks_->ptr<TimestepSequentialImpl>(i)->forward(h, ctx);
  }
  return h;
}

EncoderUNetModelImpl::EncoderUNetModelImpl(const ClassifierConfig& config) : config_(config) {
  config_.validate("classifier config");
  const int64_t mc = config_.classifier_width;
  const int64_t emb_dim = mc * 4;
  const auto mults = config_.channel_mults();
  time_embed_ = register_module("time_embed", make_time_embed(mc));
  EncoderSpec spec{config_.in_channels, mc, emb_dim, config_.classifier_depth, mults, config_.attention_rates(),
                   0.0, 1, config_.classifier_num_head_channels, config_.classifier_use_scale_shift_norm,
                   config_.classifier_resblock_updown, false, 0};
  auto enc = build_encoder(spec);
  input_blocks_ = register_module("input_blocks", enc.input_blocks);
  middle_block_ = register_module("middle_block", enc.middle_block);
  const int64_t ch = enc.ch;
  const int64_t classes = config_.num_classes;
  auto out = register_module("out", Slots());
  const std::string& pool = config_.classifier_pool;
  if (pool == "adaptive") {
    auto norm = out->put(0, GroupNorm32(ch));
    auto conv = out->put(3, torch::nn::Conv2d(torch::nn::Conv2dOptions(ch, classes, 1)));
    head_ = [norm, conv](const Tensor& h) mutable {
      auto pooled = torch::silu(norm(h)).mean({2, 3}, /*keepdim=*/true);
      return conv(pooled.to(conv->weight.scalar_type())).flatten(1);
    };
  } else if (pool == "attention") {
    auto norm = out->put(0, GroupNorm32(ch));
    auto att = out->put(2, AttentionPool2d(config_.image_size / enc.rate, ch, config_.classifier_num_head_channels, classes));
    head_ = [norm, att](const Tensor& h) mutable { return att(torch::silu(norm(h))); };
  } else {
    // spatial / spatial_v2: means of every block's output, concatenated (the reference's _feature_size).
    int64_t feature_size = 0;
    for (auto c : enc.block_channels) feature_size += c;
    feature_size += ch;
    auto first = out->put(0, torch::nn::Linear(feature_size, 2048));
    if (pool == "spatial") {
      auto last = out->put(2, torch::nn::Linear(2048, classes));
      head_ = [first, last](const Tensor& f) mutable { return last(torch::relu(first(f))); };
    } else {
      auto norm = out->put(1, GroupNorm32(2048));
      auto last = out->put(3, torch::nn::Linear(2048, classes));
      head_ = [first, norm, last](const Tensor& f) mutable { return last(torch::silu(norm(first(f)))); };
    }
  }
}

void EncoderUNetModelImpl::convert_to_fp16() {
  convert_convs_to_half(*input_blocks_);
  convert_convs_to_half(*middle_block_);
  dtype_ = torch::kHalf;
}

Tensor EncoderUNetModelImpl::forward(const Tensor& x, const Tensor& timesteps) {
  BlockContext ctx;
  ctx.emb = time_embed_->forward(timestep_embedding(timesteps, config_.classifier_width));
  const bool spatial = config_.classifier_pool.rfind("spatial", 0) == 0;
  std::vector<Tensor> means;
  Tensor h = x.to(dtype_);
  for (size_t i = 0; i < input_blocks_->size(); ++i) {
    h = input_blocks_->ptr<TimestepSequentialImpl>(i)->forward(h, ctx);
    if (spatial) means.push_back(h.to(x.scalar_type()).mean({2, 3}));
  }
  h = middle_block_->forward(h, ctx);
  if (spatial) {
    means.push_back(h.to(x.scalar_type()).mean({2, 3}));
    return head_(torch::cat(means, -1));
  }
  return head_(h.to(x.scalar_type()));
}

int64_t parameter_count(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace dsk
