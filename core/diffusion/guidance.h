// Guidance: wrappers over a sampler's Predictor (sampler.h) that steer each step (classifier
// guidance, training-free sketch guidance), and known-region blending, which steers the samples
// between steps (LoopOptions::after_step). The sampler never sees what steers it.
#pragma once

#include "core/diffusion/sampler.h"

namespace dsk {

// A guidance gradient d/dx of log p(y | x_t), already multiplied by its scale.
using CondFn = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)>;

// condition_score: eps <- eps - sqrt(1 - alpha_bar_t) * grad; x0 and mean recomputed.
// from_model_eps false (DDIM, as guided-diffusion): eps is recomputed from the (clipped) x0 and the
// guided x0 is not clipped again. true (DPM-Solver++, as its reference implementation's
// model_wrapper): the guidance shifts the network's own eps and the guided x0 is clipped if the
// predictor clips, so the solver's history holds the corrected data prediction.
Predictor with_score_guidance(const Schedule& schedule, const DiffusionConfig& config, Predictor inner, CondFn cond,
                              bool from_model_eps = false);
// condition_mean (for DDPM): mean <- mean + variance * grad.
Predictor with_mean_guidance(const Schedule& schedule, const DiffusionConfig& config, Predictor inner, CondFn cond);

// ---- classifier guidance (Dhariwal & Nichol 2021; the paper's Eq. 4)

// A noisy-image classifier: logits [B, classes] for x_t at original-scale timesteps t.
using ClassifierFn = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)>;

// d/dx sum_b log_softmax(classifier(x, t))[b, y_b] (classifier_sample.py's cond_fn without its
// scale). Runs with autograd on even inside a no-grad sampling loop.
torch::Tensor classifier_log_prob_grad(const ClassifierFn& classifier, const torch::Tensor& x, const torch::Tensor& t,
                                       const torch::Tensor& y);
// The gradient above toward labels y [B], times `scale`.
CondFn classifier_cond_fn(ClassifierFn classifier, torch::Tensor y, double scale);
// `cond` applied as each sampler needs it: condition_mean for DDPM, condition_score for DDIM and
// (from the model's eps) for DPM-Solver++.
Predictor with_classifier_guidance(const Schedule& schedule, const DiffusionConfig& config, Predictor inner,
                                   SamplerKind sampler, CondFn cond);

// ---- training-free sketch guidance

// g = grad_{x_t} loss(pred_x0(x_t)); DDIM: eps <- eps + scale * sqrt(1 - alpha_bar_t) * g (x0 and
// the mean recomputed); DDPM: mean <- mean - scale * variance * g.
// exact: the gradient passes through the model (its forward runs with a graph, ~3x a step's cost);
// otherwise eps is held constant, so g = loss'(x0) / sqrt(alpha_bar_t) (cheap). `loss` maps x0
// [B,3,H,W] to a scalar that sums the batch's losses.
using X0Loss = std::function<torch::Tensor(const torch::Tensor& x0)>;
Predictor with_sketch_guidance(const Schedule& schedule, Predictor inner, X0Loss loss, double scale, bool exact,
                               SamplerKind sampler);

// ---- known-region blending (inpainting with any model; RePaint's step, Lugmayr et al. 2022)

// After the step from index i, the known pixels (mask 0) are the known image noised to that step's
// output level (q_sample at i - 1, the clean image after the last step) with `noise`; the pixels
// to generate (mask 1) are the sample's. image [B,3,H,W] in [-1,1], mask [B,1,H,W] in {0,1}.
// repaint_loop (sampler.h) calls it after every denoising step, time travel included.
AfterStep known_region_blend(const Schedule& schedule, torch::Tensor image, torch::Tensor mask, NoiseFn noise);

}  // namespace dsk
