// Samplers (guided_diffusion/gaussian_diffusion.py). The sampler never sees a network: it calls a
// Predictor, which wraps the model (and any guidance); a step is a pure function of the schedule,
// x_t, the prediction, the index and the noise.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/base/cancel.h"
#include "core/diffusion/schedule.h"

namespace dsk {

// The model's raw output for x_t at original-scale timesteps t: [B, C or 2C, H, W].
using ModelFn = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)>;

// p_mean_variance's result for one step.
struct Prediction {
  torch::Tensor mean, variance, log_variance, pred_xstart;
  // The network's noise prediction before any clipping of x0 (for v models, the eps its v implies),
  // and whether pred_xstart was clipped: what a solver's guidance starts from (guidance.h).
  torch::Tensor eps;
  bool clipped = false;
};

// Maps x_t at spaced index i to a Prediction.
using Predictor = std::function<Prediction(const torch::Tensor& x, int index)>;

// p_mean_variance: epsilon prediction, learned-range or fixed variance, optional clipping of x0.
Predictor make_predictor(const Schedule& schedule, const DiffusionConfig& config, ModelFn model,
                         bool clip_denoised = true);

// Timesteps tensor [B] the model sees at spaced index i (original scale).
torch::Tensor model_timesteps(const Schedule& schedule, const DiffusionConfig& config, int index, int64_t batch,
                              torch::Device device);

torch::Tensor predict_eps_from_xstart(const Schedule& s, const torch::Tensor& x, int i, const torch::Tensor& x0);
torch::Tensor predict_xstart_from_eps(const Schedule& s, const torch::Tensor& x, int i, const torch::Tensor& eps);
torch::Tensor q_posterior_mean(const Schedule& s, const torch::Tensor& x0, const torch::Tensor& x, int i);
// q_sample: x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) noise, at spaced index i (i = -1: x0).
torch::Tensor q_sample(const Schedule& s, const torch::Tensor& x0, int i, const torch::Tensor& noise);

// The forward process batched for training: each sample at its own index t[b] (Ho et al. 2020,
// eq. 4), and the v target (Salimans & Ho 2022): the same coefficients, kept as fp32 tensors.
class ForwardProcess {
 public:
  explicit ForwardProcess(const Schedule& s);
  // x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; t: [B] int64 indices on the CPU.
  torch::Tensor q_sample(const torch::Tensor& x0, const torch::Tensor& t, const torch::Tensor& noise) const;
  // v = sqrt(abar_t) noise - sqrt(1 - abar_t) x0.
  torch::Tensor v_target(const torch::Tensor& x0, const torch::Tensor& t, const torch::Tensor& noise) const;
  int size() const { return static_cast<int>(sqrt_ab_.size(0)); }

 private:
  torch::Tensor coef(const torch::Tensor& table, const torch::Tensor& t, const torch::Tensor& like) const;
  torch::Tensor sqrt_ab_, sqrt_1mab_;
};

// ddim_sample (Song et al. Eq. 12; the reference's form, not the paper's Algorithm 1 typo):
// x_{t-1} = sqrt(abar_{t-1}) x0 + sqrt(1 - abar_{t-1} - sigma^2) eps + sigma z.
torch::Tensor ddim_step(const Schedule& s, const torch::Tensor& x, int i, const Prediction& p, double eta,
                        const torch::Tensor& noise);
// p_sample: mean + exp(0.5 log_variance) z, no noise at the last step.
torch::Tensor ddpm_step(const Prediction& p, int i, const torch::Tensor& noise);

// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2): the probability-flow ODE solved
// in log-SNR time lambda = log(alpha / sigma) with the data prediction x0, second order from the
// previous step's x0 (multistep: one network evaluation per step, as DDIM). With h the step in
// lambda and r = h_prev / h:
//   D = (1 + 1/(2r)) x0 - 1/(2r) x0_prev   (x0 alone at the first step: DDIM with eta 0)
//   x_t = (sigma_t / sigma_s) x_s - alpha_t expm1(-h) D
// The last step (into the clean image) is x0 itself, as DDIM's; the update before it is first
// order when the run has fewer than 10 updates (the reference's lower_order_final).
struct MultistepHistory {
  torch::Tensor x0;  // the previous step's data prediction; undefined: none (first order)
  double h = 0;      // its step in lambda
  // UniPC: the update just taken, to be corrected once the network has seen where it ended.
  struct Correction {
    torch::Tensor x_linear;  // (sigma_t / sigma_s) x_s - alpha_t expm1(-h) x0_s
    torch::Tensor x0_s, d1;  // the update's data prediction; its second-order difference (or undefined)
    double coef = 0;         // alpha_t B(h)
    double rho_d1 = 0, rho_t = 0;
  };
  std::optional<Correction> correction;
};
torch::Tensor dpmpp_2m_step(const Schedule& s, const torch::Tensor& x, int i, const Prediction& p,
                            MultistepHistory& history, bool lower_order_final);

