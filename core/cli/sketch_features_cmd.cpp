// `diffsketch train-sketch-features`: the ResNet-50 sketch feature network (core/training/sketch_features_train.h).
#include <iostream>

#include "core/cli/commands.h"
#include "core/training/sketch_features_train.h"

namespace dsk::cli {

void register_train_sketch_features(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("train-sketch-features",
                                 "train the ResNet-50 sketch feature network on DIR/<class>/*.png; Ctrl-C saves a checkpoint and stops");
  static SketchTrainOptions o;
  cmd->add_option("--data", o.data_dir, "folder of class folders of sketches (the Sketchy layout)")->required();
  cmd->add_option("--out", o.out_dir, "output folder: checkpoint/, model/ (kind sketch-features), log.csv")->required();
  cmd->add_option("--steps", o.steps)->capture_default_str();
  cmd->add_option("--batch", o.batch)->capture_default_str();
  cmd->add_option("--lr", o.lr, "Adam learning rate (default 3e-4, or 1e-4 with --init)");
  cmd->add_option("--size", o.size, "training side, px")->capture_default_str();
  cmd->add_option("--seed", o.seed)->capture_default_str();
  cmd->add_flag("--resume", o.resume, "continue from OUT/checkpoint");
  cmd->add_option("--init", o.init, "start from a sketch-features model folder (e.g. converted torchvision weights)");
  cmd->add_option("--val-fraction", o.val_fraction, "of each class held out for validation")->capture_default_str();
  cmd->add_option("--checkpoint-minutes", o.checkpoint_minutes, "checkpoint and validate this often")->capture_default_str();
  cmd->add_option("--device", o.device, "auto, cpu or cuda")->capture_default_str();
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    train_sketch_features(o, std::cerr, &cancel_on_signals());
    return 0;
  });
}

}  // namespace dsk::cli
