#include "core/diffusion/schedule.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/base/error.h"
#include "models/adm_config.h"

namespace dsk {

const std::vector<std::string>& diffusion_flag_names() {
  static const std::vector<std::string> names = {
      "diffusion_steps", "noise_schedule", "timestep_respacing", "learn_sigma", "sigma_small",
      "predict_xstart", "predict_v", "rescale_timesteps", "use_kl", "rescale_learned_sigmas"};
  return names;
}

DiffusionConfig diffusion_config_from_json(const nlohmann::json& flags, const std::string& where) {
  DiffusionConfig c;
  if (!flags.is_object()) throw InputError(where + ": flags must be a JSON object");
  if (flags.contains("diffusion_steps")) {
    c.diffusion_steps = flag_int(flags["diffusion_steps"], "diffusion_steps", where);
  }
  if (flags.contains("noise_schedule")) {
    if (!flags["noise_schedule"].is_string()) throw InputError(where + ": noise_schedule must be \"linear\" or \"cosine\"");
    c.noise_schedule = flags["noise_schedule"].get<std::string>();
  }
  if (flags.contains("timestep_respacing")) {
    const auto& v = flags["timestep_respacing"];
    c.timestep_respacing = v.is_string() ? v.get<std::string>() : v.dump();
  }
  if (flags.contains("learn_sigma")) c.learn_sigma = flag_bool(flags["learn_sigma"], "learn_sigma", where);
  if (flags.contains("sigma_small")) c.sigma_small = flag_bool(flags["sigma_small"], "sigma_small", where);
  if (flags.contains("predict_xstart")) c.predict_xstart = flag_bool(flags["predict_xstart"], "predict_xstart", where);
  if (flags.contains("predict_v")) c.predict_v = flag_bool(flags["predict_v"], "predict_v", where);
  if (flags.contains("rescale_timesteps"))
    c.rescale_timesteps = flag_bool(flags["rescale_timesteps"], "rescale_timesteps", where);
  c.validate(where);
  return c;
}

nlohmann::json to_json(const DiffusionConfig& c) {
  return {{"diffusion_steps", c.diffusion_steps}, {"noise_schedule", c.noise_schedule},
          {"timestep_respacing", c.timestep_respacing}, {"learn_sigma", c.learn_sigma},
          {"sigma_small", c.sigma_small}, {"predict_xstart", c.predict_xstart}, {"predict_v", c.predict_v},
          {"rescale_timesteps", c.rescale_timesteps}};
}

void DiffusionConfig::validate(const std::string& where) const {
  if (diffusion_steps < 1 || diffusion_steps > 100000)
    throw InputError(where + ": diffusion_steps " + std::to_string(diffusion_steps) + " must be in 1..100000");
  if (noise_schedule != "linear" && noise_schedule != "cosine")
    throw InputError(where + ": noise_schedule '" + noise_schedule + "' is not 'linear' or 'cosine'");
  if (predict_xstart)
    throw InputError(where + ": predict_xstart models are not supported (only epsilon prediction, as every published ADM checkpoint)");
  if (!timestep_respacing.empty()) space_timesteps(diffusion_steps, timestep_respacing);
}

std::vector<double> named_beta_schedule(const std::string& name, int steps) {
  std::vector<double> betas(steps);
  if (name == "linear") {
    const double scale = 1000.0 / steps;
    const double start = scale * 0.0001, end = scale * 0.02;
    // np.linspace: start + i * step, the last value exactly `end`.
    const double step = steps > 1 ? (end - start) / (steps - 1) : 0.0;
    for (int i = 0; i < steps; ++i) betas[i] = start + i * step;
    if (steps > 1) betas[steps - 1] = end;
  } else if (name == "cosine") {
    auto alpha_bar = [](double t) {
      const double c = std::cos((t + 0.008) / 1.008 * M_PI / 2);
      return c * c;
    };
    for (int i = 0; i < steps; ++i) {
      const double t1 = static_cast<double>(i) / steps, t2 = static_cast<double>(i + 1) / steps;
      betas[i] = std::min(1 - alpha_bar(t2) / alpha_bar(t1), 0.999);
    }
  } else {
    throw InputError("unknown noise_schedule '" + name + "' (expected linear or cosine)");
  }
  return betas;
}

std::vector<int64_t> space_timesteps(int num_timesteps, const std::string& section_counts) {
  const std::string where = "respacing '" + section_counts + "'";
  std::set<int64_t> steps;
  if (section_counts.rfind("ddim", 0) == 0) {
    const auto counts = parse_int_list(section_counts.substr(4), where);
    if (counts.size() != 1 || counts[0] <= 0) throw InputError(where + ": expected ddimN with a positive N, e.g. ddim25");
    for (int stride = 1; stride < num_timesteps; ++stride) {
      if ((num_timesteps + stride - 1) / stride == counts[0]) {
        for (int t = 0; t < num_timesteps; t += stride) steps.insert(t);
        return {steps.begin(), steps.end()};
      }
    }
    throw InputError(where + ": cannot create exactly " + std::to_string(counts[0]) + " steps with an integer stride over " +
                     std::to_string(num_timesteps) + " (use a section count such as \"" + std::to_string(counts[0]) +
                     "\" instead)");
  }
  const auto counts = parse_int_list(section_counts, where);
  if (counts.empty()) throw InputError(where + ": empty respacing");
  const int sections = static_cast<int>(counts.size());
  const int size_per = num_timesteps / sections, extra = num_timesteps % sections;
  int start = 0;
  const int old_mode = std::fegetround();
  std::fesetround(FE_TONEAREST);  // Python's round(): half to even
  for (int i = 0; i < sections; ++i) {
    const int size = size_per + (i < extra ? 1 : 0);
    if (counts[i] <= 0 || size < counts[i])
      throw InputError(where + ": cannot divide a section of " + std::to_string(size) + " steps into " +
                       std::to_string(counts[i]) + " (each section count must be in 1.." + std::to_string(size) + ")");
    const double stride = counts[i] <= 1 ? 1.0 : static_cast<double>(size - 1) / (counts[i] - 1);
    double cur = 0.0;
    for (int k = 0; k < counts[i]; ++k) {
      steps.insert(start + static_cast<int64_t>(std::nearbyint(cur)));
      cur += stride;
    }
    start += size;
  }
  std::fesetround(old_mode);
  return {steps.begin(), steps.end()};
}

double Schedule::model_timestep(int i, bool rescale) const {
  const double t = static_cast<double>(timestep_map.at(i));
  return rescale ? t * (1000.0 / original_steps) : t;
}

Schedule make_schedule(const DiffusionConfig& config, const std::string& respacing) {
  const auto base_betas = named_beta_schedule(config.noise_schedule, config.diffusion_steps);
  const std::string spacing = !respacing.empty() ? respacing : config.timestep_respacing;
  std::vector<int64_t> keep;
  if (spacing.empty()) {
    for (int t = 0; t < config.diffusion_steps; ++t) keep.push_back(t);
  } else {
    keep = space_timesteps(config.diffusion_steps, spacing);
  }
  Schedule s;
  s.original_steps = config.diffusion_steps;
  // SpacedDiffusion.__init__: betas of the kept steps from consecutive alpha_bar ratios.
  double cumprod = 1.0, last = 1.0;
  size_t k = 0;
  for (int t = 0; t < config.diffusion_steps && k < keep.size(); ++t) {
    cumprod *= 1.0 - base_betas[t];
    if (keep[k] == t) {
      s.betas.push_back(1.0 - cumprod / last);
      last = cumprod;
      s.timestep_map.push_back(t);
      ++k;
    }
  }
  // GaussianDiffusion.__init__ on the new betas.
  const size_t n = s.betas.size();
  double acc = 1.0;
  for (size_t i = 0; i < n; ++i) {
    acc *= 1.0 - s.betas[i];
    s.alphas_cumprod.push_back(acc);
  }
  for (size_t i = 0; i < n; ++i) {
    const double ac = s.alphas_cumprod[i];
    const double prev = i == 0 ? 1.0 : s.alphas_cumprod[i - 1];
    s.alphas_cumprod_prev.push_back(prev);
    s.sqrt_recip_alphas_cumprod.push_back(std::sqrt(1.0 / ac));
    s.sqrt_recipm1_alphas_cumprod.push_back(std::sqrt(1.0 / ac - 1));
    s.posterior_variance.push_back(s.betas[i] * (1.0 - prev) / (1.0 - ac));
    s.posterior_mean_coef1.push_back(s.betas[i] * std::sqrt(prev) / (1.0 - ac));
    s.posterior_mean_coef2.push_back((1.0 - prev) * std::sqrt(1.0 - s.betas[i]) / (1.0 - ac));
    s.log_betas.push_back(std::log(s.betas[i]));
  }
  // log(append(posterior_variance[1], posterior_variance[1:])): the first entry is 0, clipped.
  // A one-step process has no posterior_variance[1]; its only step adds no noise, use beta.
  for (size_t i = 0; i < n; ++i)
    s.posterior_log_variance_clipped.push_back(n == 1 ? s.log_betas[0]
                                               : std::log(i == 0 ? s.posterior_variance[1] : s.posterior_variance[i]));
  return s;
}

std::string steps_to_respacing(int steps, int diffusion_steps) {
  if (steps < 1 || steps > diffusion_steps)
    throw InputError("--steps " + std::to_string(steps) + " must be in 1.." + std::to_string(diffusion_steps) +
                     " (the model was trained with " + std::to_string(diffusion_steps) + " diffusion steps)");
  return std::to_string(steps);
}

}  // namespace dsk
