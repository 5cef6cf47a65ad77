// Training the editing model (and plain ADM models): Adam, EMA with warm-up, gradient clipping,
// optional bf16 autocast on CPUs that have it, seeded, resumable atomic checkpoints, a NaN guard,
// and a progress line.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "core/base/cancel.h"

namespace dsk {

// `diffsketch train --config C`: C is JSON
//   {"model": {"kind": "editing-unet", "name": ..., "flags": {...}},   (model.json's shape)
//    "train": {"steps": 20000, "batch": 8, "lr": 1e-4, "ema_rate": 0.9999, "grad_clip": 1.0,
//              "seed": 0, "checkpoint_minutes": 5, "log_every": 10, "bf16": false,
//              "export": "ema" | "raw", "init_from": "ADM model folder" (optional),
//              "val_fraction": 0.1, "sketch_dropout": 0.15, "full_mask_prob": 0.1,
//              "lr_decay": "none" | "cosine" | "linear", "lr_decay_start": 0, "lr_decay_steps": N,
//              "lr_final": lr / 10}}
struct TrainOptions {
  std::string config_path;
  std::vector<std::string> data_dirs;
  std::string out_dir;
  bool resume = false;
  // --init-from DIR: start from a trained model folder (e.g. the shipped models/default): its weights
  // are the network's and the EMA's starting point (no EMA warm-up), Adam starts fresh, the step
  // count from 0. Overrides the config's init_from; not with --resume.
  std::string init_from;
  std::string device = "auto";
  long max_steps_override = -1;  // --steps: stop earlier (tests)
};

// Learning-rate annealing: lr until `start`, then down to `final_lr` over `steps` steps (half a
// cosine wave or a straight line), then final_lr. Set on every step from the step count, so a
// resumed run follows it exactly, and a running training can be given one from its current step.
struct LrDecay {
  enum class Shape { None, Cosine, Linear } shape = Shape::None;
  long start = 0, steps = 0;
  double final_lr = 0;
};
double lr_at(double lr, const LrDecay& decay, long step);

struct TrainReport {
  long step = 0;
  double first_loss = 0, last_loss = 0;  // means over the first / last logging windows
  int skipped_nan = 0;
};

// Trains until train.steps (or the override) or until `cancel`; checkpoints into OUT/checkpoint
// and exports the usable model folder OUT/model (EMA or raw weights). Writes OUT/loss.csv.
TrainReport train(const TrainOptions& options, std::ostream& log, const CancelToken* cancel = nullptr);

}  // namespace dsk
