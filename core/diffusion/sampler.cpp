#include "core/diffusion/sampler.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <map>

#include "core/base/error.h"

namespace dsk {

using torch::Tensor;

namespace {
// _extract_into_tensor: a float64 table entry used as float32.
float at(const std::vector<double>& table, int i) { return static_cast<float>(table.at(i)); }
}  // namespace

Tensor model_timesteps(const Schedule& s, const DiffusionConfig& config, int index, int64_t batch,
                       torch::Device device) {
  if (config.rescale_timesteps)
    return torch::full({batch}, s.model_timestep(index, true), torch::TensorOptions().dtype(torch::kFloat32).device(device));
  return torch::full({batch}, s.timestep_map.at(index), torch::TensorOptions().dtype(torch::kInt64).device(device));
}

Tensor predict_xstart_from_eps(const Schedule& s, const Tensor& x, int i, const Tensor& eps) {
  return at(s.sqrt_recip_alphas_cumprod, i) * x - at(s.sqrt_recipm1_alphas_cumprod, i) * eps;
}

Tensor predict_eps_from_xstart(const Schedule& s, const Tensor& x, int i, const Tensor& x0) {
  return (at(s.sqrt_recip_alphas_cumprod, i) * x - x0) / at(s.sqrt_recipm1_alphas_cumprod, i);
}

Tensor q_posterior_mean(const Schedule& s, const Tensor& x0, const Tensor& x, int i) {
  return at(s.posterior_mean_coef1, i) * x0 + at(s.posterior_mean_coef2, i) * x;
}

Tensor q_sample(const Schedule& s, const Tensor& x0, int i, const Tensor& noise) {
  if (i < 0) return x0;
  const double ab = s.alphas_cumprod.at(i);
  return static_cast<float>(std::sqrt(ab)) * x0 + static_cast<float>(std::sqrt(1.0 - ab)) * noise;
}

ForwardProcess::ForwardProcess(const Schedule& s) {
  const auto ab = torch::tensor(std::vector<double>(s.alphas_cumprod.begin(), s.alphas_cumprod.end()));
  sqrt_ab_ = ab.sqrt().to(torch::kFloat32);
  sqrt_1mab_ = (1 - ab).sqrt().to(torch::kFloat32);
}

Tensor ForwardProcess::coef(const Tensor& table, const Tensor& t, const Tensor& like) const {
  return table.index({t}).view({-1, 1, 1, 1}).to(like.device());
}

Tensor ForwardProcess::q_sample(const Tensor& x0, const Tensor& t, const Tensor& noise) const {
  return coef(sqrt_ab_, t, x0) * x0 + coef(sqrt_1mab_, t, x0) * noise;
}

Tensor ForwardProcess::v_target(const Tensor& x0, const Tensor& t, const Tensor& noise) const {
  return coef(sqrt_ab_, t, x0) * noise - coef(sqrt_1mab_, t, x0) * x0;
}

Predictor make_predictor(const Schedule& s, const DiffusionConfig& config, ModelFn model, bool clip_denoised) {
  return [&s, config, model = std::move(model), clip_denoised](const Tensor& x, int i) {
    const int64_t channels = x.size(1);
    Tensor out = model(x, model_timesteps(s, config, i, x.size(0), x.device())).to(x.scalar_type());
    Prediction p;
    Tensor pred = out;  // eps, or v for predict_v models
    if (config.learn_sigma) {
      TORCH_CHECK(out.size(1) == 2 * channels, "a learn_sigma model must output ", 2 * channels, " channels, got ",
                  out.size(1));
      auto parts = out.split(channels, 1);
      pred = parts[0];
      // LEARNED_RANGE: interpolate log variance between the posterior's and beta's.
      const float min_log = at(s.posterior_log_variance_clipped, i), max_log = at(s.log_betas, i);
      auto frac = (parts[1] + 1) / 2;
      p.log_variance = frac * max_log + (1 - frac) * min_log;
      p.variance = torch::exp(p.log_variance);
    } else {
      TORCH_CHECK(out.size(1) == channels, "the model must output ", channels, " channels, got ", out.size(1));
      double var, log_var;
      if (config.sigma_small) {  // FIXED_SMALL
        var = s.posterior_variance.at(i);
        log_var = s.posterior_log_variance_clipped.at(i);
      } else {  // FIXED_LARGE: append(posterior_variance[1], betas[1:])
        var = i == 0 && s.size() > 1 ? s.posterior_variance[1] : s.betas.at(i);
        log_var = std::log(var);
      }
      p.variance = torch::full_like(x, static_cast<float>(var));
      p.log_variance = torch::full_like(x, static_cast<float>(log_var));
    }
    if (config.predict_v) {  // x0 = sqrt(abar) x - sqrt(1 - abar) v, directly (no 1/sqrt(abar) blow-up)
      const float a = static_cast<float>(std::sqrt(s.alphas_cumprod.at(i)));
      const float sg = static_cast<float>(std::sqrt(1.0 - s.alphas_cumprod.at(i)));
      p.pred_xstart = a * x - sg * pred;
      p.eps = a * pred + sg * x;
    } else {
      p.pred_xstart = predict_xstart_from_eps(s, x, i, pred);
      p.eps = pred;
    }
    if (clip_denoised) p.pred_xstart = p.pred_xstart.clamp(-1, 1);
    p.clipped = clip_denoised;
    p.mean = q_posterior_mean(s, p.pred_xstart, x, i);
    return p;
  };
}

Tensor ddim_step(const Schedule& s, const Tensor& x, int i, const Prediction& p, double eta, const Tensor& noise) {
  auto eps = predict_eps_from_xstart(s, x, i, p.pred_xstart);
  const float ab = at(s.alphas_cumprod, i), ab_prev = at(s.alphas_cumprod_prev, i);
  const float sigma = static_cast<float>(eta) * std::sqrt((1 - ab_prev) / (1 - ab)) * std::sqrt(1 - ab / ab_prev);
  auto mean = p.pred_xstart * std::sqrt(ab_prev) + std::sqrt(std::max(0.0f, 1 - ab_prev - sigma * sigma)) * eps;
  return i == 0 || sigma == 0 ? mean : mean + sigma * noise;
}

Tensor ddpm_step(const Prediction& p, int i, const Tensor& noise) {
  return i == 0 ? p.mean : p.mean + torch::exp(0.5 * p.log_variance) * noise;
}

Tensor dpmpp_2m_step(const Schedule& s, const Tensor& x, int i, const Prediction& p, MultistepHistory& history,
                     bool lower_order_final) {
  if (i == 0) return p.pred_xstart;
  const double ab_s = s.alphas_cumprod.at(i), ab_t = s.alphas_cumprod.at(i - 1);
  const double sigma_s = std::sqrt(1 - ab_s), sigma_t = std::sqrt(1 - ab_t), alpha_t = std::sqrt(ab_t);
  const double h = 0.5 * (std::log(ab_t / (1 - ab_t)) - std::log(ab_s / (1 - ab_s)));
  Tensor d = p.pred_xstart;
  if (history.x0.defined() && !(lower_order_final && i == 1)) {
    const double r = history.h / h;
    d = (1 + 0.5 / r) * p.pred_xstart - (0.5 / r) * history.x0;
  }
  history = {p.pred_xstart, h};
  return static_cast<float>(sigma_t / sigma_s) * x - static_cast<float>(alpha_t * std::expm1(-h)) * d;
}

namespace {
double log_snr(const Schedule& s, int i) {  // lambda = log(alpha / sigma) at spaced index i
  const double ab = s.alphas_cumprod.at(i);
  return 0.5 * (std::log(ab) - std::log1p(-ab));
}
}  // namespace

Tensor unipc_correct(const Tensor& x, const Prediction& p, MultistepHistory& history) {
  if (!history.correction) return x;
  const auto c = std::move(*history.correction);
  history.correction.reset();
  Tensor res = static_cast<float>(c.rho_t) * (p.pred_xstart - c.x0_s);
  if (c.d1.defined()) res = res + static_cast<float>(c.rho_d1) * c.d1;
  return c.x_linear - static_cast<float>(c.coef) * res;
}

Tensor unipc_step(const Schedule& s, const Tensor& x, int i, const Prediction& p, MultistepHistory& history,
                  UniPcVariant variant) {
  history.correction.reset();
  if (i == 0) return p.pred_xstart;
  const double ab_t = s.alphas_cumprod.at(i - 1);
  const double sigma_s = std::sqrt(1 - s.alphas_cumprod.at(i)), sigma_t = std::sqrt(1 - ab_t), alpha_t = std::sqrt(ab_t);
  const double lambda_s = log_snr(s, i);
  const double h = log_snr(s, i - 1) - lambda_s;
  const double hh = -h;  // data prediction
  const double h_phi_1 = std::expm1(hh);
  const double b_h = variant == UniPcVariant::Bh1 ? hh : std::expm1(hh);
  const Tensor& x0 = p.pred_xstart;
  Tensor x_linear = static_cast<float>(sigma_t / sigma_s) * x - static_cast<float>(alpha_t * h_phi_1) * x0;
  // Second order except for the first update (no history) and the last (lower_order_final).
  const bool second = history.x0.defined() && i != 1;
  Tensor d1;
  double r1 = 0;
  if (second) {
    r1 = -history.h / h;  // (lambda_prev - lambda_s) / h: the previous step in lambda, backwards
    d1 = (history.x0 - x0) / static_cast<float>(r1);
  }
  Tensor x_t = second ? x_linear - static_cast<float>(alpha_t * b_h * 0.5) * d1 : x_linear;
  history.x0 = x0;
  history.h = h;
  if (i - 1 > 0) {  // the update's end is not the last step: corrected there (UniC)
    MultistepHistory::Correction c;
    c.x_linear = std::move(x_linear);
    c.x0_s = x0;
    c.coef = alpha_t * b_h;
    if (second) {
      // Order conditions R rho = b, R = [[1, 1], [r1, 1]], b_k = k! h_phi_{k+1}(hh) / B(h).
      const double phi_k1 = h_phi_1 / hh - 1, phi_k2 = phi_k1 / hh - 0.5;
      const double b1 = phi_k1 / b_h, b2 = 2 * phi_k2 / b_h;
      c.rho_d1 = (b1 - b2) / (1 - r1);
      c.rho_t = b1 - c.rho_d1;
      c.d1 = d1;
    } else {
      c.rho_t = 0.5;
    }
    history.correction = std::move(c);
  }
  return x_t;
}

SamplerKind sampler_from_name(const std::string& name) {
  if (name == "ddim") return SamplerKind::Ddim;
  if (name == "ddpm") return SamplerKind::Ddpm;
  if (name == "dpm++2m") return SamplerKind::DpmPP2M;
  if (name == "unipc") return SamplerKind::UniPcBh2;
  if (name == "unipc-bh1") return SamplerKind::UniPcBh1;
  throw InputError("unknown sampler '" + name + "' (expected ddim, ddpm, dpm++2m, unipc or unipc-bh1)");
}

namespace {

// One step of the loop's sampler from spaced index i.
Tensor step(const Schedule& s, const Tensor& x, int i, const Prediction& p, const LoopOptions& opts,
            MultistepHistory& history, bool lower_order_final) {
  switch (opts.sampler) {
    case SamplerKind::Ddim: return ddim_step(s, x, i, p, opts.eta, opts.noise(x));
    case SamplerKind::Ddpm: return ddpm_step(p, i, opts.noise(x));
    case SamplerKind::DpmPP2M: return dpmpp_2m_step(s, x, i, p, history, lower_order_final);
    case SamplerKind::UniPcBh2: return unipc_step(s, x, i, p, history, UniPcVariant::Bh2);
    case SamplerKind::UniPcBh1: return unipc_step(s, x, i, p, history, UniPcVariant::Bh1);
  }
  throw Error("unknown sampler kind");
}

}  // namespace

NoiseFn seeded_noise(uint64_t seed) {
  auto gen = std::make_shared<at::Generator>(at::detail::createCPUGenerator(seed));
  return [gen](const Tensor& like) {
    auto z = torch::randn(like.sizes(), *gen, torch::TensorOptions().dtype(torch::kFloat32));
    return z.to(like.device(), like.scalar_type());
  };
}

Tensor sample_loop(const Schedule& s, const Predictor& predict, Tensor x, const LoopOptions& opts) {
  const int first = opts.first_index < 0 ? s.size() - 1 : std::min(opts.first_index, s.size() - 1);
  const int n = first + 1;
  MultistepHistory history;
  for (int i = first; i >= 0; --i) {
    if (opts.cancel && opts.cancel->cancelled()) throw Cancelled();
    Prediction p = predict(x, i);
    if (history.correction) {  // UniPC: the update that ended here, corrected (trajectory too)
      x = unipc_correct(x, p, history);
      if (opts.trajectory && !opts.trajectory->empty()) opts.trajectory->back() = x;
    }
    x = step(s, x, i, p, opts, history, n - 1 < 10);
    if (opts.after_step) x = opts.after_step(x, i);
    if (opts.trajectory) opts.trajectory->push_back(x);
    if (opts.on_step) opts.on_step(n - i, n, x, p.pred_xstart);
  }
  return x;
}

Tensor repaint_loop(const Schedule& s, const Predictor& predict, Tensor x, const LoopOptions& opts, int jumps,
                    int length) {
  if (jumps <= 0) return sample_loop(s, predict, x, opts);
  if (length < 1) throw InputError("--repaint-length must be at least 1");
  const int n = s.size();
  // The level of x: n-1 for x_T, -1 for the clean image. RePaint's schedule of levels.
  std::map<int, int> remaining;
  for (int k = length - 1; k < n - 1; k += length) remaining[k] = jumps;
  std::vector<int> levels = {n - 1};
  int level = n - 1;
  while (level >= 0) {
    levels.push_back(--level);
    if (level >= 0 && remaining.count(level) && remaining[level] > 0) {
      --remaining[level];
      for (int j = 0; j < length && level < n - 1; ++j) levels.push_back(++level);
    }
  }
  const int total = static_cast<int>(levels.size()) - 1;
  MultistepHistory history;
  for (int m = 1; m <= total; ++m) {
    if (opts.cancel && opts.cancel->cancelled()) throw Cancelled();
    const int from = levels[m - 1], to = levels[m];
    Tensor x0;
    if (to < from) {  // denoise one step at index `from`
      Prediction p = predict(x, from);
      x = unipc_correct(x, p, history);  // UniPC's correction of the update that ended here
      x = step(s, x, from, p, opts, history, n - 1 < 10);
      if (opts.after_step) x = opts.after_step(x, from);
      x0 = p.pred_xstart;
    } else {  // re-noise from level `from` to `to` = from + 1
      const double ratio = s.alphas_cumprod[to] / (from < 0 ? 1.0 : s.alphas_cumprod[from]);
      x = static_cast<float>(std::sqrt(ratio)) * x + static_cast<float>(std::sqrt(1 - ratio)) * opts.noise(x);
      x0 = x;
      history = {};  // the re-noised x does not continue the solver's path
    }
    if (opts.on_step) opts.on_step(m, total, x, x0);
  }
  return x;
}

}  // namespace dsk
