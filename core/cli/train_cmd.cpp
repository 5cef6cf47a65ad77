#include <csignal>
#include <iostream>

#include "core/cli/commands.h"
#include "core/train.h"

namespace dsk::cli {

namespace {
CancelToken* g_cancel = nullptr;
extern "C" void on_signal(int) {
  if (g_cancel) g_cancel->cancel();
}
}  // namespace

void register_train(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("train", "train an editing (or plain ADM) model; Ctrl-C saves a checkpoint and stops");
  static TrainOptions o;
  cmd->add_option("--config", o.config_path, "training config JSON (model + train sections)")->required();
  cmd->add_option("--data", o.data_dirs, "folders of training pictures (repeatable)")->required();
  cmd->add_option("--out", o.out_dir, "output folder: checkpoint/, model/, loss.csv")->required();
  cmd->add_flag("--resume", o.resume, "continue from OUT/checkpoint");
  cmd->add_option("--device", o.device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--steps", o.max_steps_override, "stop at this step (default: the config's steps)");
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    static CancelToken cancel;
    g_cancel = &cancel;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    train(o, std::cerr, &cancel);
    return 0;
  });
}

}  // namespace dsk::cli
