// Each command registers a CLI11 subcommand and a runner that returns its exit status, or -1
// when its subcommand was not the one given.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace dsk::cli {

using Runners = std::vector<std::function<int()>>;

void register_all(CLI::App& app, Runners& runners);

void register_conformance(CLI::App& app, Runners& runners);
void register_info(CLI::App& app, Runners& runners);
void register_sample(CLI::App& app, Runners& runners);
void register_convert(CLI::App& app, Runners& runners);
void register_bench(CLI::App& app, Runners& runners);
void register_train(CLI::App& app, Runners& runners);
void register_edit(CLI::App& app, Runners& runners);
void register_serve(CLI::App& app, Runners& runners);

}  // namespace dsk::cli
