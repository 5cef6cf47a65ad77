#include "core/tools/conformance.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/limits.h"
#include "core/diffusion/guidance.h"
#include "core/diffusion/sampler.h"
#include "core/formats/model_folder.h"
#include "core/formats/tensor_io.h"

namespace dsk {

namespace {

// Relative errors (Frobenius norm) against the reference implementation's fp32 outputs, computed
// on another machine with other kernels. A forward pass sums K = 9 * channels terms per output in
// another order, a few dozen layers deep: fp32 rounding gives ~u * sqrt(K) ~ 1e-6. A sampling run
// carries that through every step and the classifier's gradient; guidance amplifies it. The worst
// errors over the portability matrix (every CPU kernel level, 1 and 2 threads, oneDNN on and off;
// docs/testing.md) are 2.7e-6 for forward outputs and 5.6e-5 for sampling runs; each bound is that
// times at least 10, rounded up to a power of ten.
constexpr double kForwardTol = 1e-4;   // forward outputs and gradients
constexpr double kSamplingTol = 1e-3;  // whole sampling runs

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  auto diff = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm().item<double>();
  auto ref = b.to(torch::kFloat64).norm().item<double>();
  return ref == 0 ? diff : diff / ref;
}

nlohmann::json read_case_config(const std::string& config_path) {
  std::ifstream in(config_path);
  if (!in) throw InputError(config_path + ": missing (a conformance case has config.json, unet.safetensors, "
                            "classifier.safetensors and io.safetensors)");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(config_path + ": invalid JSON (" + e.what() + ")");
  }
}

// Each output of the case a recipe recomputes (KEYS; the others are inputs: x, t, y, x_T,
// ddpm_noise), recomputed and compared within the recipe's tolerance, a line each on `out`.
using Recipes = std::map<std::string, std::pair<std::function<torch::Tensor()>, double>>;
ConformanceResult compare_outputs(const Recipes& recipes, const nlohmann::json& keys,
                                  const std::function<const torch::Tensor&(const std::string&)>& expected_of,
                                  const std::string& config_path, std::ostream& out) {
  ConformanceResult result;
  for (auto it = keys.begin(); it != keys.end(); ++it) {
    const auto recipe = recipes.find(it.key());
    if (recipe == recipes.end()) continue;  // inputs (x, t, y, x_T, ddpm_noise)
    const auto& expected = expected_of(it.key());
    const auto got = recipe->second.first().to(torch::kCPU);
    const double tol = recipe->second.second;
    bool ok = got.sizes() == expected.sizes();
    double err = ok ? relative_error(got, expected) : INFINITY;
    ok = ok && err <= tol;
    out << std::left << std::setw(26) << it.key() << " rel_err " << std::scientific << std::setprecision(3) << err
        << "  tol " << tol << "  " << (ok ? "ok" : "FAIL") << "\n";
    (ok ? result.passed : result.failed)++;
  }
  if (result.passed + result.failed == 0) {
    std::string known;
    for (const auto& [key, recipe] : recipes) known += (known.empty() ? "" : ", ") + key;
    throw InputError(config_path + ": KEYS names no output to recompute, so nothing would be checked (expected some of " +
                     known + ")");
  }
  return result;
}

