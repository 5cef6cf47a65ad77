#include "models/sketch_encoder.h"

#include <cmath>

#include "models/blocks.h"

namespace dsk {

SketchEncoderImpl::SketchEncoderImpl(int levels, int64_t channels) {
  levels_ = register_module("levels", torch::nn::ModuleList());
  for (int l = 0; l < levels; ++l) {
    auto slots = Slots();
    const int64_t in = l == 0 ? 1 : channels;
    auto first = slots->put(0, torch::nn::Conv2d(torch::nn::Conv2dOptions(in, channels, 3).stride(l == 0 ? 1 : 2).padding(1)));
    auto second = slots->put(2, torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).padding(1)));
    levels_->push_back(slots);
    convs_.emplace_back(first, second);
  }
}

std::vector<torch::Tensor> SketchEncoderImpl::forward(const torch::Tensor& sketch) {
  std::vector<torch::Tensor> feats;
  torch::Tensor h = sketch;
  for (auto& [first, second] : convs_) {
    h = torch::silu(first->forward(h.to(first->weight.scalar_type())));
    h = torch::silu(second->forward(h)) + h;
    feats.push_back(h);
  }
  return feats;
}

torch::Tensor position_embedding_2d(int64_t channels, int64_t h, int64_t w, torch::TensorOptions options) {
  const int64_t quarter = channels / 4;
  auto pe = torch::zeros({channels, h, w}, options);
  if (quarter == 0) return pe;
  auto freqs = torch::exp(-std::log(10000.0) * torch::arange(quarter, options) / quarter);
  auto ys = torch::arange(h, options).unsqueeze(1) * freqs.unsqueeze(0);  // [h, q]
  auto xs = torch::arange(w, options).unsqueeze(1) * freqs.unsqueeze(0);  // [w, q]
  pe.narrow(0, 0, quarter).copy_(torch::sin(ys).t().unsqueeze(2).expand({quarter, h, w}));
  pe.narrow(0, quarter, quarter).copy_(torch::cos(ys).t().unsqueeze(2).expand({quarter, h, w}));
  pe.narrow(0, 2 * quarter, quarter).copy_(torch::sin(xs).t().unsqueeze(1).expand({quarter, h, w}));
  pe.narrow(0, 3 * quarter, quarter).copy_(torch::cos(xs).t().unsqueeze(1).expand({quarter, h, w}));
  return pe;
}

}  // namespace dsk
