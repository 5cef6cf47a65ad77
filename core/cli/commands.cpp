#include "core/cli/commands.h"

#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/base/error.h"
#include "core/cli/sampling_flags.h"
#include "core/engine/engine.h"
#include "core/formats/model_info.h"
#include "core/formats/safetensors.h"
#include "core/tools/bench.h"
#include "core/tools/conformance.h"
#include "core/tools/convert.h"
#include "editing/image_io.h"
#include "models/adm_config.h"

namespace dsk::cli {

namespace fs = std::filesystem;

namespace {
CancelToken g_cancel;
extern "C" void on_cancel_signal(int) { g_cancel.cancel(); }
}  // namespace

CancelToken& cancel_on_signals() {
  std::signal(SIGINT, on_cancel_signal);
  std::signal(SIGTERM, on_cancel_signal);
  return g_cancel;
}

std::string numbered(const std::string& path, size_t i, size_t n) {
  if (n == 1) return path;
  fs::path p(path);
  return (p.parent_path() / (p.stem().string() + "-" + std::to_string(i + 1) + p.extension().string())).string();
}

void register_all(CLI::App& app, Runners& runners) {
  register_conformance(app, runners);
  register_bench_solvers(app, runners);
  register_info(app, runners);
  register_sample(app, runners);
  register_convert(app, runners);
  register_bench(app, runners);
  register_bench_edit(app, runners);
  register_train(app, runners);
  register_pack_data(app, runners);
  register_plot_loss(app, runners);
  register_edit(app, runners);
  register_models(app, runners);
  register_doctor(app, runners);
  register_serve(app, runners);
  register_train_sketch_features(app, runners);
  register_finetune(app, runners);
}

void register_bench_solvers(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("bench-solvers",
                                 "each sampler's error against 1000-step DDIM at 5..50 network evaluations (a conformance case's network)");
  static SolverBenchOptions o;
  static ModelSolverBenchOptions m;
  auto* case_opt = cmd->add_option("--case", o.case_dir, "conformance case folder: config.json, unet/classifier/io.safetensors");
  auto* model_opt = cmd->add_option("--model", m.model, "or a trained editing model (folder or id), with --sketch");
  case_opt->excludes(model_opt);
  cmd->add_option("--sketch", m.sketch, "with --model: the sketch PNG to generate from");
  cmd->add_option("--variants", m.variants, "with --model: seeds 0..N-1")->capture_default_str();
  cmd->add_option("--nfe", o.nfes, "network evaluations per run")->delimiter(',')->capture_default_str();
  cmd->add_option("--sampler", o.samplers, "samplers to compare")->delimiter(',')->capture_default_str();
  cmd->add_flag("--guided", o.guided, "with --case: classifier guidance toward the case's labels");
  cmd->add_flag("--clip,!--no-clip", o.clip, "with --case: clip the predicted x0 to [-1, 1] (default on, as edits sample)");
  runners.push_back([cmd, case_opt, model_opt] {
    if (!cmd->parsed()) return -1;
    if (model_opt->count()) {
      m.nfes = o.nfes;
      m.samplers = o.samplers;
      run_model_solver_bench(m, std::cout);
      return 0;
    }
    if (!case_opt->count()) throw InputError("bench-solvers: give --case DIR (a conformance case) or --model M --sketch PNG");
    run_solver_bench(o, std::cout);
    return 0;
  });
}

void register_conformance(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("conformance", "recompute a reference ADM case and compare (relative errors)");
  static std::string dir;
  cmd->add_option("--case", dir, "case folder: config.json, unet/classifier/io.safetensors")->required();
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    return run_conformance(dir, std::cout).failed == 0 ? 0 : 1;
  });
}

namespace {

// Writes an RGB float image as an 8-bit PNG (editing/'s writer: temp file, then rename).
void write_png(const ImageF32& img, const std::string& path) {
  cv::Mat rgb(img.height, img.width, CV_32FC3, const_cast<float*>(img.data.data()));
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path());
  edit::write_image(path, edit::from_float_rgb(rgb, cv::Mat(), CV_8U, 3));
}


}  // namespace

void register_sample(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("sample", "synthesise images with a plain ADM model (optional classifier guidance)");
  static SampleRequest req;
  static std::string out;
  cmd->add_option("--model", req.model, "model folder (kind adm-unet)")->required();
  cmd->add_option("--out", out, "output PNG (several images: OUT-1.png, OUT-2.png, ...)")->required();
  cmd->add_option("--batch", req.batch, "images to sample at once")->capture_default_str();
  add_sampling_flags(cmd, req.sampling);
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    const auto start = std::chrono::steady_clock::now();
    auto images = Engine().sample(req, [](const Progress& p) {
      std::cerr << "\rstep " << p.step << "/" << p.total << std::flush;
      if (p.step == p.total) std::cerr << "\n";
    });
    for (size_t i = 0; i < images.size(); ++i) {
      write_png(images[i], numbered(out, i, images.size()));
      std::cout << numbered(out, i, images.size()) << "\n";
    }
    std::cerr << "sampled " << images.size() << " image(s) in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n";
    return 0;
  });
}

void register_info(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("info", "list a safetensors file's tensors and the known config it matches");
  static std::string path;
  static bool all = false;
  cmd->add_option("file", path, "FILE.safetensors or a model folder")->required();
  cmd->add_flag("--all", all, "list every tensor (default: the first 20)");
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    std::string file = path;
    if (fs::is_directory(path)) {
      auto info = read_model_info(path);
      std::cout << "model " << info.name << " (" << kind_name(info.kind) << "), " << info.resolution << " px\n";
      file = info.weights_path();
    }
    print_safetensors_info(file, all, std::cout);
    return 0;
  });
}

}  // namespace dsk::cli