// The solver runs of NAME.json (dpm_solver: DPM-Solver++(2M), made by
// tests/tools/make_dpm_solver_case.py; unipc: UniPC, tests/tools/make_unipc_case.py; each from the
// solver's reference implementation), if the case has them: each run's sampler (dpm++2m when not
// named), respacing, guidance and prediction kind, recomputed with the engine's sampler; the result
// and its trajectory compared.
ConformanceResult check_solver_runs(const std::string& dir, const std::string& name, const DiffusionConfig& diffusion,
                                    const ModelFn& model_fn, const ClassifierFn& logits, const torch::Tensor& y,
                                    double classifier_scale, const torch::Tensor& x_T, std::ostream& out) {
  const std::string json_path = dir + "/" + name + ".json";
  if (!std::filesystem::exists(json_path)) return {};
  const nlohmann::json spec = read_case_config(json_path);
  if (!spec.contains("runs") || !spec["runs"].is_object())
    throw InputError(json_path + ": expected an object \"runs\" (see tests/tools/README.md)");
  const auto expected = read_tensors(st::File::open(dir + "/" + name + ".safetensors"));
  std::map<std::string, torch::Tensor> got;
  nlohmann::json keys = nlohmann::json::object();
  for (auto it = spec["runs"].begin(); it != spec["runs"].end(); ++it) {
    const auto& run = it.value();
    const SamplerKind kind = sampler_from_name(run.value("sampler", "dpm++2m"));
    if (!is_multistep(kind)) throw InputError(json_path + ": run " + it.key() + " names no solver (dpm++2m, unipc, unipc-bh1)");
    DiffusionConfig config = diffusion;
    config.predict_v = run.at("prediction").get<std::string>() == "v";
    const Schedule schedule = make_schedule(config, run.at("respacing").get<std::string>());
    Predictor predict = make_predictor(schedule, config, model_fn, run.at("clip_denoised").get<bool>());
    if (run.at("classifier_guidance").get<bool>())
      predict = with_classifier_guidance(schedule, config, predict, kind, classifier_cond_fn(logits, y, classifier_scale));
    std::vector<torch::Tensor> trajectory;
    LoopOptions opts;
    opts.sampler = kind;
    opts.trajectory = &trajectory;
    got[it.key()] = sample_loop(schedule, predict, x_T.clone(), opts);
    got[it.key() + "_trajectory"] = torch::stack(trajectory);
    keys[it.key()] = keys[it.key() + "_trajectory"] = true;
  }
  Recipes recipes;
  for (const auto& [key, tensor] : got) recipes[key] = {[tensor = tensor] { return tensor; }, kSamplingTol};
  auto expected_of = [&](const std::string& key) -> const torch::Tensor& {
    auto it = expected.find(key);
    if (it == expected.end()) throw InputError(dir + "/" + name + ".safetensors: missing tensor '" + key + "'");
    return it->second;
  };
  return compare_outputs(recipes, keys, expected_of, json_path, out);
}

}  // namespace

namespace {

// A case's networks (eval mode, weights loaded), diffusion settings and io.safetensors.
struct LoadedCase {
  nlohmann::json config;
  std::string config_path;
  UNetConfig unet_cfg;
  DiffusionConfig diffusion;
  double classifier_scale = 1.0;
  UNetModel unet{nullptr};
  EncoderUNetModel classifier{nullptr};
  std::map<std::string, torch::Tensor> io;

  const torch::Tensor& need(const std::string& key, const std::string& dir) const {
    auto it = io.find(key);
    if (it == io.end()) throw InputError(dir + "/io.safetensors: missing input tensor '" + key + "'");
    return it->second;
  }
};

LoadedCase load_case(const std::string& dir) {
  LoadedCase c;
  c.config_path = dir + "/config.json";
  c.config = read_case_config(c.config_path);
  std::vector<std::string> all_keys;
  for (auto it = c.config.begin(); it != c.config.end(); ++it) all_keys.push_back(it.key());
  nlohmann::json flags = c.config;
  for (const char* k : {"KEYS", "forward_timesteps", "batch", "classifier_scale"}) flags.erase(k);

  // The case's config mixes both networks' flags; each parser takes its own and ignores the rest.
  c.unet_cfg = unet_config_from_json(flags, c.config_path, all_keys);
  c.diffusion = diffusion_config_from_json(flags, c.config_path);
  const auto classifier_cfg = classifier_config_from_json(flags, c.config_path, all_keys);
  c.classifier_scale = c.config.value("classifier_scale", 1.0);

  torch::NoGradGuard no_grad;
  c.unet = UNetModel(c.unet_cfg);
  load_weights(*c.unet, st::File::open(dir + "/unet.safetensors"));
  c.unet->eval();
  c.classifier = EncoderUNetModel(classifier_cfg);
  load_weights(*c.classifier, st::File::open(dir + "/classifier.safetensors"));
  c.classifier->eval();
  c.io = read_tensors(st::File::open(dir + "/io.safetensors"));
  return c;
}

}  // namespace

