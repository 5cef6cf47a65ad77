// Noise schedules and respacing (guided_diffusion/gaussian_diffusion.py, respace.py). Plain data in
// float64 like the reference's numpy arrays; samplers read single values and cast them to float32.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace dsk {

// The diffusion flags of script_util.diffusion_defaults() that change sampling.
struct DiffusionConfig {
  int diffusion_steps = 1000;
  std::string noise_schedule = "linear";  // linear | cosine
  std::string timestep_respacing;         // "" = every step; "250", "10,15,20", "ddim25"
  bool learn_sigma = false;
  bool sigma_small = false;
  bool predict_xstart = false;
  // The network predicts v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho 2022) instead of eps.
  // Samplers and guidance still see eps; only the network's output and the training target change.
  bool predict_v = false;
  bool rescale_timesteps = false;

  void validate(const std::string& where) const;
};

// Flag names of DiffusionConfig, for the parsers of flat flag objects.
const std::vector<std::string>& diffusion_flag_names();
DiffusionConfig diffusion_config_from_json(const nlohmann::json& flags, const std::string& where);
nlohmann::json to_json(const DiffusionConfig& c);

// get_named_beta_schedule: "linear" (scaled to the step count) or "cosine" (Nichol & Dhariwal).
std::vector<double> named_beta_schedule(const std::string& name, int steps);

// space_timesteps: the kept original timesteps, ascending. Section counts ("10,15,20") or "ddimN".
// Throws dsk::InputError for a string the reference would reject, with the reason.
std::vector<int64_t> space_timesteps(int num_timesteps, const std::string& section_counts);

// A (possibly respaced) diffusion process: the reference's GaussianDiffusion arrays, plus the map
// from each spaced index to the original timestep the model and classifier are called with.
struct Schedule {
  int original_steps = 0;
  std::vector<int64_t> timestep_map;
  std::vector<double> betas, alphas_cumprod, alphas_cumprod_prev, sqrt_recip_alphas_cumprod,
      sqrt_recipm1_alphas_cumprod, posterior_variance, posterior_log_variance_clipped, posterior_mean_coef1,
      posterior_mean_coef2, log_betas;

  int size() const { return static_cast<int>(betas.size()); }
  // The model's timestep for spaced index i (rescaled to 0..1000 when rescale_timesteps).
  double model_timestep(int i, bool rescale) const;
};

// SpacedDiffusion: base betas from the config, then recomputed from the kept alpha_bar values.
// `respacing` overrides config.timestep_respacing when not empty.
Schedule make_schedule(const DiffusionConfig& config, const std::string& respacing = "");

// The respacing string a `--steps N` flag means: even section spacing "N", checked against T.
std::string steps_to_respacing(int steps, int diffusion_steps);

}  // namespace dsk
