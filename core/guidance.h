// Guidance gradients that wrap a sampler's Predictor (see sampler.h).
#pragma once

#include "core/sampler.h"
#include "models/unet.h"

namespace dsk {

// d/dx sum_b log_softmax(classifier(x, t))[b, y_b], times `scale` (classifier_sample.py's cond_fn).
// Runs with autograd on even inside a no-grad sampling loop; the classifier's weights get no grad.
torch::Tensor classifier_log_prob_grad(EncoderUNetModel& classifier, const torch::Tensor& x, const torch::Tensor& t,
                                       const torch::Tensor& y);
CondFn classifier_cond_fn(EncoderUNetModel classifier, torch::Tensor y, double scale);

}  // namespace dsk
