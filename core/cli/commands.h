// Each command registers a CLI11 subcommand and a runner that returns its exit status, or -1
// when its subcommand was not the one given.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "core/base/cancel.h"

namespace dsk::cli {

using Runners = std::vector<std::function<int()>>;

// "out.png" with n results -> out-1.png, out-2.png, ... (n == 1: out.png).
std::string numbered(const std::string& path, size_t i, size_t n);

// The process's cancel token, tripped by SIGINT / SIGTERM once this is called (long-running
// commands: train, finetune, train-sketch-features save a checkpoint and stop).
CancelToken& cancel_on_signals();

// `COMMAND --nproc N`: runs this process's command line (without --nproc) as N data-parallel ranks
// on this machine (torchrun's variables, a free loopback port, cores / N threads each) and waits;
// when one fails, stops the others and says which and how, and that OUT/checkpoint resumes.
// Returns the exit status.
int launch_local_ranks(const std::string& command, int nproc, const std::string& out_dir);

void register_all(CLI::App& app, Runners& runners);

void register_conformance(CLI::App& app, Runners& runners);
void register_bench_solvers(CLI::App& app, Runners& runners);
void register_info(CLI::App& app, Runners& runners);
void register_sample(CLI::App& app, Runners& runners);
void register_convert(CLI::App& app, Runners& runners);
void register_bench(CLI::App& app, Runners& runners);
void register_bench_edit(CLI::App& app, Runners& runners);
void register_train(CLI::App& app, Runners& runners);
void register_pack_data(CLI::App& app, Runners& runners);
void register_plot_loss(CLI::App& app, Runners& runners);
void register_edit(CLI::App& app, Runners& runners);
void register_models(CLI::App& app, Runners& runners);
void register_doctor(CLI::App& app, Runners& runners);
void register_serve(CLI::App& app, Runners& runners);
void register_train_sketch_features(CLI::App& app, Runners& runners);
void register_finetune(CLI::App& app, Runners& runners);

}  // namespace dsk::cli
