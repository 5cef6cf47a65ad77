#include "core/guidance.h"

namespace dsk {

torch::Tensor classifier_log_prob_grad(EncoderUNetModel& classifier, const torch::Tensor& x, const torch::Tensor& t,
                                       const torch::Tensor& y) {
  torch::AutoGradMode enable(true);
  auto x_in = x.detach().requires_grad_(true);
  auto log_probs = torch::log_softmax(classifier(x_in, t), -1);
  auto selected = log_probs.gather(1, y.view({-1, 1}).to(torch::kInt64));
  return torch::autograd::grad({selected.sum()}, {x_in})[0];
}

CondFn classifier_cond_fn(EncoderUNetModel classifier, torch::Tensor y, double scale) {
  return [classifier, y, scale](const torch::Tensor& x, const torch::Tensor& t) mutable {
    return classifier_log_prob_grad(classifier, x, t, y) * scale;
  };
}

}  // namespace dsk
