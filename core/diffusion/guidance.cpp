#include "core/diffusion/guidance.h"

namespace dsk {

using torch::Tensor;

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

Predictor with_sketch_guidance(const Schedule& s, Predictor inner, X0Loss loss, double scale, bool exact,
                               SamplerKind sampler) {
  return [&s, inner = std::move(inner), loss = std::move(loss), scale, exact, sampler](const Tensor& x, int i) {
    Prediction p;
    Tensor grad;
    {
      torch::AutoGradMode enable(true);
      auto xr = x.detach().requires_grad_(true);
      Tensor x0;
      if (exact) {
        p = inner(xr, i);
        x0 = p.pred_xstart;
      } else {
        {
          torch::NoGradGuard no_grad;
          p = inner(x, i);
        }
        const auto eps = predict_eps_from_xstart(s, x, i, p.pred_xstart).detach();
        x0 = predict_xstart_from_eps(s, xr, i, eps).clamp(-1, 1);
      }
      grad = torch::autograd::grad({loss(x0.to(torch::kFloat32))}, {xr})[0].detach();
    }
    p.mean = p.mean.detach();
    p.pred_xstart = p.pred_xstart.detach();
    p.variance = p.variance.detach();
    p.log_variance = p.log_variance.detach();
    if (sampler == SamplerKind::Ddpm) {
      p.mean = p.mean - scale * p.variance * grad;
      return p;
    }
    const double ab = s.alphas_cumprod.at(i);
    auto eps = predict_eps_from_xstart(s, x, i, p.pred_xstart);
    eps = eps + scale * std::sqrt(1.0 - ab) * grad;
    p.pred_xstart = predict_xstart_from_eps(s, x, i, eps).clamp(-1, 1);
    p.mean = q_posterior_mean(s, p.pred_xstart, x, i);
    return p;
  };
}

}  // namespace dsk
