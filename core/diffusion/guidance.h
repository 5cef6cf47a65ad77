// Guidance gradients that wrap a sampler's Predictor (see sampler.h).
#pragma once

#include "core/diffusion/sampler.h"
#include "models/unet.h"

namespace dsk {

// d/dx sum_b log_softmax(classifier(x, t))[b, y_b], times `scale` (classifier_sample.py's cond_fn).
// Runs with autograd on even inside a no-grad sampling loop; the classifier's weights get no grad.
torch::Tensor classifier_log_prob_grad(EncoderUNetModel& classifier, const torch::Tensor& x, const torch::Tensor& t,
                                       const torch::Tensor& y);
CondFn classifier_cond_fn(EncoderUNetModel classifier, torch::Tensor y, double scale);

// Training-free sketch guidance: g = grad_{x_t} loss(pred_x0(x_t)); DDIM: eps <- eps + scale *
// sqrt(1 - alpha_bar_t) * g (x0 and the mean recomputed); DDPM: mean <- mean - scale * variance * g.
// exact: the gradient passes through the model (its forward runs with a graph, ~3x a step's cost);
// otherwise eps is held constant, so g = loss'(x0) / sqrt(alpha_bar_t) (cheap). `loss` maps x0
// [B,3,H,W] to a scalar that sums the batch's losses.
using X0Loss = std::function<torch::Tensor(const torch::Tensor& x0)>;
Predictor with_sketch_guidance(const Schedule& schedule, Predictor inner, X0Loss loss, double scale, bool exact,
                               SamplerKind sampler);

}  // namespace dsk
