#include <iostream>

#include "core/base/error.h"
#include "core/cli/commands.h"
#include "core/training/train.h"
#include "core/training/train_data.h"
#include "editing/plot.h"

namespace dsk::cli {

void register_train(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("train", "train an editing (or plain ADM) model; Ctrl-C saves a checkpoint and stops");
  static TrainOptions o;
  cmd->add_option("--config", o.config_path, "training config JSON (model + train sections)")->required();
  cmd->add_option("--data", o.data_dirs, "folders of training pictures (repeatable)")->required();
  cmd->add_option("--out", o.out_dir, "output folder: checkpoint/, model/, loss.csv")->required();
  cmd->add_flag("--resume", o.resume, "continue from OUT/checkpoint");
  cmd->add_option("--init-from", o.init_from,
                  "start a new run from a trained model folder (e.g. models/default): its weights start the network "
                  "and the EMA, Adam starts fresh");
  cmd->add_option("--device", o.device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--steps", o.max_steps_override, "stop at this step (default: the config's steps)");
  static int nproc = 1;
  cmd->add_option("--nproc", nproc,
                  "data-parallel: start N ranks on this machine (Gloo; each takes the config's batch, so the global "
                  "batch is N x batch). Several machines: start one process a rank with torchrun or srun instead")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    if (nproc > 1) {
      return launch_local_ranks("train", nproc, o.out_dir);
    }
    auto& cancel = cancel_on_signals();
    train(o, std::cerr, &cancel);
    return 0;
  });
}

void register_pack_data(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("pack-data", "prepare training crops as safetensors shards (for machines with only LibTorch)");
  static std::vector<std::string> dirs;
  static std::string out, split = "train";
  static DataOptions options;
  static int count = 10000, shard_size = 2000;
  static uint64_t seed = 0;
  cmd->add_option("--data", dirs, "folders of training pictures (repeatable)")->required();
  cmd->add_option("--out", out, "new folder for pack.json and the shards")->required();
  cmd->add_option("--size", options.size, "crop side, px (the model's image_size)")->capture_default_str();
  cmd->add_option("--count", count)->capture_default_str();
  cmd->add_option("--shard-size", shard_size)->capture_default_str();
  cmd->add_option("--seed", seed)->capture_default_str();
  cmd->add_option("--split", split, "train or val (by picture)")->capture_default_str()->check(CLI::IsMember({"train", "val"}));
  cmd->add_option("--val-fraction", options.val_fraction)->capture_default_str();
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    pack_training_data(dirs, options, out, count, shard_size, seed, split == "val", std::cerr);
    return 0;
  });
}

void register_plot_loss(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("plot-loss", "draw a loss.csv (train, finetune) as a PNG line plot");
  static std::string csv, out, column = "loss", title;
  cmd->add_option("--csv", csv, "loss.csv written by train or finetune")->required();
  cmd->add_option("--out", out, "PNG to write")->required();
  cmd->add_option("--column", column, "column to plot against the first one")->capture_default_str();
  cmd->add_option("--title", title, "title above the plot");
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    edit::write_loss_plot(csv, out, title, column);
    std::cout << out << "\n";
    return 0;
  });
}

}  // namespace dsk::cli
