// The sampling flags every sampling command shares (same names everywhere).
#pragma once

#include <CLI/CLI.hpp>
#include <sstream>

#include "core/base/error.h"
#include "core/engine/engine.h"

namespace dsk::cli {

inline void add_sampling_flags(CLI::App* cmd, SamplingParams& p) {
  cmd->add_option("--steps", p.steps, "sampling steps: even section respacing \"N\" of the trained steps")
      ->capture_default_str();
  cmd->add_option("--respacing", p.respacing, "guided-diffusion respacing string (\"ddim25\", \"10,15,20\"); overrides --steps");
  cmd->add_option("--sampler", p.sampler,
                  "ddim, ddpm, dpm++2m (DPM-Solver++(2M): second order, deterministic) or unipc / unipc-bh1 (UniPC, "
                  "second order with a corrector, B(h) = expm1 or h; deterministic)")
      ->capture_default_str()
      ->check(CLI::IsMember({"ddim", "ddpm", "dpm++2m", "unipc", "unipc-bh1"}));
  cmd->add_option("--eta", p.eta, "DDIM eta (0 = deterministic)")->capture_default_str();
  cmd->add_option("--seed", p.seed, "seed of all noise")->capture_default_str();
  cmd->add_option("--device", p.device, "auto, cpu or cuda")->capture_default_str()->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_option("--classifier", p.classifier, "classifier model folder for classifier guidance");
  cmd->add_option("--class", p.class_label, "class label (class-conditional models, classifier guidance)");
  cmd->add_option("--classifier-scale", p.classifier_scale, "classifier guidance scale")->capture_default_str();
}

// Training-free sketch guidance: the same flags on edit, generate, interpolate and eval-inpaint.
// Call check_sketch_guidance in the runner (a scale out of range exits 2 with a message, as other
// bad values do, rather than with CLI11's code).
inline void add_sketch_guidance_flags(CLI::App* cmd, SketchGuidance& g) {
  cmd->add_option("--sketch-guidance", g.scale,
                  "training-free sketch guidance scale, " + range_text(kSketchGuidanceRange) +
                      " (0 = off): steers each step towards the sketch")
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--sketch-guidance-mode", [&g](const std::string& mode) { g.exact = mode == "exact"; },
         "cheap (the model's output held constant) or exact (the gradient through the U-Net, ~3x the time per step)")
      ->check(CLI::IsMember({"cheap", "exact"}))
      ->default_str("cheap");
  cmd->add_option("--sketch-features", g.features,
                  "sketch-features model folder for the guidance loss (default: the built-in edge pyramid)");
}

inline void check_sketch_guidance(const SketchGuidance& g) {
  if (!kSketchGuidanceRange.contains(g.scale)) {
    std::ostringstream msg;
    msg << "--sketch-guidance " << g.scale << " must be in " << range_text(kSketchGuidanceRange) << " (0 = off)";
    throw InputError(msg.str());
  }
}

// --detail patch|tiles|none, and --no-refine (older name of --detail none).
struct DetailFlag {
  std::string name{kDefaultDetail};
  bool no_refine = false;
  void add(CLI::App* cmd) {
    cmd->add_option("--detail", name,
                    "detail at native resolution for selections larger than the model's working size: patch "
                    "(texture from the picture, guided by the model and the sketch), tiles (the model re-run on "
                    "tiles), none (an upscale)")
        ->capture_default_str();
    cmd->add_flag("--no-refine", no_refine, "the same as --detail none");
  }
  DetailMode mode() const { return no_refine ? DetailMode::None : parse_detail_mode(name); }
};


}  // namespace dsk::cli