ConformanceResult run_conformance(const std::string& dir, std::ostream& out) {
  configure_threads();
  LoadedCase c = load_case(dir);
  const std::string& config_path = c.config_path;
  const nlohmann::json& config = c.config;
  const auto& unet_cfg = c.unet_cfg;
  const auto& diffusion = c.diffusion;
  const double classifier_scale = c.classifier_scale;
  auto& unet = c.unet;
  auto& classifier = c.classifier;
  const auto& io = c.io;
  torch::NoGradGuard no_grad;
  auto need = [&](const std::string& key) -> const torch::Tensor& { return c.need(key, dir); };
  const torch::Tensor y = io.count("y") ? io.at("y") : torch::Tensor();
  const torch::Tensor y_model = unet_cfg.class_cond ? y : torch::Tensor();
  const Schedule schedule = make_schedule(diffusion);

  ModelFn model_fn = [&](const torch::Tensor& x, const torch::Tensor& t) { return unet(x, t, y_model); };
  const ClassifierFn logits = [&](const torch::Tensor& x, const torch::Tensor& t) { return classifier(x, t); };
  auto guided_sample = [&](SamplerKind kind, bool guided, NoiseFn noise, std::vector<torch::Tensor>* traj) {
    Predictor predict = make_predictor(schedule, diffusion, model_fn, /*clip_denoised=*/true);
    if (guided)
      predict = with_classifier_guidance(schedule, diffusion, predict, kind, classifier_cond_fn(logits, y, classifier_scale));
    LoopOptions opts;
    opts.sampler = kind;
    opts.eta = 0.0;
    opts.noise = noise;
    opts.trajectory = traj;
    return sample_loop(schedule, predict, need("x_T").clone(), opts);
  };
  auto zero_noise = [](const torch::Tensor& like) { return torch::zeros_like(like); };

  // Each key: how to recompute it, and its tolerance. Results computed once and shared.
  std::map<std::string, torch::Tensor> cache;
  auto ddim_guided = [&]() {
    if (!cache.count("ddim_guided")) {
      std::vector<torch::Tensor> traj;
      cache["ddim_guided"] = guided_sample(SamplerKind::Ddim, true, zero_noise, &traj);
      cache["ddim_guided_trajectory"] = torch::stack(traj);
    }
  };
  const Recipes recipes = {
      {"unet_out", {[&] { return unet(need("x"), need("t"), y_model); }, kForwardTol}},
      {"classifier_logits", {[&] { return classifier(need("x"), need("t")); }, kForwardTol}},
      {"classifier_grad_log_p_y",
       {[&] { return classifier_log_prob_grad(logits, need("x"), need("t"), y); }, kForwardTol}},
      {"ddim_guided", {[&] { ddim_guided(); return cache["ddim_guided"]; }, kSamplingTol}},
      {"ddim_guided_trajectory", {[&] { ddim_guided(); return cache["ddim_guided_trajectory"]; }, kSamplingTol}},
      {"ddim_plain", {[&] { return guided_sample(SamplerKind::Ddim, false, zero_noise, nullptr); }, kSamplingTol}},
      {"ddpm_guided",
       {[&] {
          const auto& recorded = need("ddpm_noise");
          auto step = std::make_shared<int64_t>(0);
          NoiseFn replay = [&recorded, step](const torch::Tensor&) { return recorded[(*step)++]; };
          return guided_sample(SamplerKind::Ddpm, true, replay, nullptr);
        },
        kSamplingTol}},
      {"timestep_map", {[&] { return torch::tensor(schedule.timestep_map); }, 0.0}},
  };

  const auto& keys = config.contains("KEYS") ? config["KEYS"] : nlohmann::json::object();
  ConformanceResult result = compare_outputs(recipes, keys, need, config_path, out);
  for (const char* solver_runs : {"dpm_solver", "unipc"}) {
    const ConformanceResult solver =
        check_solver_runs(dir, solver_runs, diffusion, model_fn, logits, y, classifier_scale, need("x_T"), out);
    result.passed += solver.passed;
    result.failed += solver.failed;
  }
  out << "conformance: " << result.passed << " passed, " << result.failed << " failed" << std::endl;
  return result;
}

