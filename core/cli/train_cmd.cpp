#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

#include "core/base/error.h"
#include "core/cli/commands.h"
#include "core/training/train.h"
#include "core/training/train_data.h"
#include "editing/plot.h"

namespace dsk::cli {

namespace {

// This process's command line without `--nproc N` (or --nproc=N).
std::vector<std::string> argv_without_nproc() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string a; std::getline(in, a, '\0');) args.push_back(a);
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

// A free TCP port on loopback for the ranks' store (the system's choice, released for rank 0).
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw Error(std::string("train --nproc: no free port on 127.0.0.1: ") + std::strerror(errno));
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  strsignal(WTERMSIG(status)) + ")";
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

// `train --nproc N`: N ranks of this same command on this machine, as torchrun would start them
// (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), each with its share of the cores. When
// a rank fails, the others are stopped and the run ends with which rank and how; rank 0's last
// checkpoint stays as it was written.
int launch_local_ranks(int nproc, const std::string& out_dir) {
  const auto args = argv_without_nproc();
  const int port = free_loopback_port();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string threads = std::to_string(std::max(1u, cores / static_cast<unsigned>(nproc)));
  std::cerr << "train: starting " << nproc << " ranks on this machine (Gloo over 127.0.0.1:" << port << ", " << threads
            << " thread(s) each)" << std::endl;
  std::vector<pid_t> ranks;
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(std::string("train --nproc: fork: ") + std::strerror(errno));
    if (pid == 0) {
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      if (!std::getenv("DSK_THREADS")) ::setenv("DSK_THREADS", threads.c_str(), 1);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      _exit(127);
    }
    ranks.push_back(pid);
  }
  // Ctrl-C reaches the ranks too (one process group): they stop together and rank 0 checkpoints.
  ::signal(SIGINT, SIG_IGN);
  int failed_rank = -1, failed_status = 0;
  for (size_t left = ranks.size(); left > 0; --left) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) {
        ++left;
        continue;
      }
      break;
    }
    const auto it = std::find(ranks.begin(), ranks.end(), pid);
    if (it == ranks.end()) {
      ++left;
      continue;
    }
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && failed_rank < 0) {
      failed_rank = static_cast<int>(it - ranks.begin());
      failed_status = status;
      for (const pid_t other : ranks)
        if (other != pid) ::kill(other, SIGTERM);
    }
    *it = -1;
  }
  if (failed_rank < 0) return 0;
  std::cerr << "train: rank " << failed_rank << " of " << nproc << " " << how_it_ended(failed_status)
            << "; the other ranks were stopped. " << out_dir
            << "/checkpoint holds the last checkpoint rank 0 wrote: continue with --resume" << std::endl;
  return 1;
}

}  // namespace

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
      if (std::getenv("WORLD_SIZE")) throw InputError("train: --nproc starts the ranks itself; under torchrun or srun, leave it out");
      return launch_local_ranks(nproc, o.out_dir);
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