// UniPC (Zhao et al. 2023, "UniPC", data prediction, order 2, multistep): each update is
// DPM-Solver++(2M)'s predictor with B(h) in place of expm1 in the second-order term (UniP-2), and
// once the network has been evaluated at the update's end, x there is corrected with that
// evaluation (UniC: x_t = x_linear - alpha_t B(h) (rho_d1 D1 + rho_t (x0_t - x0_s)), rho from the
// order conditions), with no extra evaluation: the next update starts from the corrected x but keeps
// the evaluation at the predicted one. B(h) = expm1(-h) ("bh2") or -h ("bh1"). As the reference
// (wl-zhao/UniPC, multistep, lower_order_final): the first update is first order (corrected with
// rho 1/2), the last one first order and not corrected, then x0 at the final step.
enum class UniPcVariant { Bh1, Bh2 };
// The correction of the update that ended where x is, given the prediction there; x itself when
// there is none to make (the last update's end, or no UniPC update before).
torch::Tensor unipc_correct(const torch::Tensor& x, const Prediction& p, MultistepHistory& history);
// The update from index i (x already corrected), recording its correction in the history.
torch::Tensor unipc_step(const Schedule& s, const torch::Tensor& x, int i, const Prediction& p,
                         MultistepHistory& history, UniPcVariant variant);

enum class SamplerKind { Ddim, Ddpm, DpmPP2M, UniPcBh2, UniPcBh1 };
// The deterministic solvers that work on the data prediction with a history (classifier guidance
// shifts their model eps; guidance.h).
inline bool is_multistep(SamplerKind k) {
  return k == SamplerKind::DpmPP2M || k == SamplerKind::UniPcBh2 || k == SamplerKind::UniPcBh1;
}
SamplerKind sampler_from_name(const std::string& name);

// Draws the noise of one step, shaped like x.
using NoiseFn = std::function<torch::Tensor(const torch::Tensor& like)>;
// A seeded standard-normal source (CPU generator, so results do not depend on the device).
NoiseFn seeded_noise(uint64_t seed);

// Replaces x_{t-1} after the step from spaced index `index`.
using AfterStep = std::function<torch::Tensor(const torch::Tensor& x, int index)>;

struct LoopOptions {
  SamplerKind sampler = SamplerKind::Ddim;
  double eta = 0.0;  // DDIM only
  NoiseFn noise;
  // Called after every step: (steps done, total, x_{t-1}, predicted x0).
  std::function<void(int, int, const torch::Tensor&, const torch::Tensor&)> on_step;
  // Replaces x_{t-1} after each step (known-region blending: guidance.h); gets the index just taken.
  AfterStep after_step;
  const CancelToken* cancel = nullptr;
  std::vector<torch::Tensor>* trajectory = nullptr;  // each step's sample, first step first
  int first_index = -1;  // start at this spaced index (SDEdit-style partial runs); -1 = the last
};

// The reverse process from x_T over every spaced index, highest first.
torch::Tensor sample_loop(const Schedule& schedule, const Predictor& predict, torch::Tensor x_T, const LoopOptions& opts);

// RePaint's time travel (Lugmayr et al. 2022): every `length` steps, go back `length` steps by
// re-noising (x_{k+1} = sqrt(abar_{k+1}/abar_k) x_k + sqrt(1 - abar_{k+1}/abar_k) z) and denoise
// again, `jumps` extra times; opts.after_step blends the known region after every denoising step.
// jumps = 0 is sample_loop. Model calls: about n * (1 + jumps).
torch::Tensor repaint_loop(const Schedule& schedule, const Predictor& predict, torch::Tensor x_T,
                           const LoopOptions& opts, int jumps, int length);

}  // namespace dsk
