#include <csignal>
#include <fstream>
#include <iostream>

#include "core/cli/commands.h"
#include "core/training/finetune.h"

namespace dsk::cli {

namespace {

// Peak resident memory of this process (VmHWM), MB; 0 where /proc is missing.
double peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024;
  return 0;
}
}  // namespace

void register_finetune(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand(
      "finetune", "the paper's Algorithm 1: tune a model to your sketches through the whole DDIM chain; Ctrl-C saves and stops");
  static FinetuneOptions o;
  cmd->add_option("--model", o.model, "model folder or id (adm-unet or editing-unet)")->required();
  cmd->add_option("--sketches", o.sketches_dir, "folder of sketches (dark strokes on light paper, or on transparency)")->required();
  cmd->add_option("--photos", o.photos_dir, "reference photos, one per sketch (paired by sorted name): L_identity to them");
  cmd->add_option("--steps", o.steps, "T: DDIM steps of the chain")->capture_default_str();
  cmd->add_option("--iters", o.iters, "M: iterations")->capture_default_str();
  cmd->add_option("--out", o.out_dir, "output folder: model/ (usable as any model), checkpoint/, loss.csv")->required();
  cmd->add_flag("--resume", o.resume, "continue from OUT/checkpoint");
  cmd->add_option("--lambda", o.lambda, "L = lambda L_identity + (1 - lambda) L_sketch")->capture_default_str();
  cmd->add_option("--lr", o.lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--ema-rate", o.ema_rate)->capture_default_str();
  cmd->add_option("--batch", o.batch,
                  "sketches per iteration, per rank when data-parallel (0: 4, or 1 with fewer than 4 sketches a rank)")->capture_default_str();
  cmd->add_option("--seed", o.seed, "fixes x_T and the order of the sketches")->capture_default_str();
  cmd->add_option("--class", o.class_label, "class label (class-conditional models)");
  cmd->add_option("--device", o.device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--sketch-features", o.sketch_features, "sketch-features model folder (default: the fixed edge pyramid)");
  cmd->add_option("--precision", o.precision, "fp32, bf16 (CPU with native bf16) or fp16 (CUDA, dynamic loss scaling)")
      ->capture_default_str()->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  cmd->add_flag("!--no-recompute", o.recompute, "keep the whole chain's graph instead of recomputing each step (more memory)");
  cmd->add_option("--checkpoint-every", o.checkpoint_every, "also checkpoint every N iterations (default: every 5 minutes)");
  static int nproc = 1;
  cmd->add_option("--nproc", nproc,
                  "data-parallel: start N ranks on this machine (Gloo; each takes --batch sketches an iteration, so "
                  "N x batch in all). Several machines: start one process a rank with torchrun or srun instead")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    if (nproc > 1) return launch_local_ranks("finetune", nproc, o.out_dir);
    auto& cancel = cancel_on_signals();
    const auto r = finetune(o, std::cerr, &cancel);
    if (r.primary)
      std::cerr << "L_sketch " << r.first_sketch << " -> " << r.last_sketch << ", L_identity " << r.first_identity
                << " -> " << r.last_identity << ", " << r.iters << " iterations in " << r.seconds << " s, peak RSS "
                << peak_rss_mb() << " MB\n";
    return 0;
  });
}

}  // namespace dsk::cli
