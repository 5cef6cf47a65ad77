#include "core/diffusion/guidance.h"

namespace dsk {

using torch::Tensor;

namespace {

float at(const std::vector<double>& table, int i) { return static_cast<float>(table.at(i)); }

}  // namespace

torch::Tensor classifier_log_prob_grad(const ClassifierFn& classifier, const torch::Tensor& x, const torch::Tensor& t,
                                       const torch::Tensor& y) {
  torch::AutoGradMode enable(true);
  auto x_in = x.detach().requires_grad_(true);
  auto log_probs = torch::log_softmax(classifier(x_in, t), -1);
  auto selected = log_probs.gather(1, y.view({-1, 1}).to(torch::kInt64));
  return torch::autograd::grad({selected.sum()}, {x_in})[0];
}

CondFn classifier_cond_fn(ClassifierFn classifier, torch::Tensor y, double scale) {
  return [classifier = std::move(classifier), y, scale](const torch::Tensor& x, const torch::Tensor& t) {
    return classifier_log_prob_grad(classifier, x, t, y) * scale;
  };
}

Predictor with_score_guidance(const Schedule& s, const DiffusionConfig& config, Predictor inner, CondFn cond,
                              bool from_model_eps) {
  return [&s, config, inner = std::move(inner), cond = std::move(cond), from_model_eps](const Tensor& x, int i) {
    Prediction p = inner(x, i);
    // Eq. 4 of the paper / condition_score: eps_hat = eps - sqrt(1 - abar_t) * grad log p(y | x_t).
    const float sqrt_one_minus_ab = std::sqrt(1.0f - at(s.alphas_cumprod, i));
    const bool raw = from_model_eps && p.eps.defined();
    auto eps = raw ? p.eps : predict_eps_from_xstart(s, x, i, p.pred_xstart);
    eps = eps - sqrt_one_minus_ab * cond(x, model_timesteps(s, config, i, x.size(0), x.device()));
    p.eps = eps;
    p.pred_xstart = predict_xstart_from_eps(s, x, i, eps);
    if (raw && p.clipped) p.pred_xstart = p.pred_xstart.clamp(-1, 1);
    p.mean = q_posterior_mean(s, p.pred_xstart, x, i);
    return p;
  };
}

Predictor with_mean_guidance(const Schedule& s, const DiffusionConfig& config, Predictor inner, CondFn cond) {
  return [&s, config, inner = std::move(inner), cond = std::move(cond)](const Tensor& x, int i) {
    Prediction p = inner(x, i);
    p.mean = p.mean.to(torch::kFloat32) +
             p.variance * cond(x, model_timesteps(s, config, i, x.size(0), x.device())).to(torch::kFloat32);
    return p;
  };
}

Predictor with_classifier_guidance(const Schedule& s, const DiffusionConfig& config, Predictor inner, SamplerKind sampler,
                                   CondFn cond) {
  if (sampler == SamplerKind::Ddpm) return with_mean_guidance(s, config, std::move(inner), std::move(cond));
  return with_score_guidance(s, config, std::move(inner), std::move(cond),
                             /*from_model_eps=*/is_multistep(sampler));
}

AfterStep known_region_blend(const Schedule& s, Tensor image, Tensor mask, NoiseFn noise) {
  return [&s, image = std::move(image), mask = std::move(mask), noise = std::move(noise)](const Tensor& x, int i) {
    return mask * x + (1 - mask) * q_sample(s, image, i - 1, noise(image));
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
    p.eps = eps;
    p.pred_xstart = predict_xstart_from_eps(s, x, i, eps).clamp(-1, 1);
    p.mean = q_posterior_mean(s, p.pred_xstart, x, i);
    return p;
  };
}

}  // namespace dsk
