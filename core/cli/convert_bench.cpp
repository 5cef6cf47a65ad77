#include <iostream>

#include "core/cli/commands.h"
#include "core/cli/sampling_flags.h"
#include "core/tools/bench.h"
#include "core/tools/convert.h"

namespace dsk::cli {

void register_convert(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("convert", "convert an official torch.save checkpoint (trusted files only) to a model folder");
  static ConvertOptions o;
  cmd->add_option("input", o.input, "IN.pt")->required();
  cmd->add_option("out_dir", o.out_dir, "OUT_DIR (new model folder)")->required();
  cmd->add_option("--preset", o.preset, "adm-64-cond, adm-128-cond, adm-256-cond, adm-256-uncond, adm-512-cond, adm-{64,128,256,512}-classifier, resnet50-torchvision");
  cmd->add_option("--config", o.config, "JSON {\"kind\": ..., \"flags\": {...}} for other checkpoints");
  cmd->add_option("--dtype", o.dtype, "keep, f32, f16 or bf16")->capture_default_str();
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    convert_checkpoint(o, std::cerr);
    return 0;
  });
}

void register_bench(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("bench", "U-Net forward ms, GFLOP/s, and this LibTorch's GEMM GFLOP/s");
  static BenchOptions o;
  cmd->add_option("--preset", o.preset, "a published configuration, e.g. adm-256-uncond");
  cmd->add_option("--config", o.config, "a model.json (or a flat flags JSON)");
  cmd->add_option("--batch", o.batch)->capture_default_str();
  cmd->add_option("--iters", o.iters)->capture_default_str();
  cmd->add_option("--warmup", o.warmup)->capture_default_str();
  cmd->add_option("--device", o.device)->capture_default_str();
  cmd->add_option("--precision", o.precisions,
                  "CPU inference precision: auto (DSK_PRECISION, else bf16 where native), fp32, bf16; a list "
                  "(fp32,bf16) times each, interleaved")
      ->delimiter(',')
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}))
      ->capture_default_str();
  cmd->add_option("--memory-format", o.memory_formats,
                  "layout of the convolutions' weights and input: contiguous (NCHW, as the engine runs), channels-last "
                  "(NHWC); a list times each, interleaved")
      ->delimiter(',')
      ->check(CLI::IsMember({"contiguous", "channels-last"}))
      ->capture_default_str();
  cmd->add_option("--json", o.json_path, "also write the results and the network's resolved flags to this JSON file");
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    run_bench(o, std::cout);
    return 0;
  });
}

void register_bench_edit(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("bench-edit", "wall time of editing a SIZE x SIZE selection (median of runs)");
  static EditBenchOptions o;
  static std::vector<std::string> details = {std::string(kDefaultDetail)};
  static bool no_refine = false;
  cmd->add_option("--model", o.model, "model folder or id")->capture_default_str();
  cmd->add_option("--size", o.size, "selection side, px")->capture_default_str();
  cmd->add_option("--steps", o.steps, "steps; a list (25,12) times one configuration per entry")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--sampler", o.samplers, "sampler; a list (ddim,dpm++2m) times one configuration per entry")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--iters", o.iters)->capture_default_str();
  cmd->add_option("--warmup", o.warmup)->capture_default_str();
  cmd->add_option("--device", o.device)->capture_default_str();
  cmd->add_option("--detail", details,
                  "detail at native resolution, as edit's: patch, tiles, none; a list (tiles,patch) times one "
                  "configuration per entry")
      ->delimiter(',')
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(kDetailModes), std::end(kDetailModes))))
      ->capture_default_str();
  cmd->add_flag("--no-refine", no_refine, "the same as --detail none");
  cmd->add_option("--init-strength", o.init_strength, "as edit's (default: edit's default)");
  cmd->add_option("--refine-strength", o.refine_strength, "as edit's (default: edit's default)");
  cmd->add_option("--refine-steps", o.refine_steps, "as edit's (default: edit's default)");
  cmd->add_option("--harmonize", o.harmonize, "as edit's (default: edit's default)");
  cmd->add_option("--sketch-scale", o.sketch_scale, "as edit's (default: edit's default; above 1 the U-Net runs twice per step)");
  cmd->add_option("--refine-sketch-scale", o.refine_sketch_scales,
                  "the tiles' sketch strength, as edit's; a list (2,1) times one configuration per entry")
      ->delimiter(',');
  cmd->add_option("--precision", o.precisions,
                  "CPU inference precision, as DSK_PRECISION: auto, fp32, bf16; a list times one configuration per entry")
      ->delimiter(',')
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}))
      ->capture_default_str();
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    o.details.clear();
    for (const auto& d : details) o.details.push_back(no_refine ? DetailMode::None : parse_detail_mode(d));
    run_edit_bench(o, std::cout);
    return 0;
  });
}

}  // namespace dsk::cli
