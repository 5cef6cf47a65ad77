// The sampling flags every sampling command shares (same names everywhere).
#pragma once

#include <CLI/CLI.hpp>

#include "core/engine.h"

namespace dsk::cli {

inline void add_sampling_flags(CLI::App* cmd, SamplingParams& p) {
  cmd->add_option("--steps", p.steps, "sampling steps: even section respacing \"N\" of the trained steps")
      ->capture_default_str();
  cmd->add_option("--respacing", p.respacing, "guided-diffusion respacing string (\"ddim25\", \"10,15,20\"); overrides --steps");
  cmd->add_option("--sampler", p.sampler, "ddim or ddpm")->capture_default_str()->check(CLI::IsMember({"ddim", "ddpm"}));
  cmd->add_option("--eta", p.eta, "DDIM eta (0 = deterministic)")->capture_default_str();
  cmd->add_option("--seed", p.seed, "seed of all noise")->capture_default_str();
  cmd->add_option("--device", p.device, "auto, cpu or cuda")->capture_default_str()->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_option("--classifier", p.classifier, "classifier model folder for classifier guidance");
  cmd->add_option("--class", p.class_label, "class label (class-conditional models, classifier guidance)");
  cmd->add_option("--classifier-scale", p.classifier_scale, "classifier guidance scale")->capture_default_str();
}

}  // namespace dsk::cli