void check_solver_bench_options(const std::vector<int>& nfes, const std::vector<std::string>& samplers) {
  if (nfes.empty() || samplers.empty()) throw InputError("bench-solvers: give at least one --nfe and one --sampler");
  for (int n : nfes)
    if (n < 3 || n > kStepsRange.max)
      throw InputError("bench-solvers: --nfe must be in 3.." + std::to_string(kStepsRange.max) + "; got " +
                       std::to_string(n));
  for (const auto& name : samplers)
    if (sampler_from_name(name) == SamplerKind::Ddpm)
      throw InputError("bench-solvers: ddpm is stochastic; its error against the ODE's solution says nothing "
                       "(use ddim, dpm++2m, unipc or unipc-bh1)");
}

SolverBenchResult run_solver_bench(const SolverBenchOptions& o, std::ostream& out) {
  configure_threads();
  check_solver_bench_options(o.nfes, o.samplers);
  std::vector<SamplerKind> kinds;
  for (const auto& name : o.samplers) kinds.push_back(sampler_from_name(name));
  LoadedCase c = load_case(o.case_dir);
  torch::NoGradGuard no_grad;
  const torch::Tensor y = c.io.count("y") ? c.io.at("y") : torch::Tensor();
  const torch::Tensor y_model = c.unet_cfg.class_cond ? y : torch::Tensor();
  ModelFn model_fn = [&](const torch::Tensor& x, const torch::Tensor& t) { return c.unet(x, t, y_model); };
  const ClassifierFn logits = [&](const torch::Tensor& x, const torch::Tensor& t) { return c.classifier(x, t); };
  const torch::Tensor& x_T = c.need("x_T", o.case_dir);

  auto run = [&](SamplerKind kind, const std::string& respacing) {
    const Schedule schedule = make_schedule(c.diffusion, respacing);
    Predictor predict = make_predictor(schedule, c.diffusion, model_fn, o.clip);
    if (o.guided)
      predict = with_classifier_guidance(schedule, c.diffusion, predict, kind,
                                         classifier_cond_fn(logits, y, c.classifier_scale));
    LoopOptions opts;
    opts.sampler = kind;
    opts.noise = [](const torch::Tensor& like) { return torch::zeros_like(like); };  // eta 0: never added
    return sample_loop(schedule, predict, x_T.clone(), opts);
  };
  SolverBenchResult result;
  const torch::Tensor reference = run(SamplerKind::Ddim, "");
  out << "bench-solvers: " << o.case_dir << ", " << (o.guided ? "classifier-guided" : "unguided")
      << (o.clip ? ", x0 clipped" : ", x0 not clipped") << "; relative error ||x - x_ref|| / ||x_ref|| against DDIM over all "
      << c.diffusion.diffusion_steps << " steps from the same x_T\n";
  out << std::left << std::setw(6) << "NFE";
  for (const auto& name : o.samplers) out << std::setw(12) << name;
  out << "\n";
  for (int n : o.nfes) {
    out << std::setw(6) << n;
    const std::string respacing = steps_to_respacing(n, c.diffusion.diffusion_steps);
    for (size_t k = 0; k < kinds.size(); ++k) {
      const double err = relative_error(run(kinds[k], respacing), reference);
      result.rows.push_back({o.samplers[k], n, err});
      out << std::setw(12) << std::scientific << std::setprecision(3) << err;
    }
    out << "\n";
  }
  return result;
}

}  // namespace dsk
